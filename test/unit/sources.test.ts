/** Reading a migrations directory: file names, order, duplicates, checksums and module loading. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Migration, MigrationContext } from '../../src/core/migration.js';
import { readMigrations } from '../../src/core/sources.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { SourceError, type SourceProblem } from '../../src/errors.js';

const dialect = createSqliteDriver('sqlite:unused.db', {
  table: 'lockstep_migrations',
  runnerId: 'test:1',
}).dialect.syntax;

/** Runs `fn` on a fresh temporary directory holding `files` (a `/` in a name makes a subdirectory). */
async function withDir<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-sources-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `files` as a migrations directory, with paths shown relative to it. */
const read = (files: Record<string, string>) => withDir(files, (dir) => readMigrations(dir, dir));

/** Asserts a SourceError whose problems match, in order. */
async function assertSourceError(
  promise: Promise<unknown>,
  expected: readonly { file: string | RegExp; line?: number; problem: RegExp }[],
) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SourceError, `expected a SourceError, got ${String(error)}`);
    assert.equal(error.problems.length, expected.length, error.message);
    expected.forEach((e, index) => {
      const problem = error.problems[index];
      if (typeof e.file === 'string') assert.equal(problem?.file, e.file);
      else assert.match(problem?.file ?? '', e.file);
      assert.equal(problem?.line, e.line);
      assert.match(problem?.problem ?? '', e.problem);
    });
    return true;
  });
}

const sql = (up: string, down?: string) =>
  `-- migrate:up\n${up}\n${down === undefined ? '' : `-- migrate:down\n${down}\n`}`;

describe('readMigrations: files', () => {
  it('sorts by numeric version', async () => {
    const migrations = await read({
      '10_c.sql': sql('SELECT 10;'),
      '9_b.sql': sql('SELECT 9;'),
      '001_a.sql': sql('SELECT 1;'),
      '20240101000000_d.sql': sql('SELECT 4;'),
    });
    assert.deepEqual(
      migrations.map((m) => [m.version, m.name, m.file, m.kind]),
      [
        ['001', 'a', '001_a.sql', 'sql'],
        ['9', 'b', '9_b.sql', 'sql'],
        ['10', 'c', '10_c.sql', 'sql'],
        ['20240101000000', 'd', '20240101000000_d.sql', 'sql'],
      ],
    );
  });

  it('accepts a version without a name', async () => {
    const [migration] = await read({ '42.sql': sql('SELECT 1;') });
    assert.equal(migration?.version, '42');
    assert.equal(migration?.name, '');
  });

  it('ignores files that are not migrations, hidden files and subdirectories', async () => {
    const migrations = await read({
      '1_a.sql': sql('SELECT 1;'),
      'README.md': '# migrations\n',
      'notes.txt': 'x',
      '.hidden': 'x',
      '.2_hidden.sql': 'not a migration',
      'types.d.ts': 'export {};',
      'archive/3_old.sql': sql('SELECT 3;'),
    });
    assert.deepEqual(
      migrations.map((m) => m.file),
      ['1_a.sql'],
    );
  });

  it('shows paths relative to the working directory', async () => {
    await withDir({ 'db/migrations/1_a.sql': sql('SELECT 1;') }, async (root) => {
      const [migration] = await readMigrations('db/migrations', root);
      assert.equal(migration?.file, path.join('db', 'migrations', '1_a.sql'));
      assert.equal(migration?.path, path.join(root, 'db', 'migrations', '1_a.sql'));
    });
  });
});

describe('readMigrations: problems', () => {
  it('refuses duplicate versions, naming both files', async () => {
    await assertSourceError(read({ '1_a.sql': sql('SELECT 1;'), '001_b.sql': sql('SELECT 2;') }), [
      { file: '1_a.sql', problem: /duplicate version 1, also used by 001_b\.sql/ },
    ]);
  });

  it('refuses a duplicate between a SQL file and a module', async () => {
    await assertSourceError(
      read({ '2_a.sql': sql('SELECT 1;'), '2_b.ts': 'export async function up() {}\n' }),
      [{ file: '2_b.ts', problem: /duplicate version 2, also used by 2_a\.sql/ }],
    );
  });

  it('ignores a file name without a version, and a directory named like a migration, with warnings', async () => {
    const warnings: SourceProblem[] = [];
    const migrations = await withDir(
      { '1_a.sql': sql('SELECT 1;'), 'create_users.sql': sql('SELECT 2;'), '2_dir.sql/x': '' },
      (dir) => readMigrations(dir, dir, (w) => warnings.push(w)),
    );
    assert.deepEqual(
      migrations.map((m) => m.file),
      ['1_a.sql'],
    );
    assert.deepEqual(
      warnings.map((w) => [w.file, w.line]),
      [
        ['2_dir.sql', undefined],
        ['create_users.sql', undefined],
      ],
    );
    assert.match(warnings[0]?.problem ?? '', /ignored: a directory/);
    assert.match(warnings[1]?.problem ?? '', /ignored: not a migration/);
  });

  it("passes a file's warnings on, with their lines, and loads the file", async () => {
    const warnings: SourceProblem[] = [];
    const migrations = await withDir({ '1_a.sql': '-- migrate:up foo:bar\nSELECT 1;\n' }, (dir) =>
      readMigrations(dir, dir, (w) => warnings.push(w)),
    );
    assert.equal(migrations.length, 1);
    assert.deepEqual(
      warnings.map((w) => [w.file, w.line]),
      [['1_a.sql', 1]],
    );
  });

  it('refuses a missing directory', async () => {
    await withDir({}, async (root) => {
      await assertSourceError(readMigrations('nope', root), [
        { file: 'nope', problem: /directory not found/ },
      ]);
    });
  });

  it('refuses a file without an up section', async () => {
    await assertSourceError(read({ '1_a.sql': '-- migrate:down\n-- DROP TABLE a;\n' }), [
      { file: '1_a.sql', problem: /no "-- migrate:up" section/ },
    ]);
  });

  it('reports the problems of every file at once, with lines', async () => {
    await assertSourceError(
      read({
        '1_a.sql': 'SELECT 0;\n-- migrate:up\nSELECT 1;\n',
        '2_b.sql': '-- migrate:up lock_timeout:soon\nSELECT 2;\n',
      }),
      [
        { file: '1_a.sql', line: 1, problem: /SQL before the first/ },
        { file: '2_b.sql', line: 1, problem: /lock_timeout takes a duration/ },
      ],
    );
  });
});

describe('readMigrations: checksums', () => {
  const checksum = async (text: string) => {
    const [migration] = await read({ '1_a.sql': text });
    assert.ok(migration);
    return migration.checksum;
  };

  it('is a sha256 of the up section', async () => {
    assert.match(await checksum(sql('CREATE TABLE a (id int);')), /^[0-9a-f]{64}$/);
  });

  it('ignores whitespace at the end of the up section, and the down section', async () => {
    const base = await checksum('-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n');
    const same = [
      '-- migrate:up\nCREATE TABLE a (id int);\n\n\n  \t\n-- migrate:down\nDROP TABLE a;\n',
      '-- migrate:up\nCREATE TABLE a (id int);',
      '-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a CASCADE;\n',
      '-- The users table.\n-- migrate:up\nCREATE TABLE a (id int);\n',
    ];
    for (const text of same) assert.equal(await checksum(text), base, JSON.stringify(text));
  });

  it('changes when the up SQL or its options change', async () => {
    const base = await checksum(sql('CREATE TABLE a (id int);'));
    const different = [
      sql('CREATE TABLE a (id bigint);'),
      sql('CREATE TABLE a (id int);\nCREATE INDEX ON a (id);'),
      '-- migrate:up transaction:false\nCREATE TABLE a (id int);\n',
    ];
    for (const text of different) assert.notEqual(await checksum(text), base, JSON.stringify(text));
  });
});

describe('Migration.load: SQL files', () => {
  it('splits a direction into statements with their lines in the file', async () => {
    const text = [
      '-- Users.',
      '-- migrate:up lock_retries:2',
      'CREATE TABLE users (id int);',
      '',
      'CREATE INDEX users_id ON users (id);',
      '-- migrate:down',
      'DROP TABLE users;',
      '',
    ].join('\n');
    await withDir({ '1_users.sql': text }, async (dir) => {
      const [migration] = await readMigrations(dir, dir);
      assert.ok(migration);
      assert.equal(migration.hasDown, true);
      const up = await migration.load('up', dialect);
      assert.equal(up.kind, 'sql');
      assert.ok(up.kind === 'sql');
      assert.deepEqual(up.settings, { transaction: true, lockTimeoutMs: undefined, lockRetries: 2 });
      assert.deepEqual(
        up.statements.map((s) => [s.sql, s.line, text.slice(s.offset, s.offset + s.sql.length)]),
        [
          ['CREATE TABLE users (id int)', 3, 'CREATE TABLE users (id int)'],
          ['CREATE INDEX users_id ON users (id)', 5, 'CREATE INDEX users_id ON users (id)'],
        ],
      );
      const down = await migration.load('down', dialect);
      assert.ok(down.kind === 'sql');
      assert.deepEqual(
        down.statements.map((s) => [s.sql, s.line]),
        [['DROP TABLE users', 7]],
      );
    });
  });

  for (const [what, text] of [
    ['absent', sql('SELECT 1;')],
    ['empty', '-- migrate:up\nSELECT 1;\n-- migrate:down\n\n'],
    ['only comments', '-- migrate:up\nSELECT 1;\n-- migrate:down\n-- nothing to undo\n'],
  ] as const) {
    it(`rolls back a down section that is ${what} as no statement (as dbmate does)`, async () => {
      const [migration] = await read({ '1_a.sql': text });
      assert.equal(migration?.hasDown, true);
      await withDir({ '1_a.sql': text }, async (dir) => {
        const [loaded] = await readMigrations(dir, dir);
        const down = await loaded?.load('down', dialect);
        assert.ok(down?.kind === 'sql');
        assert.deepEqual(down.statements, []);
        assert.equal(down.settings.transaction, true);
      });
    });
  }
});

describe('Migration.load: modules', () => {
  const context = (logged: string[]): MigrationContext => ({
    dialect: 'sqlite',
    query: async () => {
      throw new Error('no database in unit tests');
    },
    exec: async () => {},
    log: (message) => logged.push(message),
  });

  /** Reads a directory holding one module `1_mod.ts` and hands the migration to `fn`. */
  const withModule = (text: string, fn: (migration: Migration) => Promise<void>) =>
    withDir({ '1_mod.ts': text }, async (dir) => {
      const [migration] = await readMigrations(dir, dir);
      assert.ok(migration);
      await fn(migration);
    });

  it('loads up(ctx) and reads `transaction = false`', async () => {
    const text = [
      'export const transaction = false;',
      "export async function up(ctx) { ctx.log('up ran on ' + ctx.dialect); }",
      'export async function down(ctx) {}',
      '',
    ].join('\n');
    await withModule(text, async (migration) => {
      assert.equal(migration.kind, 'module');
      assert.equal(migration.hasDown, true);
      assert.match(migration.checksum, /^[0-9a-f]{64}$/);
      const step = await migration.load('up', dialect);
      assert.ok(step.kind === 'module');
      assert.deepEqual(step.settings, {
        transaction: false,
        lockTimeoutMs: undefined,
        lockRetries: undefined,
      });
      const logged: string[] = [];
      await step.run(context(logged));
      assert.deepEqual(logged, ['up ran on sqlite']);
    });
  });

  it('defaults to a transaction, and reads lockTimeout and lockRetries', async () => {
    const text =
      "export const lockTimeout = '2s';\nexport const lockRetries = 4;\nexport async function up() {}\n";
    await withModule(text, async (migration) => {
      const step = await migration.load('up', dialect);
      assert.deepEqual(step.settings, { transaction: true, lockTimeoutMs: 2000, lockRetries: 4 });
    });
  });

  it('reads `timeout`: milliseconds, a duration, or null/off for no limit', async () => {
    const cases: [string, number | null][] = [
      ["'30m'", 30 * 60_000],
      ['5000', 5000],
      ['null', null],
      ["'off'", null],
    ];
    for (const [value, expected] of cases) {
      await withModule(
        `export const timeout = ${value};\nexport async function up() {}\n`,
        async (migration) => {
          assert.equal((await migration.load('up', dialect)).settings.timeoutMs, expected, value);
        },
      );
    }
  });

  it('refuses a bad `timeout` export', async () => {
    for (const value of ["'soon'", '0', '-5', "'0s'", 'true']) {
      await withModule(
        `export const timeout = ${value};\nexport async function up() {}\n`,
        async (migration) => {
          await assertSourceError(migration.load('up', dialect), [
            { file: '1_mod.ts', problem: /`timeout` must be milliseconds above zero/ },
          ]);
        },
      );
    }
  });

  it('loads a default-exported definition', async () => {
    const text = 'export default { transaction: false, async up(ctx) { ctx.log("default up"); } };\n';
    await withModule(text, async (migration) => {
      const step = await migration.load('up', dialect);
      assert.ok(step.kind === 'module');
      assert.equal(step.settings.transaction, false);
      const logged: string[] = [];
      await step.run(context(logged));
      assert.deepEqual(logged, ['default up']);
    });
  });

  it('refuses a module without up', async () => {
    await withModule('export async function down(ctx) {}\n', async (migration) => {
      await assertSourceError(migration.load('up', dialect), [
        { file: '1_mod.ts', problem: /exports no up\(ctx\)/ },
      ]);
    });
  });

  it('refuses to roll back a module without down', async () => {
    await withModule('export async function up(ctx) {}\n', async (migration) => {
      assert.equal(migration.hasDown, false);
      await assertSourceError(migration.load('down', dialect), [
        { file: '1_mod.ts', problem: /exports no down\(ctx\)/ },
      ]);
    });
  });

  it('refuses a bad `transaction` export', async () => {
    await withModule(
      "export const transaction = 'no';\nexport async function up() {}\n",
      async (migration) => {
        await assertSourceError(migration.load('up', dialect), [
          { file: '1_mod.ts', problem: /`transaction` must be true or false/ },
        ]);
      },
    );
  });

  it('reports a module that cannot be imported', async () => {
    await withModule("throw new Error('boom');\nexport async function up() {}\n", async (migration) => {
      await assertSourceError(migration.load('up', dialect), [
        { file: '1_mod.ts', problem: /cannot be imported: boom/ },
      ]);
    });
  });
});
