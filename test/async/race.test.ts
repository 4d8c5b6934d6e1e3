/**
 * The one-at-a-time rule under real concurrency: 20 OS processes trigger 20 different long-running
 * migrations at the same instant, round after round. Refused: exactly one starts, the others name
 * it. Queued: all run, one after another, never overlapping, each exactly once, with several
 * workers competing for them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { raceTriggers, readTrace, sleepSql, traceTableSql, writeDefinitions } from '../helpers/async.js';
import { CLEAN_ENV, runCli, TARGETS, type TestDatabase } from '../helpers/targets.js';

const ROUNDS = Number(process.env.LOCKSTEP_ASYNC_RACE_ROUNDS ?? 20);
const PROCESSES = 20;

function definitions(kind: TestDatabase['kind'], prefix: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 1; i <= PROCESSES; i++) {
    const name = `${prefix}${String(i).padStart(2, '0')}`;
    files[`${name}.sql`] = `-- async:description race ${name}
-- async:operation
INSERT INTO trace (name, ev) VALUES ('${name}', 'start');
-- async:rollback
-- async:operation
${sleepSql(kind, 0.02)};
-- async:rollback
-- async:operation
INSERT INTO trace (name, ev) VALUES ('${name}', 'end');
-- async:rollback
`;
  }
  return files;
}

async function states(db: TestDatabase): Promise<Record<string, string>> {
  const rows = await db.query('SELECT name, state FROM lockstep_async ORDER BY name');
  return Object.fromEntries(rows.map((r) => [String(r.name), String(r.state)]));
}

for (const target of TARGETS) {
  describe(`long-running migrations, trigger race: ${target.kind}, ${PROCESSES} processes × ${ROUNDS} rounds`, () => {
    it('refused: exactly one starts, the others are refused naming it; queued: all run one at a time', async () => {
      for (let round = 1; round <= ROUNDS; round++) {
        const db = await target.create();
        try {
          await db.query(traceTableSql(target.kind));
          const dir = writeDefinitions(db.dir, {
            ...definitions(target.kind, 'r'),
            ...definitions(target.kind, 'q'),
          });
          const worker = (...extra: string[]) =>
            runCli(
              ['async', 'worker', '--once', '--poll', '50ms', '--url', db.url, '--async-dir', dir, ...extra],
              {
                cwd: db.dir,
                env: CLEAN_ENV,
              },
            );

          // Refused.
          const refuse = Object.keys(definitions(target.kind, 'r')).map((f) => f.replace('.sql', ''));
          const results = await raceTriggers(db, dir, refuse, 'refuse');
          const started = results.filter((r) => r.code === 0);
          assert.equal(
            started.length,
            1,
            `round ${round}: exactly one started: ${JSON.stringify(results.map((r) => r.output))}`,
          );
          const winner = started[0]?.name as string;
          assert.equal(started[0]?.output.state, 'starting');
          for (const r of results.filter((x) => x.code !== 0)) {
            assert.equal(
              r.code,
              6,
              `round ${round}: ${r.name} exits 6: ${JSON.stringify(r.output)} ${r.stderr}`,
            );
            assert.equal(r.output.error, 'ASYNC_REFUSED');
            assert.equal(
              r.output.active,
              winner,
              `round ${round}: ${r.name}'s refusal names the one running`,
            );
          }
          const w = await worker();
          assert.equal(w.code, 0, w.stderr);
          assert.deepEqual(
            await states(db),
            { [winner]: 'completed' },
            `round ${round}: only the winner ran`,
          );
          assert.deepEqual(await readTrace(db), [`${winner}:start`, `${winner}:end`]);

          // Queued, executed by three workers at once.
          await db.query('DELETE FROM trace');
          const queue = Object.keys(definitions(target.kind, 'q')).map((f) => f.replace('.sql', ''));
          const queued = await raceTriggers(db, dir, queue, 'queue');
          assert.deepEqual(
            queued.map((r) => r.code),
            queue.map(() => 0),
            `round ${round}: every trigger accepted: ${queued.map((r) => r.stderr).join('')}`,
          );
          const accepted = queued.map((r) => r.output.state).sort();
          assert.deepEqual(
            accepted,
            ['starting', ...Array(PROCESSES - 1).fill('queued')].sort(),
            `round ${round}`,
          );
          const workers = await Promise.all([worker(), worker(), worker()]);
          for (const x of workers) assert.equal(x.code, 0, x.stderr);
          const trace = await readTrace(db);
          assert.equal(trace.length, 2 * PROCESSES, `round ${round}: every run recorded start and end once`);
          for (let i = 0; i < trace.length; i += 2) {
            const name = trace[i]?.split(':')[0];
            assert.deepEqual(
              [trace[i], trace[i + 1]],
              [`${name}:start`, `${name}:end`],
              `round ${round}: runs never overlap: ${trace.join(' ')}`,
            );
          }
          assert.equal(new Set(trace.map((t) => t.split(':')[0])).size, PROCESSES, 'each ran exactly once');
          const final = await states(db);
          for (const name of queue) assert.equal(final[name], 'completed', `round ${round}: ${name}`);
        } finally {
          await db.cleanup();
        }
      }
    });
  });
}
