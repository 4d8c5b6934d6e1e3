/**
 * migrate() and the long-running API on the application's own client or pool: one connection is
 * checked out for the lock and the work, and handed back as it was found (settings, database,
 * no lock, no transaction); the caller's client is never ended.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import mysqlCallback from 'mysql2';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createAsyncMigrator } from '../../src/async/index.js';
import { ConfigError, createMigrator, MigrationError, migrate } from '../../src/index.js';
import { readTrace, traceTableSql, writeDefinitions } from '../helpers/async.js';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  createSqliteDatabase,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const MIGRATIONS = {
  '001_first.sql': '-- migrate:up\nCREATE TABLE first_table (id integer);\n',
  // A migration that changes its session: lockstep settles it, and the caller gets its own back.
  '002_settings.sql':
    "-- migrate:up\nSET lock_timeout = '3s';\nCREATE TABLE second_table (id integer);\nCREATE TABLE ran_on AS SELECT pg_backend_pid() AS pid;\n",
};

/** Which connection (server pid / connection id) the migrations ran on: the caller's, not one of lockstep's own. */
async function ranOn(db: TestDatabase): Promise<number> {
  return Number((await db.query('SELECT pid FROM ran_on'))[0]?.pid);
}

/** Counts calls of `method` on `handle` from now on: which handle a run used. */
function countCalls(handle: object, method: string): { readonly calls: number } {
  const target = handle as Record<string, (...args: unknown[]) => unknown>;
  const original = target[method] as (...args: unknown[]) => unknown;
  let calls = 0;
  target[method] = function (this: unknown, ...args: unknown[]) {
    calls++;
    return original.apply(this, args);
  };
  return {
    get calls() {
      return calls;
    },
  };
}
const ASYNC_DEFINITION =
  "-- async:description a\n-- async:operation\nINSERT INTO trace (name, ev) VALUES ('a', 'op1');\n-- async:rollback\nDELETE FROM trace;\n";
const FAILING = {
  '003_fails.sql': '-- migrate:up\nCREATE TABLE third_table (id integer);\nSELECT * FROM no_such_table;\n',
};

/** The session as the application left it: what migrating through it must not change. */
async function pgState(client: pg.Client | pg.PoolClient) {
  const { rows } = await client.query(
    `SELECT current_setting('application_name') AS app, current_setting('search_path') AS search_path,
            current_setting('statement_timeout') AS statement_timeout, current_setting('lock_timeout') AS lock_timeout,
            current_setting('client_connection_check_interval', true) AS check_interval,
            current_database() AS db, current_user AS "user", pg_backend_pid() AS pid,
            (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
            ARRAY(SELECT pg_listening_channels()) AS channels`,
  );
  const status = (client as unknown as { getTransactionStatus(): string }).getTransactionStatus();
  return { ...rows[0], status };
}

async function pgSetUp(client: pg.Client | pg.PoolClient): Promise<void> {
  await client.query("SET search_path = app, public; SET statement_timeout = '7s'; LISTEN app_channel");
  // A named prepared statement the client caches: still usable after a run reset the session.
  await client.query({ name: 'app_query', text: 'SELECT $1::int AS n', values: [1] });
}

/** pg-pool's end() resolves before its connections have closed: the drop that follows may cut them. */
function newPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

async function pgClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** A fresh database and the application's handle on it; both gone afterwards. */
async function withPostgres<Handle extends { end(): Promise<void> }>(
  open: (url: string) => Handle | Promise<Handle>,
  work: (db: TestDatabase, handle: Handle) => Promise<void>,
): Promise<void> {
  const db = await createPostgresDatabase();
  const handle = await open(db.url);
  try {
    await work(db, handle);
  } finally {
    await handle.end();
    await db.cleanup();
  }
}

async function ledger(db: TestDatabase): Promise<string[]> {
  const rows = await db.query('SELECT version, state FROM lockstep_migrations ORDER BY version');
  return rows.map((r) => `${r.version}:${r.state}`);
}

describe("the caller's connection: postgres", () => {
  it('pg.Client: migrates on it, leaves it as it was, never ends it; a failing run too', () =>
    withPostgres(pgClient, async (db, client) => {
      await pgSetUp(client);
      const before = await pgState(client);
      const dir = writeMigrations(db.dir, MIGRATIONS);
      const result = await migrate({ client, dir, cwd: db.dir });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001', '002'],
      );
      assert.deepEqual(await pgState(client), before);
      assert.equal(await ranOn(db), before.pid, "the migrations ran on the caller's client");
      assert.equal(
        (await client.query({ name: 'app_query', text: 'SELECT $1::int AS n', values: [2] })).rows[0].n,
        2,
      );

      writeMigrations(db.dir, FAILING);
      await assert.rejects(migrate({ client, dir, cwd: db.dir }), MigrationError);
      assert.deepEqual(await pgState(client), before);
      assert.deepEqual(await ledger(db), ['001:applied', '002:applied', '003:rolled_back']);
      assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'still usable');
    }));

  it('pg.Pool: one connection checked out and returned clean; the pool keeps its size', () =>
    withPostgres(
      (url) => newPool(url, 2),
      async (db, pool) => {
        const warm = await pool.connect();
        await pgSetUp(warm);
        const before = await pgState(warm);
        warm.release();
        const dir = writeMigrations(db.dir, { ...MIGRATIONS, ...FAILING });
        await assert.rejects(migrate({ client: pool, dir, cwd: db.dir }), MigrationError);
        assert.deepEqual(await ledger(db), ['001:applied', '002:applied', '003:rolled_back']);
        assert.equal(await ranOn(db), before.pid, "the migrations ran on the pool's connection");
        assert.equal(pool.totalCount, 1, 'the connection went back to the pool');
        assert.equal(pool.idleCount, 1);
        const again = await pool.connect();
        try {
          assert.deepEqual(await pgState(again), before);
        } finally {
          again.release();
        }
        const status = await createMigrator({ client: pool, dir, cwd: db.dir }).status();
        assert.deepEqual(
          status.migrations.filter((m) => m.status !== 'applied').map((m) => m.version),
          ['003'],
        );
        assert.equal(pool.totalCount, 1);
      },
    ));

  it("nothing pending: one query on the caller's pool, as on a connection of lockstep's own", () =>
    withPostgres(
      (url) => newPool(url, 1),
      async (db, pool) => {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        await migrate({ client: pool, dir, cwd: db.dir });
        const sent: string[] = [];
        const query = pg.Client.prototype.query;
        pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
          sent.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text));
          return (query as (...a: unknown[]) => unknown).apply(this, args);
        } as typeof query;
        const checkouts = countCalls(pool, 'connect');
        try {
          assert.equal((await migrate({ client: pool, dir, cwd: db.dir })).upToDate, true);
        } finally {
          pg.Client.prototype.query = query;
        }
        assert.equal(checkouts.calls, 1, "the run checked its connection out of the caller's pool");
        assert.equal(sent.length, 1, sent.join('\n'));
        assert.match(sent[0] ?? '', /^SELECT version/);
      },
    ));

  it('10 concurrent migrate() on one pg.Pool of size 2 apply each migration exactly once', () =>
    withPostgres(
      (url) => newPool(url, 2),
      async (db, pool) => {
        await db.query('CREATE TABLE applied (version text)');
        const dir = writeMigrations(db.dir, {
          '001_a.sql': "-- migrate:up\nINSERT INTO applied VALUES ('001');\n",
          '002_b.sql': "-- migrate:up\nINSERT INTO applied VALUES ('002');\n",
          '003_c.sql': "-- migrate:up\nINSERT INTO applied VALUES ('003');\n",
        });
        const results = await Promise.all(
          Array.from({ length: 10 }, () => migrate({ client: pool, dir, cwd: db.dir, lockTimeout: '30s' })),
        );
        assert.equal(
          results.reduce((n, r) => n + r.applied.length, 0),
          3,
        );
        const rows = await db.query('SELECT version FROM applied ORDER BY version');
        assert.deepEqual(
          rows.map((r) => r.version),
          ['001', '002', '003'],
        );
        assert.ok(pool.totalCount <= 2);
      },
    ));

  it('names the target without the password; scrubs it from messages', () =>
    // Trust authentication: the password is never asked for, only carried in the settings.
    withPostgres(
      (url) => newPool(url.replace('postgres@', 'postgres:s3cret-pw@'), 1),
      async (db, pool) => {
        const migrator = createMigrator({ client: pool, dir: writeMigrations(db.dir, FAILING), cwd: db.dir });
        assert.ok(migrator.target.includes('127.0.0.1'));
        assert.ok(!migrator.target.includes('s3cret-pw'));
        const error = await migrator.up().then(
          () => assert.fail('expected a failure'),
          (e: Error) => e,
        );
        assert.ok(!JSON.stringify({ ...error, message: error.message }).includes('s3cret-pw'));
      },
    ));

  it('a migration that runs out of time on a pg.Client is cancelled from a connection of its own', () =>
    withPostgres(pgClient, async (db, client) => {
      await pgSetUp(client);
      const before = await pgState(client);
      const dir = writeMigrations(db.dir, { '001_slow.sql': '-- migrate:up\nSELECT pg_sleep(20);\n' });
      await assert.rejects(migrate({ client, dir, cwd: db.dir, migrationTimeout: '300ms' }), /timeout|time/i);
      assert.deepEqual(await pgState(client), before);
    }));

  it("the long-running API through the caller's pool (even of one connection): status and trigger", () =>
    withPostgres(
      (url) => newPool(url, 1),
      async (db, pool) => {
        await db.query(traceTableSql('postgres'));
        const dir = writeDefinitions(db.dir, {
          'a.sql': ASYNC_DEFINITION,
        });
        const migrator = createAsyncMigrator({ client: pool, dir, cwd: db.dir, pollInterval: 50 });
        const checkouts = countCalls(pool, 'connect');
        assert.equal((await migrator.status()).runs[0]?.state, 'not_started');
        assert.equal(checkouts.calls, 1, "status ran on the caller's pool");
        await migrator.trigger('a');
        assert.equal((await migrator.wait('a')).state, 'completed');
        assert.deepEqual(await readTrace(db), ['a:op1']);
        assert.equal((await migrator.status()).runs[0]?.state, 'completed');
        assert.equal(pool.totalCount, pool.idleCount, 'every connection went back');
      },
    ));

  it("the long-running API through the caller's pg.Client: trigger and wait, the client left as it was", () =>
    withPostgres(pgClient, async (db, client) => {
      await db.query(traceTableSql('postgres'));
      await pgSetUp(client);
      const before = await pgState(client);
      const dir = writeDefinitions(db.dir, { 'a.sql': ASYNC_DEFINITION });
      const migrator = createAsyncMigrator({ client, dir, cwd: db.dir, pollInterval: 50 });
      const sent = countCalls(client, 'query');
      await migrator.trigger('a');
      assert.ok(sent.calls > 0, "the trigger ran on the caller's client");
      assert.equal((await migrator.wait('a')).state, 'completed');
      assert.deepEqual(await readTrace(db), ['a:op1']);
      assert.deepEqual(await pgState(client), before);
    }));
});

async function mysqlState(connection: mysql.Connection | mysql.PoolConnection) {
  const [rows] = await connection.query(
    `SELECT @@SESSION.sql_mode AS sql_mode, @@SESSION.time_zone AS tz, @@SESSION.autocommit AS ac,
            @@SESSION.lock_wait_timeout AS lwt, @@SESSION.foreign_key_checks AS fk, DATABASE() AS db,
            CONNECTION_ID() AS id, @@in_transaction AS tx,
            IS_USED_LOCK(CONCAT('lockstep:', DATABASE(), '.lockstep_migrations')) AS lock_holder`,
  );
  return (rows as Record<string, unknown>[])[0];
}

const MYSQL_MIGRATIONS = {
  '001_first.sql': '-- migrate:up\nCREATE TABLE first_table (id integer);\n',
  '002_settings.sql':
    "-- migrate:up\nSET foreign_key_checks = 0;\nSET time_zone = '+05:00';\nCREATE TABLE second_table (id integer);\nCREATE TABLE ran_on AS SELECT CONNECTION_ID() AS pid;\n",
};

/** Transactional on MySQL too (no DDL): rolled back. */
const MYSQL_FAILING = {
  '003_fails.sql': '-- migrate:up\nINSERT INTO first_table VALUES (1);\nSELECT * FROM no_such_table;\n',
};

describe("the caller's connection: mysql", () => {
  it('a promise connection and a callback pool: left as they were; a failing run too', async () => {
    const db = await createMysqlDatabase();
    const connection = await mysql.createConnection({ uri: db.url });
    const pool = mysqlCallback.createPool({ uri: db.url, connectionLimit: 2 });
    try {
      await connection.query(
        "SET SESSION sql_mode = 'ANSI_QUOTES', SESSION time_zone = '+02:00', SESSION lock_wait_timeout = 77",
      );
      const before = await mysqlState(connection);
      const dir = writeMigrations(db.dir, MYSQL_MIGRATIONS);
      assert.equal((await migrate({ client: connection, dir, cwd: db.dir })).applied.length, 2);
      assert.deepEqual(await mysqlState(connection), before);
      assert.equal(await ranOn(db), Number(before?.id), "the migrations ran on the caller's connection");
      writeMigrations(db.dir, MYSQL_FAILING);
      await assert.rejects(migrate({ client: connection, dir, cwd: db.dir }), MigrationError);
      assert.deepEqual(await mysqlState(connection), before);

      const promisePool = pool.promise();
      const warm = await promisePool.getConnection();
      const poolBefore = await mysqlState(warm);
      warm.release();
      const checkouts = countCalls(pool, 'getConnection');
      // Within 10 s of its failure a migration is not retried: this run fails without running it.
      await assert.rejects(migrate({ client: pool, dir, cwd: db.dir }), /just failed/);
      assert.equal(checkouts.calls, 1, "the run checked its connection out of the caller's pool");
      const again = await promisePool.getConnection();
      try {
        assert.deepEqual(await mysqlState(again), poolBefore, 'the same connection, as it was');
      } finally {
        again.release();
      }
      const status = await createMigrator({ client: promisePool, dir, cwd: db.dir }).status();
      assert.deepEqual(
        status.migrations.map((m) => m.status),
        ['applied', 'applied', 'pending'],
      );
    } finally {
      await connection.end();
      await pool.promise().end();
      await db.cleanup();
    }
  });
});

describe("the caller's connection: sqlite", () => {
  it('a better-sqlite3 Database: migrated through, pragmas as they were, still open', async () => {
    const db = await createSqliteDatabase();
    const database = new BetterSqlite3(path.join(db.dir, 'test.db'));
    try {
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 1234');
      const state = () => ({
        fk: database.pragma('foreign_keys', { simple: true }),
        busy: database.pragma('busy_timeout', { simple: true }),
        tx: database.inTransaction,
        open: database.open,
      });
      const before = state();
      const dir = writeMigrations(db.dir, {
        '001_first.sql': '-- migrate:up\nCREATE TABLE first_table (id integer);\n',
        '002_pragma.sql':
          '-- migrate:up transaction:false\nPRAGMA foreign_keys = OFF;\nCREATE TABLE second_table (id integer);\n',
        ...FAILING,
      });
      const prepared = countCalls(database, 'prepare');
      await assert.rejects(migrate({ client: database, dir, cwd: db.dir }), MigrationError);
      assert.ok(prepared.calls > 0, "the migrations ran on the caller's Database");
      assert.deepEqual(state(), before);
      assert.deepEqual(await ledger(db), ['001:applied', '002:applied', '003:rolled_back']);
      assert.equal((database.prepare('SELECT count(*) AS n FROM first_table').get() as { n: number }).n, 0);
    } finally {
      database.close();
      await db.cleanup();
    }
  });
});

describe("the caller's connection: options", () => {
  it('names the target from the settings, never with the password', () => {
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: 5433,
      user: 'app',
      password: 'pa55-word',
      database: 'shop',
    });
    const migrator = createMigrator({ client: pool });
    assert.match(migrator.target, /^postgres:\/\/app:\*\*\*@127\.0\.0\.1:5433\/shop$/);
    const connection = mysqlCallback.createPool({
      host: 'db',
      user: 'root',
      password: 'pa55-word',
      database: 'shop',
    });
    assert.equal(createMigrator({ client: connection }).target, 'mysql://root:***@db:3306/shop');
    void connection.end(() => {});
    void pool.end();
  });

  it('refuses what is no client, and url with client', () => {
    assert.throws(() => createMigrator({ client: { query() {} } }), ConfigError);
    assert.throws(() => createMigrator({ client: new Date() }), /pg.Pool or pg.Client/);
    assert.throws(
      () => createMigrator({ client: new pg.Pool(), url: 'postgres://localhost/x' }),
      /either url or client/,
    );
  });
});
