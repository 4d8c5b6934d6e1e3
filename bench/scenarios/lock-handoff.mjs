// Scenario 2 — lock handoff: how long after the holder finishes its work does the waiter start its
// own? Two long-lived OS processes (workers/handoff-worker.mjs) take turns. Each round uses its own
// ledger table: the holder applies migration 001 (a module that takes HOLD_MS); once it has
// started, the waiter is told to run with 001 and 002, finds the lock taken and waits. When the
// holder releases, the waiter takes the lock, sees 001 applied and starts 002.
//   handoff = waiter's `migrating` event for 002 − holder's `migrated` event for 001
// Both are read from CLOCK_MONOTONIC (process.hrtime), which every process shares. The interval
// includes the holder's unlock round trip, the wake-up, the waiter's lock query, ledger re-read
// and planning: everything between "done" and "working".
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  BENCH,
  createDatabase,
  LIBRARY,
  log,
  median,
  percentile,
  round,
  scratchDir,
} from '../lib/shared.mjs';

const WORKER = path.join(BENCH, 'workers/handoff-worker.mjs');
const HOLD_MS = 50;
/** Uncounted first rounds: the first migrate() of a process also imports its database driver. */
const WARMUP = 2;

export async function lockHandoff({ kinds, handoffs }) {
  const base = scratchDir('handoff');
  const holderDir = path.join(base, 'holder');
  const waiterDir = path.join(base, 'waiter');
  const hold = `export async function up() {\n  await new Promise((resolve) => setTimeout(resolve, ${HOLD_MS}));\n}\n`;
  for (const dir of [holderDir, waiterDir]) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, '001_hold.mjs'), hold);
  }
  writeFileSync(path.join(waiterDir, '002_next.sql'), '-- migrate:up\nSELECT 1;\n');

  const results = [];
  for (const kind of kinds) {
    const db = await createDatabase(kind);
    const workers = [startWorker(), startWorker()];
    try {
      await Promise.all(workers.map((w) => w.next('ready')));
      const rounds = [];
      for (let r = 0; r < handoffs + WARMUP; r++) {
        const result = await oneHandoff(
          db,
          r,
          workers[r % 2],
          workers[(r + 1) % 2],
          holderDir,
          waiterDir,
        ).catch((error) => ({
          valid: false,
          error: String(error.message),
          handoffMs: null,
          acquireMs: null,
        }));
        if (r >= WARMUP) rounds.push(result);
      }
      results.push(summarize(kind, rounds));
      const s = results.at(-1);
      log(`handoff ${kind}: ${s.valid}/${s.attempts} valid, median ${s.medianMs} ms, p99 ${s.p99Ms} ms`);
    } finally {
      for (const w of workers) w.stop();
      await db.drop();
    }
  }
  return { method: { holdMs: HOLD_MS, handoffs, warmup: WARMUP }, results };
}

async function oneHandoff(db, round, holder, waiter, holderDir, waiterDir) {
  const table = `handoff_${round}`;
  const holderDone = holder.next('done', round);
  const started = holder.next('started', round);
  holder.child.send({ type: 'run', round, url: db.url, dir: holderDir, table });
  await started;
  const waiterDone = waiter.next('done', round);
  waiter.child.send({ type: 'run', round, url: db.url, dir: waiterDir, table });
  const [h, w] = await Promise.all([holderDone, waiterDone]);
  const valid =
    !h.error &&
    !w.error &&
    w.marks.waiting !== null &&
    w.marks.waiting < h.marks.lastMigrated &&
    w.result.applied.length === 1 &&
    w.result.appliedByOthers.length === 1;
  return {
    valid,
    error: h.error ?? w.error ?? null,
    handoffMs: valid ? w.marks.firstMigrating - h.marks.lastMigrated : null,
    acquireMs: valid ? w.marks.acquired - h.marks.lastMigrated : null,
  };
}

function summarize(kind, rounds) {
  const ok = rounds.filter((r) => r.valid);
  const handoff = ok.map((r) => r.handoffMs);
  const acquire = ok.map((r) => r.acquireMs);
  return {
    kind,
    attempts: rounds.length,
    valid: ok.length,
    errors: rounds
      .filter((r) => r.error)
      .map((r) => r.error)
      .slice(0, 3),
    medianMs: round(median(handoff), 2),
    p90Ms: round(percentile(handoff, 90), 2),
    p99Ms: round(percentile(handoff, 99), 2),
    maxMs: round(Math.max(...handoff), 2),
    minMs: round(Math.min(...handoff), 2),
    acquireMedianMs: round(median(acquire), 2),
    acquireP99Ms: round(percentile(acquire, 99), 2),
  };
}

/** A forked worker with a way to await its next message of a type (and round). */
function startWorker() {
  const child = fork(WORKER, [], {
    env: { ...process.env, BENCH_LIBRARY: LIBRARY },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const waiting = [];
  child.on('message', (message) => {
    const i = waiting.findIndex(
      (w) => w.type === message.type && (w.round === undefined || w.round === message.round),
    );
    if (i >= 0) waiting.splice(i, 1)[0].resolve(message);
  });
  return {
    child,
    next(type, round) {
      return new Promise((resolve, reject) => {
        const entry = { type, round, resolve };
        waiting.push(entry);
        setTimeout(() => {
          const i = waiting.indexOf(entry);
          if (i >= 0) {
            waiting.splice(i, 1);
            reject(new Error(`handoff worker: no "${type}" for round ${round} within 20 s`));
          }
        }, 20_000).unref();
      });
    },
    stop() {
      child.send({ type: 'exit' });
      setTimeout(() => child.kill(), 2000).unref();
    },
  };
}
