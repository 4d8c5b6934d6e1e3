// One definition of every migration the bench uses; lib/tools.mjs writes it in each tool's format.
//
// A migration is { version, name, up: [statements], transaction, upInTransaction? }:
// - `transaction: false` asks the tool to run it outside a transaction (Postgres
//   CREATE INDEX CONCURRENTLY cannot run inside one);
// - `upInTransaction` is what a tool that cannot mark a single migration non-transactional runs
//   instead (a plain CREATE INDEX).

import { Database, now } from './shared.mjs';

/** Target duration of the slow migration. */
export const SLOW_MS = 300;

let sqliteSpinRows;

/**
 * SQLite has no sleep(): the slow migration counts through a recursive CTE, sized once per run so
 * that it takes ~300 ms here (the whole count happens in the first step, as every driver runs it).
 */
export function calibrateSqliteSpin() {
  if (sqliteSpinRows) return sqliteSpinRows;
  const db = new Database(':memory:');
  const spin = (rows) => {
    const t0 = now();
    db.prepare(spinSql(rows)).all();
    return now() - t0;
  };
  spin(100_000);
  let rows = 1_000_000;
  const ms = Math.min(spin(rows), spin(rows), spin(rows));
  rows = Math.round((rows * SLOW_MS) / ms);
  db.close();
  sqliteSpinRows = rows;
  return rows;
}

function spinSql(rows) {
  return `SELECT count(*) AS n FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT x FROM c) AS spin`;
}

function sleepSql(kind) {
  if (kind === 'postgres') return `SELECT pg_sleep(${SLOW_MS / 1000})`;
  if (kind === 'mysql') return `SELECT SLEEP(${SLOW_MS / 1000})`;
  return spinSql(calibrateSqliteSpin());
}

/** Every race migration records itself here: a count above 1 is a double application. */
const mark = (version) => `INSERT INTO bench_applied (migration) VALUES ('${version}')`;

/**
 * Scenario 1's five migrations: create tables; add a column; an index (CONCURRENTLY on Postgres);
 * a counter insert; one that takes ~300 ms. Each but the index also inserts its own marker row.
 */
export function raceMigrations(kind) {
  const plainIndex = 'CREATE INDEX bench_users_email ON bench_users (email)';
  return [
    {
      version: '0001',
      name: 'create_tables',
      transaction: true,
      up: [
        'CREATE TABLE bench_users (id integer PRIMARY KEY, email varchar(255) NOT NULL)',
        'CREATE TABLE bench_applied (migration varchar(64) NOT NULL)',
        mark('0001'),
      ],
    },
    {
      version: '0002',
      name: 'add_column',
      transaction: true,
      up: ['ALTER TABLE bench_users ADD COLUMN name varchar(100)', mark('0002')],
    },
    // The index is the migration's only statement: dbmate sends a migration as one query string,
    // which Postgres runs as one implicit transaction, where CONCURRENTLY is refused.
    kind === 'postgres'
      ? {
          version: '0003',
          name: 'email_index',
          transaction: false,
          up: ['CREATE INDEX CONCURRENTLY bench_users_email ON bench_users (email)'],
          upInTransaction: [plainIndex],
        }
      : { version: '0003', name: 'email_index', transaction: true, up: [plainIndex] },
    { version: '0004', name: 'counter', transaction: true, up: [mark('0004')] },
    { version: '0005', name: 'slow', transaction: true, up: [sleepSql(kind), mark('0005')] },
  ];
}

/** The migrations that leave a marker row (the index migration is one statement and leaves none). */
export const RACE_VERSIONS = ['0001', '0002', '0004', '0005'];

/** What a correct final state is, checked from outside every tool. */
export async function checkRaceSchema(db) {
  const counts = new Map(RACE_VERSIONS.map((v) => [v, 0]));
  let columns = [];
  let indexOk = false;
  try {
    for (const row of await db.query(
      'SELECT migration, COUNT(*) AS n FROM bench_applied GROUP BY migration',
    )) {
      counts.set(row.migration, Number(row.n));
    }
  } catch {
    // no bench_applied table: migration 0001 never completed
  }
  if (db.kind === 'postgres') {
    columns = (
      await db.query(
        "SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'bench_users'",
      )
    ).map((r) => r.c);
    const index = await db.query(
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'bench_users_email'`,
    );
    indexOk = index.length === 1 && index[0].valid === true;
  } else if (db.kind === 'mysql') {
    columns = (
      await db.query(
        "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'bench_users'",
      )
    ).map((r) => r.c);
    indexOk =
      (
        await db.query(
          "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'bench_users' AND INDEX_NAME = 'bench_users_email'",
        )
      ).length > 0;
  } else {
    columns = (await db.query("SELECT name AS c FROM pragma_table_info('bench_users')")).map((r) => r.c);
    indexOk =
      (await db.query("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'bench_users_email'"))
        .length > 0;
  }
  const doubles = [...counts.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
  const missing = [...counts].filter(([, n]) => n === 0).map(([v]) => v);
  const schemaOk =
    ['id', 'email', 'name'].every((c) => columns.map((x) => x.toLowerCase()).includes(c)) &&
    indexOk &&
    missing.length === 0;
  return { counts: Object.fromEntries(counts), doubles, missing, schemaOk, indexOk };
}

/** `count` small migrations (one CREATE TABLE each), versions 00001… */
export function smallMigrations(count) {
  const migrations = [];
  for (let i = 1; i <= count; i++) {
    const n = String(i).padStart(5, '0');
    migrations.push({
      version: n,
      name: `table_${n}`,
      transaction: true,
      up: [`CREATE TABLE small_${n} (id integer PRIMARY KEY, note varchar(100))`],
    });
  }
  return migrations;
}

/**
 * Scenario 5: a StarPunk-sized schema (a single-user IndieWeb CMS on SQLite: notes, auth tokens,
 * sessions, an index, a settings row).
 */
export function starpunkMigrations() {
  return [
    {
      version: '0001',
      name: 'notes',
      transaction: true,
      up: [
        `CREATE TABLE notes (id integer PRIMARY KEY, slug varchar(100) NOT NULL UNIQUE, content text NOT NULL,
  content_html text, published integer NOT NULL DEFAULT 0, created_at varchar(32) NOT NULL, updated_at varchar(32))`,
      ],
    },
    {
      version: '0002',
      name: 'tokens',
      transaction: true,
      up: [
        `CREATE TABLE tokens (token varchar(64) PRIMARY KEY, me varchar(255) NOT NULL, client_id varchar(255),
  scope varchar(255), created_at varchar(32) NOT NULL, expires_at varchar(32))`,
      ],
    },
    {
      version: '0003',
      name: 'auth_sessions',
      transaction: true,
      up: [
        'CREATE TABLE auth_sessions (id varchar(64) PRIMARY KEY, me varchar(255) NOT NULL, created_at varchar(32) NOT NULL)',
        'CREATE INDEX auth_sessions_me ON auth_sessions (me)',
      ],
    },
    {
      version: '0004',
      name: 'notes_created_index',
      transaction: true,
      up: ['CREATE INDEX notes_created_at ON notes (created_at)'],
    },
    {
      version: '0005',
      name: 'settings',
      transaction: true,
      up: [
        'CREATE TABLE settings (key varchar(64) PRIMARY KEY, value text)',
        "INSERT INTO settings (key, value) VALUES ('site_name', 'StarPunk')",
      ],
    },
  ];
}
