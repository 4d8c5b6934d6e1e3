/**
 * Fuzzing the parser of long-running migrations written as SQL files (parseAsyncSql). For any
 * file text and any parameter values:
 *
 * - parsing and building the operations return (never throw), within a bounded time;
 * - problems name the file and, where they give a line, a line of the file;
 * - a check's line is a line of the file; in a definition without problems (one that can run),
 *   each statement of an operation or its rollback, at the line reported for it, is that line of
 *   the file (the body's lines are the file's, CR removed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMainThread } from 'node:worker_threads';
import fc from 'fast-check';
import { parseAsyncSql } from '../../src/async/sql-definition.js';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import type { SourceProblem } from '../../src/errors.js';
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
import { postgresScripts } from '../helpers/sql-corpus.js';

const FILE = 'async/0001_fuzz.sql';
const options = { table: 'lockstep_migrations', runnerId: 'fuzz:1' };
const DIALECTS: readonly SplitDialect[] = [
  createPostgresDriver('postgres://localhost/unused', options).dialect.syntax,
  createMysqlDriver('mysql://root@localhost/unused', options).dialect.syntax,
  createSqliteDriver('sqlite:unused.db', options).dialect.syntax,
];

const MARKERS = [
  '-- async:description Backfill users.email_lower',
  '-- async:description',
  '-- async:depends_on 20260101_add_email_lower, other',
  '-- async:parameter batch_size 10000 rows per batch',
  "-- async:parameter label 'it''s; here' a text",
  "-- async:parameter label 'unterminated",
  '-- async:parameter 1bad 2',
  '-- async:parameter',
  '-- async:precheck',
  '-- async:healthcheck',
  '-- async:is_required',
  '--async:operation',
  '-- async:operation',
  '-- async:operation batched table:users key:id batch_size:{{batch_size}} pause:50ms',
  '-- async:operation batched table:users key:id batch_size:{{ label }}',
  '-- async:operation timeout:30m setting:statement_timeout=0 transaction:false',
  '-- async:operation timeout:soon setting:= {{nope}} unknown:1',
  '-- async:rollback',
  '-- async:bogus',
  '-- async:operation\r',
];
const LINES = [
  ...MARKERS,
  '',
  '\r',
  '-- a comment',
  'SELECT COUNT(*) > 0 FROM users;',
  'UPDATE users SET email_lower = lower(email) WHERE id >= :start AND id < :end;',
  "UPDATE t SET a = 'x;y'; UPDATE t SET b = 2;",
  "SELECT 'unterminated",
  '/* block',
  '*/ SELECT 1;',
  'DO $$ BEGIN PERFORM 1; END $$;',
  'é😀\ud800',
  '\0',
];

const lineFiles = fc
  .record({
    lines: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...LINES) }, tokenSoup(['x', ';'], 3)), {
      maxLength: 30,
    }),
    eol: fc.constantFrom('\n', '\r\n'),
    finalNewline: fc.boolean(),
  })
  .map(({ lines, eol, finalNewline }) => lines.join(eol) + (finalNewline && lines.length > 0 ? eol : ''));

const values = fc.dictionary(
  fc.constantFrom('batch_size', 'label', 'nope', 'x', 'constructor', 'toString'),
  fc.oneof(
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('{{batch_size}}', ' ', ''),
  ),
);

function checkDefinition(text: string, given: Record<string, number | string>) {
  const count = lineCount(text);
  const fileLines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const inFile = (line: number | undefined) => line === undefined || (line >= 1 && line <= count);
  const assertProblems = (problems: readonly SourceProblem[]) => {
    for (const p of problems) {
      assert.equal(p.file, FILE);
      assert.ok(inFile(p.line), `problem "${p.problem}" on line ${p.line} of ${count}`);
    }
  };

  const parsed = parseAsyncSql(text, FILE);
  assertProblems(parsed.problems);
  for (const [name, check] of Object.entries(parsed.checks)) {
    assert.ok(check && inFile(check.line), `${name} on line ${check?.line} of ${count}`);
  }
  const defaults = Object.fromEntries(Object.entries(parsed.parameters).map(([k, p]) => [k, p.default]));
  for (const chosen of [defaults, given]) {
    const problems: SourceProblem[] = [];
    const operations = parsed.operations(chosen, problems);
    assertProblems(problems);
    // A definition with problems never runs, so none of its lines is ever reported.
    if (parsed.problems.length > 0 || problems.length > 0) continue;
    for (const op of operations) {
      assert.ok(op.line !== undefined, 'an operation of a SQL file has a line');
      assertBodyInFile(op.sql, op.line, fileLines, count);
      if (op.rollbackLine !== undefined) assertBodyInFile(op.rollback, op.rollbackLine, fileLines, count);
    }
  }
}

/** Each statement of `body`, at the line it would be reported on, is on that line of the file. */
function assertBodyInFile(body: string, firstLine: number, fileLines: string[], count: number) {
  const bodyLines = body.split('\n');
  for (const dialect of DIALECTS) {
    for (const statement of splitStatements(body, dialect)) {
      const k = lineAt(body, statement.offset);
      const line = firstLine + k - 1;
      assert.ok(line >= 1 && line <= count, `statement on line ${line} of ${count}`);
      assert.equal(fileLines[line - 1], bodyLines[k - 1], `line ${line} of the file is the statement's`);
    }
  }
}

const seeds = () => [
  ...postgresScripts()
    .slice(0, 40)
    .map((s) => `-- async:description d\n-- async:operation\n${s.text}\n-- async:rollback\nSELECT 1;\n`),
  LINES.join('\n'),
];

function fuzz(report: (input: string) => void) {
  const texts = fc.oneof(lineFiles, mutatedSeed(seeds(), [...MARKERS.map((m) => `\n${m}\n`), '\n', '\r\n']));
  fc.assert(
    fc.property(texts, values, (text, given) => {
      report(text);
      withinBudget(() => checkDefinition(text, given), 1000, 'parsing and checking');
    }),
    fuzzParameters(),
  );
}

if (isMainThread) {
  describe('fuzz: long-running migration SQL files', () => {
    it('generated and mutated definitions: problems, checks and statements on lines of the file', () =>
      runInWorker(new URL(import.meta.url), null, FUZZ_DEADLINE_MS));

    // Found by this fuzzing.
    it('refuses a parameter named __proto__ (it would replace the prototype, not add a parameter)', () => {
      const parsed = parseAsyncSql('-- async:description d\n-- async:parameter __proto__ 5\n', FILE);
      assert.equal(Object.keys(parsed.parameters).length, 0);
      assert.ok(parsed.problems.some((p) => p.line === 2 && /__proto__ is reserved/.test(p.problem)));
    });
    it('gives an empty operation at the end of the file a line of the file', () => {
      const text = '-- async:description d\n-- async:operation';
      const [op] = parseAsyncSql(text, FILE).operations({}, []);
      assert.ok((op?.line ?? 0) <= lineCount(text), `line ${op?.line} of ${lineCount(text)}`);
    });
  });
} else {
  void answerFromWorker(fuzz);
}
