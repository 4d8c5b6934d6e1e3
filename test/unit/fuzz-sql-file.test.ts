/**
 * Fuzzing the migration file parser (dbmate format) and what lockstep builds from it. For any
 * file text:
 *
 * - parseSqlFile returns (never throws) with problems and warnings that name the file and, where
 *   they give a line, a line of the file: a marker line (or a line like one) for marker problems,
 *   the stray line for SQL before the first up marker;
 * - each section is the file's own text at its offset, from the line after its marker up to the
 *   next marker or the end of the file, with no marker inside; the up section's marker is the
 *   first up marker, the down section's the first down marker after it (before a second up);
 * - a file read from disk gives migrations whose statements lie on lines of their section, or a
 *   SourceError (nothing else) whose lines are lines of the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { isMainThread } from 'node:worker_threads';
import fc from 'fast-check';
import { readMigrations } from '../../src/core/sources.js';
import { parseSqlFile } from '../../src/core/sql-file.js';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { SourceError } from '../../src/errors.js';
import { lineFinder, type SplitDialect, splitStatements } from '../../src/sql/split.js';
import {
  answerFromWorker,
  FUZZ_DEADLINE_MS,
  FUZZ_RUNS,
  fuzzParameters,
  lineCount,
  mutatedSeed,
  runInWorker,
  tokenSoup,
} from '../helpers/fuzz.js';
import { mariadbScripts, postgresScripts, splitCaseScripts } from '../helpers/sql-corpus.js';

const FILE = 'migrations/001_fuzz.sql';
/** dbmate's marker, on one line: `up`/`down`, then ASCII whitespace or the end of the line. */
const MARKER = /^--[\t\f\r ]*migrate:(up|down)(?:[\t\f\r ](.*))?$/s;
const NEAR_MARKER = /^\s*--\s*migrate\s*:/i;
const options = { table: 'lockstep_migrations', runnerId: 'fuzz:1' };
const POSTGRES = createPostgresDriver('postgres://localhost/unused', options).dialect.syntax;
const MYSQL = createMysqlDriver('mysql://root@localhost/unused', options).dialect.syntax;
const DIALECTS: readonly SplitDialect[] = [
  POSTGRES,
  MYSQL,
  createSqliteDriver('sqlite:unused.db', options).dialect.syntax,
];

const MARKERS = [
  '-- migrate:up',
  '--migrate:up',
  '-- migrate:down',
  '--   migrate:down',
  '-- migrate:up transaction:false',
  '-- migrate:up transaction:maybe',
  '-- migrate:down lock_timeout:2s lock_retries:3',
  '-- migrate:up lock_timeout:soon',
  '-- migrate:up requires:a,b-2',
  '-- migrate:up requires:,',
  '-- migrate:up  foo:bar  ',
  '-- migrate:sideways',
  '-- migrate:',
  '-- migrate:upx',
  '-- migrate:up:x',
  ' -- migrate:up',
  '-- migrate:up\r',
  '-- migrate:up\u2028',
];
const LINES = [
  ...MARKERS,
  '',
  '\r',
  '-- a comment',
  '/* block',
  ' * inside',
  '*/',
  'SELECT 1;',
  "INSERT INTO t VALUES ('a;b');",
  "SELECT 'unterminated",
  'CREATE FUNCTION f() AS $$ BEGIN; END $$;',
  'DELIMITER $$',
  'END$$',
  'é😀\ud800',
  '\0',
];

/** A file of whole lines: markers, SQL, comments, blank lines; LF or CRLF, final newline or not. */
const lineFiles = fc
  .record({
    lines: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...LINES) }, tokenSoup(['x'], 3)), {
      maxLength: 30,
    }),
    eol: fc.constantFrom('\n', '\r\n'),
    finalNewline: fc.boolean(),
  })
  .map(({ lines, eol, finalNewline }) => lines.join(eol) + (finalNewline && lines.length > 0 ? eol : ''));

function checkParsed(text: string, dialects = DIALECTS) {
  const parsed = parseSqlFile(text, FILE);
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const count = lineCount(text);
  const markerLines = lines.flatMap((l, i) => (MARKER.test(l) ? [i + 1] : []));
  const firstUpLine = lines.findIndex((l) => MARKER.exec(l)?.[1] === 'up') + 1;

  for (const problem of [...parsed.problems, ...parsed.warnings]) {
    assert.equal(problem.file, FILE);
    if (problem.line === undefined) continue;
    assert.ok(problem.line >= 1 && problem.line <= count, `problem on line ${problem.line} of ${count}`);
    const line = lines[problem.line - 1] as string;
    if (/before the first/.test(problem.problem)) {
      assert.ok(line.trim() !== '' && !line.trim().startsWith('--'), 'the stray line holds SQL');
      assert.ok(firstUpLine === 0 || firstUpLine > problem.line, 'the stray line is before any up marker');
    } else {
      assert.ok(MARKER.test(line) || NEAR_MARKER.test(line), `"${problem.problem}" is on a marker line`);
    }
  }
  const hasUpMarker = lines.some((l) => MARKER.exec(l)?.[1] === 'up');
  assert.equal(
    parsed.problems.some((p) => /no "-- migrate:up" section/.test(p.problem)),
    !hasUpMarker,
    'a missing up section is reported exactly when there is no up marker',
  );

  for (const direction of ['up', 'down'] as const) {
    const section = parsed[direction];
    // The down section's marker: the first down marker after the first up, before a second up.
    const secondUp = lines.findIndex((l, i) => i + 1 > firstUpLine && MARKER.exec(l)?.[1] === 'up') + 1;
    const first =
      direction === 'up'
        ? firstUpLine
        : lines.findIndex(
            (l, i) =>
              firstUpLine > 0 &&
              i + 1 > firstUpLine &&
              (secondUp === 0 || i + 1 < secondUp) &&
              MARKER.exec(l)?.[1] === 'down',
          ) + 1;
    if (!section) {
      assert.equal(first, 0, `a "${direction}" marker gives a section`);
      continue;
    }
    assert.equal(section.markerLine, first, `the first "${direction}" marker makes the section`);
    assert.equal(section.optionsText, (MARKER.exec(lines[first - 1] as string)?.[2] ?? '').trim());
    assert.ok(section.offset >= 0 && section.offset <= text.length);
    assert.equal(text.slice(section.offset, section.offset + section.text.length), section.text);
    const startOfNextLine = lineStart(text, first + 1);
    assert.equal(section.offset, startOfNextLine ?? text.length, 'the section starts after its marker line');
    const end = section.offset + section.text.length;
    const nextMarker = markerLines.find((m) => m > first);
    assert.equal(end, nextMarker === undefined ? text.length : lineStart(text, nextMarker));
    for (const dialect of dialects) {
      const lineOf = lineFinder(text);
      for (const statement of splitStatements(section.text, dialect)) {
        const line = lineOf(section.offset + statement.offset);
        assert.ok(line > first && line <= count, `statement on line ${line}, section from ${first}`);
      }
    }
  }
  return parsed;
}

/** Offset where 1-based `line` starts, or undefined past the last line. */
function lineStart(text: string, line: number): number | undefined {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const newline = text.indexOf('\n', offset);
    if (newline < 0) return undefined;
    offset = newline + 1;
  }
  return offset;
}

/** Through the files on disk: migrations whose statements lie in the file, or a SourceError. */
async function checkRead(written: string, dir: string, dialects = DIALECTS) {
  const file = path.join(dir, '001_fuzz.sql');
  writeFileSync(file, written);
  const text = readFileSync(file, 'utf8'); // a lone surrogate is written as U+FFFD
  const count = lineCount(text);
  const inFile = (line: number | undefined) => line === undefined || (line >= 1 && line <= count);
  let migrations: Awaited<ReturnType<typeof readMigrations>>;
  try {
    migrations = await readMigrations(dir);
  } catch (error) {
    assert.ok(error instanceof SourceError, `only a SourceError, got ${error}`);
    for (const p of error.problems) assert.ok(inFile(p.line), `problem line ${p.line} of ${count}`);
    return;
  }
  assert.equal(migrations.length, 1);
  const migration = migrations[0];
  for (const direction of ['up', 'down'] as const) {
    for (const dialect of dialects) {
      try {
        const step = await migration?.load(direction, dialect);
        assert.equal(step?.kind, 'sql');
        if (step?.kind !== 'sql') continue;
        for (const statement of step.statements) {
          assert.ok(inFile(statement.line), `${direction} statement on line ${statement.line} of ${count}`);
          assert.equal(text.slice(statement.offset, statement.offset + statement.sql.length), statement.sql);
        }
      } catch (error) {
        assert.fail(`a SQL file read without problems loads both directions: ${error}`);
      }
    }
  }
}

/** Each shipped script as the up section of a migration, with the dialect of its server. */
const shippedMigrations = () =>
  [
    ...postgresScripts().map((s) => ({ ...s, dialect: POSTGRES })),
    ...mariadbScripts().map((s) => ({ ...s, dialect: MYSQL })),
    ...splitCaseScripts().map((s) => ({ ...s, dialect: POSTGRES })),
  ].map((s) => ({ ...s, text: `-- migrate:up\n${s.text}\n-- migrate:down\nSELECT 1;\n` }));
const seeds = () => shippedMigrations().map((s) => s.text);
const TOKENS = [...MARKERS.map((m) => `\n${m}\n`), ...LINES, '\n', '\r\n', ';'];

async function fuzz(report: (input: string) => void) {
  const files = fc.oneof(lineFiles, mutatedSeed(seeds(), TOKENS));
  fc.assert(
    fc.property(files, (text) => {
      report(text);
      checkParsed(text);
    }),
    fuzzParameters(),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-fuzz-'));
  try {
    await fc.assert(
      fc.asyncProperty(files, async (text) => {
        report(text);
        await checkRead(text, dir);
      }),
      fuzzParameters(Math.ceil(FUZZ_RUNS / 3)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  describe('fuzz: migration files', () => {
    it('generated and mutated files: sections, problems and statement lines in the file', () =>
      runInWorker(new URL(import.meta.url), null, FUZZ_DEADLINE_MS));

    it('every shipped script as a migration: sections and statements in the file', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-fuzz-'));
      try {
        for (const { file, text, dialect } of shippedMigrations()) {
          try {
            checkParsed(text, [dialect]);
            const started = performance.now();
            await checkRead(text, dir, [dialect]);
            const took = performance.now() - started;
            // fill_help_tables.sql: 2.4 MB, 3,715 statements (a line count per statement took 36 s).
            assert.ok(took < 10_000, `reading and splitting took ${Math.round(took)} ms`);
          } catch (error) {
            throw new Error(`${file}: ${error instanceof Error ? error.message : error}`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
} else {
  void answerFromWorker(fuzz);
}
