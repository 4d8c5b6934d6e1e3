/**
 * Other tools' migration folders run by the built CLI against every database: `lockstep up` on a
 * golang-migrate, goose, node-pg-migrate, Prisma and Drizzle folder, then `lockstep down` where
 * the format has a down (and its refusal where it has none), asserting the objects each time;
 * goose's StatementBegin/End around a plpgsql function and NO TRANSACTION around CREATE INDEX
 * CONCURRENTLY on PostgreSQL; goose Go files and knex modules refused when pending.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  CLEAN_ENV,
  type DatabaseKind,
  type ProcessResult,
  runCli,
  TARGETS,
  type TestDatabase,
} from '../helpers/targets.js';

const LEDGER = 'lockstep_migrations';

const LIST_TABLES: Record<DatabaseKind, string> = {
  postgres: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
  mysql: `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
  sqlite: `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`,
};

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function writeFolder(root: string, folder: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const target = path.join(root, folder, name);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
}

/** A goose migration whose StatementBegin/End block holds `;` inside one statement, per database. */
function gooseBlock(kind: DatabaseKind): string {
  switch (kind) {
    case 'postgres':
      return `-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION goose_double(n integer) RETURNS integer AS $$
DECLARE
    result integer;
BEGIN
    result := n * 2;
    RETURN result;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION goose_double(integer);
`;
    case 'mysql':
      return `-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER goose_upper BEFORE INSERT ON goose_users FOR EACH ROW
BEGIN
    SET NEW.label = UPPER(NEW.label);
    SET NEW.label = CONCAT(NEW.label, '!');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER goose_upper;
`;
    case 'sqlite':
      return `-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER goose_upper AFTER INSERT ON goose_users
BEGIN
    UPDATE goose_users SET label = UPPER(label) WHERE id = NEW.id;
    UPDATE goose_users SET label = label || '!' WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER goose_upper;
`;
  }
}

for (const target of TARGETS) {
  describe(`other tools' folders: ${target.kind}`, () => {
    let db: TestDatabase;
    const run = (folder: string, ...args: string[]) =>
      runCli([...args, '--url', db.url, '--dir', folder], { cwd: db.dir, env: CLEAN_ENV });
    const tables = async () =>
      (await db.query(LIST_TABLES[db.kind])).map((r) => String(r.name)).filter((n) => n !== LEDGER);
    const versions = async () =>
      (await db.query(`SELECT version FROM ${LEDGER} ORDER BY version`)).map((r) => String(r.version));

    beforeEach(async () => {
      db = await target.create();
    });
    afterEach(async () => {
      await db.cleanup();
    });

    it('golang-migrate: up applies each .up.sql, down runs each .down.sql', async () => {
      writeFolder(db.dir, 'gm', {
        '1_users.up.sql':
          "CREATE TABLE gm_users (id integer PRIMARY KEY, label varchar(50));\nINSERT INTO gm_users VALUES (1, 'a;b');\n",
        '1_users.down.sql': 'DROP TABLE gm_users;\n',
        '2_posts.up.sql': 'CREATE TABLE gm_posts (id integer PRIMARY KEY);\n',
        '2_posts.down.sql': 'DROP TABLE gm_posts;\n',
      });
      const up = await run('gm', 'up');
      assert.equal(up.code, 0, show(up));
      assert.deepEqual(await tables(), ['gm_posts', 'gm_users']);
      assert.deepEqual(
        (await db.query('SELECT label FROM gm_users')).map((r) => r.label),
        ['a;b'],
      );
      assert.deepEqual(await versions(), ['1', '2']);
      const down = await run('gm', 'down', '--steps', '2');
      assert.equal(down.code, 0, show(down));
      assert.deepEqual(await tables(), []);
      assert.deepEqual(await versions(), []);
    });

    it('golang-migrate: a failing statement of a down file is named by that file and its line', async () => {
      writeFolder(db.dir, 'gmbad', {
        '1_a.up.sql': 'CREATE TABLE gm_a (id integer PRIMARY KEY);\n',
        '1_a.down.sql': '-- undo\nDROP TABLE gm_nonexistent;\n',
      });
      const up = await run('gmbad', 'up');
      assert.equal(up.code, 0, show(up));
      const down = await run('gmbad', 'down');
      assert.equal(down.code, 1, show(down));
      assert.match(down.stderr, /1_a\.down\.sql:2/);
      assert.deepEqual(await tables(), ['gm_a']);
    });

    it(
      'goose: Up/Down, a StatementBegin/End block as one statement' +
        (target.kind === 'postgres' ? ', NO TRANSACTION with CREATE INDEX CONCURRENTLY' : ''),
      async () => {
        writeFolder(db.dir, 'goose', {
          '00001_users.sql': `-- +goose Up
-- a comment goose skips
CREATE TABLE goose_users (
    id integer PRIMARY KEY,
    label varchar(50)
);

-- +goose Down
DROP TABLE goose_users;
`,
          '00002_block.sql': gooseBlock(db.kind),
          ...(db.kind === 'postgres'
            ? {
                '00003_index.sql': `-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY goose_users_label ON goose_users (label);

-- +goose Down
DROP INDEX CONCURRENTLY goose_users_label;
`,
              }
            : {}),
        });
        const up = await run('goose', 'up');
        assert.equal(up.code, 0, show(up));
        assert.deepEqual(await tables(), ['goose_users']);
        if (db.kind === 'postgres') {
          assert.deepEqual(await db.query('SELECT goose_double(21) AS v'), [{ v: 42 }]);
          const index = await db.query(
            `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'goose_users_label'`,
          );
          assert.deepEqual(index, [{ valid: true }]);
        } else {
          await db.query(`INSERT INTO goose_users VALUES (1, 'shout')`);
          assert.deepEqual(await db.query('SELECT label FROM goose_users'), [{ label: 'SHOUT!' }]);
        }
        const steps = db.kind === 'postgres' ? '3' : '2';
        const down = await run('goose', 'down', '--steps', steps);
        assert.equal(down.code, 0, show(down));
        assert.deepEqual(await tables(), []);
        if (db.kind === 'postgres')
          assert.deepEqual(await db.query(`SELECT proname FROM pg_proc WHERE proname = 'goose_double'`), []);
        assert.deepEqual(await versions(), []);
      },
    );

    it('node-pg-migrate: -- Up Migration / -- Down Migration', async () => {
      writeFolder(db.dir, 'npm', {
        '1700000000001_users.sql': `-- Up Migration
CREATE TABLE npm_users (id integer PRIMARY KEY, label varchar(50));
INSERT INTO npm_users VALUES (1, '-- Down Migration is not a marker here');

-- Down Migration
DROP TABLE npm_users;
`,
        '1700000000002_posts.sql': '-- Up Migration\nCREATE TABLE npm_posts (id integer PRIMARY KEY);\n',
      });
      const up = await run('npm', 'up');
      assert.equal(up.code, 0, show(up));
      assert.deepEqual(await tables(), ['npm_posts', 'npm_users']);
      // The newest has no down section: rolling it back is refused, nothing changes.
      const refused = await run('npm', 'down');
      assert.equal(refused.code, 2, show(refused));
      assert.match(refused.stderr, /1700000000002_posts\.sql: has no "-- Down Migration" section/);
      assert.deepEqual(await versions(), ['1700000000001', '1700000000002']);
    });

    it('Prisma: migration folders up; down refused (Prisma has no down)', async () => {
      writeFolder(db.dir, 'prisma', {
        'migration_lock.toml': 'provider = "postgresql"\n',
        '20240101000000_init/migration.sql':
          '-- CreateTable\nCREATE TABLE prisma_users (id integer PRIMARY KEY);\n',
        '20240102000000_posts/migration.sql':
          '-- CreateTable\nCREATE TABLE prisma_posts (id integer PRIMARY KEY, user_id integer);\n\n-- CreateIndex\nCREATE INDEX prisma_posts_user ON prisma_posts (user_id);\n',
      });
      const up = await run('prisma', 'up');
      assert.equal(up.code, 0, show(up));
      assert.deepEqual(await tables(), ['prisma_posts', 'prisma_users']);
      const down = await run('prisma', 'down');
      assert.equal(down.code, 2, show(down));
      assert.match(down.stderr, /20240102000000_posts\/migration\.sql: a Prisma migration has no down/);
      assert.deepEqual(await tables(), ['prisma_posts', 'prisma_users']);
      assert.deepEqual(await versions(), ['20240101000000', '20240102000000']);
    });

    it('Drizzle: the journal, statement breakpoints; down refused (Drizzle has no down)', async () => {
      const entry = (idx: number, tag: string) => ({
        idx,
        version: '7',
        when: 1700000000000 + idx,
        tag,
        breakpoints: true,
      });
      writeFolder(db.dir, 'drizzle', {
        'meta/_journal.json': JSON.stringify(
          { version: '7', dialect: 'postgresql', entries: [entry(0, '0000_init'), entry(1, '0001_seed')] },
          null,
          2,
        ),
        'meta/0000_snapshot.json': '{}\n',
        '0000_init.sql':
          "CREATE TABLE drz_users (\n\tid integer PRIMARY KEY NOT NULL,\n\tlabel varchar(50) DEFAULT 'x;y'\n);\n--> statement-breakpoint\nCREATE INDEX drz_users_label ON drz_users (label);",
        '0001_seed.sql': 'INSERT INTO drz_users (id) VALUES (1);',
      });
      const up = await run('drizzle', 'up');
      assert.equal(up.code, 0, show(up));
      assert.deepEqual(await tables(), ['drz_users']);
      assert.deepEqual(await db.query('SELECT label FROM drz_users'), [{ label: 'x;y' }]);
      assert.deepEqual(await versions(), ['0000', '0001']);
      const down = await run('drizzle', 'down');
      assert.equal(down.code, 2, show(down));
      assert.match(down.stderr, /0001_seed\.sql: a Drizzle migration has no down/);
      assert.deepEqual(await versions(), ['0000', '0001']);
    });

    it('a pending goose Go migration, or a knex module, is refused by name (never skipped)', async () => {
      writeFolder(db.dir, 'gogo', {
        '00001_users.sql':
          '-- +goose Up\nCREATE TABLE go_users (id integer PRIMARY KEY);\n-- +goose Down\nDROP TABLE go_users;\n',
        '00002_backfill.go':
          'package migrations\n\nfunc init() { goose.AddMigrationContext(upBackfill, downBackfill) }\n',
      });
      const up = await run('gogo', 'up');
      assert.notEqual(up.code, 0, show(up));
      assert.match(up.stderr, /00002_backfill\.go:3: goose Go migration: lockstep cannot run it/);
      // Refused while the files are read: nothing is applied, not even 00001.
      assert.deepEqual(await tables(), []);

      writeFolder(db.dir, 'knex', {
        '20240101000000_users.js':
          "exports.up = function (knex) {\n  return knex.schema.createTable('knex_users', (t) => t.increments());\n};\nexports.down = function (knex) {\n  return knex.schema.dropTable('knex_users');\n};\n",
      });
      const knex = await run('knex', 'up');
      assert.equal(knex.code, 2, show(knex));
      assert.match(
        knex.stderr,
        /20240101000000_users\.js:1: a knex migration[\s\S]*lockstep adopt --from knex/,
      );
      assert.ok(!(await tables()).includes('knex_users'));
    });
  });
}
