// Shared by every scenario: paths, real OS processes, unique throwaway databases, statistics.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH, '..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const LIBRARY = path.join(ROOT, 'dist/index.js');
/** Scratch space inside bench/ (gitignored), so generated migration modules resolve bench's packages. */
export const WORK = path.join(BENCH, '.work');
export const USAGE_PRELOAD = path.join(BENCH, 'lib/usage-preload.mjs');
mkdirSync(WORK, { recursive: true });

export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_ADMIN_URL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const KINDS = ['postgres', 'mysql', 'sqlite'];
export const KIND_LABEL = { postgres: 'PostgreSQL', mysql: 'MariaDB', sqlite: 'SQLite' };

const benchRequire = createRequire(path.join(BENCH, 'package.json'));
/** The bench's own pg and mysql2 (the peers use these); better-sqlite3 comes from lockstep's install. */
export const pg = benchRequire('pg');
export const mysql = benchRequire('mysql2/promise');
export const Database = benchRequire('better-sqlite3');

// ---------------------------------------------------------------------------------------------
// Time and statistics

export const now = () => performance.now();
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function median(values) {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100); null for no values. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export const round = (value, digits = 1) =>
  value === null || value === undefined ? null : Math.round(value * 10 ** digits) / 10 ** digits;

export function log(message) {
  const t = ((now() - START) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${message}\n`);
}
const START = now();

// ---------------------------------------------------------------------------------------------
// Processes

/**
 * Starts one OS process and collects its output. Resolves (never rejects) with its exit code,
 * output and timing; a process still running after `timeoutMs` is killed and marked timedOut.
 */
export function startProcess(command, args, { env = {}, cwd = WORK, timeoutMs = 60_000 } = {}) {
  const started = now();
  const child = spawn(command, args, {
    cwd,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise((resolve) => {
    child.on('error', (error) => {
      stderr += String(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: now() - started, endedAt: now() });
    });
  });
  return { child, done, started };
}

export function runProcess(command, args, options) {
  return startProcess(command, args, options).done;
}

/**
 * N processes started at the same instant (spawned back to back). Wall time runs from the first
 * spawn to the last exit.
 */
export async function race(commands, options = {}) {
  const t0 = now();
  const running = commands.map((c) => startProcess(c.command, c.args, { ...options, env: c.env }));
  const results = await Promise.all(running.map((r) => r.done));
  return { wallMs: Math.max(...results.map((r) => r.endedAt)) - t0, results };
}

/** The environment without anything that would point a tool at another database. */
function cleanEnv() {
  const env = { ...process.env };
  for (const key of ['DATABASE_URL', 'PGDATABASE', 'PGHOST', 'PGUSER', 'NODE_OPTIONS']) delete env[key];
  return env;
}

// ---------------------------------------------------------------------------------------------
// Throwaway databases: CREATE DATABASE bench_<random>, dropped after use (and at exit)

const live = new Set();

export function scratchDir(label) {
  const dir = path.join(WORK, `${label}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * A fresh, empty database of `kind`: { kind, name, url, query(sql, params), drop() }.
 * `url` is the form lockstep takes; adapters derive their own (dbmate, knex) from the fields.
 */
export async function createDatabase(kind) {
  const name = `bench_${randomBytes(5).toString('hex')}`;
  let db;
  if (kind === 'postgres') db = await createPostgres(name);
  else if (kind === 'mysql') db = await createMysql(name);
  else db = createSqlite(name);
  live.add(db);
  const drop = db.drop;
  db.drop = async () => {
    live.delete(db);
    await drop();
  };
  return db;
}

export async function dropAllDatabases() {
  for (const db of [...live]) await db.drop().catch(() => {});
}

async function createPostgres(name) {
  await pgAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  let client;
  return {
    kind: 'postgres',
    name,
    url: url.href,
    async query(sql, params) {
      if (!client) {
        client = new pg.Client({ connectionString: url.href });
        client.on('error', () => {});
        await client.connect();
      }
      return (await client.query(sql, params)).rows;
    },
    async drop() {
      await client?.end().catch(() => {});
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

async function createMysql(name) {
  await mysqlAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  let connection;
  return {
    kind: 'mysql',
    name,
    url: url.href,
    async query(sql, params) {
      if (!connection) {
        connection = await mysql.createConnection({ uri: url.href, dateStrings: true });
        connection.on('error', () => {});
      }
      const [rows] = await connection.query(sql, params);
      return Array.isArray(rows) ? rows : [];
    },
    async drop() {
      await connection?.end().catch(() => {});
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

function createSqlite(name) {
  const dir = scratchDir(`sqlite-${name}`);
  const file = path.join(dir, 'db.sqlite3');
  let handle;
  return {
    kind: 'sqlite',
    name,
    file,
    url: `sqlite://${file}`,
    async query(sql, params = []) {
      handle ??= new Database(file, { timeout: 5000 });
      const statement = handle.prepare(sql);
      if (statement.reader) return statement.all(...params);
      statement.run(...params);
      return [];
    },
    async drop() {
      handle?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs a node script with lib/usage-preload.mjs: the result also has its peak RSS (MiB) and CPU
 * time (ms), or null where the process died before writing them.
 */
export async function runNodeMeasured(args, options = {}) {
  const file = path.join(WORK, `usage-${randomBytes(6).toString('hex')}.json`);
  const run = await runProcess(process.execPath, ['--import', USAGE_PRELOAD, ...args], {
    ...options,
    env: { ...options.env, BENCH_USAGE_FILE: file },
  });
  let usage = null;
  try {
    usage = JSON.parse(readFileSync(file, 'utf8'));
    rmSync(file);
  } catch {}
  return {
    ...run,
    rssMiB: usage ? Math.round((usage.maxRSS / 1024) * 10) / 10 : null,
    cpuMs: usage ? Math.round(usage.cpuMicros / 100) / 10 : null,
  };
}

/** The server versions, for RESULTS.md. */
export async function serverVersions() {
  const pgClient = new pg.Client({ connectionString: PG_ADMIN_URL });
  await pgClient.connect();
  const pgVersion = (await pgClient.query('SHOW server_version')).rows[0].server_version;
  const pgMax = (await pgClient.query('SHOW max_connections')).rows[0].max_connections;
  await pgClient.end();
  const admin = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  const [[row]] = await admin.query('SELECT VERSION() AS v, @@max_connections AS m');
  await admin.end();
  const probe = new Database(':memory:');
  const sqliteVersion = probe.prepare('SELECT sqlite_version() AS v').get().v;
  probe.close();
  return {
    postgres: `PostgreSQL ${pgVersion} (max_connections ${pgMax})`,
    mysql: `MariaDB ${String(row.v).replace(/-MariaDB.*$/, '')} (max_connections ${row.m})`,
    sqlite: `SQLite ${sqliteVersion} (better-sqlite3)`,
  };
}
