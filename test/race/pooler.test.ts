/**
 * Behind a real PgBouncer in transaction mode (a backend per transaction, shared between
 * clients): with pooler=transaction every migration commits with its ledger row under a
 * transaction lock; without it, every runner either does exactly-once work or refuses cleanly.
 * (Session mode: the race and crash suites run through it as a target of their own.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COUNTED_VERSIONS, countedMigrations } from '../helpers/counted-migrations.js';
import { createPooledPostgresDatabase, type PgBouncer, startPgBouncer } from '../helpers/pgbouncer.js';
import { startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  directPostgresUrl,
  type ProcessResult,
  ROOT,
  runCli,
  runNode,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const ROUNDS = Number(process.env.LOCKSTEP_RACE_ROUNDS ?? 10);
const PROCESSES = Number(process.env.LOCKSTEP_RACE_PROCESSES ?? 20);

/** The race suite's counter migrations, every one transactional (the index built in the transaction). */
const COUNTED = countedMigrations('in a transaction');
const CONCURRENT_INDEX = `-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY users_email_concurrently ON users (email);
INSERT INTO applied_log (version) VALUES ('005');
`;

/** Half the processes through the CLI, half through migrate(), all at once. */
function race(db: TestDatabase, dir: string, url = db.url): Promise<ProcessResult[]> {
  return Promise.all(
    Array.from({ length: PROCESSES }, (_, i) =>
      i % 2 === 0
        ? runCli(['up', '--json', '--url', url, '--dir', dir, '--lock-timeout', '120s'], {
            cwd: db.dir,
            env: CLEAN_ENV,
          })
        : runNode([path.join(ROOT, 'test/fixtures/migrate.mjs'), url, dir], { cwd: db.dir }),
    ),
  );
}

async function counts(db: TestDatabase): Promise<[string, number][]> {
  const rows = await db
    .query('SELECT version, COUNT(*) AS n FROM applied_log GROUP BY version ORDER BY version')
    .catch(() => []);
  return rows.map((r) => [String(r.version), Number(r.n)]);
}

async function ledger(db: TestDatabase): Promise<[string, string][]> {
  const rows = await db
    .query('SELECT version, state FROM lockstep_migrations ORDER BY version')
    .catch(() => []);
  return rows.map((r) => [String(r.version), String(r.state)]);
}

const parsed = (r: ProcessResult) => JSON.parse(r.stdout) as Record<string, unknown>;

describe('behind PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  before(async () => {
    bouncer = await startPgBouncer('transaction', { poolSize: 10 });
  });
  after(async () => {
    await bouncer.stop();
  });
  const pooled = (suffix = '?pooler=transaction') => createPooledPostgresDatabase(bouncer, suffix);

  it(`pooler=transaction: ${PROCESSES} processes × ${ROUNDS} rounds, each migration once, the ledger one row each`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const db = await pooled();
      try {
        const dir = writeMigrations(db.dir, COUNTED);
        const results = await race(db, dir);
        const failed = results.filter((r) => r.code !== 0);
        assert.equal(failed.length, 0, `round ${round}: ${failed[0]?.stdout}${failed[0]?.stderr}`);
        const versions = COUNTED_VERSIONS;
        assert.deepEqual(
          await counts(db),
          versions.map((v) => [v, 1]),
          `round ${round}: each ran once`,
        );
        assert.deepEqual(
          await ledger(db),
          versions.map((v) => [v, 'applied']),
          `round ${round}: ledger`,
        );
        const applied = results.reduce((sum, r) => sum + (parsed(r).applied as unknown[]).length, 0);
        assert.equal(
          applied,
          versions.length,
          `round ${round}: ${versions.length} applications reported in all`,
        );
        const held = await db.query(
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 1279988564",
        );
        assert.equal(Number(held[0]?.n), 0, 'no lock left held on any backend');
      } finally {
        await db.cleanup();
      }
    }
  });

  it('pooler=transaction, a migration failing on purpose: it runs once in the wave, the ledger stays true', async () => {
    for (let round = 1; round <= Math.max(2, Math.ceil(ROUNDS / 3)); round++) {
      const db = await pooled();
      try {
        const attempts = path.join(db.dir, 'attempts.txt');
        const dir = writeMigrations(db.dir, {
          '001_applied_log.sql': COUNTED['001_applied_log.sql'] as string,
          '002_broken.ts': `import { appendFileSync } from 'node:fs';
export async function up(ctx: { query(sql: string): Promise<unknown> }): Promise<void> {
  appendFileSync(${JSON.stringify(attempts)}, 'x');
  await ctx.query("INSERT INTO applied_log (version) VALUES ('002')");
  await new Promise((resolve) => setTimeout(resolve, 300));
  await ctx.query('SELECT no_such_column FROM applied_log');
}
`,
        });
        const results = await race(db, dir);
        assert.deepEqual(
          results.map((r) => r.code),
          results.map(() => 1),
        );
        const errors = results.map((r) => parsed(r).error).sort();
        assert.equal(errors.filter((e) => e === 'MIGRATION_FAILED').length, 1, errors.join(' '));
        assert.equal(errors.filter((e) => e === 'FAILED_WHILE_WAITING').length, PROCESSES - 1);
        assert.equal(readFileSync(attempts, 'utf8'), 'x', 'the broken migration ran once in the wave');
        assert.deepEqual(await counts(db), [['001', 1]], 'its insert was rolled back with it');
        assert.deepEqual(await ledger(db), [
          ['001', 'applied'],
          ['002', 'rolled_back'],
        ]);
      } finally {
        await db.cleanup();
      }
    }
  });

  it(`without the pooler mode: every process applies exactly once or refuses cleanly; the ledger is never wrong (${ROUNDS} rounds)`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const db = await pooled('');
      try {
        const dir = writeMigrations(db.dir, { ...COUNTED, '005_concurrently.sql': CONCURRENT_INDEX });
        const results = await race(db, dir);
        for (const r of results) {
          if (r.code === 0) continue;
          assert.equal(r.code, 6, `round ${round}: refused, not failed: ${r.stdout}${r.stderr}`);
          const error = parsed(r);
          assert.equal(error.error, 'POOLER_REFUSED');
          assert.match(String(error.message), /pooler=transaction/);
          assert.match(String(error.message), /nothing was changed/);
        }
        // Whatever ran, ran once, and the ledger says exactly that.
        const ran = await counts(db);
        assert.ok(
          ran.every(([, n]) => n === 1),
          `round ${round}: ${JSON.stringify(ran)}`,
        );
        assert.deepEqual(
          await ledger(db),
          ran.map(([v]) => [v, 'applied']),
        );
      } finally {
        await db.cleanup();
      }
    }
  });

  it('pooler=transaction refuses a migration outside a transaction, changing nothing; --direct-url runs it', async () => {
    const db = await pooled();
    try {
      const dir = writeMigrations(db.dir, { ...COUNTED, '005_concurrently.sql': CONCURRENT_INDEX });
      const refused = await runCli(['up', '--json', '--url', db.url, '--dir', dir], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(refused.code, 6, refused.stderr);
      const error = parsed(refused);
      assert.equal(error.error, 'POOLER_REFUSED');
      assert.equal(error.version, '005');
      assert.match(String(error.message), /Nothing was changed/);
      assert.match(String(error.message), /--direct-url/);
      assert.deepEqual(await counts(db), [], 'nothing applied');

      const direct = directPostgresUrl(new URL(db.url).pathname.slice(1));
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          runCli(['up', '--json', '--url', db.url, '--direct-url', direct, '--dir', dir], {
            cwd: db.dir,
            env: CLEAN_ENV,
          }),
        ),
      );
      for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(
        await counts(db),
        ['001', '002', '003', '004', '005'].map((v) => [v, 1]),
      );
    } finally {
      await db.cleanup();
    }
  });

  it('a SIGKILLed runner: its transaction and lock end with it at once, the next runner applies the migration once', async () => {
    const db = await pooled();
    try {
      const dir = writeMigrations(db.dir, {
        '001_applied_log.sql': `-- migrate:up
CREATE TABLE applied_log (version varchar(32) NOT NULL);
CREATE TABLE hang_marker (n integer);
INSERT INTO hang_marker (n) VALUES (1);
`,
        '002_hang.sql': `-- migrate:up
INSERT INTO applied_log (version) VALUES ('002');
SELECT pg_sleep(600) FROM hang_marker;
`,
      });
      const a = startCli(['up', '--url', db.url, '--dir', dir], { cwd: db.dir });
      await a.waitFor(/applying 002 hang\n/);
      await new Promise((r) => setTimeout(r, 300));
      a.child.kill('SIGKILL');
      assert.equal((await a.done).signal, 'SIGKILL');
      await db.query('DELETE FROM hang_marker');
      const b = await runCli(['up', '--json', '--url', db.url, '--dir', dir, '--lock-timeout', '60s'], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(b.code, 0, b.stdout + b.stderr);
      const result = parsed(b) as { applied: { version: string }[]; waitedMs: number };
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['002'],
      );
      assert.ok(result.waitedMs < 2_000, `the lock was free within 2 s (waited ${result.waitedMs} ms)`);
      assert.deepEqual(await counts(db), [['002', 1]]);
      assert.deepEqual(await ledger(db), [
        ['001', 'applied'],
        ['002', 'applied'],
      ]);
    } finally {
      await db.cleanup();
    }
  });

  it('nothing relies on session state: what other clients left on the backend is not used, what a migration sets does not leak', async () => {
    // One server connection: every client, lockstep's and the test's, gets the same backend.
    const single = await startPgBouncer('transaction', { poolSize: 1 });
    const db = await createPooledPostgresDatabase(single, '?pooler=transaction');
    const pg = (await import('pg')).default;
    const other = new pg.Client({ connectionString: single.url(new URL(db.url).pathname.slice(1)) });
    try {
      await db.query('CREATE SCHEMA elsewhere');
      await other.connect();
      await other.query("SET search_path TO elsewhere; SET application_name TO 'someone else'");
      const dir = writeMigrations(db.dir, {
        '001_made.sql': `-- migrate:up
CREATE TABLE made (id integer);
SET work_mem = '7MB';
SET search_path TO elsewhere;
`,
      });
      const run = await runCli(['up', '--json', '--url', db.url, '--dir', dir], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const [made] = await db.query(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'made'",
      );
      assert.equal(made?.table_schema, 'public', "the other client's search_path was not lockstep's");
      const after = await other.query("SELECT current_setting('work_mem') AS work_mem");
      assert.notEqual(after.rows[0]?.work_mem, '7MB', "the migration's SET did not outlive its commit");
    } finally {
      await other.end().catch(() => {});
      await db.cleanup();
      await single.stop();
    }
  });

  it('long-running migration commands are refused through it, saying what to use instead', async () => {
    const db = await pooled();
    try {
      writeMigrations(db.dir, {}, 'db/async-migrations');
      const run = await runCli(['async', 'list', '--json', '--url', db.url], { cwd: db.dir, env: CLEAN_ENV });
      assert.equal(run.code, 6, run.stdout + run.stderr);
      const error = parsed(run);
      assert.equal(error.error, 'POOLER_REFUSED');
      assert.equal(error.reason, 'long-running');
      assert.match(String(error.message), /session-mode pooler|PostgreSQL itself/);
    } finally {
      await db.cleanup();
    }
  });

  it("--direct-url's password reaches no output when the command goes through it and fails", async () => {
    const db = await pooled();
    try {
      const dir = writeMigrations(db.dir, { '005_concurrently.sql': CONCURRENT_INDEX });
      const secret = 'hunter2-direct-only';
      const unreachable = `postgres://postgres:${secret}@127.0.0.1:1/${new URL(db.url).pathname.slice(1)}`;
      for (const json of [[], ['--json']]) {
        const run = await runCli(
          ['up', ...json, '--url', db.url, '--direct-url', unreachable, '--dir', dir],
          {
            cwd: db.dir,
            env: CLEAN_ENV,
          },
        );
        assert.equal(run.code, 5, run.stdout + run.stderr);
        assert.ok(!(run.stdout + run.stderr).includes(secret), run.stdout + run.stderr);
        assert.match(
          run.stdout + run.stderr,
          /cannot connect to postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\//,
        );
      }
    } finally {
      await db.cleanup();
    }
  });

  it("the application's pg.Pool through the pooler: migrate({ client, pooler: 'transaction' }) runs on it and leaves it usable", async () => {
    const db = await pooled('');
    const { default: pg } = await import('pg');
    const { migrate } = await import('../../dist/index.js');
    const pool = new pg.Pool({ connectionString: db.url, max: 3 });
    try {
      const dir = writeMigrations(db.dir, COUNTED);
      const results = await Promise.all(
        Array.from({ length: 3 }, () => migrate({ client: pool, pooler: 'transaction', dir, cwd: db.dir })),
      );
      assert.equal(
        results.reduce((sum, r) => sum + r.applied.length, 0),
        COUNTED_VERSIONS.length,
      );
      assert.deepEqual(
        await counts(db),
        COUNTED_VERSIONS.map((v) => [v, 1]),
      );
      const again = await migrate({ client: pool, pooler: 'transaction', dir, cwd: db.dir });
      assert.equal(again.upToDate, true);
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM applied_log');
      assert.equal(rows[0]?.n, 4, 'the pool still serves the application');
      assert.equal(pool.totalCount <= 3, true);
    } finally {
      await pool.end();
      await db.cleanup();
    }
  });
});
