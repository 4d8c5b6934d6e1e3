// Scenario 1 — boot race: N processes start the tool's own entry point at the same instant on a
// fresh database with five migrations. Every process is a real OS process.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkRaceSchema, raceMigrations } from '../lib/migrations.mjs';
import {
  CLI,
  createDatabase,
  log,
  median,
  race,
  round,
  runNodeMeasured,
  scratchDir,
  USAGE_PRELOAD,
  WORK,
} from '../lib/shared.mjs';
import { lockstep } from '../lib/tools.mjs';

/** A process still running after this is killed and counted as timed out. */
const PROCESS_TIMEOUT_MS = 30_000;
/** How many single-process runs make the baseline. */
const SINGLE_RUNS = 3;
/** N of the extra, untimed race whose processes' CPU time is measured (lockstep only). */
const CPU_PROBE_N = 20;

/**
 * @param {object} options
 * @param {object[]} options.tools adapters from lib/tools.mjs
 * @param {string[]} options.kinds databases
 * @param {number[]} options.sizes N
 * @param {(tool: object, n: number) => number} options.rounds rounds for a tool at N
 */
export async function bootRace({ tools, kinds, sizes, rounds }) {
  const startup = await startupOverhead(sizes);
  const results = [];
  for (const kind of kinds) {
    for (const tool of tools) {
      if (tool.supports(kind) !== true) continue;
      const dir = scratchDir(`race-${tool.id}-${kind}`);
      tool.write(dir, raceMigrations(kind));
      const singles = [];
      for (let i = 0; i < SINGLE_RUNS; i++) singles.push(await oneRound(tool, kind, dir, 1));
      const single = median(singles.map((s) => s.wallMs));
      const entry = { tool: tool.id, kind, singleMs: round(single), singles, sizes: [] };
      for (const n of sizes) {
        const runs = [];
        const extras = [];
        for (let r = 0; r < rounds(tool, n); r++) {
          // lockstep's allowance is measured right before each of its rounds, under the same load.
          if (tool === lockstep) extras.push((await versionRace(n)) - startup.oneMs);
          runs.push(await oneRound(tool, kind, dir, n));
        }
        entry.sizes.push(summarize(tool, n, runs, single, extras));
        const s = entry.sizes.at(-1);
        log(
          `race ${kind} ${tool.id} N=${n}: exit0 ${s.exit0}/${s.processes}, doubles ${s.doubles}, ` +
            `schema ok ${s.schemaOkRounds}/${s.rounds}, wall ${s.wallMedianMs} ms (×${s.ratio})`,
        );
      }
      if (tool === lockstep) {
        entry.cpu = await processCpu(tool, kind, dir, CPU_PROBE_N);
        entry.upAllowance = await upAllowance(tool, kind, dir, sizes);
      }
      results.push(entry);
    }
  }
  return { startup, results };
}

/**
 * Diagnostic, outside the timed rounds: one extra N-process race with every process measured
 * (lib/usage-preload.mjs), for the CPU time each takes next to a bare `lockstep --version`.
 */
async function processCpu(tool, kind, dir, n) {
  const db = await createDatabase(kind);
  try {
    const base = tool.command(db, dir);
    const files = Array.from({ length: n }, (_, i) => path.join(WORK, `cpu-${kind}-${i}.json`));
    await race(
      files.map((file) => ({
        command: base.command,
        args: ['--import', USAGE_PRELOAD, ...base.args],
        env: { BENCH_USAGE_FILE: file },
      })),
      { timeoutMs: PROCESS_TIMEOUT_MS },
    );
    const cpu = files.map((f) => JSON.parse(readFileSync(f, 'utf8')).cpuMicros / 1000);
    const version = [];
    for (let i = 0; i < 5; i++) version.push((await runNodeMeasured([CLI, '--version'])).cpuMs);
    const out = {
      n,
      upCpuMedianMs: round(median(cpu)),
      upCpuTotalMs: round(cpu.reduce((a, b) => a + b, 0)),
      versionCpuMedianMs: round(median(version)),
    };
    log(
      `cpu ${kind} lockstep: N=${n} up ${out.upCpuMedianMs} ms/process vs --version ${out.versionCpuMedianMs} ms`,
    );
    return out;
  } finally {
    await db.drop();
  }
}

async function oneRound(tool, kind, dir, n) {
  const db = await createDatabase(kind);
  try {
    const command = tool.command(db, dir);
    const { wallMs, results } = await race(
      Array.from({ length: n }, () => command),
      {
        timeoutMs: PROCESS_TIMEOUT_MS,
      },
    );
    const check = await checkRaceSchema(db);
    const ledgerRows = await tool.ledgerRows(db).catch(() => null);
    const lockLeft = tool.lockLeft ? await tool.lockLeft(db).catch(() => null) : null;
    const failed = results.filter((r) => r.code !== 0);
    return {
      wallMs: round(wallMs),
      exit0: results.length - failed.length,
      timedOut: results.filter((r) => r.timedOut).length,
      exitCodes: countBy(results.map((r) => (r.timedOut ? 'timeout' : String(r.code ?? r.signal)))),
      doubles: check.doubles,
      missing: check.missing,
      counts: check.counts,
      schemaOk: check.schemaOk && ledgerRows === 5,
      ledgerRows,
      lockLeft,
      firstError: failed.length > 0 ? firstLine(failed[0]) : null,
      errors: countBy(failed.map(firstLine)),
    };
  } finally {
    await db.drop();
  }
}

function summarize(tool, n, runs, singleMs, extras) {
  const walls = runs.map((r) => r.wallMs);
  const wallMedianMs = median(walls);
  const summary = {
    n,
    rounds: runs.length,
    processes: n * runs.length,
    exit0: runs.reduce((s, r) => s + r.exit0, 0),
    timedOut: runs.reduce((s, r) => s + r.timedOut, 0),
    doubles: runs.reduce((s, r) => s + r.doubles, 0),
    roundsWithDoubles: runs.filter((r) => r.doubles > 0).length,
    roundsLockLeft: runs.filter((r) => r.lockLeft === true).length,
    schemaOkRounds: runs.filter((r) => r.schemaOk).length,
    wallMedianMs: round(wallMedianMs),
    wallMaxMs: round(Math.max(...walls)),
    ratio: round(wallMedianMs / singleMs, 2),
    errors: mergeCounts(runs.map((r) => r.errors)),
    runs,
  };
  if (tool === lockstep) {
    // Target: ≤ 1.3 × (one runner's wall time + what N processes take just to start).
    const extraMs = median(extras);
    const limit = 1.3 * (singleMs + extraMs);
    summary.target = {
      extraMs: round(extraMs),
      extras: extras.map((e) => round(e)),
      limitMs: round(limit),
      wallPass: wallMedianMs <= limit,
      correctPass:
        summary.exit0 === summary.processes &&
        summary.doubles === 0 &&
        summary.schemaOkRounds === runs.length,
    };
  }
  return summary;
}

const VERSION = { command: process.execPath, args: [CLI, '--version'] };

/** Wall time of N concurrent `lockstep --version`. */
async function versionRace(n) {
  return raceWall(n, VERSION);
}

async function raceWall(n, command) {
  return (
    await race(
      Array.from({ length: n }, () => command),
      { timeoutMs: PROCESS_TIMEOUT_MS },
    )
  ).wallMs;
}

/** N concurrent runs of `command` minus one, at each N (median of 3 each). */
async function allowance(sizes, command) {
  const wall = async (n) => {
    const walls = [];
    for (let i = 0; i < 3; i++) walls.push(await raceWall(n, command));
    return median(walls);
  };
  const one = await wall(1);
  const out = { oneMs: round(one) };
  for (const n of sizes) {
    const all = await wall(n);
    out[n] = { wallMs: round(all), extraMs: round(all - one) };
  }
  return out;
}

/** N concurrent `lockstep --version` minus one, at the start: the cost of starting N processes at all. */
async function startupOverhead(sizes) {
  const out = await allowance(sizes, VERSION);
  log(`startup overhead: ${JSON.stringify(out)}`);
  return out;
}

/**
 * The allowance measured with boots instead of `--version`: N concurrent nothing-pending
 * `lockstep up` minus one (median of 3 at each N), what N processes cost when each also loads its
 * driver, connects and reads the ledger. Shown beside the `--version` allowance; the target keeps that one.
 */
async function upAllowance(tool, kind, dir, sizes) {
  const db = await createDatabase(kind);
  try {
    const command = tool.command(db, dir);
    await raceWall(1, command);
    const out = await allowance(sizes, command);
    log(`nothing-pending up allowance ${kind}: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await db.drop();
  }
}

/** The first meaningful line of a failed process's output, for the error summary. */
function firstLine(result) {
  if (result.timedOut) return `killed after ${PROCESS_TIMEOUT_MS / 1000} s (still running)`;
  const lines = `${result.stderr}\n${result.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.endsWith(':'));
  const line =
    lines.find((l) => /error/i.test(l)) ??
    lines.find((l) => /fail|lock|exist|duplicate|denied|busy|deadlock|unique/i.test(l)) ??
    lines[0] ??
    '';
  return line
    .replace(/bench_[0-9a-f]{10}/g, 'bench_…')
    .replace(/\/[^\s'"]*\.work\/[^\s'"]*/g, '…')
    .slice(0, 160);
}

function countBy(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function mergeCounts(list) {
  const out = {};
  for (const counts of list) for (const [k, v] of Object.entries(counts)) out[k] = (out[k] ?? 0) + v;
  return out;
}
