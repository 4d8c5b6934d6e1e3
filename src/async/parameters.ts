/**
 * Parameters of long-running migrations are typed values, never SQL text (SPEC guarantee 12):
 * a value is checked against its declared type when a run is triggered, a `{{name}}` placeholder
 * may only stand where a literal could, and the value goes into SQL as a literal made of
 * characters that mean nothing to the lexer, whatever the session's settings.
 */
import { type SplitDialect, skipBlockComment, skipQuoted, skipToLineEnd } from '../sql/split.js';
import { parseDuration } from '../util/duration.js';

export const PARAMETER_TYPES = ['text', 'integer', 'number', 'boolean', 'duration'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];
/** text: a string; integer, number, duration (in ms): a number; boolean: true or false. */
export type ParameterValue = string | number | boolean;
export type ParameterValues = Readonly<Record<string, ParameterValue>>;

/** What a placeholder in SQL looks like; the name is a parameter's. */
export const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

const EXPECTED: Record<ParameterType, string> = {
  text: 'text (a string)',
  integer: 'an integer (a whole number such as 10000)',
  number: 'a number (such as 0.5)',
  boolean: 'a boolean (true or false)',
  duration: 'a duration (such as 100ms, 30s, 15m, 1h; a JSON number is milliseconds)',
};

export function describeType(type: ParameterType): string {
  return EXPECTED[type];
}

/** The type an untyped declaration gets from its default: a whole number, a number, or text. */
export function inferType(fallback: unknown): ParameterType | undefined {
  if (typeof fallback === 'string') return 'text';
  if (typeof fallback === 'boolean') return 'boolean';
  if (typeof fallback === 'number') return Number.isInteger(fallback) ? 'integer' : 'number';
  return undefined;
}

const INTEGER = /^[+-]?\d+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * `value` as a value of `type`, or what is wrong with it. Strings (from the command line or a
 * form) are read as the type; anything else must already be of it.
 */
export function checkParameterValue(
  type: ParameterType,
  value: unknown,
): { readonly value: ParameterValue } | { readonly problem: string } {
  const shown = show(value);
  const wrong = (why: string) => ({ problem: `${shown} ${why}` });
  switch (type) {
    case 'text': {
      if (typeof value !== 'string') return wrong('is not a string');
      if (value.includes('\0'))
        return wrong('holds a NUL character (U+0000), which no database stores as text');
      if (LONE_SURROGATE.test(value)) return wrong('is not valid Unicode (it holds a lone surrogate)');
      return { value };
    }
    case 'integer': {
      const n = typeof value === 'string' && INTEGER.test(value.trim()) ? Number(value.trim()) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) return wrong('is not a whole number');
      if (!Number.isSafeInteger(n)) return wrong(`is beyond ±${Number.MAX_SAFE_INTEGER}`);
      return { value: n };
    }
    case 'number': {
      const n = typeof value === 'string' && DECIMAL.test(value.trim()) ? Number(value.trim()) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return wrong('is not a finite decimal number');
      return { value: n };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return wrong('is neither true nor false');
    }
    case 'duration': {
      if (typeof value === 'number') {
        if (!Number.isSafeInteger(value) || value < 0)
          return wrong('is not a whole number of milliseconds ≥ 0');
        return { value };
      }
      // A bare number would be ambiguous (seconds? milliseconds?): a string needs its unit.
      const ms = typeof value === 'string' && /[a-z]\s*$/.test(value) ? parseDuration(value) : undefined;
      if (ms === undefined) return wrong('is not a duration with a unit');
      return { value: ms };
    }
  }
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…"` : text;
}

/**
 * A value as a literal of `dialect` that no session setting can make mean anything else: it
 * holds no quote, backslash, colon or non-ASCII character that the lexer reads.
 *
 * - numbers as numerals (negative ones parenthesised: `10-{{n}}` must not become `10--5`);
 * - Postgres text as `E'…'` with every character but letters, digits, space and `_` written as a
 *   `\uXXXX` escape: E-strings read escapes whatever `standard_conforming_strings` says, and the
 *   literal is pure ASCII, so no client encoding can shift it;
 * - MySQL/MariaDB text as `_utf8mb4 X'…'`: hex digits only, untouched by `NO_BACKSLASH_ESCAPES`,
 *   `ANSI_QUOTES` or the connection's character set;
 * - SQLite text as `(CAST(X'…' AS TEXT))` (UTF-8 bytes; SQLite's default database encoding);
 * - ClickHouse text as `unhex('…')` (a String of those UTF-8 bytes), booleans as 1 and 0.
 */
export function renderLiteral(value: ParameterValue, dialect: string): string {
  if (typeof value === 'boolean') {
    // SQLite reads TRUE as a column when a table has one of that name; ClickHouse 18 has no TRUE.
    if (dialect === 'sqlite' || dialect === 'clickhouse') return value ? '1' : '0';
    return value ? 'TRUE' : 'FALSE';
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} as a SQL number`);
    const numeral = String(value);
    return value < 0 ? `(${numeral})` : numeral;
  }
  if (typeof value !== 'string') throw new Error(`a parameter value must be text, a number or a boolean`);
  const hex = Buffer.from(value, 'utf8').toString('hex');
  switch (dialect) {
    case 'postgres':
      return `E'${[...value].map(postgresChar).join('')}'`;
    case 'mysql':
      return `_utf8mb4 X'${hex}'`;
    case 'sqlite':
      return `(CAST(X'${hex}' AS TEXT))`;
    case 'clickhouse':
      return `unhex('${hex}')`;
    default:
      throw new Error(`lockstep cannot write parameters for the ${dialect} database`);
  }
}

function postgresChar(c: string): string {
  if (/^[A-Za-z0-9 _]$/.test(c)) return c;
  const code = c.codePointAt(0) as number;
  return code > 0xffff
    ? `\\U${code.toString(16).padStart(8, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Where a placeholder is not allowed, as the problem says it. */
type Region = 'code' | 'string' | 'identifier' | 'comment' | 'dollar';

const INSIDE: Record<Exclude<Region, 'code'>, string> = {
  string: 'inside a quoted string',
  identifier: 'inside a quoted identifier',
  comment: 'inside a comment',
  dollar: 'inside a dollar-quoted string (or a function body)',
};

/** One way a server may read the text: whether a backslash escapes in '…' and in "…". */
interface Reading {
  readonly single: SplitDialect['backslashEscapes'];
  readonly double: boolean;
}

/**
 * Every way the server may lex the text, depending on its settings: Postgres with and without
 * `standard_conforming_strings`; MySQL by default, with `NO_BACKSLASH_ESCAPES`, with `ANSI_QUOTES`.
 */
function readings(syntax: SplitDialect): Reading[] {
  switch (syntax.backslashEscapes) {
    case 'e-prefix':
      return [
        { single: 'e-prefix', double: false },
        { single: 'always', double: false },
      ];
    case 'always':
      return [
        { single: 'always', double: true },
        { single: 'never', double: false },
        { single: 'always', double: false },
      ];
    default:
      return [{ single: 'never', double: false }];
  }
}

export interface Placeholder {
  readonly name: string;
  /** Offset of its `{{` in the text. */
  readonly offset: number;
  readonly length: number;
  /** Why it cannot be replaced by a value here; undefined when it stands where a literal could. */
  readonly problem?: string | undefined;
}

/**
 * The placeholders in `sql` (one statement or section), each with the problem of its position
 * under any reading of the text. A placeholder is allowed only outside strings, quoted
 * identifiers and comments, standing alone (not glued to a name, a quote or a `.`).
 */
export function findPlaceholders(sql: string, syntax: SplitDialect): Placeholder[] {
  const maps = readings(syntax).map((reading) => regions(sql, syntax, reading));
  const found: Placeholder[] = [];
  for (const match of sql.matchAll(/\{\{([^{}]*)\}\}|\{\{/g)) {
    const offset = match.index;
    const length = match[0].length;
    const raw = match[1];
    const name = raw?.trim() ?? '';
    const inside = maps
      .map((map) => map.slice(offset, offset + length).find((r) => r !== 'code'))
      .find((r) => r !== undefined);
    if (inside) {
      // Text that merely looks like `{{` in a string or comment is the author's business.
      if (raw !== undefined && /^[A-Za-z_]\w*$/.test(name)) {
        found.push({ name, offset, length, problem: `{{${name}}} is ${INSIDE[inside]}` });
      }
      continue;
    }
    if (raw === undefined || !/^[A-Za-z_]\w*$/.test(name)) {
      found.push({
        name,
        offset,
        length,
        problem: `"${match[0]}" is not a placeholder: write {{name}}, a parameter's name (letters, digits, _)`,
      });
      continue;
    }
    const before = sql[offset - 1] ?? ' ';
    const after = sql[offset + length] ?? ' ';
    const glued = /[\w$.@:'"`\\\]}]/.test(before) || /[\w$.'"`[{]/.test(after);
    found.push({
      name,
      offset,
      length,
      problem: glued
        ? `{{${name}}} is glued to "${before}${match[0]}${after}": a placeholder stands alone where a literal could (a value, never part of a name or quote)`
        : undefined,
    });
  }
  return found;
}

/** The region each character of `text` is in, for one reading. Follows src/sql/split.ts. */
function regions(text: string, syntax: SplitDialect, reading: Reading): Region[] {
  const map: Region[] = new Array(text.length).fill('code');
  const mark = (from: number, to: number, region: Region) => {
    for (let k = from; k < Math.min(to, text.length); k++) map[k] = region;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    let end = i + 1;
    let region: Region = 'code';
    if (c === '-' && next === '-') {
      end = skipToLineEnd(text, i);
      region = 'comment';
    } else if (c === '#' && syntax.hashComments) {
      end = skipToLineEnd(text, i);
      region = 'comment';
    } else if (c === '/' && next === '*') {
      end = skipBlockComment(text, i, syntax.nestedBlockComments);
      region = 'comment';
    } else if (c === "'") {
      const prefix = text[i - 1];
      const escapes =
        reading.single === 'always' ||
        (reading.single === 'e-prefix' &&
          (prefix === 'E' || prefix === 'e') &&
          !/\w/.test(text[i - 2] ?? ''));
      end = skipQuoted(text, i, "'", escapes);
      region = 'string';
    } else if (c === '"') {
      end = skipQuoted(text, i, '"', reading.double);
      region = reading.double ? 'string' : 'identifier';
    } else if (c === '`' && syntax.backticks) {
      end = skipQuoted(text, i, '`', false);
      region = 'identifier';
    } else if (c === '[' && syntax.brackets) {
      const close = text.indexOf(']', i + 1);
      end = close < 0 ? text.length : close + 1;
      region = 'identifier';
    } else if (c === '$' && syntax.dollarQuotes && !/[\w$]/.test(text[i - 1] ?? '')) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 64));
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        end = close < 0 ? text.length : close + tag[0].length;
        region = 'dollar';
      }
    }
    if (region !== 'code') mark(i, end, region);
    i = end;
  }
  return map;
}

/**
 * `sql` with each placeholder replaced by its value's inert literal. Every problem (a misplaced
 * placeholder, an unknown name) goes to `problem` with its offset, and the text is left as it was.
 */
export function bindParameters(
  sql: string,
  values: ParameterValues,
  target: { readonly name: string; readonly syntax: SplitDialect },
  problem: (message: string, offset: number) => void,
): string {
  const placeholders = findPlaceholders(sql, target.syntax);
  let ok = true;
  for (const p of placeholders) {
    const message =
      p.problem ?? (Object.hasOwn(values, p.name) ? undefined : `{{${p.name}}} is not a parameter`);
    if (message) {
      problem(message, p.offset);
      ok = false;
    }
  }
  if (!ok) return sql;
  let out = '';
  let at = 0;
  for (const p of placeholders) {
    out += sql.slice(at, p.offset) + renderLiteral(values[p.name] as ParameterValue, target.name);
    at = p.offset + p.length;
  }
  return out + sql.slice(at);
}
