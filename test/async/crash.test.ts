/**
 * Long-running migrations when things go wrong for real: SIGKILL of the worker mid-operation
 * (found dead at once, resumed or rolled back), failing operations and rollbacks, graceful and
 * forced stops, a worker handing its run over on SIGTERM.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readTrace, stateRow, traceTableSql, writeDefinitions } from '../helpers/async.js';
import { eventually, startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  type DatabaseKind,
  runCli,
  TARGETS,
  type TestDatabase,
} from '../helpers/targets.js';

/** Runs long while hang_marker has a row, at once once the test emptied it (see test/race/crash.test.ts). */
const SLOW_WHILE_MARKED: Record<DatabaseKind, string> = {
  postgres: 'SELECT pg_sleep(600) FROM hang_marker',
  mysql: 'SELECT SLEEP(3) FROM hang_marker',
  sqlite:
    'WITH RECURSIVE c(x) AS (SELECT 1 FROM hang_marker UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT COUNT(*) FROM c',
};

/** op1 and op3 log themselves; op2 logs, then hangs while marked. Each rollback logs undoN. */
function threeSteps(kind: DatabaseKind, name: string, op2Extra = ''): string {
  const log = (ev: string) => `INSERT INTO trace (name, ev) VALUES ('${name}', '${ev}');`;
  return `-- async:description three steps, the second one slow
-- async:operation
${log('op1')}
-- async:rollback
${log('undo1')}
-- async:operation${op2Extra}
${log('op2')}
${SLOW_WHILE_MARKED[kind]};
-- async:rollback
${log('undo2')}
-- async:operation
${log('op3')}
-- async:rollback
${log('undo3')}
`;
}

async function setup(db: TestDatabase, files: Record<string, string>): Promise<string> {
  await db.query(traceTableSql(db.kind));
  await db.query('CREATE TABLE hang_marker (n integer)');
  await db.query('INSERT INTO hang_marker (n) VALUES (1)');
  return writeDefinitions(db.dir, files);
}

function cli(db: TestDatabase, dir: string, args: string[]) {
  return runCli(['async', ...args, '--url', db.url, '--async-dir', dir], { cwd: db.dir, env: CLEAN_ENV });
}

function start(db: TestDatabase, dir: string, args: string[]) {
  return startCli(['async', ...args, '--url', db.url, '--async-dir', dir], { cwd: db.dir });
}

async function status(db: TestDatabase, dir: string, name: string) {
  const r = await cli(db, dir, ['status', name, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    runs: Record<string, unknown>[];
    errors: { operation: number | null; statement: string | null; message: string; direction: string }[];
  };
}

/** Starts `trigger <name> --wait`, and SIGKILLs it once operation 2 has been running a moment. */
async function killInOperationTwo(db: TestDatabase, dir: string, name: string): Promise<number> {
  const worker = start(db, dir, ['trigger', name, '--wait']);
  await eventually(async () => Number((await stateRow(db, name))?.op_index) === 1, 'operation 2 starts');
  await new Promise((r) => setTimeout(r, 400));
  worker.child.kill('SIGKILL');
  assert.equal((await worker.done).signal, 'SIGKILL');
  return worker.child.pid as number;
}

/** Polls status until the run shows a dead worker: how many status calls and ms after the kill. */
async function deadAfter(
  db: TestDatabase,
  dir: string,
  name: string,
): Promise<{ calls: number; ms: number }> {
  const killedAt = performance.now();
  for (let calls = 1; ; calls++) {
    const run = (await status(db, dir, name)).runs[0];
    if (run?.alive === false) return { calls, ms: performance.now() - killedAt };
    assert.ok(performance.now() - killedAt < 10_000, `not seen dead after 10 s: ${JSON.stringify(run)}`);
  }
}

for (const target of TARGETS) {
  describe(`long-running migrations, crashes: ${target.kind}`, () => {
    it('SIGKILL mid-operation: seen dead at once; resume re-runs the in-flight operation and completes', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, { 'k1.sql': threeSteps(target.kind, 'k1') });
        const pid = await killInOperationTwo(db, dir, 'k1');

        const dead = await deadAfter(db, dir, 'k1');
        assert.ok(
          dead.calls <= 2 && dead.ms < 2_000,
          `the dead worker is seen at once: ${JSON.stringify(dead)}`,
        );
        const seen = (await status(db, dir, 'k1')).runs[0] as Record<string, unknown>;
        assert.equal(seen.state, 'running');
        assert.match(String(seen.worker), new RegExp(`:${pid}$`));
        assert.deepEqual(seen.actions, ['resume', 'rollback', 'stop']);
        const text = await cli(db, dir, ['status', 'k1']);
        assert.match(text.stdout, /its worker \S+ is gone \(its lock is free\)/);
        assert.match(
          text.stdout,
          /next: +lockstep async resume k1 \| lockstep async rollback k1 \| lockstep async stop k1/,
        );

        await db.query('DELETE FROM hang_marker');
        const resumed = await cli(db, dir, ['resume', 'k1', '--wait']);
        assert.equal(resumed.code, 0, resumed.stderr);
        if (target.kind === 'mysql') {
          // MySQL runs a dead client's statement to its end: resume waited for it. (Postgres
          // cancelled it within client_connection_check_interval: see the postgres-only test.)
          assert.match(
            resumed.stderr,
            /k1: waiting for a statement its dead worker left running .*hang_marker/,
          );
        }
        assert.deepEqual(await readTrace(db), ['k1:op1', 'k1:op2', 'k1:op3'], 'each operation applied once');
        const after = await status(db, dir, 'k1');
        assert.equal(after.runs[0]?.state, 'completed');
        assert.ok(
          after.errors.some((e) => /worker \S+ is gone/.test(e.message) && e.operation === 2),
          JSON.stringify(after.errors),
        );
      } finally {
        await db.cleanup();
      }
    });

    it('SIGKILL mid-operation, then rollback: undoes the in-flight and completed operations, newest first', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, { 'k2.sql': threeSteps(target.kind, 'k2') });
        await killInOperationTwo(db, dir, 'k2');
        await db.query('DELETE FROM hang_marker');
        const args = ['rollback', 'k2', '--wait', ...(target.kind === 'mysql' ? ['--cancel-orphans'] : [])];
        const rolled = await cli(db, dir, args);
        assert.equal(rolled.code, 0, rolled.stderr);
        if (target.kind === 'mysql')
          assert.match(rolled.stderr, /k2: cancelled a statement its dead worker left running/);
        assert.deepEqual(await readTrace(db), ['k2:op1', 'k2:undo2', 'k2:undo1']);
        const run = (await status(db, dir, 'k2')).runs[0];
        assert.equal(run?.state, 'rolled_back');
        assert.equal(run?.progress, 0);
      } finally {
        await db.cleanup();
      }
    });

    it('a dead worker is found by the next trigger: its run is marked errored, the new one starts', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, {
          'k3.sql': threeSteps(target.kind, 'k3'),
          'other.sql': `-- async:description another\n-- async:operation\nINSERT INTO trace (name, ev) VALUES ('other', 'op1');\n-- async:rollback\n`,
        });
        await killInOperationTwo(db, dir, 'k3');
        const other = await cli(db, dir, ['trigger', 'other', '--json']);
        assert.equal(other.code, 0, other.stderr);
        assert.equal(JSON.parse(other.stdout).reaped, 'k3');
        const k3 = await status(db, dir, 'k3');
        assert.equal(k3.runs[0]?.state, 'errored');
        assert.match(String(k3.runs[0]?.error), /worker \S+ is gone .* in operation 2 of 3; marked errored/);
        assert.deepEqual(k3.runs[0]?.actions, ['resume', 'rollback']);
      } finally {
        await db.cleanup();
      }
    });

    it('a worker with --on-dead resume takes over a dead run and completes it', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, { 'k4.sql': threeSteps(target.kind, 'k4') });
        await killInOperationTwo(db, dir, 'k4');
        await db.query('DELETE FROM hang_marker');
        const worker = await cli(db, dir, ['worker', '--once', '--on-dead', 'resume']);
        assert.equal(worker.code, 0, worker.stderr);
        assert.match(worker.stdout, /executed 1 run/);
        assert.deepEqual(await readTrace(db), ['k4:op1', 'k4:op2', 'k4:op3']);
        assert.equal((await stateRow(db, 'k4'))?.state, 'completed');
      } finally {
        await db.cleanup();
      }
    });

    it('a failing operation: error row with operation, statement and line; errored, never completed; resume after the fix', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, {
          'f1.sql': `-- async:description fails in operation 2
-- async:operation
INSERT INTO trace (name, ev) VALUES ('f1', 'op1');
-- async:rollback
-- async:operation
INSERT INTO trace (name, ev) VALUES ('f1', 'op2');
INSERT INTO missing_table (n) VALUES (1);
-- async:rollback
-- async:operation
INSERT INTO trace (name, ev) VALUES ('f1', 'op3');
-- async:rollback
`,
        });
        const failed = await cli(db, dir, ['trigger', 'f1', '--wait']);
        assert.equal(failed.code, 1, failed.stderr);
        assert.match(
          failed.stderr,
          /long-running migration f1 is errored: operation 2 of 3 failed at \S*f1\.sql:7: .*missing_table/,
        );
        assert.match(failed.stderr, /fix: lockstep async resume f1 .* or lockstep async rollback f1/);
        const s = await status(db, dir, 'f1');
        assert.equal(s.runs[0]?.state, 'errored');
        assert.deepEqual(s.runs[0]?.actions, ['resume', 'rollback']);
        assert.equal(s.errors.length, 1);
        assert.equal(s.errors[0]?.operation, 2);
        assert.equal(s.errors[0]?.statement, 'INSERT INTO missing_table (n) VALUES (1)');
        assert.deepEqual(await readTrace(db), ['f1:op1'], 'operation 2 rolled back whole');
        // Still errored for every later look: a failure never lets the run be completed.
        const worker = await cli(db, dir, ['worker', '--once']);
        assert.equal(worker.code, 0, worker.stderr);
        assert.equal((await stateRow(db, 'f1'))?.state, 'errored');

        await db.query('CREATE TABLE missing_table (n integer)');
        const resumed = await cli(db, dir, ['resume', 'f1', '--wait']);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.deepEqual(await readTrace(db), ['f1:op1', 'f1:op2', 'f1:op3']);
        assert.equal((await stateRow(db, 'f1'))?.state, 'completed');
      } finally {
        await db.cleanup();
      }
    });

    it('a failing rollback leaves the run errored with both exits; rollback again after the fix', async () => {
      const db = await target.create();
      try {
        const dir = await setup(db, {
          'f2.sql': `-- async:description its first rollback fails
-- async:operation
INSERT INTO trace (name, ev) VALUES ('f2', 'op1');
-- async:rollback
INSERT INTO missing_table (n) VALUES (1);
INSERT INTO trace (name, ev) VALUES ('f2', 'undo1');
-- async:operation
INSERT INTO trace (name, ev) VALUES ('f2', 'op2');
-- async:rollback
INSERT INTO trace (name, ev) VALUES ('f2', 'undo2');
`,
        });
        assert.equal((await cli(db, dir, ['trigger', 'f2', '--wait'])).code, 0);
        const failed = await cli(db, dir, ['rollback', 'f2', '--wait', '--json']);
        assert.equal(failed.code, 1, failed.stderr);
        assert.equal(JSON.parse(failed.stdout).error, 'ASYNC_FAILED');
        const s = await status(db, dir, 'f2');
        assert.equal(s.runs[0]?.state, 'errored');
        assert.equal(s.runs[0]?.direction, 'rollback');
        assert.deepEqual(s.runs[0]?.actions, ['resume', 'rollback']);
        assert.match(String(s.runs[0]?.error), /rollback of operation 1 of 2 failed at \S*f2\.sql:5/);
        assert.equal(s.errors.at(-1)?.direction, 'rollback');

        await db.query('CREATE TABLE missing_table (n integer)');
        const again = await cli(db, dir, ['rollback', 'f2', '--wait']);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(await readTrace(db), ['f2:op1', 'f2:op2', 'f2:undo2', 'f2:undo1']);
        assert.equal((await stateRow(db, 'f2'))?.state, 'rolled_back');
      } finally {
        await db.cleanup();
      }
    });

    it('graceful stop mid-backfill, resume, SIGTERM hand-over: every row updated exactly once', async () => {
      const db = await target.create();
      try {
        await db.query('CREATE TABLE items (id integer PRIMARY KEY, n integer NOT NULL)');
        const values = Array.from({ length: 400 }, (_, i) => `(${i + 1}, 0)`).join(', ');
        await db.query(`INSERT INTO items (id, n) VALUES ${values}`);
        const dir = await setup(db, {
          'b1.sql': `-- async:description bump every item once
-- async:parameter size 10 keys per batch
-- async:operation batched table:items key:id batch_size:{{size}} pause:30ms
UPDATE items SET n = n + 1 WHERE id >= :start AND id < :end;
-- async:rollback
UPDATE items SET n = n - 1 WHERE id >= :start AND id < :end;
`,
        });
        const first = start(db, dir, ['trigger', 'b1', '--wait']);
        await eventually(async () => Number((await stateRow(db, 'b1'))?.progress) > 10, 'a few batches done');
        const stop = await cli(db, dir, ['stop', 'b1']);
        assert.equal(stop.code, 0, stop.stderr);
        assert.match(stop.stdout, /b1: running → stopping/);
        const stopped = await first.done;
        assert.equal(stopped.code, 1, 'the waiting process reports the stop');
        assert.match(
          stopped.stderr,
          /stopped on request in operation 1 of 1, batched: keys 1\.\.\d+ of 1\.\.400 done; resume continues from there/,
        );
        const row = await stateRow(db, 'b1');
        assert.equal(row?.state, 'errored');
        const cursor = Number(row?.batch_cursor);
        const counts = await db.query('SELECT n, COUNT(*) AS c FROM items GROUP BY n ORDER BY n');
        assert.deepEqual(
          counts.map((r) => [Number(r.n), Number(r.c)]),
          [
            [0, 401 - cursor],
            [1, cursor - 1],
          ],
          'exactly the batches before the cursor were applied',
        );

        // Resume in a background worker; SIGTERM it mid-way: it hands the run over.
        await cli(db, dir, ['resume', 'b1']);
        const worker = start(db, dir, ['worker', '--poll', '50ms']);
        await eventually(
          async () => Number((await stateRow(db, 'b1'))?.batch_cursor) > cursor + 20,
          'the worker goes on',
        );
        worker.child.kill('SIGTERM');
        const ended = await worker.done;
        assert.equal(ended.code, 0, ended.stderr);
        const handed = await status(db, dir, 'b1');
        assert.equal(handed.runs[0]?.state, 'running');
        assert.equal(handed.runs[0]?.waitingForWorker, true);
        assert.match(String(handed.runs[0]?.note), /handed over by \S+ \(shutting down\)/);

        const rest = await cli(db, dir, ['worker', '--once']);
        assert.equal(rest.code, 0, rest.stderr);
        assert.equal((await stateRow(db, 'b1'))?.state, 'completed');
        const all = await db.query('SELECT n, COUNT(*) AS c FROM items GROUP BY n');
        assert.deepEqual(
          all.map((r) => [Number(r.n), Number(r.c)]),
          [[1, 400]],
        );
      } finally {
        await db.cleanup();
      }
    });

    if (target.kind !== 'sqlite') {
      it('stop --force cancels the running statement on the server; the run is errored', async () => {
        const db = await target.create();
        try {
          const dir = await setup(db, { 'k5.sql': threeSteps(target.kind, 'k5') });
          const worker = start(db, dir, ['trigger', 'k5', '--wait']);
          await eventually(
            async () => Number((await stateRow(db, 'k5'))?.op_index) === 1,
            'operation 2 starts',
          );
          await new Promise((r) => setTimeout(r, 300));
          const stop = await cli(db, dir, ['stop', 'k5', '--force', '--json']);
          assert.equal(stop.code, 0, stop.stderr);
          assert.equal(JSON.parse(stop.stdout).cancelled, 1);
          const ended = await worker.done;
          assert.equal(ended.code, 1);
          assert.match(ended.stderr, /k5 is errored: stopped by force: operation 2 of 3 failed/);
          assert.deepEqual(await readTrace(db), ['k5:op1']);
        } finally {
          await db.cleanup();
        }
      });
    }
  });
}

describe('long-running migrations, crashes: postgres only', () => {
  it('SIGKILL of the worker mid-statement: its run lock and its statement are gone within 1 s', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = await setup(db, { 'k9.sql': threeSteps('postgres', 'k9') });
      const orphans = async () =>
        (
          await db.query(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%hang_marker%' AND pid <> pg_backend_pid()",
          )
        ).length;
      const runLocks = async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`,
          )
        ).length;
      await killInOperationTwo(db, dir, 'k9');
      const killedAt = performance.now();
      await eventually(async () => (await runLocks()) === 0, 'the run lock is free', 5_000);
      const lockMs = performance.now() - killedAt;
      await eventually(async () => (await orphans()) === 0, "the dead worker's statement ended", 5_000);
      const statementMs = performance.now() - killedAt;
      console.log(
        `# run lock free after ${lockMs.toFixed(0)} ms, statement gone after ${statementMs.toFixed(0)} ms`,
      );
      assert.ok(lockMs < 1_000 && statementMs < 1_000, `lock ${lockMs} ms, statement ${statementMs} ms`);
      const run = (await status(db, dir, 'k9')).runs[0];
      assert.equal(run?.alive, false);
    } finally {
      await db.cleanup();
    }
  });
});
