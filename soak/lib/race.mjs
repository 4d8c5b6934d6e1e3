// One race round: a random migration set, 5–50 real processes (the CLI and the library) racing
// on a fresh database, the invariants, and, where a migration failed on purpose, the repair a
// person would make (fix the file; finish a non-transactional one by hand and resolve it).
import path from 'node:path';
import { fixFailing, generateSet, writeSet } from './generate.mjs';
import { checkAppliedOnce, checkExitCodes, checkLedger, checkLockFree, observe } from './invariants.mjs';
import { cli, start } from './processes.mjs';

export async function raceRound({ kind, random, db, dir, config, logs }) {
  const set = generateSet(random, {
    kind,
    failures: true,
    slowMs: [20, 400],
    slowChance: 0.2,
    sqliteRowsPerMs: config.sqliteRowsPerMs,
  });
  const migrations = path.join(dir, 'migrations');
  writeSet(migrations, set);
  const count = random.int(config.processes[0], config.processes[1]);
  const runners = Array.from({ length: count }, () => {
    const via = random.chance(0.5) ? 'cli' : 'library';
    const args =
      via === 'cli'
        ? ['up', '--json', '--url', db.url, '--dir', migrations, '--lock-timeout', '120s']
        : [db.url, migrations];
    return start(via, args, { cwd: dir });
  });
  const results = await Promise.all(
    runners.map(async (r) => ({ ...(await r.done), pid: r.pid, via: r.via })),
  );
  logs.push({ step: 'race', processes: results.map(summary) });

  const failing = set.migrations[set.failing];
  const allowed = !failing ? [0] : failing.effectiveTransactional ? [1] : [1, 4];
  const observed = await observe(db, set);
  const anomalies = [
    ...checkExitCodes(results, allowed),
    ...checkLedger(observed, set),
    ...checkAppliedOnce(results, set, { everyVersion: !failing }),
    ...(await checkLockFree(db)),
  ];
  if (failing && anomalies.length === 0)
    anomalies.push(...(await repair({ kind, db, dir, set, failing, random, logs })));
  return { set, processes: count, anomalies, failing: failing ? failing.file : null };
}

/** The fix, then `up` from 1–3 processes: every migration applied, each statement once. */
async function repair({ kind, db, dir, set, failing, random, logs }) {
  const migrations = path.join(dir, 'migrations');
  const row = (await observe(db, set)).ledger.get(failing.version);
  fixFailing(migrations, kind, failing);
  const anomalies = [];
  if (row?.state === 'failed') {
    // Finish the change by hand: the statements after those done, then record it as applied.
    for (const s of failing.statements.slice(Number(row.statements_done))) await db.query(s.sql);
    const resolved = await cli(
      ['resolve', failing.version, '--applied', '--url', db.url, '--dir', migrations],
      {
        cwd: dir,
      },
    );
    logs.push({ step: 'resolve --applied', ...summary(resolved) });
    if (resolved.code !== 0) anomalies.push(`resolve ${failing.version} --applied exited ${resolved.code}`);
  }
  const runners = Array.from({ length: random.int(1, 3) }, () =>
    start('cli', ['up', '--json', '--url', db.url, '--dir', migrations], { cwd: dir }),
  );
  const results = await Promise.all(
    runners.map(async (r) => ({ ...(await r.done), pid: r.pid, via: r.via })),
  );
  logs.push({ step: 'up after the fix', processes: results.map(summary) });
  anomalies.push(
    ...checkExitCodes(results, [0]),
    ...checkLedger(await observe(db, set), set, { complete: true }),
    ...checkAppliedOnce(results, set, { everyVersion: false }),
    ...(await checkLockFree(db)),
  );
  return anomalies;
}

export function summary(r) {
  return {
    pid: r.pid,
    via: r.via,
    code: r.code,
    signal: r.signal,
    error: r.json?.error?.code ?? r.json?.error ?? null,
    stderr: r.stderr.slice(-2000),
  };
}
