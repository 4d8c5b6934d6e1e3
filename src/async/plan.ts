/**
 * Pure planning for long-running migrations: parameters → a frozen run plan, progress figures,
 * batch ranges and the tags that mark a run's statements on the server.
 */
import { createHash } from 'node:crypto';
import type { Dialect } from '../drivers/driver.js';
import { ConfigError, SourceError, type SourceProblem } from '../errors.js';
import { fileLine, splitStatements } from '../sql/split.js';
import type { LoadedDefinition, PlannedOperation, PlannedStatement, RunPlan } from './definition.js';
import {
  bindParameters,
  checkParameterValue,
  describeType,
  type ParameterValue,
  type ParameterValues,
} from './parameters.js';

export type { ParameterValues } from './parameters.js';

/** What planning needs of a database: its name (how literals are written) and how its SQL splits. */
export type PlanTarget = Pick<Dialect, 'name' | 'syntax'>;

/**
 * The definition's defaults overridden by `given`, each checked against its declared type (CLI
 * strings are read as it). A value that is not of its type is refused, naming both.
 */
export function resolveParameters(
  definition: Pick<LoadedDefinition, 'name' | 'parameters'>,
  given: Readonly<Record<string, unknown>> = {},
): ParameterValues {
  const values: Record<string, ParameterValue> = {};
  for (const [name, parameter] of Object.entries(definition.parameters)) values[name] = parameter.default;
  for (const [name, value] of Object.entries(given)) {
    const parameter = Object.hasOwn(definition.parameters, name) ? definition.parameters[name] : undefined;
    if (!parameter) {
      const known = Object.keys(definition.parameters);
      throw new ConfigError(
        `${definition.name} has no parameter "${name}"${known.length > 0 ? `; its parameters: ${known.join(', ')}` : ' (it takes none)'}`,
      );
    }
    const checked = checkParameterValue(parameter.type, value);
    if ('problem' in checked) {
      throw new ConfigError(
        `parameter ${name} of ${definition.name} takes ${describeType(parameter.type)}: ${checked.problem}`,
      );
    }
    values[name] = checked.value;
  }
  return values;
}

/**
 * The plan a run freezes into its state row: every operation with parameters substituted and its
 * statements split for this database. Problems name the file and line.
 */
export function planRun(definition: LoadedDefinition, values: ParameterValues, target: PlanTarget): RunPlan {
  const problems: SourceProblem[] = [];
  const operations = definition.operations(values).map((source, index): PlannedOperation => {
    const split = (text: string, line: number | undefined, what: string): PlannedStatement[] =>
      splitStatements(text, target.syntax).map((s) => {
        const at = line === undefined ? undefined : fileLine(line, text, s.offset);
        const sql = bindParameters(s.sql, values, target, (message, offset) =>
          problems.push({
            file: definition.file,
            ...(at ? { line: fileLine(at, s.sql, offset) } : {}),
            problem: `operation ${index + 1}${what}: ${message}`,
          }),
        );
        return at === undefined ? { sql } : { sql, line: at };
      });
    const statements = split(source.sql, source.line, '');
    const rollback = split(source.rollback, source.rollbackLine, ' (rollback)');
    if (statements.length === 0) {
      problems.push({
        file: definition.file,
        ...(source.line ? { line: source.line } : {}),
        problem: `operation ${index + 1} has no SQL`,
      });
    }
    if (source.batch) {
      const missing = (list: PlannedStatement[]) => !list.some((s) => usesRange(s.sql));
      if (missing(statements) || (rollback.length > 0 && missing(rollback))) {
        problems.push({
          file: definition.file,
          ...(source.line ? { line: source.line } : {}),
          problem: `batched operation ${index + 1} must limit its SQL${rollback.length > 0 ? ' and rollback' : ''} to the batch with :start and :end (e.g. WHERE ${source.batch.key} >= :start AND ${source.batch.key} < :end)`,
        });
      }
    }
    return {
      kind: source.batch ? 'batched' : 'sql',
      statements,
      rollback,
      timeoutMs: source.timeoutMs,
      settings: source.settings,
      transaction: source.transaction,
      ...(source.batch ? { batch: source.batch } : {}),
    };
  });
  if (operations.length === 0) problems.push({ file: definition.file, problem: 'has no operations' });
  if (problems.length > 0) throw new SourceError(problems);
  return { operations, parameters: values, dependsOn: definition.dependsOn };
}

export function planChecksum(plan: RunPlan): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex');
}

const RANGE = /(?<![:\w]):(start|end)\b/g;

function usesRange(sql: string): boolean {
  return /(?<![:\w]):start\b/.test(sql) && /(?<![:\w]):end\b/.test(sql);
}

/** `:start` and `:end` → the batch's bounds (integers from the database, never user text). */
export function bindRange(sql: string, start: bigint, end: bigint): string {
  return sql.replace(RANGE, (_, which: string) => String(which === 'start' ? start : end));
}

/** Where a run stands: operation index, direction, and the batch cursor of the operation in flight. */
export interface ProgressPoint {
  readonly direction: 'forward' | 'rollback';
  readonly opIndex: number;
  readonly opCount: number;
  readonly cursor: bigint | null;
  readonly min: bigint | null;
  readonly max: bigint | null;
}

/**
 * Percent done, 0–100. Forward: operations done plus the fraction of the batched one in flight.
 * Rollback counts back down: what is still in effect.
 */
export function progressPercent(p: ProgressPoint): number {
  if (p.opCount === 0) return 100;
  const fraction = batchFraction(p);
  const done = p.direction === 'forward' ? p.opIndex + fraction : p.opIndex + 1 - fraction;
  return Math.max(0, Math.min(100, Math.round((done / p.opCount) * 10_000) / 100));
}

function batchFraction(p: ProgressPoint): number {
  if (p.cursor === null || p.min === null || p.max === null) return 0;
  const span = p.max - p.min + 1n;
  if (span <= 0n) return 1;
  const done = p.cursor - p.min;
  if (done <= 0n) return 0;
  if (done >= span) return 1;
  return Number((done * 10_000n) / span) / 10_000;
}

/** The comment that starts every statement of a run, found by `findRunning` if its worker dies. */
export function runMarker(name: string): string {
  return `lockstep-async:${name}:`;
}

export function queryTag(
  name: string,
  attempt: number,
  direction: 'forward' | 'rollback',
  opIndex: number,
  detail: string,
): string {
  return `${runMarker(name)}${direction === 'forward' ? 'op' : 'undo'}${opIndex + 1}:a${attempt}:${detail}`;
}

export function tagged(tag: string, sql: string): string {
  return `/* ${tag} */ ${sql}`;
}
