// One uniquely named database per round (PostgreSQL, MariaDB) or one SQLite file in a temp dir,
// the counter table the migrations write to, what is there afterwards, and whether the lock is free.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { mysqlLockName } from '../../dist/drivers/mysql/lock.js';
import { openDriver } from '../../dist/drivers/registry.js';
import { ROOT } from './processes.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const pg = require('pg');
const mysql = require('mysql2/promise');
const Sqlite = require('better-sqlite3');

export const PG_ADMIN_URL = process.env.SOAK_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_ADMIN_URL = process.env.SOAK_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const LEDGER = 'lockstep_migrations';
export const LABEL = { postgres: 'PostgreSQL', mysql: 'MariaDB', sqlite: 'SQLite' };

const COUNTER_TABLE = 'CREATE TABLE soak_runs (migration varchar(32) NOT NULL, statement integer NOT NULL)';
const live = new Set();

/** A fresh database for one round: { kind, name, url, query, tables, lockFree, drop }. */
export async function createDatabase(kind, label) {
  const name = `soak_${label}_${randomBytes(3).toString('hex')}`;
  const db =
    kind === 'postgres' ? await postgres(name) : kind === 'mysql' ? await mariadb(name) : sqlite(name);
  live.add(db);
  await db.query(COUNTER_TABLE);
  const drop = db.drop;
  db.drop = async () => {
    live.delete(db);
    await drop();
  };
  /** Forget it without dropping: it is kept for an anomaly's inspection. */
  db.keep = async () => {
    live.delete(db);
    await db.close();
  };
  db.lockFree = () => lockFree(db);
  return db;
}

export async function dropAll() {
  for (const db of [...live]) await db.drop().catch(() => {});
}

async function postgres(name) {
  await pgAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.href });
  client.on('error', () => {});
  await client.connect();
  return {
    kind: 'postgres',
    name,
    url: url.href,
    where: `PostgreSQL database ${name}`,
    query: async (sql, params) => (await client.query(sql, params)).rows,
    tables: async () =>
      (await client.query("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")).rows.map(
        (r) => r.t,
      ),
    /** The advisory locks granted in this database (lockstep's is the only kind used here). */
    heldLocks: async () =>
      Number(
        (
          await client.query(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
          )
        ).rows[0].n,
      ),
    /** The backend holding lockstep's lock, if its client is on one of `ports`; else null. */
    holderBackend: async (ports) =>
      (
        await client.query(
          "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND a.client_port = ANY($1::int[])",
          [ports],
        )
      ).rows[0]?.pid ?? null,
    terminate: async (pid) => (await client.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok,
    close: () => client.end().catch(() => {}),
    async drop() {
      await client.end().catch(() => {});
      await pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function pgAdmin(sql) {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function mariadb(name) {
  await mysqlAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  const connection = await mysql.createConnection({ uri: url.href, dateStrings: true });
  connection.on('error', () => {});
  const query = async (sql, params) => {
    const [rows] = await connection.query(sql, params);
    return Array.isArray(rows) ? rows : [];
  };
  const lockName = mysqlLockName(name, LEDGER);
  return {
    kind: 'mysql',
    name,
    url: url.href,
    where: `MariaDB database ${name}`,
    query,
    tables: async () =>
      (
        await query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?', [name])
      ).map((r) => r.t),
    heldLocks: async () => ((await query('SELECT IS_USED_LOCK(?) AS c', [lockName]))[0].c === null ? 0 : 1),
    /** The connection holding lockstep's lock, if its client is on one of `ports`; else null. */
    holderBackend: async (ports) => {
      const [row] = await query(
        'SELECT ID AS id, HOST AS host FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)',
        [lockName],
      );
      return row && ports.includes(Number(String(row.host).split(':').pop())) ? row.id : null;
    },
    terminate: async (id) => {
      try {
        await query(`KILL CONNECTION ${Number(id)}`);
        return true;
      } catch (error) {
        if (error.code === 'ER_NO_SUCH_THREAD') return false;
        throw error;
      }
    },
    close: () => connection.end().catch(() => {}),
    async drop() {
      await connection.end().catch(() => {});
      await mysqlAdmin(`DROP DATABASE IF EXISTS ${name}`);
    },
  };
}

async function mysqlAdmin(sql) {
  const admin = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

function sqlite(name) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const file = path.join(dir, 'db.sqlite3');
  const handle = new Sqlite(file, { timeout: 10_000 });
  const query = async (sql, params = []) => {
    const statement = handle.prepare(sql);
    if (statement.reader) return statement.all(...params);
    statement.run(...params);
    return [];
  };
  return {
    kind: 'sqlite',
    name,
    url: `sqlite:${file}`,
    where: `SQLite file ${file}`,
    dir,
    query,
    tables: async () =>
      (await query("SELECT name AS t FROM sqlite_master WHERE type = 'table'")).map((r) => r.t),
    heldLocks: async () => 0,
    close: async () => handle.close(),
    async drop() {
      handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether the lock is free: the server's own view (pg_locks, IS_USED_LOCK), and a new runner's
 * (lockstep's driver takes it at once). Polled for `withinMs`: a dead client's session ends a
 * moment after the process (Postgres checks the connection every 250 ms).
 */
async function lockFree(db, withinMs = 2000) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const held = await db.heldLocks();
    const taken = held === 0 && (await newRunnerTakesLock(db));
    if (taken) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function newRunnerTakesLock(db) {
  const driver = await openDriver(db.url, { table: LEDGER, runnerId: `soak-probe:${process.pid}` });
  const session = await driver.connect();
  try {
    const got = await session.lock.tryLock();
    if (got) await session.lock.release();
    return got;
  } finally {
    await session.connection.close();
  }
}
