// What the database holds after a round, and the invariants it must satisfy. Each check returns
// a list of anomalies (strings); an empty list is a pass.
import { LEDGER } from './databases.mjs';
import { ddlTable } from './generate.mjs';

/** The ledger rows by version, how often each statement recorded itself, the tables that exist. */
export async function observe(db, set) {
  const ledger = new Map();
  const rows = await db.query(`SELECT * FROM ${LEDGER}`).catch(() => []);
  for (const row of rows) ledger.set(String(row.version), row);
  const counts = new Map();
  for (const row of await db.query(
    'SELECT migration, statement, COUNT(*) AS n FROM soak_runs GROUP BY migration, statement',
  )) {
    counts.set(`${row.migration}/${Number(row.statement)}`, Number(row.n));
  }
  const tables = new Set(await db.tables());
  for (const migration of set.migrations) {
    for (const s of migration.statements) {
      if (s.kind === 'ddl' && tables.has(ddlTable(migration.version, s.index))) {
        counts.set(`${migration.version}/${s.index}`, 1);
      }
    }
  }
  return { ledger, counts };
}

/** How many times each statement of `migration` ran (DDL: 1 if its table exists). */
const timesRan = (observed, migration, s) => observed.counts.get(`${migration.version}/${s.index}`) ?? 0;

/**
 * Every statement ran at most once; each ledger row agrees with what ran; applied migrations form
 * a prefix of the set (in order). `allowRunning`: a `running` row is expected (a killed runner).
 */
export function checkLedger(observed, set, { allowRunning = false, complete = false } = {}) {
  const anomalies = [];
  let gap = null;
  for (const migration of set.migrations) {
    const row = observed.ledger.get(migration.version);
    const state = row?.state ?? 'pending';
    const done = Number(row?.statements_done ?? 0);
    const ran = [];
    for (const s of migration.statements) {
      const n = timesRan(observed, migration, s);
      if (n > 1) anomalies.push(`${migration.file}: statement ${s.index} ran ${n} times`);
      if (n > 0) ran.push(s.index);
    }
    const all = migration.statements.map((s) => s.index);
    const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
    const upTo = (k) => all.filter((i) => i <= k);
    const label = `${migration.file} (${migration.effectiveTransactional ? 'transactional' : 'not transactional'}, ${state})`;
    if (state === 'applied') {
      if (gap) anomalies.push(`${label}: applied after ${gap} that is not: out of order`);
      if (!same(ran, all)) anomalies.push(`${label}: applied, but statements ran: [${ran}] of [${all}]`);
    } else {
      gap ??= `${migration.file} (${state})`;
      if (complete) anomalies.push(`${label}: not applied at the end of the round`);
    }
    if (state === 'pending' || state === 'rolled_back') {
      if (ran.length > 0) anomalies.push(`${label}: left statements [${ran}] in the database`);
    }
    if (state === 'failed') {
      if (migration.effectiveTransactional)
        anomalies.push(`${label}: a transactional migration recorded failed`);
      if (!same(ran, upTo(done)))
        anomalies.push(`${label}: statementsDone ${done} but statements ran: [${ran}]`);
      const next = migration.statements[done];
      if (next && next.kind !== 'fail')
        anomalies.push(`${label}: failed at statement ${done + 1}, which cannot fail`);
    }
    if (state === 'running') {
      if (!allowRunning) anomalies.push(`${label}: left running with no runner killed`);
      if (migration.effectiveTransactional)
        anomalies.push(`${label}: a transactional migration left running`);
      // The statement in flight when the runner died may have committed before its progress write.
      if (!same(ran, upTo(done)) && !same(ran, upTo(done + 1))) {
        anomalies.push(`${label}: statementsDone ${done} but statements ran: [${ran}]`);
      }
    }
  }
  return anomalies;
}

/** Each version applied by one process at most, and (with no failure) by exactly one. */
export function checkAppliedOnce(results, set, { everyVersion }) {
  const by = new Map();
  for (const r of results) {
    const applied = r.json?.result?.applied ?? r.json?.applied ?? [];
    for (const a of applied) by.set(a.version, [...(by.get(a.version) ?? []), r.pid]);
  }
  const anomalies = [];
  for (const migration of set.migrations) {
    const pids = by.get(migration.version) ?? [];
    if (pids.length > 1)
      anomalies.push(`${migration.file}: reported applied by ${pids.length} processes (${pids})`);
    if (everyVersion && pids.length === 0)
      anomalies.push(`${migration.file}: no process reported applying it`);
  }
  return anomalies;
}

/** Every process exited with one of the codes the scenario allows (README "Exit codes"). */
export function checkExitCodes(results, allowed) {
  const anomalies = [];
  for (const r of results) {
    if (r.timedOut) anomalies.push(`process ${r.pid} (${r.via}) did not finish in time`);
    else if (!allowed.includes(r.code)) {
      const error = r.json?.error?.code ?? r.json?.error ?? '';
      anomalies.push(
        `process ${r.pid} (${r.via}) exited ${r.code ?? r.signal} ${error}, allowed: ${allowed}`,
      );
    }
  }
  return anomalies;
}

export async function checkLockFree(db) {
  return (await db.lockFree()) ? [] : [`the lock is still held after every runner exited (${db.where})`];
}
