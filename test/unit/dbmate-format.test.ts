/**
 * dbmate's file format as dbmate reads it (lockstep issue 14, item 7):
 *
 * - the table: every folder of test/helpers/dbmate-format-cases.ts read by readMigrations is
 *   accepted or refused as the case says, with exactly its warnings (file and line); the same
 *   cases run against the real dbmate binary in test/cli/dbmate-format.test.ts;
 * - the property: for any file of marker lines, lines like markers, SQL, comments and blank
 *   lines, parseSqlFile accepts exactly what a model of dbmate's parser accepts (apart from the
 *   differences the cases document: an absent down section is accepted, a second up section is
 *   refused), with the same up and down SQL and the same transaction settings.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readMigrations } from '../../src/core/sources.js';
import { parseSqlFile } from '../../src/core/sql-file.js';
import { SourceError, type SourceProblem } from '../../src/errors.js';
import { FORMAT_CASES } from '../helpers/dbmate-format-cases.js';
import { fuzzParameters } from '../helpers/fuzz.js';

describe('dbmate format: each case, accepted or refused as the case says', () => {
  for (const c of FORMAT_CASES) {
    it(`${c.what}: lockstep ${c.lockstep}${c.difference ? ` (dbmate ${c.dbmate})` : ''}`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-format-'));
      try {
        for (const [name, text] of Object.entries(c.files)) {
          if (name.endsWith('/')) mkdirSync(path.join(dir, name));
          else writeFileSync(path.join(dir, name), text);
        }
        const warnings: SourceProblem[] = [];
        let verdict = 'accepts';
        try {
          await readMigrations(dir, dir, (w) => warnings.push(w));
        } catch (error) {
          assert.ok(error instanceof SourceError, String(error));
          verdict = 'refuses';
        }
        assert.equal(verdict, c.lockstep);
        assert.equal(
          c.difference !== undefined,
          c.lockstep !== c.dbmate || /first pair/.test(c.difference ?? ''),
        );
        assert.deepEqual(
          warnings.map((w) => (w.line === undefined ? w.file : `${w.file}:${w.line}`)).sort(),
          [...(c.warnings ?? [])].sort(),
        );
        // Where the verdict is about the text alone, the model of dbmate's parser agrees with dbmate.
        const sql = Object.entries(c.files).filter(([n]) => /^\d+.*\.sql$/.test(n));
        if (sql.length === 1 && !/first pair/.test(c.difference ?? '')) {
          assert.equal(dbmateParse(sql[0]?.[1] as string).ok ? 'accepts' : 'refuses', c.dbmate);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

interface DbmateSection {
  readonly up: string;
  readonly down: string;
  readonly upTransaction: boolean;
  readonly downTransaction: boolean;
}
type DbmateResult =
  | { readonly ok: true; readonly sections: readonly DbmateSection[] }
  | { readonly ok: false; readonly why: string };

/**
 * A model of dbmate 2.36's parseMigrationContents, written from its behaviour: sections start at
 * each up marker; before the first only blank and comment lines; each section needs exactly one
 * down marker; a section's text includes its marker line; options are key:value words, only
 * `transaction:false` matters. Go's `\s` is ASCII and its `(?m)$` is before "\n" only.
 */
function dbmateParse(text: string): DbmateResult {
  const space = '[\\t\\n\\f\\r ]';
  const marker = (d: string) =>
    new RegExp(`^--${space}*migrate:${d}(${space}*(?=\\n|$(?![^]))|${space}+[^\\t\\n\\f\\r ])`, 'gm');
  const starts = (d: string, s: string) => [...s.matchAll(marker(d))].map((m) => m.index);
  const ups = starts('up', text);
  if (ups.length === 0) return { ok: false, why: 'no up' };
  const before = text.slice(0, ups[0]).split('\n');
  if (before.some((l) => !new RegExp(`^${space}*$`).test(l) && !new RegExp(`^${space}*--`).test(l)))
    return { ok: false, why: 'statements before up' };
  const bodies = ups.map((start, i) => text.slice(start, ups[i + 1] ?? text.length));
  if (bodies.some((b) => starts('down', b).length > 1)) return { ok: false, why: 'two downs' };
  const sections: DbmateSection[] = [];
  for (const body of bodies) {
    const [down] = starts('down', body);
    if (down === undefined) return { ok: false, why: 'no down' };
    const transaction = (block: string) => {
      const options = new Map<string, string>();
      const first = (block.split('\n')[0] as string).replace(/^--[\t\n\f\r ]*migrate:(up|down)/, '').trim();
      for (const word of first.split(/[\t\n\f\r ]+/).filter(Boolean)) {
        const pair = word.split(':');
        if (pair.length === 2) options.set(pair[0] as string, pair[1] as string);
      }
      return options.get('transaction') !== 'false';
    };
    const up = body.slice(0, down);
    const downText = body.slice(down);
    sections.push({
      up,
      down: downText,
      upTransaction: transaction(up),
      downTransaction: transaction(downText),
    });
  }
  return { ok: true, sections };
}

/** A section's text without its marker line: what lockstep keeps of it. */
const afterMarkerLine = (block: string) => (block.includes('\n') ? block.slice(block.indexOf('\n') + 1) : '');

const OPTIONS = [
  '',
  ' transaction:false',
  ' transaction:true',
  ' transaction:no',
  ' foo:bar',
  ' concurrently',
  ' -- note: x',
  ' transaction:false:x',
  ' lock_timeout:2s',
  '\t',
  '  ',
];
const LINES = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom('-- migrate:up', '--migrate:up', '-- migrate:down', '--  migrate:down'),
        fc.constantFrom(...OPTIONS),
      )
      .map(([m, o]) => m + o),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '-- migrate:upgrade',
      '-- MIGRATE:DOWN',
      ' -- migrate:up',
      '-- migrate:downx',
      '-- migrate:sideways',
      '-- migrate:',
    ),
  },
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '-- a comment',
      '  -- indented comment',
      'CREATE TABLE t (id integer);',
      'SELECT 1;',
      "SELECT 'x -- y';",
      '/* block */',
    ),
  },
);
/** Mostly the shape of a migration (comments, up, body, down, body), with any line anywhere. */
const SHAPED = fc
  .tuple(
    fc.array(fc.constantFrom('', '-- a comment', '  -- indented comment'), { maxLength: 3 }),
    fc.constantFrom(...OPTIONS),
    fc.array(LINES, { maxLength: 5 }),
    fc.option(fc.constantFrom(...OPTIONS)),
    fc.array(LINES, { maxLength: 5 }),
  )
  .map(([pre, upOptions, upBody, downOptions, downBody]) => [
    ...pre,
    `-- migrate:up${upOptions}`,
    ...upBody,
    ...(downOptions === null ? [] : [`-- migrate:down${downOptions}`]),
    ...downBody,
  ]);
const FILES = fc
  .record({
    lines: fc.oneof(SHAPED, fc.array(LINES, { maxLength: 14 })),
    eol: fc.constantFrom('\n', '\r\n'),
    final: fc.boolean(),
  })
  .map(({ lines, eol, final }) => lines.join(eol) + (final && lines.length > 0 ? eol : ''));

describe('dbmate format: lockstep reads any file as dbmate does', () => {
  it('accepts what dbmate accepts, refuses what it refuses, with the same SQL and transaction settings', () => {
    fc.assert(
      fc.property(FILES, (text) => {
        const dbmate = dbmateParse(text);
        const lockstep = parseSqlFile(text, 'f.sql');
        const accepted = lockstep.problems.length === 0;
        const upMarkers = text
          .split('\n')
          .filter((l) => /^--[\t\f\r ]*migrate:up($|[\t\f\r ])/.test(l)).length;
        if (dbmate.ok && dbmate.sections.length === 1) {
          const [section] = dbmate.sections as [DbmateSection];
          assert.ok(accepted, JSON.stringify(lockstep.problems));
          assert.equal(lockstep.up?.text, afterMarkerLine(section.up));
          assert.equal(lockstep.down?.text, afterMarkerLine(section.down));
          assert.equal(lockstep.up?.settings.transaction, section.upTransaction);
          assert.equal(lockstep.down?.settings.transaction, section.downTransaction);
        } else if (!dbmate.ok && dbmate.why === 'no down' && upMarkers === 1 && !lockstep.down) {
          // lockstep's own leniency: no down section. Refused only for a line like a marker below up.
          const upLine = (lockstep.up?.markerLine ?? 0) as number;
          const nearBelow = text
            .split('\n')
            .some(
              (l, i) =>
                i + 1 > upLine &&
                /^\s*--\s*migrate\s*:/i.test(l) &&
                !/^--[\t\f\r ]*migrate:(up|down)($|[\t\f\r ])/.test(l),
            );
          assert.equal(accepted, !nearBelow, JSON.stringify(lockstep.problems));
          if (accepted) assert.equal(lockstep.up?.text, text.slice(lockstep.up?.offset));
        } else {
          // Refused by dbmate, or several sections (which dbmate's `up` fails on at the second).
          assert.ok(!accepted, `accepted, dbmate: ${JSON.stringify(dbmate)}`);
        }
        for (const w of [...lockstep.problems, ...lockstep.warnings]) assert.equal(w.file, 'f.sql');
      }),
      fuzzParameters(),
    );
  });
});
