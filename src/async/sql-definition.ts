/**
 * Long-running migrations as SQL files. Pure parsing; problems name the file and line.
 *
 *   -- async:description Backfill users.email_lower
 *   -- async:depends_on 20260101_add_email_lower
 *   -- async:parameter batch_size 10000 rows per batch
 *   -- async:precheck
 *   SELECT COUNT(*) > 0 FROM users;
 *   -- async:operation batched table:users key:id batch_size:{{batch_size}} pause:50ms
 *   UPDATE users SET email_lower = lower(email) WHERE id >= :start AND id < :end;
 *   -- async:rollback
 *   UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;
 */
import type { SourceProblem } from '../core/errors.js';
import { parseDuration } from '../util/duration.js';
import type { AsyncParameter, SourceOperation } from './definition.js';

const MARKER = /^--\s*async:(\w+)(.*)$/;
const CHECKS = ['precheck', 'healthcheck', 'is_required'] as const;
type CheckName = (typeof CHECKS)[number];

export interface SqlCheck {
  readonly sql: string;
  readonly line: number;
}

interface RawOperation {
  readonly line: number;
  readonly options: string;
  sql: string;
  sqlLine: number;
  rollback?: { text: string; line: number };
}

export interface ParsedAsyncSql {
  readonly description: string;
  readonly dependsOn: string[];
  readonly parameters: Record<string, AsyncParameter>;
  readonly checks: Partial<Record<CheckName, SqlCheck>>;
  /** Operations for given parameter values; problems in options that use `{{...}}` land in `problems`. */
  operations(values: Readonly<Record<string, number | string>>, problems: SourceProblem[]): SourceOperation[];
  readonly problems: SourceProblem[];
}

export function parseAsyncSql(text: string, file: string): ParsedAsyncSql {
  const problems: SourceProblem[] = [];
  const description: string[] = [];
  const dependsOn: string[] = [];
  const parameters: Record<string, AsyncParameter> = {};
  const checks: Partial<Record<CheckName, SqlCheck>> = {};
  const operations: RawOperation[] = [];
  // The section that body lines go to.
  let section:
    | { kind: 'none' }
    | { kind: 'check'; name: CheckName }
    | { kind: 'sql' | 'rollback'; op: RawOperation } = { kind: 'none' };
  const body: Record<string, { text: string; line: number }> = {};

  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/\r$/, '');
    const match = MARKER.exec(line);
    if (!match) {
      append(section, line, lineNo);
      return;
    }
    const keyword = match[1] as string;
    const rest = (match[2] ?? '').trim();
    const problem = (message: string) => problems.push({ file, line: lineNo, problem: message });
    switch (keyword) {
      case 'description':
        description.push(rest);
        section = { kind: 'none' };
        return;
      case 'depends_on':
        dependsOn.push(...rest.split(/[\s,]+/).filter(Boolean));
        section = { kind: 'none' };
        return;
      case 'parameter': {
        const parsed = /^([A-Za-z_][A-Za-z0-9_]*)\s+('(?:[^']|'')*'(?=\s|$)|[^'\s]\S*)\s*(.*)$/.exec(rest);
        if (!parsed) {
          problem('expected "-- async:parameter <name> <default> [description]"');
        } else {
          const value = parsed[2] as string;
          const fallback = value.startsWith("'") ? value.slice(1, -1).replaceAll("''", "'") : value;
          const number = Number(value);
          parameters[parsed[1] as string] = {
            default: !value.startsWith("'") && Number.isFinite(number) ? number : fallback,
            ...(parsed[3] ? { description: parsed[3] } : {}),
          };
        }
        section = { kind: 'none' };
        return;
      }
      case 'precheck':
      case 'healthcheck':
      case 'is_required':
        if (checks[keyword] || body[keyword]) problem(`a second "-- async:${keyword}" section`);
        body[keyword] = { text: '', line: lineNo + 1 };
        section = { kind: 'check', name: keyword };
        return;
      case 'operation': {
        const op: RawOperation = { line: lineNo, options: rest, sql: '', sqlLine: lineNo + 1 };
        operations.push(op);
        section = { kind: 'sql', op };
        return;
      }
      case 'rollback': {
        const op = operations.at(-1);
        if (!op || section.kind === 'none' || section.kind === 'check') {
          problem('"-- async:rollback" must follow an "-- async:operation" section');
          section = { kind: 'none' };
        } else if (op.rollback) {
          problem(`a second "-- async:rollback" for the operation at line ${op.line}`);
        } else {
          op.rollback = { text: '', line: lineNo + 1 };
          section = { kind: 'rollback', op };
        }
        return;
      }
      default:
        problem(
          `unknown marker "-- async:${keyword}" (known: description, depends_on, parameter, precheck, healthcheck, is_required, operation, rollback)`,
        );
        section = { kind: 'none' };
    }
  });

  function append(target: typeof section, line: string, lineNo: number) {
    if (target.kind === 'none') {
      if (line.trim() !== '' && !line.trim().startsWith('--')) {
        problems.push({ file, line: lineNo, problem: 'SQL outside any "-- async:" section would never run' });
      }
      return;
    }
    if (target.kind === 'check') {
      const entry = body[target.name] as { text: string; line: number };
      entry.text += `${line}\n`;
    } else if (target.kind === 'sql') target.op.sql += `${line}\n`;
    else if (target.op.rollback) target.op.rollback.text += `${line}\n`;
  }

  for (const name of CHECKS) {
    const entry = body[name];
    if (!entry) continue;
    if (entry.text.trim() === '')
      problems.push({ file, line: entry.line - 1, problem: `empty "-- async:${name}"` });
    else checks[name] = { sql: entry.text.trim().replace(/;\s*$/, ''), line: entry.line };
  }
  if (description.length === 0) {
    problems.push({ file, problem: 'no "-- async:description <what it does>" line' });
  }
  if (operations.length === 0) {
    problems.push({ file, problem: 'no "-- async:operation" section' });
  }
  for (const op of operations) {
    if (!op.rollback) {
      problems.push({
        file,
        line: op.line,
        problem:
          'operation without "-- async:rollback" (required; leave its section empty when there is nothing to undo)',
      });
    }
  }
  // Option problems that do not depend on parameter values are reported now.
  const defaults = Object.fromEntries(Object.entries(parameters).map(([k, p]) => [k, p.default]));
  for (const op of operations) parseOptions(op, defaults, file, problems);

  return {
    description: description.join(' ').trim(),
    dependsOn,
    parameters,
    checks,
    problems,
    operations(values, found) {
      return operations.map((op) => ({
        sql: op.sql,
        rollback: op.rollback?.text ?? '',
        line: op.sqlLine,
        rollbackLine: op.rollback?.line,
        ...parseOptions(op, values, file, found),
      }));
    },
  };
}

type ParsedOptions = Pick<SourceOperation, 'timeoutMs' | 'settings' | 'transaction' | 'batch'>;

function parseOptions(
  op: RawOperation,
  values: Readonly<Record<string, number | string>>,
  file: string,
  problems: SourceProblem[],
): ParsedOptions {
  const problem = (message: string) => problems.push({ file, line: op.line, problem: message });
  const options = op.options.replace(/\{\{\s*([A-Za-z_]\w*)\s*\}\}/g, (whole, name: string) => {
    if (!Object.hasOwn(values, name)) {
      problem(`{{${name}}} is not a parameter`);
      return whole;
    }
    return String(values[name]);
  });
  let timeoutMs: number | null = null;
  let transaction = true;
  let batched = false;
  const settings: Record<string, string> = {};
  const batch: Record<string, string> = {};
  for (const option of options.split(/\s+/).filter(Boolean)) {
    if (option === 'batched') {
      batched = true;
      continue;
    }
    const colon = option.indexOf(':');
    const key = colon < 0 ? option : option.slice(0, colon);
    const value = colon < 0 ? '' : option.slice(colon + 1);
    switch (key) {
      case 'timeout': {
        const ms = parseDuration(value);
        if (ms === undefined) problem(`option "${option}": timeout takes a duration such as 30m`);
        else timeoutMs = ms;
        break;
      }
      case 'transaction':
        if (value === 'true' || value === 'false') transaction = value === 'true';
        else problem(`option "${option}": transaction takes true or false`);
        break;
      case 'setting': {
        const eq = value.indexOf('=');
        if (eq <= 0) problem(`option "${option}": setting takes name=value`);
        else settings[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      }
      case 'table':
      case 'key':
      case 'batch_size':
      case 'pause':
        batch[key] = value;
        break;
      default:
        problem(
          `unknown option "${option}" (known: timeout:<duration>, transaction:false, setting:<name>=<value>, batched, table:, key:, batch_size:, pause:)`,
        );
    }
  }
  const common = { timeoutMs, settings, transaction };
  if (!batched) {
    if (Object.keys(batch).length > 0) {
      problem(`${Object.keys(batch).join(', ')} only apply to a "batched" operation`);
    }
    return common;
  }
  const size = Number(batch.batch_size);
  const pauseMs = batch.pause === undefined ? 0 : parseDuration(batch.pause);
  if (!batch.table || !batch.key) problem('a batched operation needs table:<table> and key:<integer column>');
  if (!Number.isInteger(size) || size < 1) {
    problem(`a batched operation needs batch_size:<whole number ≥ 1>, got "${batch.batch_size ?? ''}"`);
  }
  if (pauseMs === undefined) problem(`option "pause:${batch.pause}": pause takes a duration such as 100ms`);
  if (!transaction) problem('a batched operation always runs each batch in a transaction');
  return {
    ...common,
    batch: { table: batch.table ?? '', key: batch.key ?? '', size, pauseMs: pauseMs ?? 0 },
  };
}
