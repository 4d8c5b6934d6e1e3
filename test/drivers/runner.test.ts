/** The runner through the library API, in-process, against the real databases. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createAsyncMigrator } from '../../src/async/index.js';
import {
  AsyncRequiredError,
  createMigrator,
  DirtyStateError,
  type LockstepEvent,
  MigrationError,
  migrate,
} from '../../src/index.js';
import { createMysqlDatabase, createPostgresDatabase, TARGETS, writeMigrations } from '../helpers/targets.js';

const MIGRATIONS = {
  '001_users.sql': `-- migrate:up
CREATE TABLE users (id integer PRIMARY KEY, email text);
-- migrate:down
DROP TABLE users;
`,
  '002_posts.sql': `-- migrate:up
CREATE TABLE posts (id integer PRIMARY KEY, user_id integer);
-- migrate:down
DROP TABLE posts;
`,
};

for (const target of TARGETS) {
  describe(`runner: ${target.kind}`, () => {
    it('on the no-op path makes one query and takes no lock', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        const first = await migrate({ url: db.url, dir });
        assert.deepEqual(
          first.applied.map((m) => m.version),
          ['001', '002'],
        );
        const events: LockstepEvent[] = [];
        const again = await migrate({ url: db.url, dir, on: (e) => events.push(e) });
        assert.equal(again.upToDate, true);
        assert.deepEqual(
          events.filter((e) => e.type === 'query').length,
          1,
          'one round trip besides connecting',
        );
        assert.equal(events.filter((e) => e.type === 'lock-acquired').length, 0, 'no lock taken');
      } finally {
        await db.cleanup();
      }
    });

    it('a migration that requires a long-running migration waits for it to be completed', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          ...MIGRATIONS,
          '003_needs_backfill.sql': `-- migrate:up requires:0001_backfill
CREATE TABLE after_backfill (id integer);
`,
        });
        const asyncDir = writeMigrations(
          db.dir,
          {
            '0001_backfill.sql': `-- async:description fill users
-- async:operation
INSERT INTO users (id, email) VALUES (1, 'a@example.com');
-- async:rollback
DELETE FROM users WHERE id = 1;
`,
          },
          'async',
        );
        const refused = await migrate({ url: db.url, dir }).then(
          () => assert.fail('expected a refusal'),
          (e: unknown) => e,
        );
        assert.ok(refused instanceof AsyncRequiredError, String(refused));
        assert.equal(refused.exitCode, 6);
        assert.match(
          refused.message,
          /migration 003 \(\S*003_needs_backfill\.sql\) requires long-running migration 0001_backfill \(not_started\) to be completed first\. Nothing was changed\.\n {2}fix: lockstep async trigger 0001_backfill, then lockstep up again/,
        );
        assert.equal(
          (await createMigrator({ url: db.url, dir }).status()).ledgerExists,
          false,
          'nothing applied',
        );

        // The schema it needs comes first, in a deploy without 003; then the backfill; then 003.
        await migrate({ url: db.url, dir: writeMigrations(db.dir, MIGRATIONS, 'first') });
        const backfill = createAsyncMigrator({ url: db.url, dir: asyncDir });
        await backfill.trigger('0001_backfill');
        await assert.rejects(migrate({ url: db.url, dir }), /0001_backfill \(starting, 0%\)/);
        await backfill.wait('0001_backfill');
        const applied = await migrate({ url: db.url, dir });
        assert.deepEqual(
          applied.applied.map((m) => m.version),
          ['003'],
        );
      } finally {
        await db.cleanup();
      }
    });

    it('a runner that waited reports what was applied and by whom', async () => {
      const db = await target.create();
      try {
        // The first is slow: the waiter reads the ledger (finding nothing applied) while it runs.
        const dir = writeMigrations(db.dir, {
          '000_slow.mjs': 'export async function up() { await new Promise((r) => setTimeout(r, 300)); }\n',
          ...MIGRATIONS,
        });
        const [a, b] = await Promise.all([migrate({ url: db.url, dir }), migrate({ url: db.url, dir })]);
        const [applier, waiter] = a.applied.length > 0 ? [a, b] : [b, a];
        assert.equal(applier.applied.length, 3);
        assert.equal(waiter.applied.length, 0);
        assert.equal(waiter.upToDate, true);
        assert.deepEqual(
          waiter.appliedByOthers.map((m) => m.version),
          ['000', '001', '002'],
        );
        assert.match(waiter.appliedByOthers[0]?.by ?? '', /:\d+$/);
      } finally {
        await db.cleanup();
      }
    });

    it('down rolls back newest first, and status shows the result', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        const migrator = createMigrator({ url: db.url, dir });
        await migrator.up();
        const down = await migrator.down({ steps: 2 });
        assert.deepEqual(
          down.rolledBack.map((m) => m.version),
          ['002', '001'],
        );
        const status = await migrator.status();
        assert.deepEqual(
          status.migrations.map((m) => m.status),
          ['pending', 'pending'],
        );
        assert.equal(status.lockHolder, null);
      } finally {
        await db.cleanup();
      }
    });

    it('maps a failing statement to its line in the migration file', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_bad.sql': `-- migrate:up
CREATE TABLE ok_table (id integer);

INSERT INTO ok_table (id)
  VALUES (1);
INSERT INTO ok_table (id)
  SELECT id
    FROM missing_table;
`,
        });
        const error = await migrate({ url: db.url, dir }).catch((e: unknown) => e);
        assert.ok(error instanceof MigrationError, String(error));
        assert.equal(error.statementIndex, 2);
        assert.equal(error.line, target.kind === 'postgres' ? 8 : 6);
        if (target.kind === 'mysql') {
          // DDL commits implicitly: the migration ran statement by statement and says so.
          assert.equal(error.stateLeft, 'partially applied');
        } else {
          assert.equal(error.stateLeft, 'rolled back');
          await assert.rejects(db.query('SELECT * FROM ok_table'), 'the migration was rolled back');
        }
      } finally {
        await db.cleanup();
      }
    });
  });
}

describe('runner: postgres DDL lock_timeout', () => {
  const setup = async () => {
    const db = await createPostgresDatabase();
    await db.query('CREATE TABLE busy (id integer)');
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE');
    const dir = writeMigrations(db.dir, {
      '001_alter.sql': `-- migrate:up
ALTER TABLE busy ADD COLUMN note text;
`,
    });
    return { db, blocker, dir };
  };

  it('retries with backoff while a table lock is held, then succeeds', async () => {
    const { db, blocker, dir } = await setup();
    try {
      const events: LockstepEvent[] = [];
      setTimeout(() => void blocker.query('COMMIT'), 700);
      const result = await migrate({
        url: db.url,
        dir,
        ddlLockTimeout: 100,
        ddlLockRetries: 20,
        on: (e) => events.push(e),
      });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001'],
      );
      assert.ok(events.filter((e) => e.type === 'lock-retry').length >= 1, 'retried at least once');
    } finally {
      await blocker.end();
      await db.cleanup();
    }
  });

  it('gives up after the retries with a lock_timeout error and nothing applied', async () => {
    const { db, blocker, dir } = await setup();
    try {
      const error = await migrate({ url: db.url, dir, ddlLockTimeout: 50, ddlLockRetries: 1 }).catch(
        (e: unknown) => e,
      );
      assert.ok(error instanceof MigrationError, String(error));
      assert.equal(error.dbCode, '55P03');
      assert.equal(error.stateLeft, 'rolled back');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
      await db.cleanup();
    }
  });
});

describe('runner: postgres failed CREATE INDEX CONCURRENTLY', () => {
  it('names the INVALID index it left, in the failure and in the dirty-state refusal', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_dupes.sql': `-- migrate:up
CREATE TABLE dupes (v integer);
INSERT INTO dupes VALUES (1), (1);
`,
        '002_unique.sql': `-- migrate:up transaction:false
CREATE UNIQUE INDEX CONCURRENTLY dupes_v ON dupes (v);
`,
      });
      const failure = await migrate({ url: db.url, dir }).catch((e: unknown) => e);
      assert.ok(failure instanceof MigrationError, String(failure));
      assert.equal(failure.stateLeft, 'partially applied');
      assert.match(
        failure.fix ?? '',
        /INVALID index dupes_v \(drop it with DROP INDEX CONCURRENTLY dupes_v\)/,
      );
      const refusal = await migrate({ url: db.url, dir }).catch((e: unknown) => e);
      assert.ok(refusal instanceof DirtyStateError, String(refusal));
      assert.deepEqual(refusal.leftovers, [
        'INVALID index dupes_v (drop it with DROP INDEX CONCURRENTLY dupes_v)',
      ]);
      assert.match(refusal.message, /002_unique\.sql:2/);
    } finally {
      await db.cleanup();
    }
  });
});

describe('runner: postgres session', () => {
  it('keeps a schema-qualified ledger, and runs with keepalives and a connection check', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_settings.mjs': `export async function up(ctx) {
  for (const name of ['tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'client_connection_check_interval']) {
    const { rows } = await ctx.query('SELECT current_setting($1) AS value', [name]);
    ctx.log(name + '=' + rows[0].value);
  }
}
`,
      });
      const logs: string[] = [];
      await migrate({
        url: db.url,
        dir,
        table: 'deploy.schema_history',
        on: (e) => {
          if (e.type === 'log') logs.push(e.message);
        },
      });
      assert.deepEqual(logs, [
        'tcp_keepalives_idle=10',
        'tcp_keepalives_interval=5',
        'tcp_keepalives_count=3',
        'client_connection_check_interval=250ms',
      ]);
      const rows = await db.query('SELECT version, state FROM deploy.schema_history');
      assert.deepEqual(rows, [{ version: '001', state: 'applied' }]);
    } finally {
      await db.cleanup();
    }
  });
});

describe('runner: mysql', () => {
  it('runs a migration of DML statements in one transaction with its ledger row', async () => {
    const db = await createMysqlDatabase();
    try {
      await db.query('CREATE TABLE accounts (id integer PRIMARY KEY, balance integer)');
      const dir = writeMigrations(db.dir, {
        '001_seed.sql': `-- migrate:up
INSERT INTO accounts VALUES (1, 100);
INSERT INTO accounts VALUES (2, 100);
UPDATE accounts SET balance = balance - 10 WHERE id = 1;
INSERT INTO accounts VALUES (1, 0);
`,
      });
      const events: LockstepEvent[] = [];
      const error = await migrate({ url: db.url, dir, on: (e) => events.push(e) }).catch((e: unknown) => e);
      assert.ok(error instanceof MigrationError, String(error));
      assert.equal(error.stateLeft, 'rolled back');
      assert.equal(error.line, 5);
      assert.deepEqual(await db.query('SELECT * FROM accounts'), [], 'the inserts were rolled back');
      assert.ok(events.some((e) => e.type === 'migrating' && e.transactional));
    } finally {
      await db.cleanup();
    }
  });

  it("maps a syntax error's line inside a statement to the file", async () => {
    const db = await createMysqlDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_typo.sql': `-- migrate:up
CREATE TABLE t (id integer);
CREATE TABLE u (
  id integer,
  name varchar(10) NOT NUL
);
`,
      });
      const error = await migrate({ url: db.url, dir }).catch((e: unknown) => e);
      assert.ok(error instanceof MigrationError, String(error));
      const lineInStatement = Number(/at line (\d+)$/.exec(error.dbMessage)?.[1]);
      assert.ok(lineInStatement > 1, error.dbMessage);
      assert.equal(error.line, 3 + lineInStatement - 1, 'the statement starts at line 3 of the file');
      assert.equal(error.stateLeft, 'partially applied');
      assert.match(error.fix ?? '', /statements 1\.\.1 were applied/);
    } finally {
      await db.cleanup();
    }
  });
});
