// Scenario 4 — scale, for lockstep: (a) planning over many files: `status` with N files and an
// empty ledger, and `up` with N files all applied (nothing pending: read, check and plan every
// one); (b) N small migrations applied in one `up` run. Every run is the CLI as an OS process;
// peak memory is its maxRSS (lib/usage-preload.mjs). The in-process status() is timed as well.
// For scale: the same statements sent by a bare loop on one connection (the floor on this server).
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { smallMigrations } from '../lib/migrations.mjs';
import {
  BENCH,
  CLI,
  createDatabase,
  LIBRARY,
  log,
  median,
  now,
  ROOT,
  round,
  runNodeMeasured,
  runProcess,
  scratchDir,
} from '../lib/shared.mjs';
import { lockstep } from '../lib/tools.mjs';

const RUNS = 3;
const PROBE = path.join(BENCH, 'workers/probe.mjs');
/** Runs of the Postgres apply target and of its bare-loop floor, alternating. */
const FLOOR_RUNS = 3;

export async function scale({ planSizes, applySizes, applyKinds }) {
  const plan = [];
  for (const n of planSizes) plan.push(await planning(n));
  const apply = [];
  for (const kind of applyKinds) for (const n of applySizes) apply.push(await applying(kind, n));
  // The Postgres target case, again: three more runs alternating with a bare loop doing the same
  // statements, so that both see the same disk (commit latency varies from minute to minute here).
  const n = Math.max(...applySizes);
  const lockstepRuns = [apply.find((a) => a.kind === 'postgres' && a.migrations === n)];
  const floorRuns = [];
  for (let i = 0; i < FLOOR_RUNS; i++) {
    floorRuns.push(await postgresFloor(n));
    if (i < FLOOR_RUNS - 1) lockstepRuns.push(await applying('postgres', n));
  }
  const inProcess = await inProcessApply(n);
  const target = lockstepRuns[0];
  Object.assign(target, {
    runs: lockstepRuns.map((r) => r.wallMs),
    wallMs: round(median(lockstepRuns.map((r) => r.wallMs))),
    perMigrationMs: round(median(lockstepRuns.map((r) => r.perMigrationMs)), 2),
    peakRssMiB: Math.max(...lockstepRuns.map((r) => r.peakRssMiB)),
    code: lockstepRuns.find((r) => r.code !== 0)?.code ?? 0,
    applied: Math.min(...lockstepRuns.map((r) => r.applied)),
  });
  return {
    plan,
    apply,
    inProcessApply: inProcess,
    postgresFloor: { migrations: n, perMigrationMs: round(median(floorRuns), 2), runs: floorRuns },
  };
}

/**
 * Diagnostic: the same 1,000 migrations applied in-process with migrate(), counting lockstep's
 * 'query' events and timing each migration from its `migrating` to its `migrated` event.
 */
async function inProcessApply(n) {
  const db = await createDatabase('postgres');
  const dir = scratchDir(`apply-inprocess-${n}`);
  lockstep.write(dir, smallMigrations(n));
  try {
    const { migrate } = await import(LIBRARY);
    let queries = 0;
    let startedAt = 0;
    const durations = [];
    const t0 = now();
    await migrate({
      url: db.url,
      dir,
      on(event) {
        if (event.type === 'query') queries++;
        if (event.type === 'migrating') startedAt = now();
        if (event.type === 'migrated') durations.push(now() - startedAt);
      },
    });
    const out = {
      migrations: n,
      wallMs: round(now() - t0),
      queriesPerMigration: round(queries / n, 2),
      perMigrationMedianMs: round(median(durations), 2),
      perMigrationMeanMs: round(durations.reduce((a, b) => a + b, 0) / durations.length, 2),
    };
    log(`in-process apply ${n}: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await db.drop();
  }
}

/**
 * What the same work costs with nothing but `pg` on one connection: per migration
 * BEGIN + SET LOCAL lock_timeout, the CREATE TABLE, a ledger INSERT, COMMIT (lockstep's 4 queries).
 */
async function postgresFloor(n) {
  const db = await createDatabase('postgres');
  try {
    await db.query(
      'CREATE TABLE floor_ledger (version text PRIMARY KEY, name text, checksum text, at timestamptz)',
    );
    const t0 = now();
    for (const m of smallMigrations(n)) {
      await db.query("BEGIN; SET LOCAL lock_timeout = '5000ms'");
      await db.query(m.up[0]);
      await db.query('INSERT INTO floor_ledger VALUES ($1, $2, $3, now())', [m.version, m.name, 'x']);
      await db.query('COMMIT');
    }
    const perMigrationMs = round((now() - t0) / n, 2);
    log(`postgres floor: ${perMigrationMs} ms per migration (bare loop, same statements)`);
    return perMigrationMs;
  } finally {
    await db.drop();
  }
}

/** The lockstep CLI as an OS process, with its wall time, peak RSS and exit code. */
async function cli(args) {
  const run = await runNodeMeasured([CLI, ...args], { timeoutMs: 180_000 });
  return { ms: run.ms, rssMiB: run.rssMiB, code: run.code, stderr: run.stderr.slice(0, 300) };
}

async function planning(n) {
  const db = await createDatabase('postgres');
  const dir = scratchDir(`plan-${n}`);
  const migrations = smallMigrations(n);
  lockstep.write(dir, migrations);
  try {
    const common = ['--url', db.url, '--dir', dir];
    const status = [];
    for (let i = 0; i < RUNS; i++) status.push(await cli(['status', ...common]));
    const { createMigrator } = await import(LIBRARY);
    const inProcess = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = now();
      await createMigrator({ url: db.url, dir }).status();
      inProcess.push(now() - t0);
    }
    const reading = await readingProbe(dir);
    await seedLedger(db, dir);
    const up = [];
    for (let i = 0; i < RUNS; i++) up.push(await cli(['up', '-q', ...common]));
    const out = {
      files: n,
      statusCliMedianMs: round(median(status.map((r) => r.ms))),
      statusPeakRssMiB: Math.max(...status.map((r) => r.rssMiB)),
      statusInProcessMedianMs: round(median(inProcess)),
      upToDateCliMedianMs: round(median(up.map((r) => r.ms))),
      upToDatePeakRssMiB: Math.max(...up.map((r) => r.rssMiB)),
      exitCodes: [...new Set([...status, ...up].map((r) => r.code))],
      error: [...status, ...up].find((r) => r.code !== 0)?.stderr ?? null,
      reading,
    };
    log(
      `plan ${n} files: status CLI ${out.statusCliMedianMs} ms (${out.statusPeakRssMiB} MiB), in-process ` +
        `${out.statusInProcessMedianMs} ms; up with all applied ${out.upToDateCliMedianMs} ms (${out.upToDatePeakRssMiB} MiB)`,
    );
    return out;
  } finally {
    await db.drop();
  }
}

/**
 * Diagnostic: the same files read in a fresh process three ways: readFileSync one by one, one
 * Promise.all of async readFile (what lockstep does), and lockstep's own readMigrations.
 */
async function readingProbe(dir) {
  const out = {};
  for (const mode of ['sync', 'async', 'lockstep']) {
    const run = await runProcess(process.execPath, [PROBE, 'read', mode, dir], {
      env: { BENCH_SOURCES: path.join(ROOT, 'dist/core/sources.js') },
    });
    out[mode] = run.code === 0 ? JSON.parse(run.stdout) : { error: run.stderr.slice(0, 200) };
  }
  return out;
}

/**
 * Marks every migration applied without running them: the ledger lockstep creates itself (by
 * applying the first migration), then one row per file with lockstep's own checksum of it.
 */
async function seedLedger(db, dir) {
  const { readMigrations } = await import(path.join(ROOT, 'dist/core/sources.js'));
  const all = await readMigrations(dir, dir);
  const first = scratchDir('seed-first');
  copyFileSync(path.join(dir, path.basename(all[0].file)), path.join(first, path.basename(all[0].file)));
  const run = await cli(['up', '-q', '--url', db.url, '--dir', first]);
  if (run.code !== 0) throw new Error(`seeding the ledger failed: ${run.stderr}`);
  const rest = all.slice(1);
  await db.query(
    `INSERT INTO lockstep_migrations (version, name, checksum, state, direction, statements_done, statement_count,
       started_at, finished_at, duration_ms, applied_by)
     SELECT v, n, c, 'applied', 'up', 1, 1, now(), now(), 1, 'bench:seed'
       FROM unnest($1::text[], $2::text[], $3::text[]) AS t(v, n, c)`,
    [rest.map((m) => m.version), rest.map((m) => m.name), rest.map((m) => m.checksum)],
  );
}

async function applying(kind, n) {
  const db = await createDatabase(kind);
  const dir = scratchDir(`apply-${kind}-${n}`);
  lockstep.write(dir, smallMigrations(n));
  try {
    const run = await cli(['up', '-q', '--url', db.url, '--dir', dir]);
    const applied = await lockstep.ledgerRows(db);
    const out = {
      kind,
      migrations: n,
      applied,
      wallMs: round(run.ms),
      perMigrationMs: round(run.ms / n, 2),
      peakRssMiB: run.rssMiB,
      code: run.code,
      error: run.code === 0 ? null : run.stderr,
    };
    log(
      `apply ${kind} ${n}: ${out.wallMs} ms, ${out.perMigrationMs} ms each, ${out.peakRssMiB} MiB, exit ${run.code}`,
    );
    return out;
  } finally {
    await db.drop();
  }
}
