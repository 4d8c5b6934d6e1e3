/**
 * Long-running migrations on a real ClickHouse server (18.16, started by the tests), their state
 * in a real coordinator (PostgreSQL): trigger and worker as real processes, progress per batch,
 * settings and max_execution_time per operation, one at a time under twenty simultaneous
 * triggers, a worker SIGKILLed mid-statement, a forced stop that kills the query.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { serve } from '../../src/server/serve.js';
import { raceTriggers, writeDefinitions } from '../helpers/async.js';
import { type ClickHouseTestDatabase, createClickHouseDatabase } from '../helpers/clickhouse.js';
import { eventually, startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  runCli,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

/** Seconds of work on 18.16 (an aggregation over 400M numbers), idempotent as the SPEC asks. */
const slow = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} ENGINE = MergeTree ORDER BY k AS SELECT number % 7 AS k, count() AS c FROM numbers(400000000) GROUP BY k`;

const BACKFILL = `-- async:description Fill v2 from v, 250 keys at a time
-- async:parameter suffix type:text default:-x what to append
-- async:operation
ALTER TABLE events ADD COLUMN v2 String DEFAULT ''
-- async:rollback
ALTER TABLE events DROP COLUMN v2
-- async:operation batched table:events key:id batch_size:250 setting:max_threads=1
ALTER TABLE events UPDATE v2 = concat(v, {{suffix}}) WHERE id >= :start AND id < :end
-- async:rollback
ALTER TABLE events UPDATE v2 = '' WHERE id >= :start AND id < :end
`;

const ROUNDS = Number(process.env.LOCKSTEP_ASYNC_RACE_ROUNDS ?? 5);

describe('long-running migrations on ClickHouse, state in a PostgreSQL coordinator', () => {
  let ch: ClickHouseTestDatabase;
  let coordinator: TestDatabase;
  const store = () => `clickhouse_${ch.name}_lockstep_async`;
  /** `lockstep async <args>` on the ClickHouse database, its definitions in `folder`. */
  const asyncArgs = (folder: string, args: string[]) => [
    'async',
    ...args,
    ...['--url', ch.url, '--coordinator-url', coordinator.url, '--async-dir', folder],
  ];
  const run = (folder: string, args: string[]) =>
    runCli(asyncArgs(folder, args), { cwd: ch.dir, env: CLEAN_ENV });
  const finished = (like: string) =>
    ch.query(
      `SELECT query_id FROM system.query_log WHERE type = 2 AND query_id LIKE '${like}' ORDER BY query_id`,
    );
  const running = (like: string) =>
    ch.query(`SELECT query_id FROM system.processes WHERE query_id LIKE '${like}'`);
  let folders = 0;
  const definitions = (files: Record<string, string>) =>
    writeDefinitions(path.join(ch.dir, `case${++folders}`), files);
  /** Workers started in the background: none outlives its test. */
  const started: ReturnType<typeof startCli>[] = [];
  const inBackground = (folder: string, args: string[]) => {
    const worker = startCli(asyncArgs(folder, args), { cwd: ch.dir, env: CLEAN_ENV });
    started.push(worker);
    return worker;
  };
  afterEach(() => {
    for (const worker of started.splice(0)) worker.child.kill('SIGKILL');
  });

  before(async () => {
    ch = await createClickHouseDatabase();
    coordinator = await createPostgresDatabase();
  });
  after(async () => {
    await ch?.cleanup();
    await coordinator?.cleanup();
  });

  it('a batched backfill runs through trigger and a worker: progress per batch, each statement once, settings sent, state in the coordinator, rollback undoes it', async () => {
    await ch.query('CREATE TABLE events (id UInt64, v String) ENGINE = MergeTree ORDER BY id');
    await ch.query('INSERT INTO events SELECT number, toString(number) FROM numbers(1000)');
    const folder = definitions({ '0001_backfill.sql': BACKFILL });

    const triggered = await run(folder, ['trigger', '0001_backfill', '--param', "suffix=-it's"]);
    assert.equal(triggered.code, 0, triggered.stderr);
    const worked = await run(folder, ['worker', '--once']);
    assert.equal(worked.code, 0, worked.stderr);
    assert.match(worked.stderr, /running operation 2 of 2 \(batched\) \(not transactional\)/);
    assert.match(worked.stderr, /0001_backfill: [\d.]+% \(operation 2: keys below \d+ done, of 999\)/);
    assert.deepEqual(await ch.query("SELECT count() AS n FROM events WHERE v2 = concat(v, '-it\\'s')"), [
      { n: '1000' },
    ]);
    const [row] = await coordinator.query(
      `SELECT state, progress, op_index, op_count, attempt FROM ${store()} WHERE name = '0001_backfill'`,
    );
    assert.deepEqual(row, { state: 'completed', progress: 100, op_index: 2, op_count: 2, attempt: 1 });
    // Each batch's statement ran once, with the run's tag as its query id and the operation's setting.
    await ch.query('SYSTEM FLUSH LOGS');
    assert.deepEqual(
      (await finished('lockstep-async:0001\\_backfill:op2:a1:%')).map((r) => r.query_id),
      ['b0', 'b250', 'b500', 'b750', 'range'].map((b) => `lockstep-async:0001_backfill:op2:a1:${b}`),
    );
    assert.deepEqual(
      await ch.query(
        "SELECT count() AS n FROM system.query_log WHERE type = 2 AND query_id LIKE 'lockstep-async:0001\\\\_backfill:op2:a1:b%' " +
          "AND Settings.Values[indexOf(Settings.Names, 'max_threads')] = '1'",
      ),
      [{ n: '4' }],
    );

    const status = await run(folder, ['status', '0001_backfill', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).runs[0].state, 'completed');
    // A migration that requires it reads its state from the coordinator.
    const migrations = writeMigrations(ch.dir, {
      '001_use_v2.sql':
        '-- migrate:up requires:0001_backfill\nCREATE VIEW uses_v2 AS SELECT id, v2 FROM events\n',
    });
    const up = await runCli(
      ['up', '--url', ch.url, '--coordinator-url', coordinator.url, '--dir', migrations],
      { cwd: ch.dir, env: CLEAN_ENV },
    );
    assert.equal(up.code, 0, up.stderr);
    await ch.query('DROP TABLE uses_v2');

    const undone = await run(folder, ['rollback', '0001_backfill', '--wait']);
    assert.equal(undone.code, 0, undone.stderr);
    assert.deepEqual(
      await ch.query(`SELECT name FROM system.columns WHERE database = '${ch.name}' AND table = 'events'`),
      [{ name: 'id' }, { name: 'v' }],
    );
    const [rolledBack] = await coordinator.query(`SELECT state FROM ${store()} WHERE name = '0001_backfill'`);
    assert.deepEqual(rolledBack, { state: 'rolled_back' });
  });

  it('the status page shows a ClickHouse run, read from the coordinator', async () => {
    const folder = definitions({
      '0001_note.sql': '-- async:description Nothing much\n-- async:operation\nSELECT 1\n-- async:rollback\n',
    });
    assert.equal((await run(folder, ['trigger', '0001_note', '--wait'])).code, 0);
    const server = await serve({
      url: ch.url,
      coordinatorUrl: coordinator.url,
      asyncDir: folder,
      port: 0,
      cwd: ch.dir,
    });
    try {
      const response = await fetch(new URL('api/async', server.url));
      const text = await response.text();
      assert.equal(response.status, 200, text);
      const runs = JSON.parse(text).runs as { name: string; state: string }[];
      assert.equal(runs.find((r) => r.name === '0001_note')?.state, 'completed', text);
    } finally {
      await server.close();
    }
  });

  it("an operation's timeout is max_execution_time: the statement is stopped on the server and the run is errored, naming it", async () => {
    const folder = definitions({
      '0001_slow.sql': `-- async:description Slow\n-- async:operation timeout:1s\n${slow('slow1')}\n-- async:rollback\nDROP TABLE IF EXISTS slow1\n`,
    });
    const waited = await run(folder, ['trigger', '0001_slow', '--wait']);
    assert.equal(waited.code, 1, waited.stderr);
    assert.match(
      waited.stderr,
      /operation 1 of 1 failed at case\d+\/async\/0001_slow\.sql:3: .*Timeout exceeded: elapsed 1\.\d+ seconds, maximum: 1/,
    );
    assert.deepEqual(await running('lockstep-async:0001\\_slow:%'), []);
    const rolledBack = await run(folder, ['rollback', '0001_slow', '--wait']);
    assert.equal(rolledBack.code, 0, rolledBack.stderr);
  });

  it(`twenty simultaneous triggers, ${ROUNDS} rounds: exactly one starts, the rest are refused naming it; queued, three workers run them one after another`, async () => {
    // TinyLog reads in one stream, in insertion order: the order runs wrote in (Log reads its
    // marks in parallel, so two rows of one run could come back swapped).
    await ch.query('CREATE TABLE trace (name String, ev String) ENGINE = TinyLog');
    for (let round = 1; round <= ROUNDS; round++) {
      const names = (prefix: string) =>
        Array.from({ length: 20 }, (_, i) => `${prefix}${round}_${String(i).padStart(2, '0')}`);
      const files = Object.fromEntries(
        [...names('r'), ...names('q')].map((n) => [
          `${n}.sql`,
          `-- async:description Traced\n-- async:operation\nINSERT INTO trace VALUES ('${n}', 'start')\n-- async:rollback\n` +
            '-- async:operation\nSELECT sleep(0.05)\n-- async:rollback\n' +
            `-- async:operation\nINSERT INTO trace VALUES ('${n}', 'end')\n-- async:rollback\n`,
        ]),
      );
      const folder = definitions(files);
      const target = { url: ch.url, dir: ch.dir, coordinatorUrl: coordinator.url };
      const worker = () => run(folder, ['worker', '--once', '--poll', '50ms']);
      const trace = async () =>
        (await ch.query('SELECT name, ev FROM trace')).map((r) => `${r.name}:${r.ev}`);

      const refused = await raceTriggers(target, folder, names('r'), 'refuse');
      const started = refused.filter((r) => r.code === 0);
      assert.equal(started.length, 1, `round ${round}: ${JSON.stringify(refused.map((r) => r.output))}`);
      const winner = started[0]?.name as string;
      for (const r of refused.filter((x) => x.code !== 0)) {
        assert.equal(r.code, 6, `round ${round}: ${JSON.stringify(r.output)} ${r.stderr}`);
        assert.equal(r.output.active, winner, `round ${round}: the refusal names the one running`);
      }
      assert.equal((await worker()).code, 0);
      assert.deepEqual(await trace(), [`${winner}:start`, `${winner}:end`], `round ${round}`);
      await ch.query('TRUNCATE TABLE trace');

      const queued = await raceTriggers(target, folder, names('q'), 'queue');
      assert.deepEqual(
        queued.map((r) => r.output.state).sort(),
        ['starting', ...Array(19).fill('queued')].sort(),
        `round ${round}: ${queued.map((r) => r.stderr).join('')}`,
      );
      for (const w of await Promise.all([worker(), worker(), worker()])) assert.equal(w.code, 0, w.stderr);
      const ran = await trace();
      assert.equal(ran.length, 40, `round ${round}: ${ran.join(' ')}`);
      for (let i = 0; i < ran.length; i += 2) {
        const name = ran[i]?.split(':')[0];
        assert.deepEqual(
          [ran[i], ran[i + 1]],
          [`${name}:start`, `${name}:end`],
          `round ${round}: ${ran.join(' ')}`,
        );
      }
      assert.equal(new Set(ran.map((t) => t.split(':')[0])).size, 20, `round ${round}: each ran once`);
      await ch.query('TRUNCATE TABLE trace');
    }
  });

  it('a worker SIGKILLed mid-statement: the next finds the statement by its query id and waits for it, never a second copy; then the run goes on', async () => {
    const folder = definitions({
      '0003_slow.sql': `-- async:description Slow\n-- async:operation\n${slow('slow2')}\n-- async:rollback\nDROP TABLE IF EXISTS slow2\n`,
    });
    assert.equal((await run(folder, ['trigger', '0003_slow'])).code, 0);
    const first = inBackground(folder, ['worker']);
    const attempt1 = 'lockstep-async:0003\\_slow:op1:a1:s1%';
    await eventually(async () => (await running(attempt1)).length === 1, 'the slow statement runs');
    first.child.kill('SIGKILL');
    await first.done;

    const next = inBackground(folder, ['worker', '--once', '--on-dead', 'resume']);
    let copies = 0;
    while ((next.child.exitCode ?? null) === null && next.child.signalCode === null) {
      copies = Math.max(copies, (await running('lockstep-async:0003\\_slow:%')).length);
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await next.done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(copies, 1, 'never two statements of the run at once');
    assert.match(result.stderr, /lockstep-async:0003_slow:op1:a1:s1/);
    await ch.query('SYSTEM FLUSH LOGS');
    // The dead worker's statement finished on the server; its successor's (attempt 2) found the table.
    assert.deepEqual(
      (await finished('lockstep-async:0003\\_slow:op1:%')).map((r) => r.query_id),
      ['lockstep-async:0003_slow:op1:a1:s1', 'lockstep-async:0003_slow:op1:a2:s1'],
    );
    assert.deepEqual(await ch.query('SELECT sum(c) AS n FROM slow2'), [{ n: '400000000' }]);
    const [row] = await coordinator.query(`SELECT state, attempt FROM ${store()} WHERE name = '0003_slow'`);
    assert.deepEqual(row, { state: 'completed', attempt: 2 });
    await ch.query('DROP TABLE slow2');
  });

  it('stop --force kills the running query on the server by its query id; the run is errored, and rollback undoes it', async () => {
    const folder = definitions({
      '0004_slow.sql': `-- async:description Slow\n-- async:operation\n${slow('slow3')}\n-- async:rollback\nDROP TABLE IF EXISTS slow3\n`,
    });
    assert.equal((await run(folder, ['trigger', '0004_slow'])).code, 0);
    const worker = inBackground(folder, ['worker', '--once']);
    await eventually(
      async () => (await running('lockstep-async:0004\\_slow:op1:%')).length === 1,
      'the slow statement runs',
    ).catch((error) => {
      throw new Error(`${error.message}; the worker printed: ${JSON.stringify(worker.output())}`);
    });
    const stopped = await run(folder, ['stop', '0004_slow', '--force', '--json']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(JSON.parse(stopped.stdout).cancelled, 1);
    assert.deepEqual(await running('lockstep-async:0004\\_slow:%'), []);
    const ended = await worker.done;
    assert.equal(ended.code, 0, ended.stderr);
    const status = JSON.parse((await run(folder, ['status', '0004_slow', '--json'])).stdout);
    assert.equal(status.runs[0].state, 'errored');
    assert.match(status.runs[0].error, /^stopped by force: operation 1 of 1 failed at .*Query was cancelled/);
    const rolledBack = await run(folder, ['rollback', '0004_slow', '--wait']);
    assert.equal(rolledBack.code, 0, rolledBack.stderr);
    assert.deepEqual(await ch.query(`EXISTS TABLE slow3`), [{ result: 0 }]);
  });
});
