/**
 * Reads the long-running migrations directory: `<name>.sql` (see sql-definition.ts) or a TS/JS
 * module whose default export is `defineAsyncMigration({...})`. Problems name the file and line.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  displayPath,
  importModule,
  isSourceFileName,
  readSource,
  withoutExtension,
} from '../core/sources.js';
import { SourceError, type SourceProblem } from '../errors.js';
import { fileLine } from '../sql/split.js';
import { durationMs, parseDuration } from '../util/duration.js';
import { isObject } from '../util/objects.js';
import type {
  AsyncBatchedOperation,
  AsyncCheck,
  AsyncContext,
  AsyncMigrationDefinition,
  AsyncOperation,
  DeclaredParameter,
  LoadedDefinition,
  SourceOperation,
} from './definition.js';
import {
  bindParameters,
  checkParameterValue,
  describeType,
  inferType,
  PARAMETER_TYPES,
} from './parameters.js';
import { type PlanTarget, planRun } from './plan.js';
import { parseAsyncSql, type SqlCheck } from './sql-definition.js';

/** A long-running migration's name (its file name without extension); the state table's key is 64 characters on MySQL. */
export const ASYNC_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** A definition file found in the directory, not yet loaded. */
export interface DefinitionFile {
  readonly name: string;
  readonly file: string;
  readonly path: string;
  /**
   * Reads (SQL) or imports (modules) and checks it, placeholders included: planned once with the
   * defaults, so a misplaced `{{name}}` is found here, with its file and line.
   */
  load(target: PlanTarget): Promise<LoadedDefinition>;
}

/** The definitions in `dir`, sorted by name; an absent directory holds none. */
export async function readDefinitionFiles(dir: string, cwd = process.cwd()): Promise<DefinitionFile[]> {
  const absolute = path.resolve(cwd, dir);
  let names: string[];
  try {
    // Every name, also of links, FIFOs and folders: one named like a definition is read (and
    // refused with its reason) rather than skipped in silence.
    names = (await readdir(absolute)).filter(isSourceFileName);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') {
      throw new SourceError([
        { file: dir, problem: 'is not a directory (--async-dir names the folder of definitions)' },
      ]);
    }
    throw error;
  }
  const problems: SourceProblem[] = [];
  const files: DefinitionFile[] = [];
  const seen = new Map<string, string>();
  for (const fileName of names.sort()) {
    const fullPath = path.join(absolute, fileName);
    const shown = displayPath(fullPath, cwd);
    const name = withoutExtension(fileName);
    if (!ASYNC_NAME.test(name)) {
      problems.push({
        file: shown,
        problem: `a long-running migration's file name is its name: letters, digits, _ and - (at most 64), e.g. 0001_backfill_emails.sql`,
      });
      continue;
    }
    const other = seen.get(name);
    if (other) {
      problems.push({ file: shown, problem: `the name ${name} is also used by ${other}` });
      continue;
    }
    seen.set(name, shown);
    files.push({
      name,
      file: shown,
      path: fullPath,
      load: (target) =>
        fileName.endsWith('.sql')
          ? loadSql(name, shown, fullPath, target)
          : loadModule(name, shown, fullPath).then((definition) => checkedByPlanning(definition, target)),
    });
  }
  if (problems.length > 0) throw new SourceError(problems);
  return files;
}

/** Plans it with its defaults: what planning refuses (a misplaced placeholder) is refused at load. */
function checkedByPlanning(definition: LoadedDefinition, target: PlanTarget): LoadedDefinition {
  const defaults = Object.fromEntries(Object.entries(definition.parameters).map(([k, p]) => [k, p.default]));
  planRun(definition, defaults, target);
  return definition;
}

async function loadSql(
  name: string,
  file: string,
  fullPath: string,
  target: PlanTarget,
): Promise<LoadedDefinition> {
  const parsed = parseAsyncSql(readDefinitionText(file, fullPath), file);
  const defaults = Object.fromEntries(Object.entries(parsed.parameters).map(([k, p]) => [k, p.default]));
  const wellFormed = parsed.problems.length === 0;
  for (const [which, c] of Object.entries(parsed.checks)) {
    bindParameters(c.sql, defaults, target, (message, offset) =>
      parsed.problems.push({
        file,
        line: fileLine(c.line, c.sql, offset),
        problem: `${which}: ${message}`,
      }),
    );
  }
  const syntax = target.syntax;
  const check = (which: string, c: SqlCheck | undefined): AsyncCheck | undefined =>
    c && (async (ctx) => sqlCheck(ctx, c, which, file, syntax));
  const definition: LoadedDefinition = {
    name,
    file,
    description: parsed.description,
    dependsOn: parsed.dependsOn,
    parameters: parsed.parameters,
    operations(values) {
      const problems: SourceProblem[] = [];
      const operations = parsed.operations(values, problems);
      if (problems.length > 0) throw new SourceError(problems);
      return operations;
    },
    precheck: check('precheck', parsed.checks.precheck),
    healthcheck: check('healthcheck', parsed.checks.healthcheck),
    isRequired: parsed.checks.is_required
      ? async (ctx) =>
          (await sqlCheck(ctx, parsed.checks.is_required as SqlCheck, 'is_required', file, syntax)) === true
      : undefined,
  };
  // The operations' placeholders, planned with the defaults, reported with the other problems.
  if (wellFormed) {
    try {
      checkedByPlanning(definition, target);
    } catch (error) {
      if (!(error instanceof SourceError)) throw error;
      parsed.problems.push(...error.problems);
    }
  }
  if (parsed.problems.length > 0) throw new SourceError(parsed.problems);
  return definition;
}

/** A check written as a query: its first column of its first row must be true (or 1). */
async function sqlCheck(
  ctx: AsyncContext,
  check: SqlCheck,
  which: string,
  file: string,
  syntax: PlanTarget['syntax'],
): Promise<true | string> {
  const sql = bindParameters(check.sql, ctx.parameters, { name: ctx.dialect, syntax }, (message, offset) => {
    throw new SourceError([
      { file, line: fileLine(check.line, check.sql, offset), problem: `${which}: ${message}` },
    ]);
  });
  const { rows } = await ctx.query(sql);
  const first = rows[0];
  const value = first ? Object.values(first)[0] : undefined;
  if (value === true || value === 1 || value === 1n || value === '1' || value === 't' || value === 'true')
    return true;
  return `${which} at ${file}:${check.line} returned ${value === undefined ? 'no row' : JSON.stringify(value)}`;
}

/** The file's text: a dangling link, a FIFO, a folder, unreadable bytes or invalid UTF-8 are refused. */
function readDefinitionText(file: string, fullPath: string): string {
  const read = readSource(fullPath);
  if ('problem' in read) throw new SourceError([{ file, ...read }]);
  return read.text;
}

async function loadModule(name: string, file: string, fullPath: string): Promise<LoadedDefinition> {
  readDefinitionText(file, fullPath);
  let exports: Record<string, unknown>;
  try {
    exports = await importModule(fullPath);
  } catch (error) {
    throw new SourceError([{ file, problem: `cannot be imported: ${(error as Error).message}` }]);
  }
  let definition = exports.default as Record<string, unknown> | undefined;
  // `export default {...}` compiled as CommonJS nests once more.
  if (isObject(definition) && !('operations' in definition) && isObject(definition.default)) {
    definition = definition.default;
  }
  const problems: SourceProblem[] = [];
  const problem = (message: string) => problems.push({ file, problem: message });
  if (!isObject(definition)) {
    throw new SourceError([
      {
        file,
        problem: 'has no default export: export default defineAsyncMigration({ description, operations })',
      },
    ]);
  }
  const d = definition as Partial<AsyncMigrationDefinition>;
  if (typeof d.description !== 'string' || d.description.trim() === '')
    problem('`description` must be a non-empty string');
  if (
    d.dependsOn !== undefined &&
    !(Array.isArray(d.dependsOn) && d.dependsOn.every((n) => typeof n === 'string'))
  ) {
    problem('`dependsOn` must be an array of names');
  }
  const parameters: Record<string, DeclaredParameter> = {};
  for (const [key, p] of Object.entries(d.parameters ?? {})) {
    const declared = isObject(p) ? moduleParameter(key, p) : `parameter ${key} must be { type, default }`;
    if (typeof declared === 'string') problem(declared);
    else parameters[key] = declared;
  }
  if (typeof d.operations !== 'function' && !Array.isArray(d.operations)) {
    problem('`operations` must be an array of operations, or a function of the parameters returning one');
  }
  for (const key of ['precheck', 'healthcheck', 'isRequired'] as const) {
    if (d[key] !== undefined && typeof d[key] !== 'function') problem(`\`${key}\` must be a function`);
  }
  if (problems.length > 0) throw new SourceError(problems);
  const operationsOf = d.operations as AsyncMigrationDefinition['operations'];
  return {
    name,
    file,
    description: (d.description as string).trim(),
    dependsOn: d.dependsOn ?? [],
    parameters,
    operations(values) {
      let list: readonly AsyncOperation[];
      try {
        list = typeof operationsOf === 'function' ? operationsOf(values) : operationsOf;
      } catch (error) {
        throw new SourceError([
          { file, problem: `operations(parameters) threw: ${(error as Error).message}` },
        ]);
      }
      if (!Array.isArray(list))
        throw new SourceError([{ file, problem: 'operations(parameters) must return an array' }]);
      const found: SourceProblem[] = [];
      const result = list.map((op, i) => moduleOperation(op, i, file, found));
      if (found.length > 0) throw new SourceError(found);
      return result;
    },
    precheck: d.precheck,
    healthcheck: d.healthcheck,
    isRequired: d.isRequired,
  };
}

/** A module's `{ type, default, description }`: the type known (or inferred), the default of it. */
function moduleParameter(key: string, p: Record<string, unknown>): DeclaredParameter | string {
  const type = p.type ?? inferType(p.default);
  if (!(PARAMETER_TYPES as readonly unknown[]).includes(type)) {
    return p.type === undefined
      ? `parameter ${key} needs a default (a number, a string or a boolean) or a type`
      : `parameter ${key}: unknown type ${JSON.stringify(p.type)} (known: ${PARAMETER_TYPES.join(', ')})`;
  }
  const declaredType = type as DeclaredParameter['type'];
  const checked = checkParameterValue(declaredType, p.default);
  if ('problem' in checked) {
    return `parameter ${key}: its default ${checked.problem} (${describeType(declaredType)})`;
  }
  const description = typeof p.description === 'string' ? { description: p.description } : {};
  return { type: declaredType, default: checked.value, ...description };
}

function moduleOperation(
  op: AsyncOperation,
  index: number,
  file: string,
  problems: SourceProblem[],
): SourceOperation {
  const problem = (message: string) => problems.push({ file, problem: `operation ${index + 1}: ${message}` });
  if (!isObject(op)) {
    problem('must be an object { sql, rollback }');
    return { sql: '', rollback: '', timeoutMs: null, settings: {}, transaction: true };
  }
  if (typeof op.sql !== 'string') problem('`sql` must be a string');
  if (typeof op.rollback !== 'string') {
    problem("`rollback` is required: SQL that undoes it, or '' when there is nothing to undo");
  }
  const timeoutMs = durationMs(op.timeout) ?? null;
  if (op.timeout !== undefined && (timeoutMs === null || timeoutMs < 0))
    problem('`timeout` must be ms or a duration such as "30m"');
  const settings = op.settings ?? {};
  if (!isObject(settings)) problem('`settings` must be an object of name: value');
  const common = {
    sql: typeof op.sql === 'string' ? op.sql : '',
    rollback: typeof op.rollback === 'string' ? op.rollback : '',
    timeoutMs,
    settings,
  };
  if (!('batched' in op) || op.batched === undefined) {
    const transaction = (op as { transaction?: unknown }).transaction ?? true;
    if (typeof transaction !== 'boolean') problem('`transaction` must be true or false');
    return { ...common, transaction: transaction === true };
  }
  const b = op.batched as Partial<AsyncBatchedOperation['batched']> | undefined;
  const pauseMs = typeof b?.pause === 'string' ? parseDuration(b.pause) : (b?.pause ?? 0);
  if (!isObject(b) || typeof b?.table !== 'string' || typeof b?.key !== 'string') {
    problem('`batched` needs { table, key, size }');
  }
  if (!Number.isInteger(b?.size) || (b?.size ?? 0) < 1) problem('`batched.size` must be a whole number ≥ 1');
  if (pauseMs === undefined || pauseMs < 0)
    problem('`batched.pause` must be ms or a duration such as "100ms"');
  return {
    ...common,
    transaction: true,
    batch: {
      table: String(b?.table ?? ''),
      key: String(b?.key ?? ''),
      size: Number(b?.size),
      pauseMs: pauseMs ?? 0,
    },
  };
}
