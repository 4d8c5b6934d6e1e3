import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const LIBRARY = path.join(ROOT, 'dist/index.js');

/** The servers the tests use; they fail (never skip) when one cannot be reached. */
export const PG_ADMIN_URL = process.env.LOCKSTEP_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_ADMIN_URL = process.env.LOCKSTEP_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** A fresh, empty database of one kind, dropped by `cleanup()`. */
export type DatabaseKind = 'postgres' | 'sqlite' | 'mysql';

export interface TestDatabase {
  readonly kind: DatabaseKind;
  readonly url: string;
  /** A scratch directory for migration files and output. */
  readonly dir: string;
  /** Runs SQL on the target from the test process (not through lockstep). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

export interface Target {
  readonly kind: DatabaseKind;
  /** How the suites name it, when more than the kind (Postgres through a pooler). */
  readonly label?: string;
  create(): Promise<TestDatabase>;
}

const ALL_TARGETS: readonly Target[] = [
  { kind: 'postgres', create: () => createPostgresDatabase() },
  { kind: 'mysql', create: createMysqlDatabase },
  { kind: 'sqlite', create: createSqliteDatabase },
];

/** Every database, or those named in LOCKSTEP_TEST_TARGETS (e.g. `sqlite,mysql`) for a quicker local run. */
export const TARGETS: readonly Target[] = selectTargets(
  process.env.LOCKSTEP_TEST_TARGETS ?? 'postgres,mysql,sqlite',
);

function selectTargets(names: string): readonly Target[] {
  const wanted = names.split(',').map((n) => n.trim());
  const unknown = wanted.filter((n) => !ALL_TARGETS.some((t) => t.kind === n));
  if (unknown.length > 0) throw new Error(`LOCKSTEP_TEST_TARGETS: unknown database ${unknown.join(', ')}`);
  return ALL_TARGETS.filter((t) => wanted.includes(t.kind));
}

function scratchDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
}

/** PG_ADMIN_URL with its database replaced by `database`. */
export function directPostgresUrl(database: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  return url.href;
}

/**
 * A fresh database created directly on PostgreSQL; `query()` and `cleanup()` go direct, while the
 * `url` handed to lockstep is `urlFor(name)` (a pooler's, say).
 */
export async function createPostgresDatabase(
  urlFor: (database: string) => string = directPostgresUrl,
): Promise<TestDatabase> {
  const name = `lockstep_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const dir = scratchDir();
  const client = new pg.Client({ connectionString: directPostgresUrl(name) });
  await client.connect();
  client.on('error', () => {});
  return {
    kind: 'postgres',
    url: urlFor(name),
    dir,
    async query(sql, params) {
      return (await client.query(sql, params)).rows;
    },
    async cleanup() {
      await client.end().catch(() => {});
      const dropper = new pg.Client({ connectionString: PG_ADMIN_URL });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createMysqlDatabase(): Promise<TestDatabase> {
  const mysql = await import('mysql2/promise');
  const name = `lockstep_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  const dir = scratchDir();
  const client = await mysql.createConnection({ uri: url.href, dateStrings: true });
  client.on('error', () => {});
  return {
    kind: 'mysql',
    url: url.href,
    dir,
    async query(sql, params) {
      const [rows] = await client.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async cleanup() {
      await client.end().catch(() => {});
      const dropper = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
      await dropper.query(`DROP DATABASE IF EXISTS ${name}`);
      await dropper.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createSqliteDatabase(): Promise<TestDatabase> {
  const dir = scratchDir();
  const file = path.join(dir, 'test.db');
  const { default: Database } = await import('better-sqlite3');
  let db: import('better-sqlite3').Database | undefined;
  return {
    kind: 'sqlite',
    url: `sqlite://${file}`,
    dir,
    async query(sql, params = []) {
      db ??= new Database(file, { timeout: 5000 });
      const statement = db.prepare(sql);
      if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
      statement.run(...params);
      return [];
    },
    async cleanup() {
      db?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes migration files into `<dir>/migrations` (or the given subfolder); returns that folder. */
export function writeMigrations(dir: string, files: Record<string, string>, folder = 'migrations'): string {
  const target = path.join(dir, folder);
  mkdirSync(target, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(target, name), text);
  return target;
}

export interface ProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI as a real OS process. */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<ProcessResult> {
  return runNode([CLI, ...args], options);
}

export function runNode(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<ProcessResult> {
  return runProcess(process.execPath, args, { cwd: options.cwd, env: { ...process.env, ...options.env } });
}

/** Runs `command` to its end, collecting what it prints; `env` is its whole environment. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { cwd?: string | undefined; env: Record<string, string | undefined> },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const env = { ...options.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The environment for a CLI run with no DATABASE_URL leaking in from the developer's shell. */
export const CLEAN_ENV = { DATABASE_URL: undefined } as const;
