// The tools side by side. Each adapter knows three things: how to write a migration definition
// (lib/migrations.mjs) in the tool's own format, how to start the tool's own entry point as an
// OS process, and (for libraries) how to call it in-process.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runPeer } from './peer-runners.mjs';
import { BENCH, CLI, LIBRARY, pg, ROOT } from './shared.mjs';

const BIN = {
  dbmate: path.join(BENCH, 'node_modules/@dbmate/linux-x64/bin/dbmate'),
  knex: path.join(BENCH, 'node_modules/knex/bin/cli.js'),
  nodePgMigrate: path.join(BENCH, 'node_modules/node-pg-migrate/bin/node-pg-migrate.js'),
  knexfile: path.join(BENCH, 'workers/knexfile.cjs'),
  kysely: path.join(BENCH, 'workers/kysely.mjs'),
  umzug: path.join(BENCH, 'workers/umzug.mjs'),
};

const js = (value) => JSON.stringify(value);
const fileName = (m, ext) => `${m.version}_${m.name}.${ext}`;

function writeAll(dir, migrations, ext, render) {
  for (const m of migrations) writeFileSync(path.join(dir, fileName(m, ext)), render(m));
}

/** dbmate's format, which lockstep reads unchanged. */
function dbmateSql(m) {
  const marker = m.transaction ? '-- migrate:up' : '-- migrate:up transaction:false';
  return `${marker}\n${m.up.map((s) => `${s};`).join('\n')}\n\n-- migrate:down\n`;
}

function version(pkg) {
  return JSON.parse(readFileSync(path.join(BENCH, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

/** What every peer process gets: which database, and where its migrations are. */
function peerEnv(db, dir) {
  return {
    BENCH_DB_KIND: db.kind,
    BENCH_DB_URL: db.url,
    BENCH_DB_FILE: db.file ?? '',
    BENCH_MIGRATIONS_DIR: dir,
  };
}

export const lockstep = {
  id: 'lockstep',
  label: 'lockstep',
  version: () => JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
  entry: 'CLI `lockstep up` (node dist/cli/main.js)',
  supports: () => true,
  nonTransactional: 'yes (`-- migrate:up transaction:false`)',
  lock: 'Postgres session advisory lock (pg_try_advisory_lock + LISTEN/NOTIFY); MariaDB GET_LOCK; SQLite write lock on a lock file; on the session that runs the work',
  write: (dir, migrations) => writeAll(dir, migrations, 'sql', dbmateSql),
  command: (db, dir, op = 'up') => ({
    command: process.execPath,
    args: [CLI, op, '--url', db.url, '--dir', dir, ...(op === 'up' ? ['--json', '-q'] : [])],
  }),
  /** In-process: the library's migrate(), which opens and closes its own session per call. */
  async inProcess(db, dir) {
    const { migrate } = await import(LIBRARY);
    return (on) => migrate({ url: db.url, dir, on });
  },
  /**
   * In-process on the application's own pg.Pool (the `client` option), its connection already
   * open: what a booting worker that has a pool pays. `close()` ends the pool.
   */
  async inProcessWithPool(db, dir) {
    const { migrate } = await import(LIBRARY);
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const call = (on) => migrate({ client: pool, dir, on });
    return Object.assign(call, { close: () => pool.end() });
  },
  ledgerRows: async (db) =>
    Number(
      (await db.query("SELECT COUNT(*) AS n FROM lockstep_migrations WHERE state = 'applied'"))[0]?.n ?? 0,
    ),
};

export const dbmate = {
  id: 'dbmate',
  label: 'dbmate',
  version: () => (existsSync(BIN.dbmate) ? version('@dbmate/linux-x64') : 'not installed'),
  entry: 'the Go binary `dbmate up` (npm package @dbmate/linux-x64, which the `dbmate` package wraps)',
  supports: () =>
    existsSync(BIN.dbmate)
      ? true
      : 'not installed: the registry serves its binary package for linux-x64 only',
  nonTransactional: 'yes (`-- migrate:up transaction:false`)',
  lock: 'none',
  write: (dir, migrations) => writeAll(dir, migrations, 'sql', dbmateSql),
  command(db, dir, op = 'up') {
    let url = db.url;
    if (db.kind === 'postgres') url = `${db.url}?sslmode=disable`;
    if (db.kind === 'sqlite') url = `sqlite:${db.file}`;
    return { command: BIN.dbmate, args: ['--no-dump-schema', '-u', url, '-d', dir, op] };
  },
  inProcess: null,
  ledgerRows: async (db) => Number((await db.query('SELECT COUNT(*) AS n FROM schema_migrations'))[0].n),
};

export const knex = {
  id: 'knex',
  label: 'knex',
  version: () => version('knex'),
  entry: 'CLI `knex migrate:latest` (node knex/bin/cli.js, knexfile bench/workers/knexfile.cjs)',
  supports: () => true,
  nonTransactional: 'yes (`exports.config = { transaction: false }`)',
  lock: 'a row in knex_migrations_lock (UPDATE … SET is_locked = 1): a runner that finds it locked fails',
  write: (dir, migrations) =>
    writeAll(dir, migrations, 'cjs', (m) =>
      [
        m.transaction ? '' : 'exports.config = { transaction: false };\n',
        'exports.up = async (knex) => {\n',
        ...m.up.map((s) => `  await knex.raw(${js(s)});\n`),
        '};\n',
        'exports.down = async () => {};\n',
      ].join(''),
    ),
  command: (db, dir, op = 'up') => ({
    command: process.execPath,
    args: [BIN.knex, op === 'up' ? 'migrate:latest' : 'migrate:status', '--knexfile', BIN.knexfile],
    env: peerEnv(db, dir),
  }),
  inProcess: async (db, dir) => () => runPeer('knex', { kind: db.kind, url: db.url, file: db.file, dir }),
  ledgerRows: async (db) => Number((await db.query('SELECT COUNT(*) AS n FROM knex_migrations'))[0].n),
  /**
   * knex's lock is a row. Left set, or doubled by racing first runs (its UPDATE … WHERE is_locked = 0
   * must touch exactly one row), every later run fails until `knex migrate:unlock`.
   */
  lockLeft: async (db) => {
    const rows = await db.query('SELECT is_locked FROM knex_migrations_lock');
    return rows.length !== 1 || rows.some((r) => Number(r.is_locked) === 1);
  },
};

export const kysely = {
  id: 'kysely',
  label: 'kysely Migrator',
  version: () => version('kysely'),
  entry:
    'no CLI of its own: a 20-line node script calling `new Migrator(…).migrateToLatest()` (bench/workers/kysely.mjs)',
  supports: () => true,
  nonTransactional:
    'no: all migrations run in one transaction on Postgres (or none, with disableTransactions); plain CREATE INDEX used',
  lock: 'Postgres pg_advisory_lock (blocking); MariaDB GET_LOCK; SQLite: none (a no-op)',
  write: (dir, migrations) =>
    writeAll(dir, migrations, 'mjs', (m) =>
      [
        "import { sql } from 'kysely';\n\n",
        'export async function up(db) {\n',
        ...(m.upInTransaction ?? m.up).map((s) => `  await sql.raw(${js(s)}).execute(db);\n`),
        '}\n',
      ].join(''),
    ),
  command: (db, dir) => ({ command: process.execPath, args: [BIN.kysely], env: peerEnv(db, dir) }),
  inProcess: async (db, dir) => () => runPeer('kysely', { kind: db.kind, url: db.url, file: db.file, dir }),
  ledgerRows: async (db) => Number((await db.query('SELECT COUNT(*) AS n FROM kysely_migration'))[0].n),
};

const pgmFormat = (dir, migrations) =>
  writeAll(dir, migrations, 'cjs', (m) =>
    [
      'exports.up = (pgm) => {\n',
      m.transaction ? '' : '  pgm.noTransaction();\n',
      ...m.up.map((s) => `  pgm.sql(${js(s)});\n`),
      '};\n',
      'exports.down = false;\n',
    ].join(''),
  );

export const nodePgMigrate = {
  id: 'node-pg-migrate',
  label: 'node-pg-migrate',
  version: () => version('node-pg-migrate'),
  entry: 'CLI `node-pg-migrate up` (default options: --advisory-lock-mode fail, --single-transaction)',
  supports: (kind) => (kind === 'postgres' ? true : 'PostgreSQL only'),
  nonTransactional: 'yes (`pgm.noTransaction()`)',
  lock: 'pg_try_advisory_lock; a runner that finds it taken fails (default --advisory-lock-mode fail)',
  write: pgmFormat,
  command: (db, dir, op = 'up') => ({
    command: process.execPath,
    args: [BIN.nodePgMigrate, op, '-m', dir, '--database-url-var', 'BENCH_DB_URL'],
    env: peerEnv(db, dir),
  }),
  inProcess: async (db, dir) => () => runPeer('node-pg-migrate', { kind: db.kind, url: db.url, dir }),
  ledgerRows: async (db) => Number((await db.query('SELECT COUNT(*) AS n FROM pgmigrations'))[0].n),
};

/** The same tool with the option a user would reach for to make the losers wait instead of fail. */
export const nodePgMigrateWait = {
  ...nodePgMigrate,
  id: 'node-pg-migrate-wait',
  label: 'node-pg-migrate (wait)',
  entry: 'CLI `node-pg-migrate up --advisory-lock-mode wait`',
  lock: 'pg_advisory_lock, blocking (--advisory-lock-mode wait)',
  command: (db, dir, op = 'up') => {
    const base = nodePgMigrate.command(db, dir, op);
    return { ...base, args: [...base.args, '--advisory-lock-mode', 'wait'] };
  },
  inProcess: null,
};

export const umzug = {
  id: 'umzug',
  label: 'umzug',
  version: () => version('umzug'),
  entry:
    'no CLI of its own: a node script calling `umzug.up()` with a minimal SQL storage (bench/workers/umzug.mjs)',
  supports: () => true,
  nonTransactional: 'n/a: umzug runs no transactions at all',
  lock: 'none',
  write: (dir, migrations) =>
    writeAll(dir, migrations, 'cjs', (m) =>
      [
        'exports.up = async ({ context }) => {\n',
        ...m.up.map((s) => `  await context.exec(${js(s)});\n`),
        '};\n',
        'exports.down = async () => {};\n',
      ].join(''),
    ),
  command: (db, dir) => ({ command: process.execPath, args: [BIN.umzug], env: peerEnv(db, dir) }),
  inProcess: async (db, dir) => () => runPeer('umzug', { kind: db.kind, url: db.url, file: db.file, dir }),
  ledgerRows: async (db) => Number((await db.query('SELECT COUNT(*) AS n FROM umzug_migrations'))[0].n),
};

/** Every tool, lockstep first. */
export const TOOLS = [lockstep, dbmate, knex, kysely, nodePgMigrate, umzug];
export const PEERS = TOOLS.filter((t) => t !== lockstep);
