/**
 * A batched backfill of 1,000,000 rows on PostgreSQL, driven as an operator would: a background
 * worker, progress read from other processes while it runs, a graceful stop and a resume midway,
 * then a SIGKILL of the worker and a resume: every row is updated exactly once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stateRow, writeDefinitions } from '../helpers/async.js';
import { eventually, startCli } from '../helpers/process.js';
import { CLEAN_ENV, createPostgresDatabase, runCli, TARGETS, type TestDatabase } from '../helpers/targets.js';

const ROWS = 1_000_000;

async function counts(db: TestDatabase): Promise<[number, number][]> {
  const rows = await db.query('SELECT n, COUNT(*) AS c FROM big GROUP BY n ORDER BY n');
  return rows.map((r) => [Number(r.n), Number(r.c)]);
}

describe('long-running migrations: a 1,000,000-row backfill on postgres', {
  skip: !TARGETS.some((t) => t.kind === 'postgres') && 'postgres is not among LOCKSTEP_TEST_TARGETS',
}, () => {
  it('progress is visible from another process; stop, resume, SIGKILL, resume: every row updated exactly once', async () => {
    const db = await createPostgresDatabase();
    try {
      await db.query('CREATE TABLE big (id bigint PRIMARY KEY, n integer NOT NULL DEFAULT 0)');
      await db.query(`INSERT INTO big (id) SELECT generate_series(1, ${ROWS})`);
      const dir = writeDefinitions(db.dir, {
        '0001_bump_big.sql': `-- async:description Bump every row of big once, in batches
-- async:parameter batch_size 20000 keys per batch
-- async:operation batched table:big key:id batch_size:{{batch_size}} pause:20ms
UPDATE big SET n = n + 1 WHERE id >= :start AND id < :end;
-- async:rollback
UPDATE big SET n = n - 1 WHERE id >= :start AND id < :end;
`,
      });
      const cli = (args: string[]) =>
        runCli(['async', ...args, '--url', db.url, '--async-dir', dir], { cwd: db.dir, env: CLEAN_ENV });
      const worker = (...extra: string[]) =>
        startCli(['async', 'worker', '--poll', '100ms', '--url', db.url, '--async-dir', dir, ...extra], {
          cwd: db.dir,
        });
      const progress = async () => {
        const status = await cli(['status', '0001_bump_big', '--json']);
        assert.equal(status.code, 0, status.stderr);
        return JSON.parse(status.stdout).runs[0] as {
          state: string;
          progress: number;
          operation: { batch: { cursor: string } | null } | null;
        };
      };

      const first = worker();
      const triggered = await cli(['trigger', '0001_bump_big']);
      assert.equal(triggered.code, 0, triggered.stderr);

      // Another process watches the progress move while the worker runs.
      const seen: number[] = [];
      await eventually(async () => {
        const run = await progress();
        if (run.state === 'running' && run.progress > 0) seen.push(run.progress);
        return seen.length >= 3 && (seen.at(-1) as number) >= 30;
      }, 'progress reaches 30% as seen by status');
      assert.ok(
        seen.every((p, i) => p > 0 && p < 100 && (i === 0 || p >= (seen[i - 1] as number))),
        `progress moves up: ${seen}`,
      );
      assert.ok(new Set(seen).size >= 2, `progress changes while it runs: ${seen}`);

      const stop = await cli(['stop', '0001_bump_big']);
      assert.equal(stop.code, 0, stop.stderr);
      await eventually(
        async () => (await progress()).state === 'errored',
        'the worker stops after its batch',
      );
      const stopped = await stateRow(db, '0001_bump_big');
      const cursor = Number(stopped?.batch_cursor);
      assert.ok(cursor > 1 && cursor < ROWS, `stopped midway (cursor ${cursor})`);
      assert.match(String(stopped?.error), /stopped on request/);
      assert.deepEqual(
        await counts(db),
        [
          [0, ROWS - cursor + 1],
          [1, cursor - 1],
        ],
        'exactly the keys before the cursor are done, each once',
      );

      const resumed = await cli(['resume', '0001_bump_big']);
      assert.equal(resumed.code, 0, resumed.stderr);
      await eventually(async () => (await progress()).progress >= 70, 'the worker goes on to 70%');
      first.child.kill('SIGKILL');
      await first.done;
      await eventually(async () => {
        const status = await cli(['status', '0001_bump_big', '--json']);
        return JSON.parse(status.stdout).runs[0].alive === false;
      }, 'the dead worker is seen');

      const second = worker('--on-dead', 'resume');
      await eventually(
        async () => (await progress()).state === 'completed',
        'the second worker finishes it',
        120_000,
      );
      second.child.kill('SIGTERM');
      assert.equal((await second.done).code, 0);

      assert.deepEqual(await counts(db), [[1, ROWS]], 'every row updated exactly once');
      const done = await progress();
      assert.equal(done.progress, 100);
    } finally {
      await db.cleanup();
    }
  });
});
