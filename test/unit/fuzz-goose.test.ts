/**
 * Fuzzing goose's SQL format as lockstep reads it. For any file text:
 *
 * - parseGoose returns (never throws, never hangs) with problems that name the file and a line of it;
 * - an accepted file's statements, per direction, are ranges of the file in order, each after its
 *   direction's annotation (up after "+goose Up", before "+goose Down"; down after it), each the
 *   file's own text (lines joined by \n, annotation lines left out, trimmed), a plain one ending on
 *   a line that ends with ";";
 * - read from disk, it gives one goose migration whose statements, for every database's syntax,
 *   are text of the file inside the statements goose found (a block's whole), or a SourceError
 *   (nothing else) whose lines are lines of the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isMainThread } from 'node:worker_threads';
import fc from 'fast-check';
import {
  gooseAnnotation,
  gooseEndsWithSemicolon,
  goTrim,
  isGooseAnnotationLine,
  parseGoose,
} from '../../src/core/formats/goose.js';
import { readMigrations } from '../../src/core/sources.js';
import { SourceError } from '../../src/errors.js';
import { MYSQL, POSTGRES, SQLITE } from '../helpers/format-dirs.js';
import {
  answerFromWorker,
  FUZZ_DEADLINE_MS,
  FUZZ_RUNS,
  fuzzParameters,
  lineCount,
  runInWorker,
  tokenSoup,
} from '../helpers/fuzz.js';

const FILE = 'migrations/00001_fuzz.sql';
const ANNOTATIONS = [
  '-- +goose Up',
  '-- +goose Down',
  '-- +goose StatementBegin',
  '-- +goose StatementEnd',
  '-- +goose NO TRANSACTION',
  '-- +goose ENVSUB ON',
  '-- +goose ENVSUB OFF',
  '--+goose up',
  '-- +goose   DOWN \t',
  ' -- +goose Up',
  '-- +goose',
  '-- +goose Sideways',
  '-- +goose +goose Up',
  '-- a note on +goose',
];
const LINES = [
  ...ANNOTATIONS,
  ...ANNOTATIONS.slice(0, 4),
  '',
  '  ',
  '\r',
  '-- a comment',
  'SELECT 1;',
  'SELECT 1; SELECT 2; -- two',
  'CREATE TABLE t (',
  '  a int',
  ');',
  ') -- no end ;',
  "INSERT INTO t VALUES ('a;b');",
  "SELECT 'x -->';",
  'CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;',
  'BEGIN',
  'END;',
  '$$ LANGUAGE plpgsql;',
  `SELECT \${NAME};`,
  '/* block ; */',
  'é😀',
  '\u00a0SELECT 3;\u2028',
];

const SQL_LINES = LINES.filter((l) => !l.includes('+goose'));
/** A body goose mostly accepts: SQL lines, statements ending with ";", blocks, comments. */
const body = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...SQL_LINES).map((l) => [l]) },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom('SELECT 1;', 'CREATE TABLE t (\n  a int\n);', 'DROP TABLE t; -- gone')
          .map((l) => [l]),
      },
      {
        weight: 2,
        arbitrary: fc
          .array(fc.constantFrom(...SQL_LINES), { minLength: 1, maxLength: 4 })
          .map((inner) => ['-- +goose StatementBegin', ...inner, '-- +goose StatementEnd']),
      },
      { weight: 1, arbitrary: fc.constantFrom(...ANNOTATIONS).map((l) => [l]) },
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.flat());
const shapedLines = fc
  .record({
    head: fc.subarray(['', '-- header', '-- +goose NO TRANSACTION']),
    up: body,
    down: fc.option(body),
  })
  .map(({ head, up, down }) => [
    ...head,
    '-- +goose Up',
    ...up,
    ...(down ? ['-- +goose Down', ...down] : []),
  ]);

const files = fc
  .record({
    lines: fc.oneof(
      shapedLines,
      fc.array(
        fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...LINES) }, tokenSoup(['x', ';', '--', '$'], 3)),
        {
          maxLength: 30,
        },
      ),
    ),
    eol: fc.constantFrom('\n', '\r\n'),
    finalNewline: fc.boolean(),
  })
  .map(({ lines, eol, finalNewline }) => lines.join(eol) + (finalNewline && lines.length > 0 ? eol : ''));

/** The lines of `text` as goose scans them, with their offsets. */
function scan(text: string) {
  const lines: { text: string; start: number; end: number }[] = [];
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    const stop = newline < 0 ? text.length : newline;
    const end = stop > start && text[stop - 1] === '\r' ? stop - 1 : stop;
    lines.push({ text: text.slice(start, end), start, end });
    start = stop + 1;
  }
  return lines;
}

function checkParsed(text: string) {
  const parsed = parseGoose(text, FILE);
  const count = lineCount(text);
  for (const problem of [...parsed.problems, ...parsed.warnings]) {
    assert.equal(problem.file, FILE);
    assert.ok(
      problem.line !== undefined && problem.line >= 1 && problem.line <= count,
      `line ${problem.line} of ${count}`,
    );
  }
  if (parsed.problems.length > 0) return parsed;
  const lines = scan(text);
  const annotationAt = (name: string) =>
    lines.find((l) => isGooseAnnotationLine(l.text) && gooseAnnotation(l.text) === name)?.start;
  const up = annotationAt('Up');
  assert.ok(up !== undefined, 'an accepted file has "+goose Up"');
  const down = annotationAt('Down') ?? text.length;
  for (const [units, from, to] of [
    [parsed.up, up, down],
    [parsed.down, down, text.length],
  ] as const) {
    let previous = from;
    for (const unit of units) {
      assert.ok(
        unit.start >= previous && unit.end >= unit.start && unit.end <= to,
        'in order, inside its section',
      );
      previous = unit.end;
      const own = lines
        .filter((l) => l.start >= unit.start && l.end <= unit.end && !isGooseAnnotationLine(l.text))
        .map((l) => l.text)
        .join('\n');
      assert.equal(unit.sql, goTrim(own), "goose's statement is the file's text");
      const last = lines.find((l) => l.end === unit.end);
      if (!unit.block)
        assert.ok(last && gooseEndsWithSemicolon(last.text), 'a plain statement ends on a ";" line');
    }
  }
  return parsed;
}

async function checkRead(written: string, dir: string) {
  const file = path.join(dir, '00001_fuzz.sql');
  writeFileSync(file, written);
  const text = readFileSync(file, 'utf8');
  const count = lineCount(text);
  let migrations: Awaited<ReturnType<typeof readMigrations>>;
  try {
    migrations = await readMigrations(dir);
  } catch (error) {
    assert.ok(error instanceof SourceError, `only a SourceError, got ${error}`);
    for (const p of error.problems) assert.ok(p.line === undefined || (p.line >= 1 && p.line <= count));
    return;
  }
  assert.equal(migrations.length, 1);
  const [migration] = migrations;
  // A file without goose annotations is another format's: only goose's are checked here.
  if (migration?.format !== 'goose') return;
  const parsed = parseGoose(text, FILE);
  for (const direction of ['up', 'down'] as const) {
    for (const dialect of [POSTGRES, MYSQL, SQLITE]) {
      const step = await migration.load(direction, dialect);
      assert.ok(step.kind === 'sql');
      assert.equal(step.settings.transaction, parsed.transaction);
      for (const statement of step.statements) {
        assert.equal(text.slice(statement.offset, statement.offset + statement.sql.length), statement.sql);
        const unit = parsed[direction].find((u) => u.start <= statement.offset && statement.offset < u.end);
        assert.ok(unit, 'each statement lies in a statement goose found');
        assert.ok(statement.offset + statement.sql.length <= unit.end);
        if (unit.block)
          assert.equal(statement.sql, goTrim(text.slice(unit.start, unit.end)), 'a block is whole');
        assert.ok(statement.line >= 1 && statement.line <= count);
      }
    }
  }
}

async function fuzz(report: (input: string) => void) {
  fc.assert(
    fc.property(files, (text) => {
      report(text);
      checkParsed(text);
    }),
    fuzzParameters(),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-fuzz-goose-'));
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
  describe('fuzz: goose SQL files', () => {
    it('generated files: problems on lines of the file, statements goose would find, loaded as text of the file', () =>
      runInWorker(new URL(import.meta.url), null, FUZZ_DEADLINE_MS));

    it('accepted files are accepted again with their lines in CRLF', () => {
      const text =
        '-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\nSELECT 2;\nSELECT 3;\n-- +goose StatementEnd\n';
      const lf = checkParsed(text);
      const crlf = checkParsed(text.replaceAll('\n', '\r\n'));
      assert.deepEqual(
        crlf.up.map((u) => u.sql),
        lf.up.map((u) => u.sql),
      );
    });
  });
} else {
  void answerFromWorker(fuzz);
}
