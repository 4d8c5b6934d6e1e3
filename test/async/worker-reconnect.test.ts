/**
 * The long-running migrations' worker survives its database restarting: on a PostgreSQL cluster
 * of the test's own, restarted (a fast shutdown, then started again) while a batched backfill
 * runs, the worker reconnects with backoff and the run goes on (`--on-dead resume`) or is marked
 * errored and resumed on request (`--on-dead error`); every row is updated exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { writeDefinitions } from '../helpers/async.js';
import { type PrivatePostgres, startPrivatePostgres } from '../helpers/private-postgres.js';
import { eventually, startCli } from '../helpers/process.js';
import { CLEAN_ENV, runCli } from '../helpers/targets.js';

const ROWS = 100_000;
const DEFINITION = `-- async:description Bump every row of big once, in batches
-- async:operation batched table:big key:id batch_size:2000 pause:60ms
UPDATE big SET n = n + 1 WHERE id >= :start AND id < :end;
-- async:rollback
UPDATE big SET n = n - 1 WHERE id >= :start AND id < :end;
`;

describe('long-running migrations: the worker survives its database restarting', () => {
  let server: PrivatePostgres;
  before(async () => {
    server = await startPrivatePostgres({ label: 'restart' });
  });
  after(() => server?.destroy());

  async function query(database: string, sql: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ connectionString: server.url(database) });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  for (const onDead of ['resume', 'error'] as const) {
    it(`--on-dead ${onDead}: it reconnects with backoff; the run ${onDead === 'resume' ? 'goes on' : 'is marked errored, then resumed'}; every row once`, async () => {
      const database = `reconnect_${onDead}`;
      await query('postgres', `CREATE DATABASE ${database}`);
      await query(database, 'CREATE TABLE big (id bigint PRIMARY KEY, n integer NOT NULL DEFAULT 0)');
      await query(database, `INSERT INTO big (id) SELECT generate_series(1, ${ROWS})`);
      const url = server.url(database);
      const dir = writeDefinitions(server.dir, { [`0001_bump_${onDead}.sql`]: DEFINITION });
      const name = `0001_bump_${onDead}`;
      const cli = (args: string[]) =>
        runCli(['async', ...args, '--url', url, '--async-dir', dir], { cwd: server.dir, env: CLEAN_ENV });
      const run = async () => {
        const status = await cli(['status', name, '--json']);
        assert.equal(status.code, 0, status.stderr);
        return JSON.parse(status.stdout).runs[0] as { state: string; progress: number; error: string | null };
      };
      const worker = startCli(
        ['async', 'worker', '--poll', '100ms', '--on-dead', onDead, '--url', url, '--async-dir', dir],
        { cwd: server.dir, env: CLEAN_ENV },
      );
      try {
        assert.equal((await cli(['trigger', name])).code, 0);
        await eventually(async () => (await run()).progress >= 20, 'the backfill is under way');

        await server.stop();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await server.start();

        if (onDead === 'resume') {
          await eventually(
            async () => (await run()).state === 'completed',
            'the same worker finishes it',
            60_000,
          );
        } else {
          await eventually(
            async () => (await run()).state === 'errored',
            'the run is marked errored',
            60_000,
          );
          assert.match(String((await run()).error), /worker \S+ is gone/);
          assert.equal((await cli(['resume', name])).code, 0);
          await eventually(
            async () => (await run()).state === 'completed',
            'resumed, the worker finishes it',
            60_000,
          );
        }
        assert.equal(worker.child.exitCode, null, 'the worker is still running');
        assert.deepEqual(
          await query(database, 'SELECT n, COUNT(*)::int AS c FROM big GROUP BY n'),
          [{ n: 1, c: ROWS }],
          'every row updated exactly once',
        );
      } finally {
        worker.child.kill('SIGTERM');
      }
      const ended = await worker.done;
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stderr, /lost its database session: .*Reconnecting in \d+ms \(attempt 1\)/s);
    });
  }
});
