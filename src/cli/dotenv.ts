import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/**
 * `.env` files read as dbmate reads them (its dotenv library, godotenv 1.5.1), so a dbmate
 * project's files mean the same here: `KEY=value` or `KEY: value`, `export KEY=…`, `#` comments
 * (in an unquoted value only after a space, and the last ` #` of the line wins), '…' taken as
 * written, "…" with \n, \r and backslash escapes, across lines; `${VAR}` and `$VAR` (upper case,
 * digits, _) expanded in unquoted and "…" values from the variables set earlier in the same file
 * only (not the environment); `\$` keeps a `$`.
 */

/** A syntax error of a .env file: where, never the value (it may be a password). */
export class DotEnvSyntaxError extends Error {
  constructor(
    readonly problem: string,
    readonly line: number,
  ) {
    super(`${problem} (line ${line})`);
  }
}

/** The variables of a .env text, in the order set (a later one wins). Pure. */
export function parseDotEnv(text: string): Map<string, string> {
  const src = text.replaceAll('\r\n', '\n');
  const out = new Map<string, string>();
  let at = 0;
  const lineAt = (i: number) => src.slice(0, i).split('\n').length;
  for (;;) {
    at = statementStart(src, at);
    if (at < 0) break;
    const key = keyName(src, at, lineAt);
    const value = extractValue(src, key.valueAt, out, lineAt);
    out.set(key.name, value.value);
    if (value.next < 0) break;
    at = value.next;
  }
  return out;
}

/** Go's unicode.IsSpace. */
function isUnicodeSpace(c: string): boolean {
  return c === '\u0085' || (c !== '\ufeff' && /^\s$/u.test(c));
}

/** The library's isSpace: a space but not a line break. */
function isSpace(c: string | undefined): boolean {
  return c !== undefined && '\t\v\f\r \u0085\u00a0'.includes(c);
}

/** Skips blank space and comment lines: the index of the next statement, or -1. */
function statementStart(src: string, from: number): number {
  let i = from;
  for (;;) {
    while (i < src.length && isUnicodeSpace(src[i] as string)) i++;
    if (i >= src.length) return -1;
    if (src[i] !== '#') return i;
    const newline = src.indexOf('\n', i);
    if (newline < 0) return -1;
    i = newline;
  }
}

/**
 * The key at `at`: after an optional `export `, up to `=` or `:`. The library checks each byte of
 * a name as a Latin-1 character: letters, digits, `_`, `.` and spaces pass.
 */
function keyName(src: string, at: number, lineAt: (i: number) => number): { name: string; valueAt: number } {
  let i = at;
  while (isSpace(src[i])) i++;
  if (src.startsWith('export', i) && isSpace(src[i + 6])) {
    i += 6;
    while (isSpace(src[i])) i++;
  }
  const start = i;
  let end = -1;
  for (; i < src.length; i++) {
    const c = src[i] as string;
    if (c === '=' || c === ':') {
      end = i;
      break;
    }
    if (isSpace(c) || c === '_' || c === '.' || /^[A-Za-z0-9]$/.test(c)) continue;
    const code = c.charCodeAt(0);
    const width = code >= 0xd800 && code < 0xdc00 ? 2 : 1;
    const bytes = [...Buffer.from(src.slice(i, i + width))];
    if (
      code >= 0x80 &&
      bytes.every((b) => b === 0x85 || b === 0xa0 || /^[\p{L}\p{N}]$/u.test(String.fromCharCode(b)))
    ) {
      i += width - 1;
      continue;
    }
    const shown = c === '\n' ? 'a line break' : `"${c}"`;
    throw new DotEnvSyntaxError(
      `unexpected character ${shown} in a variable name: a line must be NAME=value`,
      lineAt(i),
    );
  }
  // A last line without `=`: the library takes it whole as the value of an empty name.
  const name = end < 0 ? '' : trimEndUnicodeSpace(src.slice(start, end));
  let valueAt = end < 0 ? start : end + 1;
  while (isSpace(src[valueAt])) valueAt++;
  return { name, valueAt };
}

function trimEndUnicodeSpace(text: string): string {
  let end = text.length;
  while (end > 0 && isUnicodeSpace(text[end - 1] as string)) end--;
  return text.slice(0, end);
}

/** The value at `at` and where the text goes on (-1: at its end). */
function extractValue(
  src: string,
  at: number,
  vars: ReadonlyMap<string, string>,
  lineAt: (i: number) => number,
): { value: string; next: number } {
  const quote = src[at];
  if (quote === '"' || quote === "'") {
    for (let i = at + 1; i < src.length; i++) {
      if (src[i] !== quote || src[i - 1] === '\\') continue;
      let value = src.slice(at, i);
      let from = 0;
      let to = value.length;
      while (from < to && value[from] === quote) from++;
      while (to > from && value[to - 1] === quote) to--;
      value = value.slice(from, to);
      if (quote === '"') value = expandVariables(expandEscapes(value), vars);
      return { value, next: i + 1 };
    }
    throw new DotEnvSyntaxError(`unterminated quoted value: its closing ${quote} is missing`, lineAt(at));
  }
  let endOfLine = at;
  while (endOfLine < src.length && src[endOfLine] !== '\n' && src[endOfLine] !== '\r') endOfLine++;
  if (endOfLine === src.length && endOfLine === at) return { value: '', next: -1 };
  const line = Array.from(src.slice(at, endOfLine));
  let endOfVar = line.length;
  // From the end: the last `#` after a space starts the comment.
  for (let i = line.length - 1; i > 0; i--) {
    if (line[i] === '#' && isSpace(line[i - 1])) {
      endOfVar = i;
      break;
    }
  }
  const kept = line.slice(0, endOfVar);
  while (kept.length > 0 && isSpace(kept[0])) kept.shift();
  while (kept.length > 0 && isSpace(kept[kept.length - 1])) kept.pop();
  return { value: expandVariables(kept.join(''), vars), next: endOfLine };
}

/** In "…": \n and \r become line breaks; a backslash before any other character but $ goes. */
function expandEscapes(text: string): string {
  const out = text.replace(/\\[^\n]/gu, (match) => (match === '\\n' ? '\n' : match === '\\r' ? '\r' : match));
  return out.replace(/\\([^$])/gsu, '$1');
}

function expandVariables(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(
    /(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?/g,
    (
      match,
      escaped: string | undefined,
      _dollar: string,
      paren: string | undefined,
      name: string | undefined,
    ) => {
      if (escaped === '\\' || paren === '(') return match.slice(1);
      if (name) return vars.get(name) ?? '';
      return match;
    },
  );
}

/**
 * The environment as dbmate sees it: the process's variables, then each .env file's in order,
 * a variable already set never replaced (the first file that sets it wins). A file that does not
 * exist is skipped; one that does not parse is an error naming it and the line.
 */
export function loadEnvironment(
  files: readonly string[],
  processEnv: NodeJS.ProcessEnv = process.env,
): Map<string, string> {
  const env = new Map<string, string>();
  for (const [name, value] of Object.entries(processEnv)) if (value !== undefined) env.set(name, value);
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ConfigError(`cannot read the env file ${file}: ${(error as Error).message}`);
    }
    let vars: Map<string, string>;
    try {
      vars = parseDotEnv(text);
    } catch (error) {
      if (!(error instanceof DotEnvSyntaxError)) throw error;
      throw new ConfigError(`the env file ${file}, line ${error.line}: ${error.problem}. Nothing was run.`);
    }
    for (const [name, value] of vars) if (!env.has(name)) env.set(name, value);
  }
  return env;
}
