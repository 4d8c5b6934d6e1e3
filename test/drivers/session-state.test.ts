/**
 * SPEC guarantee 13: what a migration does to its own session (table locks, autocommit, an open
 * transaction, settings) cannot corrupt the ledger or silently change the next migration; a
 * ledger write never overwrites what another runner committed; a failure is recorded whatever
 * its error text. Real dumps written by mariadb-dump and pg_dump apply as migrations.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LedgerConflictError, MigrationError, migrate } from '../../src/index.js';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  ROOT,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const DUMPS = path.join(ROOT, 'test/fixtures/dumps');

/** What the test's migration modules call back into (they run in this process). */
const hooks = globalThis as unknown as { lockstepTestHook?: () => Promise<void> };

/** A module migration that calls the test's hook, then throws `message`. */
function failingModule(message: string, transaction: boolean): string {
  return `export const transaction = ${transaction};
export async function up(ctx) {
  await ctx.query('SELECT 1');
  await globalThis.lockstepTestHook?.();
  throw new Error(${JSON.stringify(message)});
}
`;
}

async function ledgerRow(db: TestDatabase, version: string) {
  const [row] = await db.query(
    db.kind === 'postgres'
      ? 'SELECT state, statements_done, statement_count, applied_by, error FROM lockstep_migrations WHERE version = $1'
      : 'SELECT state, statements_done, statement_count, applied_by, error FROM lockstep_migrations WHERE version = ?',
    [version],
  );
  return row;
}

describe('session state: mysql', () => {
  /** A migration that records the session it got, as a table. */
  const SEEN = (table: string) => `-- migrate:up
CREATE TABLE ${table} AS SELECT @@SESSION.sql_mode AS sql_mode, @@SESSION.time_zone AS tz,
  @@SESSION.foreign_key_checks AS fk, @@SESSION.unique_checks AS uc, @@SESSION.autocommit AS ac,
  @@SESSION.character_set_client AS cs, @@SESSION.collation_connection AS coll, DATABASE() AS db;
`;

  it('applies a real mariadb-dump (LOCK TABLES, SET, NO_AUTO_VALUE_ON_ZERO) and records it', async () => {
    const db = await createMysqlDatabase();
    try {
      const dump = readFileSync(path.join(DUMPS, 'mariadb-dump.sql'), 'utf8');
      const dir = writeMigrations(db.dir, {
        '001_before.sql': SEEN('seen_before'),
        '002_dump.sql': `-- migrate:up\n${dump}`,
        '003_after.sql': `${SEEN('seen_after')}CREATE TABLE after_dump (id int AUTO_INCREMENT PRIMARY KEY);
INSERT INTO after_dump VALUES (0);
`,
      });
      const result = await migrate({ url: db.url, dir });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001', '002', '003'],
      );
      const row = await ledgerRow(db, '002');
      assert.equal(row?.state, 'applied');
      assert.equal(Number(row?.statements_done), Number(row?.statement_count));
      assert.ok(Number(row?.statement_count) > 30);
      // The dump's own sql_mode held for its INSERTs (id 0 kept), and its utf8mb4 text arrived whole.
      const authors = await db.query('SELECT id, name, bio FROM authors ORDER BY id');
      assert.deepEqual(
        authors.map((a) => Number(a.id)),
        [0, 1, 2],
      );
      assert.equal(authors[2]?.bio, '😀 emoji');
      assert.equal(authors[1]?.bio, 'wrote \\"notes\\" and a back\\slash');
      // The next migration ran with lockstep's normal session: id 0 is auto-numbered again.
      assert.deepEqual(await db.query('SELECT id FROM after_dump'), [{ id: 1 }]);
      const [before] = await db.query('SELECT * FROM seen_before');
      const [after] = await db.query('SELECT * FROM seen_after');
      assert.deepEqual(after, before);
      assert.equal(String(before?.sql_mode).includes('IGNORE_SPACE'), false, 'no IGNORE_SPACE');
      assert.equal((await migrate({ url: db.url, dir })).upToDate, true);
    } finally {
      await db.cleanup();
    }
  });

  it('records a migration that turns autocommit off and commits, and the next run is up to date', async () => {
    const db = await createMysqlDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_t.sql': '-- migrate:up\nCREATE TABLE t (id int PRIMARY KEY);\n',
        '002_autocommit.sql': `-- migrate:up
SET AUTOCOMMIT=0;
INSERT INTO t VALUES (1);
INSERT INTO t VALUES (2);
COMMIT;
`,
        '003_after.sql': '-- migrate:up\nCREATE TABLE t2 (id int);\nINSERT INTO t2 VALUES (1);\n',
      });
      await migrate({ url: db.url, dir });
      const row = await ledgerRow(db, '002');
      assert.equal(row?.state, 'applied');
      assert.equal(Number(row?.statements_done), 4);
      assert.equal((await ledgerRow(db, '003'))?.state, 'applied');
      assert.deepEqual(await db.query('SELECT id FROM t2'), [{ id: 1 }], 'autocommit is back on');
      assert.equal((await migrate({ url: db.url, dir })).upToDate, true);
    } finally {
      await db.cleanup();
    }
  });

  it('leaves nothing a migration set on the session to the next one', async () => {
    const db = await createMysqlDatabase();
    try {
      const name = new URL(db.url).pathname.slice(1);
      const dir = writeMigrations(db.dir, {
        '001_before.sql': `${SEEN('seen_before')}CREATE TABLE locked (id int);\n`,
        '002_dirty.sql': `-- migrate:up
SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES';
SET time_zone = '+05:00', foreign_key_checks = 0, unique_checks = 0;
SET NAMES latin1;
LOCK TABLES locked WRITE;
INSERT INTO locked VALUES (1);
SET autocommit = 0;
INSERT INTO locked VALUES (2);
USE information_schema;
`,
        '003_after.sql': SEEN('seen_after'),
      });
      await migrate({ url: db.url, dir });
      const row = await ledgerRow(db, '002');
      assert.equal(row?.state, 'applied');
      assert.equal(Number(row?.statements_done), 8);
      assert.deepEqual(await db.query(`SELECT id FROM ${name}.locked ORDER BY id`), [{ id: 1 }, { id: 2 }]);
      const [before] = await db.query('SELECT * FROM seen_before');
      const [after] = await db.query(`SELECT * FROM ${name}.seen_after`);
      assert.deepEqual(after, before);
    } finally {
      await db.cleanup();
    }
  });

  it("sets no sql_mode of its own: the server's, as the mariadb client gets it", async () => {
    const db = await createMysqlDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        // With mysql2's default IGNORE_SPACE, function names are reserved words: this fails.
        '001_count.sql': '-- migrate:up\nCREATE TABLE count (n int);\n',
      });
      await migrate({ url: db.url, dir });
      assert.equal((await ledgerRow(db, '001'))?.state, 'applied');
    } finally {
      await db.cleanup();
    }
  });
});

describe('session state: postgres', () => {
  // As pg_dump wrote it, \restrict and \unrestrict included.
  const dump = readFileSync(path.join(DUMPS, 'pg_dump.sql'), 'utf8');
  const SEEN = (table: string) => `-- migrate:up
CREATE TABLE ${table} AS SELECT current_setting('search_path') AS search_path,
  current_setting('statement_timeout') AS statement_timeout, current_setting('client_min_messages') AS cmm,
  current_setting('check_function_bodies') AS cfb, current_setting('application_name') LIKE 'lockstep %@%' AS app,
  current_user AS who;
`;

  for (const transaction of [true, false]) {
    it(`applies a real pg_dump (transaction:${transaction}), then the next migration gets a normal session`, async () => {
      const db = await createPostgresDatabase();
      try {
        const dir = writeMigrations(db.dir, {
          '001_before.sql': SEEN('seen_before'),
          '002_dump.sql': `-- migrate:up transaction:${transaction}\n${dump}`,
          '003_after.sql': `${SEEN('seen_after')}CREATE TABLE after_dump (id int);
INSERT INTO after_dump SELECT count(*) FROM books;
`,
        });
        await migrate({ url: db.url, dir });
        const row = await ledgerRow(db, '002');
        assert.equal(row?.state, 'applied');
        assert.equal(Number(row?.statements_done), Number(row?.statement_count));
        assert.deepEqual(await db.query('SELECT id FROM public.after_dump'), [{ id: 3 }]);
        assert.deepEqual(await db.query("SELECT name FROM public.authors WHERE bio = '😀 emoji'"), [
          { name: 'Jürgen Ünicode' },
        ]);
        const [before] = await db.query('SELECT * FROM public.seen_before');
        const [after] = await db.query('SELECT * FROM public.seen_after');
        assert.deepEqual(after, before);
        assert.equal(before?.app, true);
      } finally {
        await db.cleanup();
      }
    });
  }

  it('resets role, read-only defaults and temporary tables a migration left, keeping the lock', async () => {
    const db = await createPostgresDatabase();
    try {
      await db.query('DROP ROLE IF EXISTS lockstep_nobody');
      await db.query('CREATE ROLE lockstep_nobody');
      const dir = writeMigrations(db.dir, {
        '001_dirty.sql': `-- migrate:up transaction:false
CREATE TABLE t (id int);
CREATE TEMP TABLE t2 (id int, note text);
SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;
SET ROLE lockstep_nobody;
SET search_path = nowhere;
`,
        '002_after.sql': '-- migrate:up\nCREATE TABLE t2 (id int);\nINSERT INTO t2 VALUES (1);\n',
      });
      await migrate({ url: db.url, dir });
      assert.equal((await ledgerRow(db, '001'))?.state, 'applied');
      assert.equal((await ledgerRow(db, '002'))?.state, 'applied');
      assert.deepEqual(await db.query('SELECT id FROM public.t2'), [{ id: 1 }]);
    } finally {
      await db.cleanup();
      const admin = await createPostgresDatabase();
      await admin.query('DROP ROLE IF EXISTS lockstep_nobody').catch(() => {});
      await admin.cleanup();
    }
  });
});

describe('session state: sqlite', () => {
  it('restores the pragmas a migration changed before the next one', async () => {
    const sqlite = TARGETS.find((t) => t.kind === 'sqlite');
    if (!sqlite) return;
    const db = await sqlite.create();
    try {
      const SEEN = (table: string) =>
        `-- migrate:up\nCREATE TABLE ${table} AS SELECT (SELECT foreign_keys FROM pragma_foreign_keys) AS fk, (SELECT recursive_triggers FROM pragma_recursive_triggers) AS rt;\n`;
      const dir = writeMigrations(db.dir, {
        '001_before.sql': SEEN('seen_before'),
        '002_dirty.sql': `-- migrate:up transaction:false
PRAGMA foreign_keys = OFF;
PRAGMA recursive_triggers = ON;
CREATE TABLE t (id integer);
`,
        '003_transactional.sql':
          '-- migrate:up\nPRAGMA recursive_triggers = ON;\nCREATE TABLE t3 (id integer);\n',
        '004_after.sql': SEEN('seen_after'),
      });
      await migrate({ url: db.url, dir });
      assert.equal((await ledgerRow(db, '002'))?.state, 'applied');
      assert.equal((await ledgerRow(db, '003'))?.state, 'applied');
      assert.deepEqual(
        await db.query('SELECT * FROM seen_after'),
        await db.query('SELECT * FROM seen_before'),
      );
    } finally {
      await db.cleanup();
    }
  });
});

for (const target of TARGETS) {
  describe(`ledger writes: ${target.kind}`, () => {
    for (const transaction of target.kind === 'postgres' ? [false, true] : [false]) {
      it(`never overwrites an applied row another runner committed (transaction:${transaction})`, async () => {
        const db = await target.create();
        try {
          const dir = writeMigrations(db.dir, {
            '001_first.mjs': failingModule('the attempt failed', transaction),
          });
          // Another runner (the lock was lost) commits `applied` while this one runs.
          const p = (i: number) => (db.kind === 'postgres' ? `$${i}` : '?');
          hooks.lockstepTestHook = async () => {
            await db.query(`DELETE FROM lockstep_migrations WHERE version = ${p(1)}`, ['001']);
            await db.query(
              `INSERT INTO lockstep_migrations (version, name, checksum, state, direction, statements_done, started_at, applied_by)
               VALUES (${p(1)}, 'first', 'x', 'applied', 'up', 1, ${p(2)}, 'other:1')`,
              ['001', db.kind === 'mysql' ? '2026-01-01 00:00:00' : '2026-01-01T00:00:00Z'],
            );
          };
          await assert.rejects(migrate({ url: db.url, dir }), (error) => {
            assert.ok(error instanceof LedgerConflictError, String(error));
            assert.match(error.message, /001/);
            assert.match(error.message, /other:1/);
            assert.match(error.message, /the attempt failed/);
            assert.match(
              error.message,
              transaction
                ? /attempt was rolled back/
                : /Statements 1\.\.1 of this runner's attempt were applied/,
            );
            return true;
          });
          const row = await ledgerRow(db, '001');
          assert.equal(row?.state, 'applied');
          assert.equal(row?.applied_by, 'other:1');
        } finally {
          hooks.lockstepTestHook = undefined;
          await db.cleanup();
        }
      });
    }

    for (const [what, message] of [
      ['a 100 KB error', `boom ${'é€😀x'.repeat(12_000)} end`],
      ['an error with NUL bytes', 'before\u0000after\u0000'],
    ] as const) {
      for (const transaction of target.kind === 'mysql' ? [false] : [false, true]) {
        it(`records ${what} and leaves no running row (transaction:${transaction})`, async () => {
          const db = await target.create();
          try {
            const dir = writeMigrations(db.dir, { '001_fails.mjs': failingModule(message, transaction) });
            await assert.rejects(migrate({ url: db.url, dir }), (error) => {
              assert.ok(error instanceof MigrationError, String(error));
              assert.ok(error.message.includes(message.slice(0, 50)));
              return true;
            });
            const row = await ledgerRow(db, '001');
            assert.equal(row?.state, transaction ? 'rolled_back' : 'failed');
            const stored = String(row?.error);
            assert.equal(stored.includes('\u0000'), false);
            assert.ok(
              stored.includes(message.slice(0, 50).replaceAll('\u0000', '\\0')),
              stored.slice(0, 200),
            );
            if (message.length > 60_000 && db.kind === 'mysql') {
              assert.match(stored, /… \[cut: \d+ bytes more\]$/);
              assert.ok(Buffer.byteLength(stored) <= 65_535);
            } else {
              assert.ok(stored.includes(message.slice(-20).replaceAll('\u0000', '\\0')));
            }
          } finally {
            await db.cleanup();
          }
        });
      }
    }
  });
}
