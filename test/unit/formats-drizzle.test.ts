/**
 * Drizzle Kit's folders: `meta/_journal.json` lists the migrations, each `<tag>.sql` split where
 * Drizzle's migrator splits it (`--> statement-breakpoint`), and never inside a statement; no down.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BREAKPOINT, drizzlePieces, parseDrizzleJournal } from '../../src/core/formats/drizzle.js';
import { MYSQL, POSTGRES, problemsOf, read, SQLITE, statementsOf } from '../helpers/format-dirs.js';

const journal = (tags: readonly string[], breakpoints = true) =>
  `${JSON.stringify(
    {
      version: '7',
      dialect: 'postgresql',
      entries: tags.map((tag, idx) => ({ idx, version: '7', when: 1700000000000 + idx, tag, breakpoints })),
    },
    null,
    2,
  )}\n`;

describe('drizzle: the split', () => {
  it('splits exactly where the text holds the breakpoint, as String.split does', () => {
    const text = `CREATE TABLE a (id int);${BREAKPOINT}\nCREATE TABLE b (id int);\n${BREAKPOINT}\nSELECT 1;`;
    assert.deepEqual(
      drizzlePieces(text).map(({ start, end }) => text.slice(start, end)),
      text.split(BREAKPOINT),
    );
    assert.deepEqual(drizzlePieces('').length, 1);
  });

  it('statements: one per piece, a piece without breakpoints split by the splitter, strings kept whole', async () => {
    const { migrations, warnings } = await read({
      'meta/_journal.json': journal(['0000_init', '0001_more']),
      'meta/0000_snapshot.json': '{}\n',
      '0000_init.sql': `CREATE TABLE "a" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"note" text DEFAULT 'x;y'\n);\n${BREAKPOINT}\nCREATE INDEX "a_note" ON "a" ("note");`,
      '0001_more.sql':
        "INSERT INTO a (note) VALUES ('--> statement-breakpoints are comments');\nINSERT INTO a (note) VALUES ('two');\n",
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      migrations.map((m) => [m.version, m.name, m.format, m.hasDown]),
      [
        ['0000', 'init', 'drizzle', false],
        ['0001', 'more', 'drizzle', false],
      ],
    );
    for (const dialect of [POSTGRES, MYSQL, SQLITE]) {
      const up = await statementsOf(migrations[0], 'up', dialect);
      assert.deepEqual(up, [
        `CREATE TABLE "a" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"note" text DEFAULT 'x;y'\n)`,
        'CREATE INDEX "a_note" ON "a" ("note")',
      ]);
    }
    const step = await migrations[0]?.load('up', POSTGRES);
    assert.deepEqual(step?.kind === 'sql' && step.statements.map((s) => s.line), [1, 6]);
    // A breakpoint inside a string: Drizzle would cut the statement there; lockstep refuses, with the line.
    const problems = await problemsOf(migrations[1]?.load('up', POSTGRES) ?? Promise.resolve());
    assert.deepEqual(
      problems.map((p) => [p.file, p.line]),
      [['0001_more.sql', 1]],
    );
    assert.match(problems[0]?.problem ?? '', /inside a string, comment or statement body/);
  });

  it("a DO $$ block (older Drizzle Kit's foreign keys) stays one statement; a file without breakpoints is split at its ;", async () => {
    const { migrations } = await read({
      'meta/_journal.json': journal(['0000_fk', '0001_plain'], false),
      '0000_fk.sql': `CREATE TABLE "b" ("a_id" integer);\n${BREAKPOINT}\nDO $$ BEGIN\n ALTER TABLE "b" ADD CONSTRAINT "b_a_fk" FOREIGN KEY ("a_id") REFERENCES "a"("id");\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;\n`,
      '0001_plain.sql': 'CREATE TABLE c (id int);\nCREATE TABLE d (id int);\n',
    });
    const fk = await statementsOf(migrations[0], 'up', POSTGRES);
    assert.equal(fk.length, 2);
    assert.match(fk[1] ?? '', /^DO \$\$ BEGIN[\s\S]*END \$\$$/);
    assert.deepEqual(await statementsOf(migrations[1], 'up', POSTGRES), [
      'CREATE TABLE c (id int)',
      'CREATE TABLE d (id int)',
    ]);
  });

  it('no down: rolling back is refused', async () => {
    const { migrations } = await read({
      'meta/_journal.json': journal(['0000_a']),
      '0000_a.sql': 'SELECT 1;',
    });
    const problems = await problemsOf(migrations[0]?.load('down', POSTGRES) ?? Promise.resolve());
    assert.match(problems[0]?.problem ?? '', /a Drizzle migration has no down/);
  });
});

describe('drizzle: the journal', () => {
  it('a .sql file not in the journal is ignored with a warning; one in another format is read', async () => {
    const { migrations, warnings } = await read({
      'meta/_journal.json': journal(['0000_a']),
      '0000_a.sql': 'SELECT 1;',
      '0001_stray.sql': 'SELECT 2;',
      '0002_dbmate.sql': '-- migrate:up\nSELECT 3;\n',
    });
    assert.deepEqual(
      migrations.map((m) => [m.version, m.format]),
      [
        ['0000', 'drizzle'],
        ['0002', 'lockstep'],
      ],
    );
    assert.deepEqual(
      warnings.map((w) => w.file),
      ['0001_stray.sql'],
    );
    assert.match(warnings[0]?.problem ?? '', /not listed in Drizzle's journal \(meta\/_journal\.json\)/);
  });

  it('a journal entry without its file is refused, naming the file', async () => {
    const problems = await problemsOf(
      read({ 'meta/_journal.json': journal(['0000_a', '0001_gone']), '0000_a.sql': 'SELECT 1;' }),
    );
    assert.deepEqual(
      problems.map((p) => p.file),
      ['0001_gone.sql'],
    );
    assert.match(problems[0]?.problem ?? '', /listed in Drizzle's journal/);
  });

  it('a broken journal is refused with its line', () => {
    const parsed = parseDrizzleJournal(
      '{\n  "entries": [\n    {"tag": "0000_a",}\n  ]\n}\n',
      'meta/_journal.json',
    );
    assert.equal(parsed.problems[0]?.file, 'meta/_journal.json');
    assert.equal(parsed.problems[0]?.line, 3);
    assert.match(parsed.problems[0]?.problem ?? '', /not valid JSON/);
    const noEntries = parseDrizzleJournal('{"version": "7"}', 'j');
    assert.match(noEntries.problems[0]?.problem ?? '', /no "entries"/);
    const badTag = parseDrizzleJournal(journal(['init']), 'j');
    assert.match(badTag.problems[0]?.problem ?? '', /leading digits/);
    assert.equal(badTag.problems[0]?.line, 9);
  });
});
