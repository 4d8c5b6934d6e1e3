/**
 * golang-migrate's files (MIGRATIONS.md: `{version}_{title}.up.{extension}` and
 * `{version}_{title}.down.{extension}`, versions any 64-bit unsigned number, the title unused):
 * a pair is one migration, the whole file its direction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { golangMigrateFile } from '../../src/core/formats/golang-migrate.js';
import { POSTGRES, problemsOf, read, statementsOf } from '../helpers/format-dirs.js';

describe('golang-migrate: file names', () => {
  for (const [name, expected] of [
    ['1_initialize_schema.up.sql', { version: '1', name: 'initialize_schema', direction: 'up' }],
    ['1_initialize_schema.down.sql', { version: '1', name: 'initialize_schema', direction: 'down' }],
    ['1500360784_add_table.up.sql', { version: '1500360784', name: 'add_table', direction: 'up' }],
    ['000001_create_users.down.sql', { version: '000001', name: 'create_users', direction: 'down' }],
    ['20191228100730_a.b.up.sql', { version: '20191228100730', name: 'a.b', direction: 'up' }],
    ['3_.up.sql', { version: '3', name: '', direction: 'up' }],
    ['1.up.sql', undefined],
    ['1-a.up.sql', undefined],
    ['1_a.up.json', undefined],
    ['1_a.sql', undefined],
    ['a_1.up.sql', undefined],
  ] as const) {
    it(name, () => assert.deepEqual(golangMigrateFile(name), expected));
  }
});

describe('golang-migrate: a folder', () => {
  it('pairs up and down files; the whole file is the direction, split into statements', async () => {
    const { migrations, warnings } = await read({
      '1_initialize_schema.up.sql': 'CREATE TABLE users (id int);\nCREATE INDEX users_id ON users (id);\n',
      '1_initialize_schema.down.sql': 'DROP TABLE users;\n',
      '2_add_table.up.sql': "INSERT INTO users VALUES (1); -- a; comment\nSELECT 'a;b';\n",
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      migrations.map((m) => [m.version, m.name, m.file, m.format, m.hasDown]),
      [
        ['1', 'initialize_schema', '1_initialize_schema.up.sql', 'golang-migrate', true],
        ['2', 'add_table', '2_add_table.up.sql', 'golang-migrate', true],
      ],
    );
    assert.deepEqual(await statementsOf(migrations[0], 'up'), [
      'CREATE TABLE users (id int)',
      'CREATE INDEX users_id ON users (id)',
    ]);
    assert.deepEqual(await statementsOf(migrations[0], 'down'), ['DROP TABLE users']);
    assert.deepEqual(await statementsOf(migrations[1], 'up'), [
      'INSERT INTO users VALUES (1)',
      "SELECT 'a;b'",
    ]);
    // A lone up file: no down, rolled back as an empty down section is (only the ledger row goes).
    assert.deepEqual(await statementsOf(migrations[1], 'down'), []);
    const step = await migrations[0]?.load('up', POSTGRES);
    assert.equal(step?.settings.transaction, true);
  });

  it('statement lines are lines of their own file', async () => {
    const { migrations } = await read({
      '5_x.up.sql': '\n\nSELECT 1;\n\nSELECT\n 2;\n',
      '5_x.down.sql': '-- undo\nSELECT 3;\n',
    });
    const up = await migrations[0]?.load('up', POSTGRES);
    const down = await migrations[0]?.load('down', POSTGRES);
    assert.deepEqual(up?.kind === 'sql' && up.statements.map((s) => s.line), [3, 5]);
    assert.deepEqual(down?.kind === 'sql' && down.statements.map((s) => s.line), [2]);
  });

  it('a down file without its up file is refused, naming it', async () => {
    const problems = await problemsOf(read({ '1_a.up.sql': 'SELECT 1;\n', '2_b.down.sql': 'SELECT 2;\n' }));
    assert.deepEqual(
      problems.map((p) => p.file),
      ['2_b.down.sql'],
    );
    assert.match(problems[0]?.problem ?? '', /a down file without its up file \(2_b\.up\.sql\)/);
  });

  it('two up files of one version (1 and 01 are one number) are refused', async () => {
    const problems = await problemsOf(read({ '1_a.up.sql': 'SELECT 1;\n', '01_b.up.sql': 'SELECT 2;\n' }));
    assert.match(problems[0]?.problem ?? '', /a second up file for version/);
  });

  it("a version beyond golang-migrate's 64 bits is refused (golang-migrate would skip the file)", async () => {
    const ok = await read({ '18446744073709551615_max.up.sql': 'SELECT 1;\n' });
    assert.equal(ok.migrations.length, 1);
    const problems = await problemsOf(read({ '18446744073709551616_over.up.sql': 'SELECT 1;\n' }));
    assert.match(problems[0]?.problem ?? '', /beyond golang-migrate's 64-bit versions/);
  });

  it('a file named like golang-migrate but with dbmate markers stays a dbmate file', async () => {
    const { migrations } = await read({
      '1_a.up.sql': '-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n',
    });
    assert.equal(migrations[0]?.format, 'lockstep');
    assert.deepEqual(await statementsOf(migrations[0], 'down'), ['SELECT 2']);
  });

  it('a golang-migrate name with goose annotations inside: the whole file, with a warning', async () => {
    const { migrations, warnings } = await read({
      '1_a.up.sql': '-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n',
    });
    assert.equal(migrations[0]?.format, 'golang-migrate');
    assert.deepEqual(await statementsOf(migrations[0], 'up'), ['SELECT 1', 'SELECT 2']);
    assert.match(
      warnings[0]?.problem ?? '',
      /whole file is its up: its goose annotations are read as comments/,
    );
  });

  it('mixes with dbmate files in one folder, ordered by version', async () => {
    const { migrations } = await read({
      '1_a.up.sql': 'SELECT 1;\n',
      '2_b.sql': '-- migrate:up\nSELECT 2;\n',
      '3_c.up.sql': 'SELECT 3;\n',
      '3_c.down.sql': 'SELECT 4;\n',
    });
    assert.deepEqual(
      migrations.map((m) => [m.version, m.format]),
      [
        ['1', 'golang-migrate'],
        ['2', 'lockstep'],
        ['3', 'golang-migrate'],
      ],
    );
  });

  it('a version used by a golang-migrate pair and a dbmate file is a duplicate', async () => {
    const problems = await problemsOf(
      read({ '1_a.up.sql': 'SELECT 1;\n', '1_b.sql': '-- migrate:up\nSELECT 2;\n' }),
    );
    assert.match(problems[0]?.problem ?? '', /duplicate version 1/);
  });

  it('the checksum is of the up file only', async () => {
    const sum = async (files: Record<string, string>) => (await read(files)).migrations[0]?.checksum;
    const base = await sum({ '1_a.up.sql': 'SELECT 1;\n' });
    assert.equal(await sum({ '1_a.up.sql': 'SELECT 1;\n\n', '1_a.down.sql': 'SELECT 2;\n' }), base);
    assert.notEqual(await sum({ '1_a.up.sql': 'SELECT 2;\n' }), base);
  });
});
