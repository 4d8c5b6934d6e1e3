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
  readonly brackets: boolean;
  /**
   * Statements whose body holds `;`: SQLite's `CREATE TRIGGER ... BEGIN ... END`, Postgres's
   * `BEGIN ATOMIC ... END`, MySQL's stored routines (`CREATE PROCEDURE ... BEGIN ... END`, with
   * IF/CASE/LOOP/WHILE/REPEAT ... END IF/... inside). Inside such a body CASE ... END nests too.
   */
  readonly bodies: 'sqlite-trigger' | 'begin-atomic' | 'mysql-routine' | 'none';
  /** MySQL: `--` starts a comment only when followed by white space. */
  readonly dashCommentNeedsSpace?: boolean;
  /** MySQL/MariaDB: `/*! ... *\/` and `/*M! ... *\/` are executed, not comments. */
  readonly versionedComments?: boolean;
  /** The mysql client's `DELIMITER $$` lines, which change the statement terminator. */
  readonly delimiterCommand?: boolean;
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
    previousWord = '';
  };
  const markStart = (at: number) => {
    if (start < 0) start = at;
  };

  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];

    if (dialect.delimiterCommand && start < 0 && (i === 0 || text[i - 1] === '\n')) {
      const command = /^[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)/i.exec(text.slice(i, i + 80));
      if (command) {
        delimiter = command[1] as string;
        i += command[0].length;
        continue;
      }
    }
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

    if (delimiter !== ';') {
      if (text.startsWith(delimiter, i)) {
        finish(i);
        i += delimiter.length;
        continue;
      }
    } else if (c === ';') {
      if (depth === 0) finish(i);
      else previousWord = '';
      i++;
      continue;
    }

    markStart(i);

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
      i = skipQuoted(text, i, '`', false);
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
      if (delimiter === ';')
        depth = nextDepth(dialect, words, previousWord, word, depth, text.slice(j, j + 16));
      previousWord = word;
      i = j;
      continue;
    }
    i++;
  }
  finish(text.length);
  return statements;
}

const ROUTINE_KINDS = new Set(['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT']);
const MYSQL_BLOCKS = new Set(['IF', 'CASE', 'LOOP', 'WHILE', 'REPEAT']);
/** Words after which a new statement starts inside a routine body ('' = after a `;`). */
const STATEMENT_STARTS = new Set(['', 'BEGIN', 'THEN', 'ELSE', 'DO', 'LOOP', 'REPEAT']);

function nextDepth(
  dialect: SplitDialect,
  words: string[],
  previous: string,
  word: string,
  depth: number,
  after: string,
) {
  if (dialect.bodies === 'mysql-routine') {
    if (words[0] !== 'CREATE' || !words.slice(1, 7).some((w) => ROUTINE_KINDS.has(w))) return depth;
    if (word === 'BEGIN') return depth + 1;
    if (depth === 0) return depth;
    if (word === 'END') return depth - 1;
    // `END IF`, `END LOOP`, ...: the word after END closes nothing more.
    if (previous === 'END' && MYSQL_BLOCKS.has(word)) return depth;
    // IF(...) and REPEAT(...) are functions, `TABLE IF NOT EXISTS` a clause: only an IF that
    // starts a statement opens a block.
    if ((word === 'IF' || word === 'REPEAT') && /^\s*\(/.test(after)) return depth;
    if (word === 'IF' && !STATEMENT_STARTS.has(previous)) return depth;
    if (MYSQL_BLOCKS.has(word)) return depth + 1;
    return depth;
  }
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

function isSpaceOrEnd(c: string | undefined): boolean {
  return c === undefined || /\s/.test(c);
}

function isWordStart(c: string): boolean {
  return /[A-Za-z_]/.test(c);
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$]/.test(c);
}

function skipToLineEnd(text: string, i: number): number {
  const end = text.indexOf('\n', i);
  return end < 0 ? text.length : end + 1;
}

function skipBlockComment(text: string, i: number, nested: boolean): number {
  let depth = 0;
  let j = i;
  while (j < text.length) {
    if (text[j] === '/' && text[j + 1] === '*') {
      depth = nested ? depth + 1 : 1;
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
function skipQuoted(text: string, i: number, quote: string, backslash: boolean): number {
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
