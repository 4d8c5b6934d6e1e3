/**
 * Other migration tools, for `lockstep adopt --from <tool>`: each fixture project of
 * test/fixtures/tools/<tool>/ copied into a test database's scratch directory, the tool run on it
 * as a child process, and the tool's own history table read back.
 *
 * knex 3.3.0, node-pg-migrate 9.0.0 and drizzle-kit 0.31.11 are the real tools (exact
 * devDependencies). The others cannot run here, and their history is written exactly as their
 * source writes it, migration by migration, with the migration's SQL run in between:
 * - golang-migrate and goose are Go binaries, on no registry this project reaches;
 * - Prisma 7.10.1's `migrate deploy` needs its native schema engine, which its install step
 *   downloads: `Error: request to https://binaries.prisma.sh/all_commits/d1b3f377…/
 *   debian-openssl-3.0.x/schema-engine.gz.sha256 failed, reason: getaddrinfo ENOTFOUND
 *   binaries.prisma.sh`. The CLI's package carries a wasm schema engine file, but its migrate
 *   commands load only the native binary (PRISMA_SCHEMA_ENGINE_BINARY names one; none exists here).
 */
import { createHash, randomUUID } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { TOOL_NAMES, type ToolName } from '../../src/core/tools/tool.js';
import { type DatabaseKind, type ProcessResult, ROOT, runProcess, type TestDatabase } from './targets.js';

export type { ToolName };
export const TOOLS = TOOL_NAMES;

/** Whether the real tool (not a writer of its table) runs in these tests. */
export const REAL_TOOL: Readonly<Record<ToolName, boolean>> = {
  'golang-migrate': false,
  goose: false,
  knex: true,
  'node-pg-migrate': true,
  prisma: false,
  drizzle: true,
};

/** The databases each tool supports (node-pg-migrate: PostgreSQL only). */
export function toolSupports(tool: ToolName, kind: DatabaseKind): boolean {
  return tool !== 'node-pg-migrate' || kind === 'postgres';
}

const FIXTURES = path.join(ROOT, 'test/fixtures/tools');
const BIN = {
  knex: path.join(ROOT, 'node_modules/knex/bin/cli.js'),
  'node-pg-migrate': path.join(ROOT, 'node_modules/node-pg-migrate/bin/node-pg-migrate.js'),
  drizzle: path.join(ROOT, 'node_modules/drizzle-kit/bin.cjs'),
} as const;

const DRIZZLE_DIALECT: Record<DatabaseKind, string> = {
  postgres: 'postgresql',
  mysql: 'mysql',
  sqlite: 'sqlite',
};
const PRISMA_PROVIDER: Record<DatabaseKind, string> = {
  postgres: 'postgresql',
  mysql: 'mysql',
  sqlite: 'sqlite',
};

/** A tool's project copied for one database: its root, and the migrations folder `--dir` names. */
export interface ToolProject {
  readonly tool: ToolName;
  readonly root: string;
  readonly migrations: string;
}

let copies = 0;

/**
 * A fresh copy of the tool's fixture project in `db.dir` (the folder of this database's kind
 * where the tool keeps one per provider), with the repository's node_modules linked in so the
 * configuration's imports resolve.
 */
export function toolProject(tool: ToolName, db: TestDatabase): ToolProject {
  const root = path.join(db.dir, `${tool}-${++copies}`);
  cpSync(path.join(FIXTURES, tool), root, { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  const migrations =
    tool === 'drizzle'
      ? path.join(root, 'migrations', DRIZZLE_DIALECT[db.kind])
      : tool === 'prisma'
        ? path.join(root, PRISMA_PROVIDER[db.kind], 'migrations')
        : path.join(root, 'migrations');
  return { tool, root, migrations };
}

/** The tool's environment for `db`: only PATH and what its configuration reads. */
function toolEnv(db: TestDatabase): Record<string, string | undefined> {
  const url = db.kind === 'sqlite' ? db.url.replace(/^sqlite:\/\//, '') : db.url;
  return {
    PATH: process.env.PATH,
    TOOL_DATABASE_URL: db.kind === 'sqlite' ? `sqlite://${url}` : url,
    TOOL_DIALECT: DRIZZLE_DIALECT[db.kind],
    TOOL_SQLITE_FILE: url,
  };
}

/** What a run of the tool says; the writers of a table that cannot run give code 0 and no output. */
export type ToolRun = ProcessResult;

/**
 * Runs the tool's "apply every pending migration" on `db` (knex migrate:latest, node-pg-migrate
 * up, drizzle-kit migrate; for the others, their table written as their source writes it).
 * `failAt`, for the tools that cannot run: the version whose migration is left half-done (its
 * SQL is not run), as the tool leaves one that failed.
 */
export async function migrateWithTool(
  project: ToolProject,
  db: TestDatabase,
  options: { failAt?: string } = {},
): Promise<ToolRun> {
  const env = toolEnv(db);
  switch (project.tool) {
    case 'knex':
      return runProcess(
        process.execPath,
        [BIN.knex, '--knexfile', path.join(project.root, 'knexfile.js'), 'migrate:latest'],
        { cwd: project.root, env },
      );
    case 'node-pg-migrate':
      return runProcess(process.execPath, [BIN['node-pg-migrate'], 'up', '-m', project.migrations], {
        cwd: project.root,
        env: { ...env, DATABASE_URL: db.url },
      });
    case 'drizzle': {
      const url = db.kind === 'sqlite' ? (env.TOOL_SQLITE_FILE as string) : db.url;
      return runProcess(process.execPath, [BIN.drizzle, 'migrate', '--config', 'drizzle.config.ts'], {
        cwd: project.root,
        env: { ...env, TOOL_DATABASE_URL: url, TOOL_MIGRATIONS_DIR: project.migrations },
      });
    }
    case 'golang-migrate':
      return golangMigrateUp(project, db, options.failAt);
    case 'goose':
      return gooseUp(project, db);
    case 'prisma':
      return prismaDeploy(project, db, options.failAt);
  }
}

/** The tool's history as lines, oldest first (what the assertions compare). */
export async function readToolTable(tool: ToolName, db: TestDatabase): Promise<string[]> {
  switch (tool) {
    case 'knex':
      return (await db.query('SELECT name FROM knex_migrations ORDER BY id')).map((r) => String(r.name));
    case 'node-pg-migrate':
      return (await db.query('SELECT name FROM pgmigrations ORDER BY id')).map((r) => String(r.name));
    case 'drizzle': {
      const table = db.kind === 'postgres' ? 'drizzle.__drizzle_migrations' : '__drizzle_migrations';
      return (await db.query(`SELECT hash, created_at FROM ${table} ORDER BY created_at`)).map(
        (r) => `${String(r.created_at)}:${String(r.hash).slice(0, 12)}`,
      );
    }
    case 'golang-migrate':
      return (await db.query('SELECT version, dirty FROM schema_migrations')).map(
        (r) => `${String(r.version)}:${truthy(r.dirty) ? 'dirty' : 'clean'}`,
      );
    case 'goose':
      return (await db.query('SELECT version_id, is_applied FROM goose_db_version ORDER BY id')).map(
        (r) => `${String(r.version_id)}:${truthy(r.is_applied) ? 'applied' : 'down'}`,
      );
    case 'prisma':
      return (
        await db.query(
          'SELECT migration_name, finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations ORDER BY started_at, migration_name',
        )
      ).map(
        (r) =>
          `${String(r.migration_name)}:${r.finished_at != null ? 'finished' : r.rolled_back_at != null ? 'rolled back' : 'unfinished'}`,
      );
  }
}

/** What the fixture migrations wrote to their counter table, one line a run, sorted. */
export async function counterRows(db: TestDatabase): Promise<string[]> {
  return (await db.query('SELECT migration FROM counter ORDER BY migration')).map((r) => String(r.migration));
}

function truthy(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 't';
}

/** The SQL of one fixture migration file, statement by statement (the fixtures keep to `;` at line ends). */
function statements(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

async function runSql(db: TestDatabase, text: string): Promise<void> {
  for (const sql of statements(text)) await db.query(sql);
}

const done: ToolRun = { code: 0, signal: null, stdout: '', stderr: '' };

/**
 * golang-migrate's `up`. Table as its database drivers create it (database/postgres/postgres.go
 * and database/mysql/mysql.go ensureVersionTable: version bigint primary key, dirty boolean;
 * database/sqlite3/sqlite3.go: version uint64, dirty bool, with a unique index on version). It
 * keeps one row, the current version: before a migration runs it is set to that version with
 * dirty = true, after it succeeds dirty = false.
 */
async function golangMigrateUp(project: ToolProject, db: TestDatabase, failAt?: string): Promise<ToolRun> {
  if (db.kind === 'sqlite') {
    await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool)');
    await db.query('CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version)');
  } else {
    await db.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)',
    );
  }
  const current = await db.query('SELECT version, dirty FROM schema_migrations');
  const row = current[0];
  if (row && truthy(row.dirty)) {
    return {
      ...done,
      code: 1,
      stderr: `error: Dirty database version ${String(row.version)}. Fix and force version.\n`,
    };
  }
  const at = row ? Number(row.version) : -1;
  const files = readdirSync(project.migrations)
    .map((f) => /^(\d+)_(.*)\.up\.sql$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  for (const [file, version] of files) {
    if (Number(version) <= at) continue;
    const setVersion = async (dirty: boolean) => {
      await db.query('DELETE FROM schema_migrations');
      await db.query(
        `INSERT INTO schema_migrations (version, dirty) VALUES (${version}, ${dirty ? 'TRUE' : 'FALSE'})`,
      );
    };
    await setVersion(true);
    if (version === failAt)
      return { ...done, code: 1, stderr: `error: migration failed in line 0: ${file}\n` };
    await runSql(db, readFileSync(path.join(project.migrations, file), 'utf8'));
    await setVersion(false);
  }
  return done;
}

/**
 * goose's `up`. Table as goose's dialect queries create it (internal/dialect/dialectquery:
 * postgres.go, mysql.go, sqlite3.go: id, version_id, is_applied, tstamp), with the row of
 * version 0 it inserts on creation; each migration adds a row (version, true) after it ran.
 */
async function gooseUp(project: ToolProject, db: TestDatabase): Promise<ToolRun> {
  const exists = await db
    .query('SELECT 1 FROM goose_db_version')
    .then(() => true)
    .catch(() => false);
  if (!exists) {
    if (db.kind === 'postgres') {
      await db.query(
        'CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now())',
      );
    } else if (db.kind === 'mysql') {
      await db.query(
        'CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))',
      );
    } else {
      await db.query(
        "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')))",
      );
    }
    await db.query(
      `INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, ${db.kind === 'sqlite' ? 1 : 'TRUE'})`,
    );
  }
  const applied = new Set(
    (await db.query('SELECT version_id FROM goose_db_version')).map((r) => Number(r.version_id)),
  );
  const files = readdirSync(project.migrations)
    .map((f) => /^(\d+)_.*\.sql$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  for (const [file, version] of files) {
    if (applied.has(Number(version))) continue;
    const text = readFileSync(path.join(project.migrations, file), 'utf8');
    const up = text.split(/^-- \+goose Down\s*$/m)[0] ?? '';
    await runSql(db, up);
    await db.query(
      `INSERT INTO goose_db_version (version_id, is_applied) VALUES (${Number(version)}, ${db.kind === 'sqlite' ? 1 : 'TRUE'})`,
    );
  }
  return done;
}

/**
 * Prisma's `migrate deploy`. Table as Prisma's schema engine creates it
 * (schema-engine/connectors/sql-schema-connector/src/flavour/{postgres,mysql,sqlite}.rs,
 * create_migrations_table). Per migration, as its migration-persistence code records it: a row
 * with a UUID, the SHA-256 of migration.sql and started_at, the script, then finished_at and
 * applied_steps_count = 1; a migration that fails keeps finished_at NULL and its error in logs.
 */
async function prismaDeploy(project: ToolProject, db: TestDatabase, failAt?: string): Promise<ToolRun> {
  const exists = await db
    .query('SELECT 1 FROM _prisma_migrations')
    .then(() => true)
    .catch(() => false);
  if (!exists) {
    if (db.kind === 'postgres') {
      await db.query(
        'CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)',
      );
    } else if (db.kind === 'mysql') {
      await db.query(
        'CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3), migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at DATETIME(3), started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count INTEGER UNSIGNED NOT NULL DEFAULT 0) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci',
      );
    } else {
      await db.query(
        'CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY NOT NULL, checksum TEXT NOT NULL, finished_at DATETIME, migration_name TEXT NOT NULL, logs TEXT, rolled_back_at DATETIME, started_at DATETIME NOT NULL DEFAULT current_timestamp, applied_steps_count INTEGER UNSIGNED NOT NULL DEFAULT 0)',
      );
    }
  }
  const rows = await db.query('SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations');
  const unfinished = rows.find((r) => r.finished_at == null && r.rolled_back_at == null);
  if (unfinished) {
    return {
      ...done,
      code: 1,
      stderr: `Error: P3009\nmigrate found failed migrations in the target database: ${String(unfinished.migration_name)}\n`,
    };
  }
  const finished = new Set(rows.filter((r) => r.finished_at != null).map((r) => String(r.migration_name)));
  const now =
    db.kind === 'postgres' ? 'now()' : db.kind === 'mysql' ? 'CURRENT_TIMESTAMP(3)' : 'current_timestamp';
  const names = readdirSync(project.migrations, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const name of names) {
    if (finished.has(name)) continue;
    const script = readFileSync(path.join(project.migrations, name, 'migration.sql'), 'utf8');
    const id = randomUUID();
    const checksum = createHash('sha256').update(script).digest('hex');
    await db.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES ('${id}', '${checksum}', '${name}', ${now}, 0)`,
    );
    if (name.startsWith(failAt ?? '\0')) {
      await db.query(
        `UPDATE _prisma_migrations SET logs = 'Database error code: 42P07 (the fixture''s failure)' WHERE id = '${id}'`,
      );
      return { ...done, code: 1, stderr: `Error: P3018\nA migration failed to apply: ${name}\n` };
    }
    await runSql(db, script);
    await db.query(
      `UPDATE _prisma_migrations SET finished_at = ${now}, applied_steps_count = 1 WHERE id = '${id}'`,
    );
  }
  return done;
}
