// One fault round: two runners (the event-printing fixture) start together on a fresh random set;
// the one that takes the lock first is the holder, the other waits. A fault module (faults/*.mjs)
// strikes one of them at an instant chosen from the victim's own events; then the guarantees are
// checked: the survivor continues (transactional work applied exactly once, with no manual step;
// non-transactional work refused with exit 4 naming the statement), `resolve` + `up` complete the
// rest, each statement ran at most once, and the lock is free.
import path from 'node:path';
import { generateSet, writeSet } from './generate.mjs';
import { checkExitCodes, checkLedger, checkLockFree, observe } from './invariants.mjs';
import { cli, now, start } from './processes.mjs';
import { summary } from './race.mjs';

const SLOW = /pg_sleep\(|SLEEP\(|WITH RECURSIVE/;
const LEDGER_WRITE = /^\s*(INSERT|UPDATE|DELETE)\b[\s\S]*lockstep_migrations|^\s*COMMIT\b/i;

/** Resolves with the event at which to strike the victim, or null when it ended first. */
export function instantOf(instant, victim, random, set, since = 0) {
  if (instant === 'before-lock') return victim.waitFor((e) => e.type === 'lock-waiting');
  if (instant === 'holding') return victim.waitFor((e) => e.type === 'lock-acquired');
  if (instant === 'mid-statement') {
    return victim.waitFor((e) => e.at >= since && e.type === 'query' && SLOW.test(e.sql));
  }
  if (instant === 'ledger-write') {
    // The k-th ledger write or commit, k drawn from about how many the run makes.
    const estimate = set.migrations.reduce(
      (n, m) => n + (m.effectiveTransactional ? 2 : m.statements.length + 2),
      0,
    );
    const k = random.int(1, estimate);
    let seen = 0;
    return victim.waitFor(
      (e) => e.at >= since && e.type === 'query' && LEDGER_WRITE.test(e.sql) && ++seen === k,
    );
  }
  throw new Error(`unknown instant ${instant}`);
}

export async function faultRound({ kind, random, db, dir, config, fault, logs }) {
  const set = generateSet(random, {
    kind,
    failures: false,
    needSlow: true,
    // MariaDB runs a statement whose client died to its end: keep its sleeps short.
    slowMs: kind === 'mysql' ? [300, 800] : [300, 1200],
    slowChance: 0.15,
    sqliteRowsPerMs: config.sqliteRowsPerMs,
  });
  const migrations = path.join(dir, 'migrations');
  writeSet(migrations, set);
  const instant = random.pick(fault.instants);
  const a = start('library', [db.url, migrations], { cwd: dir });
  const b = start('library', [db.url, migrations], { cwd: dir });
  const first = await Promise.race([
    a.waitFor((e) => e.type === 'lock-acquired').then((e) => (e ? a : null)),
    b.waitFor((e) => e.type === 'lock-acquired').then((e) => (e ? b : null)),
  ]);
  const holder = first ?? a;
  const waiter = holder === a ? b : a;
  const victim = instant === 'before-lock' ? waiter : holder;
  const survivor = victim === holder ? waiter : holder;

  // A holder is struck once the other runner waits (so that the handoff is measured): the
  // instant is chosen among the holder's events from then on.
  if (victim === holder)
    await Promise.race([survivor.waitFor((e) => e.type === 'lock-waiting'), sleepMs(3000)]);
  const at = await instantOf(instant, victim, random, set, now());
  if (instant === 'mid-statement' && at) await sleepMs(random.int(10, 250));
  else if (instant === 'holding' && at) await sleepMs(random.int(0, 30));
  const survivorWaiting = survivor.events.some((e) => e.type === 'lock-waiting');
  const struckAt = now();
  const struck = at && !victim.exited ? await fault.inject({ victim, db }) : null;
  const [victimResult, survivorResult] = await Promise.all([victim.done, survivor.done]);
  const processes = [
    { ...victimResult, pid: victim.pid, via: 'library', role: 'victim' },
    { ...survivorResult, pid: survivor.pid, via: 'library', role: 'survivor' },
  ];
  logs.push({
    step: `${fault.kind} at ${instant}`,
    struck,
    event: at ? { type: at.type, sql: at.sql } : null,
    processes: processes.map((p) => ({
      ...summary(p),
      role: p.role,
      events: eventsOf(p === processes[0] ? victim : survivor),
    })),
  });
  if (!struck) {
    // The victim ended before the instant came (or the fault found nothing to strike): not counted.
    return { set, instant, missed: true, anomalies: [] };
  }

  const anomalies = [];
  if (!fault.victimExits.includes(victimResult.signal ?? victimResult.code)) {
    anomalies.push(
      `the victim ended with ${victimResult.signal ?? victimResult.code}, expected ${fault.victimExits}`,
    );
  }
  const acquired = survivor.events.find((e) => e.type === 'lock-acquired' && e.at >= struckAt);
  const proceedMs = victim === holder && acquired && survivorWaiting ? acquired.at - struckAt : null;
  // Guarantee 9: a dead holder's lock is free within a second on PostgreSQL, even mid-statement.
  if (kind === 'postgres' && proceedMs !== null && proceedMs > 1000) {
    anomalies.push(
      `the next runner took the lock ${Math.round(proceedMs)} ms after the fault (guarantee 9: within 1 s)`,
    );
  }

  let observed = await observe(db, set);
  anomalies.push(...checkLedger(observed, set, { allowRunning: true }));
  const running = set.migrations.filter((m) => observed.ledger.get(m.version)?.state === 'running');
  let outcome = 'continued, no manual step';
  if (running.length === 0) {
    anomalies.push(...checkExitCodes([processes[1]], [0]));
    anomalies.push(...checkLedger(observed, set, { complete: true }));
  } else {
    anomalies.push(...checkExitCodes([processes[1]], [4]));
    anomalies.push(...refusalNamesStatement(survivorResult, running[0], observed));
    outcome = await resolveByHand({ db, dir, migration: running[0], observed, random, logs, anomalies });
    observed = await observe(db, set);
    anomalies.push(...checkLedger(observed, set, { complete: true }));
  }
  anomalies.push(...(await checkLockFree(db)));
  return { set, instant, missed: false, proceedMs, outcome, anomalies };
}

/** Exit 4's message names the migration, where it stopped (file:line of the next statement) and the fix. */
function refusalNamesStatement(result, migration, observed) {
  const message = result.json?.message ?? '';
  const done = Number(observed.ledger.get(migration.version).statements_done);
  const next = migration.statements[done];
  const expected = [`migration ${migration.version}`, `lockstep resolve ${migration.version}`];
  if (next) expected.push(`statement ${next.index} `, `${migration.file}:${next.line}`);
  const missing = expected.filter((text) => !message.includes(text));
  return missing.length === 0 ? [] : [`the refusal (exit 4) does not say ${missing.join(', ')}: ${message}`];
}

/**
 * What a person does with an interrupted non-transactional migration: finish it by hand and
 * `resolve --applied`, or undo it by hand and `resolve --rolled-back`; then `up` completes the set.
 */
async function resolveByHand({ db, dir, migration, observed, random, logs, anomalies }) {
  const migrations = path.join(dir, 'migrations');
  const how = random.chance(0.5) ? 'applied' : 'rolled-back';
  const ran = (s) => (observed.counts.get(`${migration.version}/${s.index}`) ?? 0) > 0;
  if (how === 'applied') {
    for (const s of migration.statements) if (!ran(s)) await db.query(s.sql);
  } else {
    await db.query(`DELETE FROM soak_runs WHERE migration = '${migration.version}'`);
    for (const s of migration.statements) {
      if (s.kind === 'ddl' && ran(s)) await db.query(`DROP TABLE soak_t_${migration.version}_${s.index}`);
    }
  }
  const resolved = await cli(
    ['resolve', migration.version, `--${how}`, '--url', db.url, '--dir', migrations],
    {
      cwd: dir,
    },
  );
  const up = await cli(['up', '--json', '--url', db.url, '--dir', migrations], { cwd: dir });
  logs.push({ step: `resolve --${how}, up`, resolve: summary(resolved), up: summary(up) });
  if (resolved.code !== 0) anomalies.push(`resolve ${migration.version} --${how} exited ${resolved.code}`);
  if (up.code !== 0) anomalies.push(`up after resolve exited ${up.code}`);
  return `refused (exit 4) → resolve --${how} → up`;
}

function eventsOf(runner) {
  return runner.events.map((e) => (e.type === 'query' ? { type: 'query', sql: e.sql.slice(0, 120) } : e));
}

const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));
