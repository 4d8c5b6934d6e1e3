/**
 * Splits a migration section into statements, so that each can be run, reported and recorded on its
 * own. Pure: the lexical rules come from the driver's dialect.
 */

export interface SplitDialect {
  /** Postgres `$tag$ ... $tag$` strings. */
  readonly dollarQuotes: boolean;
  /** Where a backslash escapes the next character inside '...': Postgres only in E'...'. */
  readonly backslashEscapes: 'never' | 'e-prefix' | 'always';
  /** `# comment` to end of line (MySQL). */
  readonly hashComments: boolean;
  /** `/* /* nested *\/ *\/` block comments (Postgres). */
  readonly nestedBlockComments: boolean;
  /** Identifier quotes besides "...": backticks and/or [brackets]. */
  readonly backticks: boolean;
  /** A backslash escapes the next character inside `...` too (ClickHouse; not MySQL). */
  readonly backticksTakeBackslash?: boolean;
  readonly brackets: boolean;
  /**
   * Statements whose body holds `;`: SQLite's `CREATE TRIGGER ... BEGIN ... END`, Postgres's
   * `BEGIN ATOMIC ... END`, MySQL's stored routines (`CREATE PROCEDURE ... BEGIN ... END`, with
   * IF/CASE/LOOP/WHILE/REPEAT/FOR ... END IF/... inside, and MariaDB's compound statements outside
   * routines: `BEGIN NOT ATOMIC ... END`, `IF ... END IF`, loops). Inside such a body CASE ... END
   * nests too.
   */
  readonly bodies: 'sqlite-trigger' | 'begin-atomic' | 'mysql-routine' | 'none';
  /** MySQL: `--` starts a comment only when followed by white space. */
  readonly dashCommentNeedsSpace?: boolean;
  /** MySQL/MariaDB: `/*! ... *\/` and `/*M! ... *\/` are executed, not comments. */
  readonly versionedComments?: boolean;
  /** The mysql client's `DELIMITER $$` lines, which change the statement terminator. */
  readonly delimiterCommand?: boolean;
  /**
   * A `;` inside parentheses does not end the statement, as psql reads it: Postgres's
   * `CREATE RULE ... DO ALSO (INSERT ...; INSERT ...)` holds a list of statements in parentheses.
   */
  readonly parenthesesHoldSemicolons?: boolean;
}

export interface Statement {
  /** The statement text, without the terminating `;`. */
  readonly sql: string;
  /** Offset of `sql[0]` in the text that was split. */
  readonly offset: number;
}

export function splitStatements(text: string, dialect: SplitDialect): Statement[] {
  const statements: Statement[] = [];
  let start = -1; // offset of the first token of the current statement, -1 before it
  let words: string[] = []; // leading words of the current statement, upper-cased
  let depth = 0;
  let parens = 0;
  let previousWord = '';
  let delimiter = ';';
  let i = 0;

  const finish = (end: number) => {
    if (start >= 0) {
      const sql = text.slice(start, end).trimEnd();
      if (sql.length > 0) statements.push({ sql, offset: start });
    }
    start = -1;
    words = [];
    depth = 0;
    parens = 0;
    previousWord = '';
  };
  const markStart = (at: number) => {
    if (start < 0) start = at;
  };

  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];

    if (c === '-' && next === '-' && !(dialect.dashCommentNeedsSpace && !isSpaceOrEnd(text[i + 2]))) {
      i = skipToLineEnd(text, i);
      continue;
    }
    if (c === '#' && dialect.hashComments) {
      i = skipToLineEnd(text, i);
      continue;
    }
    if (c === '/' && next === '*') {
      const executable = dialect.versionedComments && /^\/\*M?!/.test(text.slice(i, i + 4));
      if (executable) markStart(i);
      i = skipBlockComment(text, i, dialect.nestedBlockComments);
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (dialect.delimiterCommand && start < 0) {
      // Like the mysql client, a statement that starts with DELIMITER is the client's command,
      // whose argument is the rest of its line.
      DELIMITER_COMMAND.lastIndex = i;
      const command = DELIMITER_COMMAND.exec(text);
      if (command) {
        delimiter = command[1] as string;
        i += command[0].length;
        continue;
      }
    }

    if (delimiter !== ';') {
      if (text.startsWith(delimiter, i)) {
        finish(i);
        i += delimiter.length;
        continue;
      }
    } else if (c === ';') {
      if (depth === 0 && parens === 0) finish(i);
      else previousWord = '';
      i++;
      continue;
    }

    markStart(i);

    if (dialect.parenthesesHoldSemicolons && (c === '(' || c === ')')) {
      parens = c === '(' ? parens + 1 : Math.max(0, parens - 1);
      i++;
      continue;
    }
    if (c === ':' && next !== '=') {
      previousWord = ':'; // after a `label:` a statement starts
      i++;
      continue;
    }

    if (c === "'") {
      const prev = text[i - 1];
      const escapes =
        dialect.backslashEscapes === 'always' ||
        (dialect.backslashEscapes === 'e-prefix' &&
          (prev === 'E' || prev === 'e') &&
          !isWordChar(text[i - 2]));
      i = skipQuoted(text, i, "'", escapes);
      continue;
    }
    if (c === '"') {
      i = skipQuoted(text, i, '"', dialect.backslashEscapes === 'always');
      continue;
    }
    if (c === '`' && dialect.backticks) {
      i = skipQuoted(text, i, '`', dialect.backticksTakeBackslash ?? false);
      continue;
    }
    if (c === '[' && dialect.brackets) {
      const close = text.indexOf(']', i + 1);
      i = close < 0 ? text.length : close + 1;
      continue;
    }
    if (c === '$' && dialect.dollarQuotes && !isWordChar(text[i - 1])) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 64));
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? text.length : close + tag[0].length;
        continue;
      }
    }
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < text.length && isWordChar(text[j]) && !(delimiter !== ';' && text.startsWith(delimiter, j)))
        j++;
      const word = text.slice(i, j).toUpperCase();
      if (words.length < 8) words.push(word);
      if (delimiter === ';') depth = nextDepth(dialect, words, previousWord, word, depth, text, j);
      previousWord = word;
      i = j;
      continue;
    }
    i++;
  }
  finish(text.length);
  return statements;
}

const DELIMITER_COMMAND = /DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)/iy;

function nextDepth(
  dialect: SplitDialect,
  words: string[],
  previous: string,
  word: string,
  depth: number,
  text: string,
  after: number,
) {
  if (dialect.bodies === 'mysql-routine') return mysqlDepth(words, previous, word, depth, text, after);
  if (dialect.bodies === 'sqlite-trigger') {
    const isTrigger =
      words[0] === 'CREATE' &&
      (words[1] === 'TRIGGER' ||
        ((words[1] === 'TEMP' || words[1] === 'TEMPORARY') && words[2] === 'TRIGGER'));
    if (!isTrigger) return depth;
    if (word === 'BEGIN' || (word === 'CASE' && depth > 0)) return depth + 1;
    if (word === 'END' && depth > 0) return depth - 1;
    return depth;
  }
  if (dialect.bodies === 'begin-atomic') {
    if (word === 'ATOMIC' && previous === 'BEGIN') return depth + 1;
    if (word === 'CASE' && depth > 0) return depth + 1;
    if (word === 'END' && depth > 0) return depth - 1;
  }
  return depth;
}

const ROUTINE_KINDS = new Set(['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT']);
/** Blocks that END closes; in `END IF`, `END LOOP`, ... the second word closes nothing more. */
const MYSQL_BLOCKS = new Set(['IF', 'CASE', 'LOOP', 'WHILE', 'REPEAT', 'FOR']);
/**
 * Blocks that open only where a statement starts: elsewhere IF(...) and REPEAT(...) are functions,
 * `IF [NOT] EXISTS` is a clause, and FOR is in `FOR UPDATE`, `FOR EACH ROW`, `CURSOR FOR`.
 */
const STATEMENT_BLOCKS = new Set(['IF', 'REPEAT', 'FOR']);
/** Words after which a statement starts ('' = after a `;`, ':' = after a label). */
const STATEMENT_STARTS = new Set(['', ':', 'BEGIN', 'ATOMIC', 'THEN', 'ELSE', 'DO', 'LOOP', 'REPEAT', 'ROW']);

/**
 * MySQL/MariaDB: a stored routine's body, or one of MariaDB's compound statements outside
 * routines (`BEGIN NOT ATOMIC ... END`, IF, CASE, LOOP, WHILE, REPEAT, FOR), holds `;`.
 */
function mysqlDepth(
  words: string[],
  previous: string,
  word: string,
  depth: number,
  text: string,
  after: number,
): number {
  const routine = words[0] === 'CREATE' && words.slice(1, 7).some((w) => ROUTINE_KINDS.has(w));
  const compound =
    MYSQL_BLOCKS.has(words[0] as string) ||
    (words[0] === 'BEGIN' && words[1] === 'NOT' && words[2] === 'ATOMIC');
  if (!routine && !compound) return depth;
  // Outside a routine, BEGIN alone starts a transaction; `BEGIN NOT ATOMIC` opens a block.
  if (word === 'ATOMIC' && depth === 0 && words.length === 3 && !routine) return 1;
  if (word === 'BEGIN') return routine || depth > 0 ? depth + 1 : depth;
  if (word === 'END') return Math.max(0, depth - 1);
  if (previous === 'END' && MYSQL_BLOCKS.has(word)) return depth;
  if (STATEMENT_BLOCKS.has(word)) {
    if (!STATEMENT_STARTS.has(previous) || isFunctionCall(text, after)) return depth;
    return depth + 1;
  }
  return MYSQL_BLOCKS.has(word) ? depth + 1 : depth;
}

/**
 * `IF(a, b, c)` and `REPEAT(s, n)` where a statement could start (after THEN in a CASE
 * expression): parentheses right after the word, with a comma between them at their own level.
 * An IF statement's condition in parentheses has none.
 */
function isFunctionCall(text: string, from: number): boolean {
  let i = from;
  while (i < text.length && /\s/.test(text[i] as string)) i++;
  if (text[i] !== '(') return false;
  let level = 0;
  for (const limit = Math.min(text.length, i + 10_000); i < limit; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(text, i, c, c !== '`') - 1;
    } else if (c === '(') {
      level++;
    } else if (c === ')') {
      if (--level === 0) return false;
    } else if (c === ',' && level === 1) {
      return true;
    }
  }
  return false;
}

/** MySQL's rule for `-- `: an ASCII space or control character, or the end of the text. */
function isSpaceOrEnd(c: string | undefined): boolean {
  if (c === undefined) return true;
  const code = c.charCodeAt(0);
  return code <= 0x20 || code === 0x7f;
}

function isWordStart(c: string): boolean {
  return /[A-Za-z_]/.test(c);
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$]/.test(c);
}

/** Lexing helpers, shared with the placeholder finder of long-running migrations (src/async/parameters.ts). */
export function skipToLineEnd(text: string, i: number): number {
  const end = text.indexOf('\n', i);
  return end < 0 ? text.length : end + 1;
}

export function skipBlockComment(text: string, i: number, nested: boolean): number {
  if (!nested) {
    const end = text.indexOf('*/', i + 2);
    return end < 0 ? text.length : end + 2;
  }
  // Postgres: each `/*` inside opens one more level, each `*/` closes one.
  let depth = 0;
  let j = i;
  while (j < text.length) {
    if (text[j] === '/' && text[j + 1] === '*') {
      depth++;
      j += 2;
    } else if (text[j] === '*' && text[j + 1] === '/') {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else {
      j++;
    }
  }
  return text.length;
}

/** Skips a quoted string or identifier; a doubled quote is an escaped quote. */
export function skipQuoted(text: string, i: number, quote: string, backslash: boolean): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text[j];
    if (backslash && c === '\\') {
      j += 2;
    } else if (c === quote) {
      if (text[j + 1] === quote) j += 2;
      else return j + 1;
    } else {
      j++;
    }
  }
  return text.length;
}

/** 1-based line number of `offset` in `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The file line of `offset` in `text`, a piece of a file that starts at line `startLine` of it. */
export function fileLine(startLine: number, text: string, offset: number): number {
  return startLine + lineAt(text, offset) - 1;
}

/**
 * `lineAt` for many offsets of one text, counting each newline once while the offsets ascend (a
 * file's statements): `lineAt` per statement is quadratic in a large script.
 */
export function lineFinder(text: string): (offset: number) => number {
  let at = 0;
  let line = 1;
  return (offset) => {
    if (offset < at) {
      at = 0;
      line = 1;
    }
    for (const end = Math.min(offset, text.length); at < end; at++) if (text.charCodeAt(at) === 10) line++;
    return line;
  };
}
