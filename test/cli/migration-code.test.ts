/**
 * What migration code does cannot be misreported (SPEC guarantee 13): a migration that calls
 * process.exit(), one that begins or ends its own transaction, one that runs too long. The CLI as a
 * real process against every database.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createSqliteDatabase,
  type DatabaseKind,
  type ProcessResult,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const LEDGER = 'lockstep_migrations';

const USERS = `-- migrate:up
CREATE TABLE users (id integer PRIMARY KEY);
-- migrate:down
DROP TABLE users;
`;

/** A statement that runs for `seconds` on the server (SQLite has none: its API is synchronous). */
const SLEEP: Record<DatabaseKind, (seconds: number) => string> = {
  postgres: (s) => `SELECT pg_sleep(${s})`,
  mysql: (s) => `SELECT SLEEP(${s})`,
  sqlite: () => 'SELECT 1',
};

/** Module migrations run in a transaction where DDL can (not on MySQL). */
const transactionalModules = (kind: DatabaseKind) => kind !== 'mysql';

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

const TABLES: Record<DatabaseKind, string> = {
  postgres: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`,
  mysql: `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`,
  sqlite: `SELECT name FROM sqlite_master WHERE type = 'table'`,
};

async function tables(db: TestDatabase): Promise<string[]> {
  return (await db.query(TABLES[db.kind])).map((r) => String(r.name)).sort();
}

/** version → [state, statements_done]; empty when there is no ledger. */
async function ledger(db: TestDatabase): Promise<Record<string, [string, number, string | null]>> {
  if (!(await tables(db)).includes(LEDGER)) return {};
  const rows = await db.query(
    `SELECT version, state, statements_done, error FROM ${LEDGER} ORDER BY version`,
  );
  return Object.fromEntries(
    rows.map((r) => [
      String(r.version),
      [String(r.state), Number(r.statements_done), r.error === null ? null : String(r.error)],
    ]),
  );
}

for (const target of TARGETS) {
  describe(`migration code: ${target.kind}`, () => {
    let db: TestDatabase;
    beforeEach(async () => {
      db = await target.create();
    });
    afterEach(async () => {
      await db.cleanup();
    });
    const up = (...args: string[]) =>
      runCli(['up', '--url', db.url, '--dir', 'migrations', ...args], { cwd: db.dir, env: CLEAN_ENV });

    describe('process.exit()', () => {
      it('in up() is a failure, reported with its line, the ledger consistent', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_exits.mjs': `export async function up(ctx) {
  await ctx.exec('CREATE TABLE made_before_exit (id integer)');
  process.exit(0);
}
`,
        });
        const result = await up();
        assert.equal(result.code, 1, show(result));
        assert.match(result.stderr, /called process\.exit\(0\)/);
        assert.match(result.stderr, /002_exits\.mjs:3/);
        const rows = await ledger(db);
        assert.equal(rows['001']?.[0], 'applied');
        if (transactionalModules(target.kind)) {
          assert.match(result.stderr, /state: rolled back/);
          assert.equal(rows['002']?.[0], 'rolled_back');
          assert.ok(!(await tables(db)).includes('made_before_exit'), 'nothing of it committed');
        } else {
          assert.match(result.stderr, /state: partially applied/);
          assert.deepEqual(rows['002']?.slice(0, 2), ['failed', 1]);
          assert.ok((await tables(db)).includes('made_before_exit'));
        }
        assert.match(rows['002']?.[2] ?? '', /process\.exit\(0\)/);
      });

      it('that the migration catches is still a failure', async () => {
        writeMigrations(db.dir, {
          '001_swallows.mjs': `export async function up(ctx) {
  try {
    process.exit(0);
  } catch {}
  await ctx.exec('CREATE TABLE after_exit (id integer)');
}
`,
        });
        const result = await up();
        assert.equal(result.code, 1, show(result));
        assert.match(result.stderr, /called process\.exit\(0\)/);
        assert.notEqual((await ledger(db))['001']?.[0], 'applied');
      });

      it('at import changes nothing and exits 2', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_exits.mjs': `process.exit(0);
export async function up() {}
`,
        });
        const result = await up();
        assert.equal(result.code, 2, show(result));
        assert.match(result.stderr, /002_exits\.mjs: .*called process\.exit\(0\)/);
        assert.equal(result.stderr.match(/process\.exit/g)?.length, 1, 'reported once');
        assert.match(result.stderr, /nothing was changed/);
        assert.deepEqual(await ledger(db), {});
        assert.ok(!(await tables(db)).includes('users'));
      });
    });

    describe('transaction control', () => {
      const BEGIN_COMMIT = (marker: string) => `${marker}
BEGIN;
CREATE TABLE inner_table (id integer);
COMMIT;
INSERT INTO missing_table VALUES (1);
`;

      if (target.kind !== 'mysql') {
        it('in a transactional SQL migration is refused before anything runs, with file and line', async () => {
          writeMigrations(db.dir, { '001_users.sql': USERS, '002_tx.sql': BEGIN_COMMIT('-- migrate:up') });
          const result = await up();
          assert.equal(result.code, 2, show(result));
          assert.match(result.stderr, /002_tx\.sql:2: BEGIN: lockstep runs this migration in a transaction/);
          assert.match(result.stderr, /002_tx\.sql:4: COMMIT/);
          assert.match(result.stderr, /transaction:false/);
          assert.deepEqual(await ledger(db), {});
          assert.deepEqual(await tables(db), [], 'nothing ran, not even 001');
        });
      } else {
        it('in a MySQL migration with DDL runs it as written and reports what stays applied', async () => {
          writeMigrations(db.dir, { '002_tx.sql': BEGIN_COMMIT('-- migrate:up') });
          const result = await up();
          assert.equal(result.code, 1, show(result));
          assert.match(result.stderr, /state: partially applied/);
          assert.doesNotMatch(result.stderr, /rolled back/);
          assert.deepEqual((await ledger(db))['002']?.slice(0, 2), ['failed', 3]);
          assert.ok((await tables(db)).includes('inner_table'));
        });
      }

      it('with transaction:false runs as written and reports what stays applied', async () => {
        writeMigrations(db.dir, { '002_tx.sql': BEGIN_COMMIT('-- migrate:up transaction:false') });
        const result = await up();
        assert.equal(result.code, 1, show(result));
        assert.match(result.stderr, /statements 1\.\.3 were applied/);
        assert.deepEqual((await ledger(db))['002']?.slice(0, 2), ['failed', 3]);
        assert.ok((await tables(db)).includes('inner_table'));
      });

      it('sent by a module in a transactional migration is refused at the call, never sent', async () => {
        writeMigrations(db.dir, {
          '001_commits.mjs': `export async function up(ctx) {
  await ctx.exec('CREATE TABLE made (id integer)');
  await ctx.query('COMMIT');
  await ctx.exec('INSERT INTO missing_table VALUES (1)');
}
`,
        });
        const result = await up();
        const rows = await ledger(db);
        if (transactionalModules(target.kind)) {
          assert.equal(result.code, 1, show(result));
          assert.match(result.stderr, /001_commits\.mjs:3/);
          assert.match(result.stderr, /COMMIT would end the transaction lockstep runs this migration in/);
          assert.match(result.stderr, /state: rolled back/);
          assert.equal(rows['001']?.[0], 'rolled_back');
          assert.ok(!(await tables(db)).includes('made'), 'nothing committed');
        } else {
          // Not transactional on MySQL: COMMIT is the module's own business; the INSERT fails.
          assert.equal(result.code, 1, show(result));
          assert.deepEqual(rows['001']?.slice(0, 2), ['failed', 2]);
        }
      });
    });

    describe('time limits', () => {
      it('a module that never settles fails at its own timeout; the lock is released', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_hangs.mjs': `export const timeout = '1s';
export async function up(ctx) {
  await ctx.exec('CREATE TABLE before_hang (id integer)');
  await new Promise(() => {});
}
`,
        });
        const started = Date.now();
        const result = await up();
        assert.equal(result.code, 1, show(result));
        assert.ok(Date.now() - started < 15_000, 'ended soon after the limit');
        assert.match(result.stderr, /ran longer than its own timeout of 1s/);
        assert.match(result.stderr, /002_hangs\.mjs/);
        assert.match(result.stderr, /export const timeout/);
        const rows = await ledger(db);
        assert.equal(rows['001']?.[0], 'applied');
        if (transactionalModules(target.kind)) {
          assert.equal(rows['002']?.[0], 'rolled_back');
          assert.ok(!(await tables(db)).includes('before_hang'));
        } else {
          assert.deepEqual(rows['002']?.slice(0, 2), ['failed', 1]);
        }
        const status = await runCli(['status', '--url', db.url, '--dir', 'migrations', '--json'], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(JSON.parse(status.stdout).lockHolder, null, 'the lock is free');
      });

      it('a module whose import never finishes changes nothing and exits 2', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_never_loads.mjs': 'await new Promise(() => {});\nexport async function up() {}\n',
        });
        const result = await up('--migration-timeout', '1s');
        assert.equal(result.code, 2, show(result));
        assert.match(
          result.stderr,
          /002_never_loads\.mjs: its import did not finish within --migration-timeout 1s/,
        );
        assert.deepEqual(await ledger(db), {});
      });

      it('--run-timeout ends the run at the migration that crosses it', async () => {
        const pause = (ms: number) =>
          `export async function up() { await new Promise((r) => setTimeout(r, ${ms})); }\n`;
        writeMigrations(db.dir, {
          '001_a.mjs': pause(600),
          '002_b.mjs': pause(600),
          '003_c.mjs': pause(600),
        });
        const result = await up('--run-timeout', '1500ms');
        assert.equal(result.code, 1, show(result));
        assert.match(result.stderr, /migration 003 \(up\) failed .*ran longer than --run-timeout 1500ms/);
        assert.match(result.stderr, /raise --run-timeout/);
        const rows = await ledger(db);
        assert.equal(rows['001']?.[0], 'applied');
        assert.equal(rows['002']?.[0], 'applied');
        assert.equal(rows['003']?.[0], transactionalModules(target.kind) ? 'rolled_back' : 'failed');
      });

      it('refuses a malformed limit with exit 2', async () => {
        for (const args of [
          ['--migration-timeout', 'soon'],
          ['--run-timeout', '0'],
        ]) {
          const result = await up(...args);
          assert.equal(result.code, 2, show(result));
          assert.match(result.stderr, /timeout/);
        }
      });

      if (target.kind === 'sqlite') return;

      it('a statement that runs past --migration-timeout is cancelled on the server; a waiting runner proceeds', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_slow.sql': `-- migrate:up
INSERT INTO users VALUES (1);
${SLEEP[target.kind](60)};
`,
        });
        const first = startCli(['up', '--url', db.url, '--dir', 'migrations', '--migration-timeout', '2s'], {
          cwd: db.dir,
        });
        await first.waitFor(/applying 002/);
        const second = startCli(['up', '--url', db.url, '--dir', 'migrations'], { cwd: db.dir });
        await second.waitFor(/waiting for the migration lock/);
        const a = await first.done;
        assert.equal(a.code, 1, show(a));
        assert.match(
          a.stderr,
          /002_slow\.sql:3 \(statement 2 of 2\): ran longer than --migration-timeout 2s/,
        );
        assert.match(a.stderr, /state: rolled back/);
        assert.match(a.stderr, /the lock is released/);
        // The second runner gets the lock at once and does not run the failed migration again.
        const b = await second.done;
        assert.equal(b.code, 1, show(b));
        assert.match(b.stderr, /just failed in/);
        const rows = await ledger(db);
        assert.equal(rows['002']?.[0], 'rolled_back');
        assert.match(rows['002']?.[2] ?? '', /ran longer than --migration-timeout/);
        assert.deepEqual(
          (await db.query('SELECT COUNT(*) AS n FROM users')).map((r) => Number(r.n)),
          [0],
          'its INSERT rolled back',
        );
        const sleeping = await db.query(
          target.kind === 'postgres'
            ? "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            : "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(60)%' AND ID <> CONNECTION_ID()",
        );
        assert.deepEqual(sleeping, [], 'the statement no longer runs on the server');
      });

      it('a non-transactional migration past its timeout: is recorded failed with the statements done', async () => {
        writeMigrations(db.dir, {
          '001_slow.sql': `-- migrate:up transaction:false timeout:1s
CREATE TABLE before_sleep (id integer);
${SLEEP[target.kind](60)};
CREATE TABLE after_sleep (id integer);
`,
        });
        const result = await up();
        assert.equal(result.code, 1, show(result));
        assert.match(result.stderr, /ran longer than its own timeout of 1s/);
        assert.match(result.stderr, /state: partially applied/);
        assert.match(result.stderr, /timeout:<duration> on its -- migrate:up line/);
        const [state, done] = (await ledger(db))['001'] ?? [];
        assert.equal(state, 'failed');
        assert.equal(done, 1, 'the cancelled statement did not complete');
        assert.ok(!(await tables(db)).includes('after_sleep'), 'nothing after the limit ran');
        const again = await up();
        assert.equal(again.code, 4, show(again));
      });

      it('a module awaiting a statement that hangs: the statement is cancelled', async () => {
        writeMigrations(db.dir, {
          '001_users.sql': USERS,
          '002_waits.mjs': `export async function up(ctx) {
  await ctx.query(${JSON.stringify(SLEEP[target.kind](60))});
}
`,
        });
        const started = Date.now();
        const result = await up('--migration-timeout', '1s');
        assert.equal(result.code, 1, show(result));
        assert.ok(Date.now() - started < 15_000);
        assert.match(result.stderr, /ran longer than --migration-timeout 1s/);
        assert.match(result.stderr, /002_waits\.mjs:2/);
        const rows = await ledger(db);
        assert.equal(rows['002']?.[0], transactionalModules(target.kind) ? 'rolled_back' : 'failed');
      });
    });
  });
}

describe('migration code: an exit the guard cannot stop', () => {
  it('ends the run with exit 1 and a message, never a silent 0', async () => {
    const target = TARGETS.find((t) => t.kind === 'postgres') ?? TARGETS[0];
    if (!target) return;
    const db = await target.create();
    try {
      writeMigrations(db.dir, {
        // Schedules the exit for later, outside its own up().
        '001_later.mjs': 'export async function up() { setTimeout(() => process.exit(0), 200); }\n',
        // Still running when the timer fires, on any database (SQLite cannot sleep in SQL).
        '002_slow.mjs': 'export async function up() { await new Promise((r) => setTimeout(r, 2000)); }\n',
      });
      const result = await runCli(['up', '--url', db.url, '--dir', 'migrations'], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(result.code, 1, show(result));
      assert.match(result.stderr, /the process ended before the run finished/);
    } finally {
      await db.cleanup();
    }
  });

  it('with no limit, a module awaiting what never settles on SQLite (nothing left to wait for) exits 1 and says so', async () => {
    const db = await createSqliteDatabase();
    try {
      writeMigrations(db.dir, {
        '001_waits.mjs':
          "export async function up(ctx) {\n  await ctx.exec('CREATE TABLE x (id integer)');\n  await new Promise(() => {});\n}\n",
      });
      const result = await runCli(
        ['up', '--url', db.url, '--dir', 'migrations', '--migration-timeout', 'off'],
        {
          cwd: db.dir,
          env: CLEAN_ENV,
        },
      );
      assert.equal(result.code, 1, show(result));
      assert.match(result.stderr, /the process ended before the run finished/);
      assert.notEqual((await ledger(db))['001']?.[0], 'applied');
      assert.ok(!(await tables(db)).includes('x'), 'its transaction never committed');
    } finally {
      await db.cleanup();
    }
  });
});
