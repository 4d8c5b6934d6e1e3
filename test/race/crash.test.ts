/**
 * Guarantees 3, 5 and 6 when things go wrong for real: SIGKILL of the runner, a terminated
 * backend, a CREATE INDEX CONCURRENTLY while others wait, a broken migration in a boot race.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { withSessionPooler } from '../helpers/pgbouncer.js';
import { eventually, startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createMysqlDatabase,
  createPostgresDatabase,
  type DatabaseKind,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const LOG_TABLE = `-- migrate:up
CREATE TABLE applied_log (version varchar(32) NOT NULL);
CREATE TABLE hang_marker (n integer);
INSERT INTO hang_marker (n) VALUES (1);
`;

/**
 * A statement that runs long while hang_marker has a row, and at once when the test emptied it.
 * MySQL keeps running a statement whose client died until it ends (then rolls back and frees the
 * lock), so its sleep is short; Postgres notices within client_connection_check_interval.
 */
const SLOW_WHILE_MARKED: Record<DatabaseKind, string> = {
  postgres: 'SELECT pg_sleep(600) FROM hang_marker;',
  mysql: 'SELECT SLEEP(4) FROM hang_marker;',
  sqlite:
    'WITH RECURSIVE c(x) AS (SELECT 1 FROM hang_marker UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT COUNT(*) FROM c;',
};

/** Postgres and SQLite name the holder host:pid; MySQL names its connection. */
function holderPattern(kind: DatabaseKind, pid: number | undefined): string {
  return kind === 'mysql' ? 'connection \\d+ \\(root@[^)]+\\)' : `${hostname()}:${pid}`;
}

/** A module migration that logs itself, then hangs when LOCKSTEP_TEST_HANG is set. */
const hangingModule = (version: string, hang: string) => `
export async function up(ctx: { query(sql: string): Promise<unknown>; log(m: string): void }): Promise<void> {
  await ctx.query("INSERT INTO applied_log (version) VALUES ('${version}')");
  await ctx.query('CREATE TABLE made_by_${version} (id integer)');
  if (process.env.LOCKSTEP_TEST_HANG) {
    ctx.log('hanging');
    ${hang}
  }
}
`;
const JS_HANG = 'await new Promise((resolve) => setTimeout(resolve, 600_000));';

async function countLog(db: TestDatabase, version: string): Promise<number> {
  const rows = await db.query(`SELECT COUNT(*) AS n FROM applied_log WHERE version = '${version}'`);
  return Number(rows[0]?.n);
}

async function ledgerRow(db: TestDatabase, version: string) {
  const rows = await db
    .query(`SELECT * FROM lockstep_migrations WHERE version = '${version}'`)
    .catch(() => []);
  return rows[0];
}

for (const target of withSessionPooler(TARGETS)) {
  describe(`crashes: ${target.label ?? target.kind}`, () => {
    it('SIGKILL during a transactional migration: the next runner applies it exactly once, no manual step', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_log.sql': LOG_TABLE,
          '002_hang.sql': `-- migrate:up
INSERT INTO applied_log (version) VALUES ('002');
${SLOW_WHILE_MARKED[target.kind]}
`,
        });
        const a = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir });
        await a.waitFor(/applying 002 hang\n/);
        await new Promise((r) => setTimeout(r, 500));
        a.child.kill('SIGKILL');
        assert.equal((await a.done).signal, 'SIGKILL');
        await db.query('DELETE FROM hang_marker');

        const b = await runCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(b.code, 0, b.stderr);
        assert.equal(await countLog(db, '002'), 1);
        assert.equal((await ledgerRow(db, '002'))?.state, 'applied');
      } finally {
        await db.cleanup();
      }
    });

    it('SIGKILL during a non-transactional migration: the next runner refuses, names the statement, resolve continues', async () => {
      const db = await target.create();
      try {
        const slow = SLOW_WHILE_MARKED[target.kind];
        const dir = writeMigrations(db.dir, {
          '001_log.sql': LOG_TABLE,
          '002_nontx.sql': `-- migrate:up transaction:false
CREATE TABLE part_one (id integer);
INSERT INTO applied_log (version) VALUES ('002');
${slow}
CREATE TABLE part_two (id integer);
`,
        });
        const a = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir });
        await eventually(
          async () => Number((await ledgerRow(db, '002'))?.statements_done) === 2,
          'statement 3 starts',
        );
        await new Promise((r) => setTimeout(r, 200));
        a.child.kill('SIGKILL');
        await a.done;

        // Postgres notices the vanished client within client_connection_check_interval.
        const b = await runCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(b.code, 4, b.stderr);
        assert.match(b.stderr, /migration 002 \(up\) was interrupted/);
        assert.match(b.stderr, /statements 1\.\.2 of 4 completed; statement 3 at .*002_nontx\.sql:4/);
        assert.match(b.stderr, /lockstep resolve 002 --applied/);
        assert.match(b.stderr, /lockstep resolve 002 --rolled-back/);
        assert.equal(await countLog(db, '002'), 1, 'never re-run');

        const status = await runCli(['status', '--json', '--url', db.url, '--dir', dir], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        const entry = JSON.parse(status.stdout).migrations.find(
          (m: { version: string }) => m.version === '002',
        );
        assert.equal(entry.status, 'running');

        await db.query('CREATE TABLE part_two (id integer)'); // the person finishes the change by hand
        const resolved = await runCli(['resolve', '002', '--applied', '--url', db.url, '--dir', dir], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(resolved.code, 0, resolved.stderr);
        const c = await runCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV });
        assert.equal(c.code, 0, c.stderr);
        assert.equal(await countLog(db, '002'), 1);
      } finally {
        await db.cleanup();
      }
    });

    it('names the holder while waiting and on lock timeout', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_log.sql': LOG_TABLE,
          '002_hang.ts': hangingModule('002', JS_HANG),
        });
        const a = startCli(['up', '--url', db.url, '--dir', dir], {
          cwd: db.dir,
          env: { LOCKSTEP_TEST_HANG: '1' },
        });
        await a.waitFor(/002: hanging/);
        const b = await runCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '1s'], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        a.child.kill('SIGKILL');
        await a.done;
        const holder = holderPattern(target.kind, a.child.pid);
        assert.equal(b.code, 3, b.stderr);
        assert.match(b.stderr, new RegExp(`waiting for the migration lock, held by ${holder}`));
        assert.match(
          b.stderr,
          new RegExp(
            `gave up waiting for the migration lock .* held by ${holder}${target.kind === 'mysql' ? '' : ' since '}`,
          ),
        );
      } finally {
        await db.cleanup();
      }
    });

    it('a broken migration in a boot race runs once; the waiters report its error instead of retrying', async () => {
      const db = await target.create();
      try {
        // Attempts are counted where a rollback cannot undo them: a file written by a module, or
        // on MySQL (where a module is never transactional) a MyISAM table.
        const attemptsFile = path.join(db.dir, 'attempts.txt');
        const broken: Record<string, string> =
          target.kind === 'mysql'
            ? {
                '002_broken.sql': `-- migrate:up
INSERT INTO attempts (n) VALUES (1);
SELECT SLEEP(0.3);
SELECT no_such_column FROM applied_log;
`,
              }
            : {
                '002_broken.ts': `import { appendFileSync } from 'node:fs';
export async function up(ctx: { query(sql: string): Promise<unknown> }): Promise<void> {
  appendFileSync(${JSON.stringify(attemptsFile)}, 'x');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await ctx.query('SELECT no_such_column FROM applied_log');
}
`,
              };
        if (target.kind === 'mysql') await db.query('CREATE TABLE attempts (n integer) ENGINE=MyISAM');
        const attempts = async () =>
          target.kind === 'mysql'
            ? 'x'.repeat(Number((await db.query('SELECT COUNT(*) AS n FROM attempts'))[0]?.n))
            : readFileSync(attemptsFile, 'utf8');
        const dir = writeMigrations(db.dir, { '001_log.sql': LOG_TABLE, ...broken });
        const runs = await Promise.all(
          Array.from({ length: 20 }, () =>
            runCli(['up', '--json', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV }),
          ),
        );
        assert.deepEqual(
          runs.map((r) => r.code),
          runs.map(() => 1),
        );
        assert.equal(await attempts(), 'x', 'the broken migration ran once in the wave');
        const errors = runs.map((r) => JSON.parse(r.stdout).error).sort();
        assert.equal(errors.filter((e) => e === 'MIGRATION_FAILED').length, 1);
        assert.equal(errors.filter((e) => e === 'FAILED_WHILE_WAITING').length, 19);

        // A straggler of the same wave (starting moments after the failure) does not retry either.
        const straggler = await runCli(['up', '--json', '--url', db.url, '--dir', dir], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(JSON.parse(straggler.stdout).error, 'FAILED_WHILE_WAITING');
        assert.equal(await attempts(), 'x');

        // Once the file changed (a fix), the next up tries it again.
        const [file] = Object.keys(broken) as [string];
        appendFileSync(path.join(dir, file), target.kind === 'mysql' ? '-- fixed?\n' : '// fixed?\n');
        const later = await runCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV });
        assert.equal(later.code, 1);
        assert.equal(await attempts(), 'xx', 'a later up retries it');
      } finally {
        await db.cleanup();
      }
    });
  });
}

describe('crashes: postgres only', () => {
  it('SIGKILL while the backend runs a long statement: the lock is free within 1 s, the next runner applies', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_log.sql': LOG_TABLE,
        '002_sleep.sql':
          "-- migrate:up\nINSERT INTO applied_log (version) VALUES ('002');\nSELECT pg_sleep(4);\n",
      });
      const a = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir });
      await eventually(
        async () =>
          (await db.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%'")).length >
          0,
        'the runner sleeps',
      );
      const b = startCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], { cwd: db.dir });
      await b.waitFor(/waiting for the migration lock/);
      await new Promise((r) => setTimeout(r, 1_000)); // ~1.5 s into the 4 s statement
      const holders = async () =>
        (
          await db.query(
            `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`,
          )
        ).map((r) => Number(r.pid));
      const [holderPid] = await holders();
      assert.ok(holderPid, 'A holds the lock while it sleeps');
      const killedAt = performance.now();
      a.child.kill('SIGKILL');
      await eventually(
        async () => !(await holders()).includes(holderPid),
        "A's backend let go of the lock",
        5_000,
      );
      const freedMs = performance.now() - killedAt;
      await b.waitFor(/applying 002/, 5_000);
      const takenMs = performance.now() - killedAt;
      console.log(
        `# lock free ${freedMs.toFixed(0)} ms after SIGKILL; the waiter took it within ${takenMs.toFixed(0)} ms`,
      );
      assert.ok(freedMs < 1_000, `the lock was free only ${freedMs.toFixed(0)} ms after the kill`);
      const resultB = await b.done;
      assert.equal(resultB.code, 0, resultB.stderr);
      assert.equal(await countLog(db, '002'), 1, 'A rolled back, B applied once');
    } finally {
      await db.cleanup();
    }
  });

  it('pg_terminate_backend on the runner: it exits non-zero, the waiter takes over without overlap', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_log.sql': LOG_TABLE,
        '002_hang.ts': hangingModule('002', "await ctx.query('SELECT pg_sleep(600)');"),
      });
      const a = startCli(['up', '--url', db.url, '--dir', dir], {
        cwd: db.dir,
        env: { LOCKSTEP_TEST_HANG: '1' },
      });
      await a.waitFor(/002: hanging/);
      const b = startCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], { cwd: db.dir });
      await b.waitFor(new RegExp(`waiting for the migration lock, held by ${hostname()}:${a.child.pid}`));
      const [victim] = await db.query(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%' AND datname = current_database()",
      );
      await db.query('SELECT pg_terminate_backend($1)', [victim?.pid]);

      const [resultA, resultB] = await Promise.all([a.done, b.done]);
      assert.equal(resultA.code, 5, resultA.stderr);
      assert.match(resultA.stderr, /lost the database session while running migration 002/);
      assert.match(resultA.stderr, /rolled the migration back/);
      assert.equal(resultB.code, 0, resultB.stderr);
      assert.equal(await countLog(db, '002'), 1, 'A rolled back, B applied once');
    } finally {
      await db.cleanup();
    }
  });

  it('CREATE INDEX CONCURRENTLY in the holder while two runners wait: no deadlock, all finish', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_big.sql': `-- migrate:up
CREATE TABLE big (id integer PRIMARY KEY, v text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
`,
        '002_index.sql': `-- migrate:up transaction:false
SELECT pg_sleep(1);
CREATE INDEX CONCURRENTLY big_v ON big (v);
`,
      });
      const args = ['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'];
      const a = startCli(args, { cwd: db.dir });
      await a.waitFor(/applying 002 index/);
      const b = startCli(args, { cwd: db.dir });
      const c = startCli(args, { cwd: db.dir });
      await Promise.all([
        b.waitFor(/waiting for the migration lock/),
        c.waitFor(/waiting for the migration lock/),
      ]);
      const results = await Promise.all([a.done, b.done, c.done]);
      assert.deepEqual(
        results.map((r) => r.code),
        [0, 0, 0],
        results.map((r) => r.stderr).join('\n'),
      );
      const [index] = await db.query(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'big_v'",
      );
      assert.equal(index?.indisvalid, true);
    } finally {
      await db.cleanup();
    }
  });
});

describe('crashes: mysql only', () => {
  it("KILL of the runner's connection: it exits non-zero, the lock is free at once, the waiter applies", async () => {
    const db = await createMysqlDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_log.sql': LOG_TABLE,
        '002_hang.sql': `-- migrate:up
INSERT INTO applied_log (version) VALUES ('002');
SELECT SLEEP(600) FROM hang_marker;
`,
      });
      const a = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir });
      let victim: unknown;
      await eventually(async () => {
        [victim] = (
          await db.query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(600)%'")
        ).map((r) => r.ID);
        return victim !== undefined;
      }, 'the runner sleeps');
      const b = startCli(['up', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], { cwd: db.dir });
      await b.waitFor(/waiting for the migration lock, held by connection/);
      await db.query('DELETE FROM hang_marker');
      await db.query(`KILL CONNECTION ${Number(victim)}`);

      const [resultA, resultB] = await Promise.all([a.done, b.done]);
      assert.equal(resultA.code, 5, resultA.stderr);
      assert.match(resultA.stderr, /lost the database session while running migration 002/);
      assert.equal(resultB.code, 0, resultB.stderr);
      assert.equal(await countLog(db, '002'), 1, 'A rolled back, B applied once');
    } finally {
      await db.cleanup();
    }
  });
});
