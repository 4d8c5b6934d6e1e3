/**
 * Long-running migrations as SQL files. Pure parsing; problems name the file and line.
 *
 *   -- async:description Backfill users.email_lower
 *   -- async:depends_on 20260101_add_email_lower
 *   -- async:parameter batch_size type:integer default:10000 rows per batch
 *   -- async:precheck
 *   SELECT COUNT(*) > 0 FROM users;
 *   -- async:operation batched table:users key:id batch_size:{{batch_size}} pause:50ms
 *   UPDATE users SET email_lower = lower(email) WHERE id >= :start AND id < :end;
 *   -- async:rollback
 *   UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;
 */
import type { SourceProblem } from '../errors.js';
import { durationMs } from '../util/duration.js';
import type { DeclaredParameter, SourceOperation } from './definition.js';
import {
  checkParameterValue,
  describeType,
  PARAMETER_TYPES,
  type ParameterType,
  type ParameterValue,
  type ParameterValues,
} from './parameters.js';

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
  readonly parameters: Record<string, DeclaredParameter>;
  readonly checks: Partial<Record<CheckName, SqlCheck>>;
  /** Operations for given parameter values; problems in options that use `{{...}}` land in `problems`. */
  operations(values: ParameterValues, problems: SourceProblem[]): SourceOperation[];
  readonly problems: SourceProblem[];
}

export function parseAsyncSql(text: string, file: string): ParsedAsyncSql {
  const problems: SourceProblem[] = [];
  const description: string[] = [];
  const dependsOn: string[] = [];
  const parameters: Record<string, DeclaredParameter> = {};
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
        const parsed = parseParameterLine(rest);
        if (typeof parsed === 'string') problem(parsed);
        else if (Object.hasOwn(parameters, parsed.name)) problem(`a second parameter ${parsed.name}`);
        else parameters[parsed.name] = parsed.parameter;
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
  for (const op of operations) parseOptions(op, parameters, defaults, file, problems);

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
        // An empty operation at the end of a file has no line of SQL: point at its marker.
        line: op.sql.trim() === '' ? op.line : op.sqlLine,
        rollbackLine: op.rollback?.line,
        ...parseOptions(op, parameters, values, file, found),
      }));
    },
  };
}

const QUOTED = /^'((?:[^']|'')*)'(?=\s|$)/;

/**
 * `<name> type:<type> default:<value> [description]`, or the older `<name> <default>
 * [description]` whose type follows from the default. A default is a word or '…' ('' for ').
 */
function parseParameterLine(rest: string): { name: string; parameter: DeclaredParameter } | string {
  const usage =
    'expected "-- async:parameter <name> type:<text|integer|number|boolean|duration> default:<value> [description]"';
  const head = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(rest);
  if (!head) return usage;
  const name = head[1] as string;
  // Assigning it would replace the parameters object's prototype instead of adding a parameter.
  if (name === '__proto__') return 'the parameter name __proto__ is reserved: choose another name';
  let text = head[2] as string;
  const readValue = (): { raw: string; quoted: boolean } | undefined => {
    const quoted = QUOTED.exec(text);
    if (quoted) {
      text = text.slice(quoted[0].length).trimStart();
      return { raw: (quoted[1] as string).replaceAll("''", "'"), quoted: true };
    }
    const word = /^[^'\s]\S*/.exec(text);
    if (!word) return undefined;
    text = text.slice(word[0].length).trimStart();
    return { raw: word[0], quoted: false };
  };
  let type: ParameterType | undefined;
  let fallback: { raw: string; quoted: boolean } | undefined;
  const keyed = /^(type|default):/.test(text);
  while (keyed && /^(type|default):/.test(text)) {
    const key = text.startsWith('type:') ? 'type' : 'default';
    text = text.slice(key.length + 1);
    const value = readValue();
    if (!value) return usage;
    if (key === 'default') fallback = value;
    else if ((PARAMETER_TYPES as readonly string[]).includes(value.raw)) type = value.raw as ParameterType;
    else return `parameter ${name}: unknown type "${value.raw}" (known: ${PARAMETER_TYPES.join(', ')})`;
  }
  if (!keyed) fallback = readValue();
  if (!fallback) return keyed ? `parameter ${name} needs default:<value> (a value of its type)` : usage;
  type ??= untypedDefault(fallback);
  const checked = checkParameterValue(type, fallback.raw);
  if ('problem' in checked)
    return `parameter ${name}: its default ${checked.problem} (${describeType(type)})`;
  return {
    name,
    parameter: { type, default: checked.value, ...(text ? { description: text } : {}) },
  };
}

/** The older, untyped form: a whole numeral is an integer, another numeral a number, else text. */
function untypedDefault(fallback: { raw: string; quoted: boolean }): ParameterType {
  if (fallback.quoted) return 'text';
  const numeric = (['integer', 'number'] as const).find(
    (t) => 'value' in checkParameterValue(t, fallback.raw),
  );
  return numeric ?? 'text';
}

type ParsedOptions = Pick<SourceOperation, 'timeoutMs' | 'settings' | 'transaction' | 'batch'>;

/** Options whose value may be a parameter, and the parameter types each takes. */
const TYPED_OPTIONS: Record<string, readonly ParameterType[]> = {
  batch_size: ['integer'],
  timeout: ['duration', 'integer'],
  pause: ['duration', 'integer'],
  transaction: ['boolean'],
};

/**
 * Reads an operation's options. Each is one word; a `{{name}}` may only be the whole value of a
 * typed option (`batch_size:{{n}}`), which then takes the parameter's typed value, never its text.
 */
function parseOptions(
  op: RawOperation,
  parameters: Readonly<Record<string, DeclaredParameter>>,
  values: ParameterValues,
  file: string,
  problems: SourceProblem[],
): ParsedOptions {
  const problem = (message: string) => problems.push({ file, line: op.line, problem: message });
  let timeoutMs: number | null = null;
  let transaction = true;
  let batched = false;
  const settings: Record<string, string> = {};
  const batch: Record<string, string | number> = {};
  // Options refused for their placeholder: not reported again as missing.
  const refused = new Set<string>();
  for (const option of op.options.split(/\s+/).filter(Boolean)) {
    if (option === 'batched') {
      batched = true;
      continue;
    }
    const colon = option.indexOf(':');
    const key = colon < 0 ? option : option.slice(0, colon);
    const text = colon < 0 ? '' : option.slice(colon + 1);
    let value: ParameterValue = text;
    if (option.includes('{{') || option.includes('}}')) {
      const typed = typedOption(key, text, parameters, values);
      if (typeof typed === 'object') {
        problem(`option "${option}": ${typed.problem}`);
        refused.add(key);
        continue;
      }
      value = typed;
    }
    switch (key) {
      case 'timeout': {
        const ms = durationMs(value);
        if (ms === undefined) problem(`option "${option}": timeout takes a duration such as 30m`);
        else timeoutMs = ms;
        break;
      }
      case 'transaction':
        if (typeof value === 'boolean') transaction = value;
        else if (value === 'true' || value === 'false') transaction = value === 'true';
        else problem(`option "${option}": transaction takes true or false`);
        break;
      case 'setting': {
        const eq = text.indexOf('=');
        if (eq <= 0) problem(`option "${option}": setting takes name=value`);
        else settings[text.slice(0, eq)] = text.slice(eq + 1);
        break;
      }
      case 'table':
      case 'key':
      case 'batch_size':
      case 'pause':
        batch[key] = value as string | number;
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
  const size = typeof batch.batch_size === 'number' ? batch.batch_size : Number(batch.batch_size);
  const pauseMs = batch.pause === undefined ? 0 : durationMs(batch.pause);
  if ((!batch.table && !refused.has('table')) || (!batch.key && !refused.has('key')))
    problem('a batched operation needs table:<table> and key:<integer column>');
  if ((!Number.isInteger(size) || size < 1) && !refused.has('batch_size')) {
    problem(`a batched operation needs batch_size:<whole number ≥ 1>, got "${batch.batch_size ?? ''}"`);
  }
  if (pauseMs === undefined) problem(`option "pause:${batch.pause}": pause takes a duration such as 100ms`);
  if (!transaction) problem('a batched operation always runs each batch in a transaction');
  return {
    ...common,
    batch: { table: String(batch.table ?? ''), key: String(batch.key ?? ''), size, pauseMs: pauseMs ?? 0 },
  };
}

/** The typed value of `key:{{name}}`, or why a placeholder cannot stand there. */
function typedOption(
  key: string,
  text: string,
  parameters: Readonly<Record<string, DeclaredParameter>>,
  values: ParameterValues,
): ParameterValue | { problem: string } {
  const types = Object.hasOwn(TYPED_OPTIONS, key) ? TYPED_OPTIONS[key] : undefined;
  if (!types) {
    const typed = Object.keys(TYPED_OPTIONS)
      .map((k) => `${k}:`)
      .join(', ');
    return {
      problem: `a parameter can only be the whole value of ${typed}${key.includes('{{') ? ', never an option of its own' : `; ${key}: takes fixed text`}`,
    };
  }
  const name = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(text)?.[1];
  if (!name) return { problem: `a parameter must be the whole value: ${key}:{{name}}` };
  const parameter = Object.hasOwn(parameters, name) ? parameters[name] : undefined;
  if (!parameter || !Object.hasOwn(values, name)) return { problem: `{{${name}}} is not a parameter` };
  if (!types.includes(parameter.type)) {
    return {
      problem: `${key}: takes a parameter of type ${types.join(' or ')}; ${name} is ${parameter.type}`,
    };
  }
  return values[name] as ParameterValue;
}
