/**
 * node-pg-migrate's SQL migrations (`-- Up Migration` / `-- Down Migration`, found by its own
 * regular expression, and its `-- no transaction` header), and JavaScript/TypeScript migrations
 * written for node-pg-migrate or knex, which lockstep recognises and refuses to call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foreignModuleTool } from '../../src/core/formats/knex.js';
import { hasNodePgMigrateMarker } from '../../src/core/formats/node-pg-migrate.js';
import { POSTGRES, problemsOf, read, statementsOf } from '../helpers/format-dirs.js';

describe('node-pg-migrate: markers', () => {
  for (const [text, found] of [
    ['-- Up Migration\n', true],
    ['-- up migration\n', true],
    ['--Up   Migration\n', true],
    ['---- - Down Migration\n', true],
    ['  -- Down Migration: undo\n', true],
    ['-- Up\nMigration\n', true],
    ['-- Upmigration\n', false],
    ['-- Update migration\n', false],
    ['SELECT 1; -- Up Migration\n', false],
    ['# Up Migration\n', false],
  ] as const) {
    it(JSON.stringify(text), () => assert.equal(hasNodePgMigrateMarker(text), found));
  }
});

describe('node-pg-migrate: SQL files', () => {
  it('up from its marker to the down marker, down to the end', async () => {
    const { migrations } = await read({
      '1700000000000_users.sql':
        '-- Up Migration\nCREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n\n-- Down Migration\nDROP TABLE users;\n',
    });
    const [migration] = migrations;
    assert.equal(migration?.format, 'node-pg-migrate');
    assert.equal(migration?.version, '1700000000000');
    assert.deepEqual(await statementsOf(migration, 'up'), [
      'CREATE TABLE users (id int)',
      'INSERT INTO users VALUES (1)',
    ]);
    assert.deepEqual(await statementsOf(migration, 'down'), ['DROP TABLE users']);
    const step = await migration?.load('up', POSTGRES);
    assert.deepEqual(step?.kind === 'sql' && step.statements.map((s) => s.line), [2, 3]);
  });

  it('down written first: each section runs to the other marker or the end, as node-pg-migrate slices', async () => {
    const { migrations } = await read({
      '1_a.sql': '-- Down Migration\nDROP TABLE a;\n-- Up Migration\nCREATE TABLE a (id int);\n',
    });
    assert.deepEqual(await statementsOf(migrations[0], 'up'), ['CREATE TABLE a (id int)']);
    assert.deepEqual(await statementsOf(migrations[0], 'down'), ['DROP TABLE a']);
  });

  it('"-- no transaction" in the header: both directions outside a transaction', async () => {
    const { migrations } = await read({
      '1_a.sql':
        '-- no transaction\n-- Up Migration\nCREATE INDEX CONCURRENTLY i ON t (c);\n-- Down Migration\nDROP INDEX i;\n',
      '2_b.sql': '-- Up Migration\nSELECT 1;\n-- no transaction\n',
    });
    for (const direction of ['up', 'down'] as const)
      assert.equal((await migrations[0]?.load(direction, POSTGRES))?.settings.transaction, false);
    assert.equal(
      (await migrations[1]?.load('up', POSTGRES))?.settings.transaction,
      true,
      'only in the header',
    );
  });

  it('no down section: it cannot be rolled back, and saying so is not a no-op', async () => {
    const { migrations } = await read({ '1_a.sql': '-- Up Migration\nCREATE TABLE a (id int);\n' });
    const [migration] = migrations;
    assert.equal(migration?.hasDown, false);
    assert.match(migration?.noDown ?? '', /no "-- Down Migration" section/);
    const problems = await problemsOf(migration?.load('down', POSTGRES) ?? Promise.resolve());
    assert.equal(problems[0]?.file, '1_a.sql');
  });

  it('a down marker without an up marker is refused (node-pg-migrate would run the down SQL on up)', async () => {
    const problems = await problemsOf(
      read({ '1_a.sql': 'CREATE TABLE a (id int);\n\n-- Down Migration\nDROP TABLE a;\n' }),
    );
    assert.deepEqual(
      problems.map((p) => [p.file, p.line]),
      [['1_a.sql', 3]],
    );
    assert.match(problems[0]?.problem ?? '', /no "-- Up Migration" before it/);
  });

  it('a plain SQL file without any markers stays refused, as dbmate refuses it', async () => {
    const problems = await problemsOf(read({ '1_a.sql': 'CREATE TABLE a (id int);\n' }));
    assert.match(problems[0]?.problem ?? '', /no "-- migrate:up" section/);
  });
});

describe('modules written for node-pg-migrate or knex: recognised, refused, never called', () => {
  for (const [text, tool] of [
    ['exports.up = (pgm) => {\n  pgm.createTable("a", {});\n};\n', 'node-pg-migrate'],
    ['exports.up = pgm => { pgm.sql("SELECT 1"); };\n', 'node-pg-migrate'],
    [
      "import type { MigrationBuilder } from 'node-pg-migrate';\nexport async function up(pgm: MigrationBuilder): Promise<void> {}\n",
      'node-pg-migrate',
    ],
    ['export const up = async (builder: MigrationBuilder) => {};\n', 'node-pg-migrate'],
    [
      'exports.up = function(knex) {\n  return knex.schema.createTable("a", (t) => t.increments());\n};\n',
      'knex',
    ],
    ['exports.up = async function (knex) {};\n', 'knex'],
    ["import type { Knex } from 'knex';\nexport async function up(knex: Knex): Promise<void> {}\n", 'knex'],
    ['export async function up(db: Knex) {}\n', 'knex'],
    ['module.exports = {\n  up(knex) { return knex.raw("SELECT 1"); },\n};\n', 'knex'],
    ['const { Knex } = require("knex");\nexports.up = async (k) => {};\n', 'knex'],
    ['export async function up(ctx) {\n  await ctx.exec("SELECT 1");\n}\n', undefined],
    ['export default { async up(ctx) {}, async down(ctx) {} };\n', undefined],
    ['// ported from knex: knex.schema.createTable\nexport async function up(ctx) {}\n', undefined],
    ['export async function up({ query }) {}\n', undefined],
  ] as const) {
    it(`${JSON.stringify(text.split('\n')[0])}: ${tool ?? "lockstep's"}`, () =>
      assert.equal(foreignModuleTool(text)?.tool, tool));
  }

  it('load() refuses with the tool and what to do, without importing the module', async () => {
    const { migrations } = await read({
      '1_a.js': 'throw new Error("imported");\nexports.up = function (knex) { return knex.schema; };\n',
      '2_b.ts':
        '// a node-pg-migrate migration\nexport async function up(pgm: MigrationBuilder) { throw new Error("called"); }\n',
    });
    for (const [migration, tool] of [
      [migrations[0], 'knex'],
      [migrations[1], 'node-pg-migrate'],
    ] as const) {
      for (const direction of ['up', 'down'] as const) {
        const problems = await problemsOf(migration?.load(direction, POSTGRES) ?? Promise.resolve());
        assert.equal(problems[0]?.file, migration?.file);
        assert.equal(problems[0]?.line, 2, 'the line of its up');
        assert.match(
          problems[0]?.problem ?? '',
          new RegExp(
            `a ${tool} migration[\\s\\S]*lockstep cannot run it[\\s\\S]*lockstep adopt --from ${tool}[\\s\\S]*lockstep SQL files or up\\(ctx\\) modules`,
          ),
        );
      }
    }
  });
});
