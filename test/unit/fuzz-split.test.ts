/**
 * Fuzzing the statement splitter, for each driver's dialect: random token soup and mutated real
 * scripts. What must hold for any input:
 *
 * - it returns (never throws: the splitter has no error to report) within a bounded time;
 * - each statement is the input's own text at its offset, with no white space at either end, on a
 *   line of the input;
 * - the input is exactly gap, statement, gap, statement, ..., gap. A gap holds only separators:
 *   white space, comments (not MySQL's executed `/*! ... *\/`), statement terminators (`;` or the
 *   current DELIMITER) and DELIMITER commands; between two statements there is a terminator, and
 *   right after a statement only white space comes before it (a statement ends at its terminator);
 * - a statement split again on its own is that one statement (after `DELIMITER d` where one was in
 *   force).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMainThread, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { lineAt, type SplitDialect, splitStatements } from '../../src/sql/split.js';
import {
  answerFromWorker,
  FUZZ_DEADLINE_MS,
  fuzzParameters,
  lineCount,
  mutatedSeed,
  runInWorker,
  tokenSoup,
  withinBudget,
} from '../helpers/fuzz.js';
import { mariadbScripts, postgresScripts, type SqlScript, splitCaseScripts } from '../helpers/sql-corpus.js';

const options = { table: 'lockstep_migrations', runnerId: 'fuzz:1' };
const DIALECTS: Record<string, SplitDialect> = {
  postgres: createPostgresDriver('postgres://localhost/unused', options).dialect.syntax,
  mysql: createMysqlDriver('mysql://root@localhost/unused', options).dialect.syntax,
  sqlite: createSqliteDriver('sqlite:unused.db', options).dialect.syntax,
};

const TOKENS = [
  ';', ';', ';', "'", "''", '"', '`', '[', ']', '(', ')', '((', ',', ':', ':=', '.',
  '$$', '$a$', '$A$', '$1', "E'", "e'", '\\', "\\'", '\\\\',
  '--', '-- ', '--\n', '#', '/*', '*/', '/*!40101', '/*M!100101', '/* ; */', '/*/',
  '\n', '\r\n', '\r', ' ', '\t', '\u2028', '\ufeff', '\u00a0', '\0', '\ud800', 'é', '😀',
  'DELIMITER $$\n', 'DELIMITER ;\n', 'delimiter //\n', 'DELIMITER ;;\n', 'DELIMITER\n', '$$', '//', ';;',
  'BEGIN', 'begin', 'END', 'ATOMIC', 'NOT', 'CREATE', 'OR REPLACE', 'PROCEDURE', 'FUNCTION', 'TRIGGER',
  'EVENT', 'TEMP', 'RULE', 'DO', 'ALSO', 'INSTEAD', 'CASE', 'WHEN', 'IF', 'IF(', 'THEN', 'ELSE',
  'ELSEIF', 'LOOP', 'WHILE', 'REPEAT', 'UNTIL', 'FOR', 'EACH', 'ROW', 'lbl:', 'EXISTS',
  'SELECT 1', 'x', 'a$b', 'E', '1',
]; // biome-ignore format: one token per entry reads better packed

/** A second, and 2 ms more per kilobyte for the whole shipped scripts (megabytes). */
const budgetMs = (text: string) => 1000 + text.length / 500;

/** Where the separators starting at `from` end, and the delimiter in force after them. */
function readSeparators(text: string, from: number, dialect: SplitDialect, delimiter: string) {
  let i = from;
  while (i < text.length) {
    const rest = text.slice(i, i + 200);
    if (/^\s/.test(rest)) {
      i++;
    } else if (rest.startsWith('--') && (!dialect.dashCommentNeedsSpace || isMysqlCommentSpace(rest[2]))) {
      i = lineEndAfter(text, i);
    } else if (dialect.hashComments && rest.startsWith('#')) {
      i = lineEndAfter(text, i);
    } else if (rest.startsWith('/*') && !(dialect.versionedComments && /^\/\*M?!/.test(rest))) {
      i = commentEnd(text, i, dialect.nestedBlockComments);
    } else if (dialect.delimiterCommand && /^DELIMITER[ \t]/i.test(rest)) {
      const command = /DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)/iy;
      command.lastIndex = i;
      const match = command.exec(text);
      if (!match) break;
      delimiter = match[1] as string;
      i += match[0].length;
    } else if (text.startsWith(delimiter, i)) {
      i += delimiter.length;
    } else {
      break;
    }
  }
  return { end: i, delimiter };
}

function isMysqlCommentSpace(c: string | undefined): boolean {
  return c === undefined || c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f;
}

function lineEndAfter(text: string, i: number): number {
  const end = text.indexOf('\n', i);
  return end < 0 ? text.length : end + 1;
}

function commentEnd(text: string, i: number, nested: boolean): number {
  if (!nested) {
    const end = text.indexOf('*/', i + 2);
    return end < 0 ? text.length : end + 2;
  }
  let depth = 0;
  for (let j = i; j < text.length; ) {
    if (text.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (text.startsWith('*/', j)) {
      j += 2;
      if (--depth === 0) return j;
    } else {
      j++;
    }
  }
  return text.length;
}

/** Checks every property above for one input; `lineOf` gives the line of an offset. */
export function checkSplit(text: string, dialect: SplitDialect, lineOf = (o: number) => lineAt(text, o)) {
  const statements = withinBudget(() => splitStatements(text, dialect), budgetMs(text), 'splitting');

  const lines = lineCount(text);
  const pieces: string[] = [];
  let delimiter = ';';
  let at = 0;
  for (const [index, statement] of statements.entries()) {
    const { sql, offset } = statement;
    const gap = readSeparators(text, at, dialect, delimiter);
    assert.equal(gap.end, offset, `statement ${index} starts where the separators before it end`);
    if (index > 0) {
      assert.ok(
        text.slice(at, offset).trimStart().startsWith(delimiter),
        `a terminator (${delimiter}) between statements ${index - 1} and ${index}`,
      );
    }
    pieces.push(text.slice(at, offset));
    delimiter = gap.delimiter;

    assert.ok(sql.length > 0 && sql === sql.trim(), `statement ${index} is trimmed and not empty`);
    assert.equal(
      text.slice(offset, offset + sql.length),
      sql,
      `statement ${index} is the input at its offset`,
    );
    const line = lineOf(offset);
    assert.ok(line >= 1 && line <= lines, `statement ${index} on line ${line} of ${lines}`);
    pieces.push(sql);
    at = offset + sql.length;
    assertSplitsToItself(sql, dialect, delimiter);
  }
  const tail = readSeparators(text, at, dialect, delimiter);
  assert.equal(tail.end, text.length, 'only separators after the last statement');
  pieces.push(text.slice(at));
  assert.equal(pieces.join(''), text, 'gaps and statements re-join to the input');
}

function assertSplitsToItself(sql: string, dialect: SplitDialect, delimiter: string) {
  // MySQL: `--` right before the terminator is no comment, but at the end of a statement it is,
  // for the server as for the splitter.
  if (dialect.dashCommentNeedsSpace && sql.endsWith('--')) return;
  const prefix = delimiter === ';' ? '' : `DELIMITER ${delimiter}\n`;
  assert.deepEqual(
    splitStatements(prefix + sql, dialect),
    [{ sql, offset: prefix.length }],
    'a statement split on its own is itself',
  );
}

function seedCorpus(): SqlScript[] {
  return [...postgresScripts(), ...mariadbScripts(), ...splitCaseScripts()];
}

function fuzz(dialectName: string, report: (input: string) => void) {
  const dialect = DIALECTS[dialectName] as SplitDialect;
  const seeds = seedCorpus().map((s) => s.text);
  const inputs = {
    'token soup': tokenSoup(TOKENS),
    'mutated real scripts and split cases': mutatedSeed(seeds, TOKENS),
  };
  for (const [kind, arbitrary] of Object.entries(inputs)) {
    try {
      fc.assert(
        fc.property(arbitrary, (text) => {
          report(text);
          checkSplit(text, dialect);
        }),
        fuzzParameters(),
      );
    } catch (error) {
      throw new Error(`${dialectName}, ${kind}: ${error instanceof Error ? error.message : error}`, {
        cause: error instanceof Error ? error.cause : undefined,
      });
    }
  }
}

/** Each dialect reads its own server's scripts; SQLite reads Postgres's (dollar quotes are text there). */
function scriptsFor(dialect: string): SqlScript[] {
  const own = dialect === 'mysql' ? mariadbScripts() : postgresScripts();
  return [...own, ...splitCaseScripts()];
}

if (isMainThread) {
  describe('fuzz: splitStatements', () => {
    for (const dialect of Object.keys(DIALECTS)) {
      it(`${dialect}: token soup and mutated real scripts`, () =>
        runInWorker(new URL(import.meta.url), dialect, FUZZ_DEADLINE_MS));
    }
  });

  describe('splitStatements on whole real scripts', () => {
    for (const [name, dialect] of Object.entries(DIALECTS)) {
      it(`${name}: every shipped script and split case, unchanged`, () => {
        for (const { file, text } of scriptsFor(name)) {
          const newlines = [...text.matchAll(/\n/g)].map((m) => m.index);
          const lineOf = (offset: number) => 1 + sortedCountBelow(newlines, offset);
          try {
            checkSplit(text, dialect, lineOf);
          } catch (error) {
            throw new Error(`${file}: ${error instanceof Error ? error.message : error}`);
          }
        }
      });
    }
  });
} else {
  void answerFromWorker((report) => fuzz(workerData as string, report));
}

/** How many of the sorted numbers are below `value`. */
function sortedCountBelow(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
