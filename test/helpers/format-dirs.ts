/** Migrations directories of other tools' formats, written to a temporary folder and read. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Migration } from '../../src/core/migration.js';
import { readMigrations } from '../../src/core/sources.js';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { SourceError, type SourceProblem } from '../../src/errors.js';
import type { SplitDialect } from '../../src/sql/split.js';

const options = { table: 'lockstep_migrations', runnerId: 'test:1' };
export const SQLITE: SplitDialect = createSqliteDriver('sqlite:unused.db', options).dialect.syntax;
export const POSTGRES: SplitDialect = createPostgresDriver('postgres://localhost/unused', options).dialect
  .syntax;
export const MYSQL: SplitDialect = createMysqlDriver('mysql://root@localhost/unused', options).dialect.syntax;

/** Runs `fn` on a fresh temporary directory holding `files` (a `/` in a name makes a subdirectory). */
export async function withDir<T>(files: Record<string, string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-formats-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `files` as a migrations directory (paths shown relative to it), with the warnings given. */
export function read(
  files: Record<string, string>,
): Promise<{ migrations: Migration[]; warnings: SourceProblem[] }> {
  return withDir(files, async (dir) => {
    const warnings: SourceProblem[] = [];
    const migrations = await readMigrations(dir, dir, (w) => warnings.push(w));
    return { migrations, warnings };
  });
}

/** The problems of the SourceError `promise` rejects with. */
export async function problemsOf(promise: Promise<unknown>): Promise<readonly SourceProblem[]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SourceError, `expected a SourceError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected a SourceError, got none');
}

/** The SQL of one direction's statements. */
export async function statementsOf(
  migration: Migration | undefined,
  direction: 'up' | 'down',
  dialect: SplitDialect = SQLITE,
): Promise<string[]> {
  assert.ok(migration, 'a migration');
  const step = await migration.load(direction, dialect);
  assert.equal(step.kind, 'sql');
  return step.kind === 'sql' ? step.statements.map((s) => s.sql) : [];
}
