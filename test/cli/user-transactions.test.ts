/**
 * SPEC guarantees 5 and 13: a non-transactional migration's own BEGIN … COMMIT block stays atomic.
 * lockstep writes no progress while the block is open (the write would commit it, or be rolled back
 * with it); a failure, a crash or an end inside the block leaves the block rolled back and the row
 * saying the count before it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createSqliteDatabase,
  type DatabaseKind,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

async function ledgerRow(db: TestDatabase, version: string) {
  const [row] = await db.query(
    `SELECT state, statements_done, error FROM lockstep_migrations WHERE version = '${version}'`,
  );
  return { state: row?.state, done: Number(row?.statements_done), error: String(row?.error) };
}

async function count(db: TestDatabase, table: string): Promise<number> {
  return Number((await db.query(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.n);
}

async function tableExists(db: TestDatabase, name: string): Promise<boolean> {
  return db.query(`SELECT 1 FROM ${name}`).then(
    () => true,
    () => false,
  );
}

/** Runs long inside the block until the runner is killed (MySQL runs it to its end, so: short). */
const SLOW: Record<DatabaseKind, string> = {
  postgres: 'SELECT pg_sleep(30);',
  mysql: 'SELECT SLEEP(4);',
  sqlite:
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT COUNT(*) FROM c;',
};

for (const target of TARGETS) {
  describe(`a transaction of its own in a non-transactional migration: ${target.kind}`, () => {
    const up = (db: TestDatabase, dir: string, ...extra: string[]) =>
      runCli(['up', '--url', db.url, '--dir', dir, ...extra], { cwd: db.dir, env: CLEAN_ENV });

    it('a BEGIN … COMMIT block applies and every statement is recorded', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_block.sql': `-- migrate:up transaction:false
CREATE TABLE before_block (id integer);
BEGIN;
CREATE TABLE a (id integer);
INSERT INTO a VALUES (1);
COMMIT;
CREATE TABLE after_block (id integer);
`,
        });
        const result = await up(db, dir);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(await ledgerRow(db, '001'), { state: 'applied', done: 6, error: 'null' });
        assert.equal(await count(db, 'a'), 1);
        assert.ok(await tableExists(db, 'after_block'));
        assert.equal((await up(db, dir)).code, 0);
      } finally {
        await db.cleanup();
      }
    });

    it('a statement failing inside the block: the block is rolled back, the row says the count before it', async () => {
      const db = await target.create();
      try {
        // DDL commits implicitly on MySQL: there the block holds only DML.
        const fifth =
          target.kind === 'mysql' ? 'INSERT INTO a VALUES (2);' : 'CREATE TABLE in_block (id integer);';
        const dir = writeMigrations(db.dir, {
          '001_block.sql': `-- migrate:up transaction:false
CREATE TABLE kept (id integer);
CREATE TABLE a (id integer);
BEGIN;
INSERT INTO a VALUES (1);
${fifth}
INSERT INTO missing_table VALUES (1);
COMMIT;
`,
        });
        const result = await up(db, dir);
        assert.equal(result.code, 1, result.stderr);
        const said =
          /statements 1\.\.2 applied, the transaction it began at \S*001_block\.sql:4 \(statements 3\.\.5\) was rolled back, statement 6 failed at \S*001_block\.sql:7/;
        assert.match(result.stderr, /failed at \S*001_block\.sql:7 \(statement 6 of 7\)/);
        assert.match(
          result.stderr,
          /statements 1\.\.2 were applied and stay applied\. The transaction it began at \S*001_block\.sql:4 \(statements 3\.\.5\) was rolled back\./,
        );
        assert.match(result.stderr, /state: partially applied/);
        const row = await ledgerRow(db, '001');
        assert.deepEqual([row.state, row.done], ['failed', 2]);
        assert.match(row.error, said);
        assert.equal(await count(db, 'a'), 0, "the block's insert was rolled back");
        if (target.kind !== 'mysql') assert.ok(!(await tableExists(db, 'in_block')));
        assert.ok(await tableExists(db, 'kept'));
      } finally {
        await db.cleanup();
      }
    });

    it('a migration that ends with its transaction open fails: the block is rolled back, never committed', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_open.sql': `-- migrate:up transaction:false
CREATE TABLE a (id integer);
BEGIN;
INSERT INTO a VALUES (1);
`,
          '002_next.sql': '-- migrate:up\nCREATE TABLE next_one (id integer);\n',
        });
        const result = await up(db, dir);
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /statements 1\.\.1 were applied and stay applied\. The transaction it began at \S*001_open\.sql:3 \(statements 2\.\.3\) was rolled back\./,
        );
        assert.match(result.stderr, /never committed; end it with COMMIT/);
        const row = await ledgerRow(db, '001');
        assert.deepEqual([row.state, row.done], ['failed', 1]);
        assert.match(
          row.error,
          /^statements 1\.\.1 applied, the transaction it began at \S*001_open\.sql:3 \(statements 2\.\.3\) was rolled back, it ended with that transaction still open: /,
        );
        assert.equal(await count(db, 'a'), 0);
        assert.ok(!(await tableExists(db, 'next_one')), 'the run stopped there');
      } finally {
        await db.cleanup();
      }
    });

    it('a module that begins a transaction of its own gets the same: its failure rolls the block back', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_block.mjs': `export const transaction = false;
export async function up(ctx) {
  await ctx.query('CREATE TABLE a (id integer)');
  await ctx.query('BEGIN');
  await ctx.query('INSERT INTO a VALUES (1)');
  await ctx.query('INSERT INTO missing_table VALUES (1)');
}
`,
        });
        const result = await up(db, dir);
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /The transaction it began at \S*001_block\.mjs:4 \(statements 2\.\.3\) was rolled back/,
        );
        const row = await ledgerRow(db, '001');
        assert.deepEqual([row.state, row.done], ['failed', 1]);
        assert.equal(await count(db, 'a'), 0);
      } finally {
        await db.cleanup();
      }
    });

    if (target.kind === 'mysql') {
      it('DDL inside the block commits it implicitly (MySQL): from then on progress is recorded again', async () => {
        const db = await target.create();
        try {
          const dir = writeMigrations(db.dir, {
            '001_ddl.sql': `-- migrate:up transaction:false
CREATE TABLE a (id integer);
BEGIN;
INSERT INTO a VALUES (1);
CREATE TABLE b (id integer);
INSERT INTO missing_table VALUES (1);
`,
          });
          const result = await up(db, dir);
          assert.equal(result.code, 1, result.stderr);
          assert.doesNotMatch(result.stderr, /rolled back/);
          assert.match(result.stderr, /statements 1\.\.4 were applied and stay applied/);
          const row = await ledgerRow(db, '001');
          assert.deepEqual([row.state, row.done], ['failed', 4]);
          assert.equal(await count(db, 'a'), 1, 'committed by the CREATE TABLE');
        } finally {
          await db.cleanup();
        }
      });
    }

    it('SIGKILL inside the block: the row stays running with the count before it, the block is gone', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_block.sql': `-- migrate:up transaction:false
CREATE TABLE a (id integer);
BEGIN;
INSERT INTO a VALUES (1);
${SLOW[target.kind]}
COMMIT;
`,
        });
        const runner = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV });
        await eventually(
          async () => (await ledgerRow(db, '001').catch(() => undefined))?.done === 1,
          'statement 1 is recorded',
        );
        await new Promise((r) => setTimeout(r, 700));
        runner.child.kill('SIGKILL');
        await runner.done;
        // The next runner gets the lock once the server has ended the dead session (and its block).
        const next = await up(db, dir, '--lock-timeout', '60s');
        assert.equal(next.code, 4, next.stderr);
        assert.match(next.stderr, /statements 1\.\.1 of 5 completed/);
        const row = await ledgerRow(db, '001');
        assert.deepEqual([row.state, row.done], ['running', 1]);
        assert.equal(await count(db, 'a'), 0, "the block's insert was rolled back");
      } finally {
        await db.cleanup();
      }
    });
  });
}

if (TARGETS.some((t) => t.kind === 'sqlite')) {
  it('sqlite: a sqlite3 .dump (BEGIN TRANSACTION … COMMIT) applies as a transaction:false migration', async () => {
    const db = await createSqliteDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_dump.sql': `-- migrate:up transaction:false
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO authors VALUES(1,'Ada');
CREATE TABLE books(id INTEGER PRIMARY KEY, author INTEGER REFERENCES authors(id));
INSERT INTO books VALUES(1,1);
COMMIT;
`,
      });
      const result = await runCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await ledgerRow(db, '001'), { state: 'applied', done: 7, error: 'null' });
      assert.equal(await count(db, 'books'), 1);
    } finally {
      await db.cleanup();
    }
  });
}
