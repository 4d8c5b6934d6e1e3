import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { type DatabaseKind, ROOT, type TestDatabase, writeMigrations } from './targets.js';

/** A log of what operations did, in the order the database saw it (an auto-numbered id). */
export function traceTableSql(kind: DatabaseKind): string {
  const id = {
    postgres: 'id serial PRIMARY KEY',
    mysql: 'id integer AUTO_INCREMENT PRIMARY KEY',
    sqlite: 'id INTEGER PRIMARY KEY AUTOINCREMENT',
  }[kind];
  return `CREATE TABLE trace (${id}, name varchar(64) NOT NULL, ev varchar(64) NOT NULL)`;
}

export async function readTrace(db: TestDatabase): Promise<string[]> {
  const rows = await db.query('SELECT name, ev FROM trace ORDER BY id');
  return rows.map((r) => `${r.name}:${r.ev}`);
}

/** A statement that takes about `seconds` (SQLite has no sleep: it returns at once). */
export function sleepSql(kind: DatabaseKind, seconds: number): string {
  if (kind === 'postgres') return `SELECT pg_sleep(${seconds})`;
  if (kind === 'mysql') return `SELECT SLEEP(${seconds})`;
  return 'SELECT 1';
}

/** Writes definitions into `<dir>/async` and returns that folder. */
export function writeDefinitions(dir: string, files: Record<string, string>): string {
  return writeMigrations(dir, files, 'async');
}

export async function stateRow(db: TestDatabase, name: string): Promise<Record<string, unknown> | undefined> {
  const rows = await db.query(`SELECT * FROM lockstep_async WHERE name = '${name}'`).catch(() => []);
  return rows[0];
}

export interface Racer {
  readonly name: string;
  readonly result: Promise<{ code: number | null; output: Record<string, unknown>; stderr: string }>;
}

/**
 * Starts one process per name running test/fixtures/async-trigger.mjs, waits until every one has
 * loaded lockstep and its driver, then releases them all at the same instant.
 */
export async function raceTriggers(
  db: Pick<TestDatabase, 'url' | 'dir'> & { readonly coordinatorUrl?: string },
  dir: string,
  names: readonly string[],
  mode: 'refuse' | 'queue',
): Promise<{ name: string; code: number | null; output: Record<string, unknown>; stderr: string }[]> {
  const children = names.map((name) => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'test/fixtures/async-trigger.mjs'), db.url, dir, name, mode, db.coordinatorUrl ?? ''],
      {
        cwd: db.dir,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const ready = new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        if (line === 'ready') resolve();
        else stdout += line;
      });
      child.on('close', () => reject(new Error(`${name} exited before it was ready:\n${stderr}`)));
    });
    const done = new Promise<{ code: number | null }>((resolve) =>
      child.on('close', (code) => resolve({ code })),
    );
    return { name, child, ready, done, out: () => ({ stdout, stderr }) };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.write('go\n');
  return Promise.all(
    children.map(async (c) => {
      const { code } = await c.done;
      const { stdout, stderr } = c.out();
      let output: Record<string, unknown>;
      try {
        output = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        throw new Error(`${c.name}: no JSON result (exit ${code}):\n${stdout}\n${stderr}`);
      }
      return { name: c.name, code, output, stderr };
    }),
  );
}
