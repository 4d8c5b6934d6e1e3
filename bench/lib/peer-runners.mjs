// The peers called as libraries: one "migrate to latest" per call, opening and closing its own
// connection like a booting process does. Used in-process (scenario 3) and by bench/workers/*.
// Packages are imported lazily, so a worker loads only its own tool.
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(BENCH, 'package.json'));
const { knexConfig } = require('./lib/knex-config.cjs');

const RUNNERS = { knex: runKnex, kysely: runKysely, 'node-pg-migrate': runNodePgMigrate, umzug: runUmzug };

/** `{ kind, url, file, dir }` → runs the tool's migrate-to-latest; throws on failure. */
export function runPeer(tool, target) {
  return RUNNERS[tool](target);
}

async function runKnex(target) {
  const knex = require('knex')(knexConfig(target));
  try {
    return await knex.migrate.latest();
  } finally {
    await knex.destroy();
  }
}

async function runKysely({ kind, url, file, dir }) {
  const { Kysely, Migrator, FileMigrationProvider, PostgresDialect, MysqlDialect, SqliteDialect } =
    await import('kysely');
  let dialect;
  if (kind === 'postgres')
    dialect = new PostgresDialect({ pool: new (require('pg').Pool)({ connectionString: url }) });
  else if (kind === 'mysql') dialect = new MysqlDialect({ pool: require('mysql2').createPool({ uri: url }) });
  else dialect = new SqliteDialect({ database: new (require('better-sqlite3'))(file) });
  const db = new Kysely({ dialect });
  try {
    const migrator = new Migrator({
      db,
      provider: new FileMigrationProvider({ fs, path, migrationFolder: dir }),
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error;
    return results;
  } finally {
    await db.destroy();
  }
}

async function runNodePgMigrate({ url, dir }) {
  const { runner } = await import('node-pg-migrate');
  // The CLI's defaults: one transaction for the batch, fail if another runner holds the lock.
  return runner({
    databaseUrl: url,
    dir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    singleTransaction: true,
    checkOrder: true,
    log: () => {},
  });
}

/** umzug has no SQL storage of its own (only Sequelize/MongoDB/JSON): the minimal custom one. */
async function runUmzug({ kind, url, file, dir }) {
  const { Umzug } = require('umzug');
  const client = await connect(kind, url, file);
  try {
    const umzug = new Umzug({
      migrations: { glob: ['*.cjs', { cwd: dir }] },
      context: client,
      logger: undefined,
      storage: {
        async executed() {
          await client.exec('CREATE TABLE IF NOT EXISTS umzug_migrations (name varchar(255) PRIMARY KEY)');
          return (await client.query('SELECT name FROM umzug_migrations')).map((r) => r.name);
        },
        async logMigration({ name }) {
          await client.query('INSERT INTO umzug_migrations (name) VALUES (?)', [name]);
        },
        async unlogMigration({ name }) {
          await client.query('DELETE FROM umzug_migrations WHERE name = ?', [name]);
        },
      },
    });
    return await umzug.up();
  } finally {
    await client.close();
  }
}

/** One connection with exec(sql) and query(sql with ? placeholders, params) → rows. */
async function connect(kind, url, file) {
  if (kind === 'postgres') {
    const client = new (require('pg').Client)({ connectionString: url });
    await client.connect();
    return {
      exec: (sql) => client.query(sql),
      query: async (sql, params) => {
        let i = 0;
        return (
          await client.query(
            sql.replace(/\?/g, () => `$${++i}`),
            params,
          )
        ).rows;
      },
      close: () => client.end(),
    };
  }
  if (kind === 'mysql') {
    const connection = await require('mysql2/promise').createConnection({ uri: url });
    return {
      exec: (sql) => connection.query(sql),
      query: async (sql, params) => (await connection.query(sql, params))[0],
      close: () => connection.end(),
    };
  }
  const db = new (require('better-sqlite3'))(file, { timeout: 5000 });
  const run = (sql, params = []) => {
    const statement = db.prepare(sql);
    if (statement.reader) return statement.all(...params);
    statement.run(...params);
    return [];
  };
  return {
    exec: async (sql) => run(sql),
    query: async (sql, params) => run(sql, params),
    close: async () => db.close(),
  };
}
