// Scenario 3 — boot cost when nothing is pending: 100 migrations, all applied; then the time a
// booting process spends finding that out. The CLI is each tool's own entry point started as an
// OS process (node + script, or the binary); the in-process call is the library's migrate-to-latest,
// opening and closing its own connection like a booting worker does.
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { smallMigrations } from '../lib/migrations.mjs';
import { countRoundTrips } from '../lib/round-trips.mjs';
import {
  BENCH,
  createDatabase,
  log,
  median,
  now,
  pg,
  ROOT,
  round,
  runProcess,
  scratchDir,
} from '../lib/shared.mjs';
import { lockstep } from '../lib/tools.mjs';

const MIGRATIONS = 100;
const WARMUP = 3;

const PROBE = path.join(BENCH, 'workers/probe.mjs');
const LOCK_QUERY = /advisory_lock|GET_LOCK|BEGIN IMMEDIATE \(lock\)/i;

export async function nothingPending({ tools, kinds, cliRuns, peerCliRuns, inProcessRuns }) {
  const node = [];
  for (let i = 0; i < cliRuns; i++) node.push((await runProcess(process.execPath, ['-e', '0'])).ms);
  const nodeMs = median(node);
  log(`node -e 0: median ${round(nodeMs)} ms`);
  const results = [];
  for (const kind of kinds) {
    for (const tool of tools) {
      if (tool.supports(kind) !== true) continue;
      results.push(await measure(tool, kind, tool === lockstep ? cliRuns : peerCliRuns, inProcessRuns));
      const r = results.at(-1);
      log(
        `nothing pending ${kind} ${tool.id}: CLI ${r.cliMedianMs} ms, in-process ${r.inProcessMedianMs ?? '-'} ms, ` +
          `round trips ${r.roundTrips ?? '-'}${r.error ? `, ERROR ${r.error}` : ''}`,
      );
    }
  }
  const floors = await diagnostics(inProcessRuns);
  log(`floors: ${JSON.stringify(floors)}`);
  return {
    migrations: MIGRATIONS,
    nodeMedianMs: round(nodeMs),
    nodeRuns: node.map((v) => round(v)),
    results,
    floors,
  };
}

/**
 * Where an in-process call's time can go, measured without lockstep: a bare `pg` connection
 * opened, queried once and closed; and the 100 files read with concurrent async readFile calls
 * versus readFileSync.
 */
async function diagnostics(runs) {
  const db = await createDatabase('postgres');
  const dir = scratchDir('floors');
  lockstep.write(dir, smallMigrations(MIGRATIONS));
  try {
    const connect = [];
    const query = [];
    const end = [];
    for (let i = 0; i < runs + WARMUP; i++) {
      const t0 = now();
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const t1 = now();
      await client.query('SELECT 1');
      const t2 = now();
      await client.end();
      if (i < WARMUP) continue;
      connect.push(t1 - t0);
      query.push(t2 - t1);
      end.push(now() - t2);
    }
    const asyncRead = [];
    const syncRead = [];
    for (let i = 0; i < runs + WARMUP; i++) {
      const t0 = now();
      const names = (await readdir(dir)).sort();
      await Promise.all(names.map((n) => readFile(path.join(dir, n), 'utf8')));
      const t1 = now();
      for (const n of readdirSync(dir).sort()) readFileSync(path.join(dir, n), 'utf8');
      if (i < WARMUP) continue;
      asyncRead.push(t1 - t0);
      syncRead.push(now() - t1);
    }
    // Loading each driver in a fresh process (the CLI loads one per run).
    const driverLoadMs = {};
    for (const [name, base] of [
      ['pg', ROOT],
      ['mysql2/promise', ROOT],
      ['better-sqlite3', ROOT],
    ]) {
      const file = createRequire(path.join(base, 'package.json')).resolve(name);
      const times = [];
      for (let i = 0; i < 5; i++) {
        const run = await runProcess(process.execPath, [PROBE, 'load', file]);
        if (run.code === 0) times.push(JSON.parse(run.stdout).ms);
      }
      driverLoadMs[name] = round(median(times));
    }
    return {
      driverLoadMs,
      pgConnectMs: round(median(connect), 2),
      pgQueryMs: round(median(query), 2),
      pgEndMs: round(median(end), 2),
      readFileAsync100Ms: round(median(asyncRead), 2),
      readFileSync100Ms: round(median(syncRead), 2),
    };
  } finally {
    await db.drop();
  }
}

/** Median wall time of `runs` awaited calls, after WARMUP; then `call.close()` if it has one. */
async function timeCalls(call, runs) {
  try {
    for (let i = 0; i < WARMUP; i++) await call();
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = now();
      await call();
      times.push(now() - t0);
    }
    return { medianMs: round(median(times), 2), runs: times.map((v) => round(v, 2)) };
  } finally {
    await call.close?.();
  }
}

async function measure(tool, kind, cliRuns, inProcessRuns) {
  const db = await createDatabase(kind);
  const dir = scratchDir(`pending-${tool.id}-${kind}`);
  tool.write(dir, smallMigrations(MIGRATIONS));
  const out = { tool: tool.id, kind };
  try {
    const command = tool.command(db, dir);
    const apply = await runProcess(command.command, command.args, { env: command.env, timeoutMs: 120_000 });
    const applied = await tool.ledgerRows(db).catch(() => null);
    if (apply.code !== 0 || applied !== MIGRATIONS) {
      out.error = `setup: exit ${apply.code}, ${applied} of ${MIGRATIONS} recorded: ${apply.stderr.slice(0, 200)}`;
      return out;
    }
    const cli = [];
    const codes = new Set();
    for (let i = 0; i < cliRuns; i++) {
      const run = await runProcess(command.command, command.args, { env: command.env });
      cli.push(run.ms);
      codes.add(run.code);
    }
    out.cliMedianMs = round(median(cli));
    out.cliRuns = cli.map((v) => round(v));
    out.cliExitCodes = [...codes];
    if (tool.inProcess) {
      const call = await tool.inProcess(db, dir);
      const timed = await timeCalls(call, inProcessRuns);
      out.inProcessMedianMs = timed.medianMs;
      out.inProcessRuns = timed.runs;
      if (kind !== 'sqlite') out.roundTrips = await countRoundTrips(() => call());
      if (tool === lockstep && kind === 'postgres') {
        const pooled = await timeCalls(await tool.inProcessWithPool(db, dir), inProcessRuns);
        out.inProcessPoolMedianMs = pooled.medianMs;
        out.inProcessPoolRuns = pooled.runs;
        log(`nothing pending ${kind} lockstep, in-process on the caller's pg.Pool: ${pooled.medianMs} ms`);
      }
      if (tool === lockstep) {
        // What lockstep itself reports: its 'query' events, and whether it took the lock.
        const events = [];
        await call((event) => events.push(event));
        const queries = events.filter((e) => e.type === 'query').map((e) => e.sql);
        out.queryEvents = queries.length;
        out.queries = queries.map((q) => q.replace(/\s+/g, ' ').slice(0, 120));
        out.lockTaken =
          events.some((e) => e.type === 'lock-acquired') || queries.some((q) => LOCK_QUERY.test(q));
        out.upToDate = events.some((e) => e.type === 'up-to-date');
      }
    }
    return out;
  } catch (error) {
    out.error = String(error?.message ?? error).slice(0, 300);
    return out;
  } finally {
    await db.drop();
  }
}
