// Scenario 5 — the StarPunk case: an app with 4 workers (gunicorn-style) on one SQLite file, each
// running migrations at boot. Fresh database (5 small migrations pending), then a restart with
// nothing pending. "All ready" runs from the spawn of the first worker to the last worker's
// ready line, read on the machine-wide monotonic clock; dbmate, a binary and not a library, is
// run as each worker's pre-start command, and is ready when it exits.
import path from 'node:path';
import { starpunkMigrations } from '../lib/migrations.mjs';
import { BENCH, createDatabase, LIBRARY, log, median, race, round, scratchDir } from '../lib/shared.mjs';

const WORKERS = 4;
const WORKER = path.join(BENCH, 'workers/starpunk-worker.mjs');

export async function starpunk({ tools, rounds }) {
  const results = [];
  for (const tool of tools) {
    if (tool.supports('sqlite') !== true) continue;
    const dir = scratchDir(`starpunk-${tool.id}`);
    tool.write(dir, starpunkMigrations());
    const fresh = [];
    const restart = [];
    for (let r = 0; r < rounds; r++) {
      const db = await createDatabase('sqlite');
      try {
        fresh.push(await boot(tool, db, dir));
        fresh.at(-1).correct = await correct(tool, db);
        restart.push(await boot(tool, db, dir));
      } finally {
        await db.drop();
      }
    }
    const summary = (runs) => ({
      readyMedianMs: round(median(runs.map((r) => r.readyMs))),
      readyMaxMs: round(Math.max(...runs.map((r) => r.readyMs))),
      exit0: runs.reduce((s, r) => s + r.exit0, 0),
      processes: runs.length * WORKERS,
      errors: runs.flatMap((r) => r.errors).slice(0, 3),
    });
    const entry = {
      tool: tool.id,
      rounds,
      fresh: { ...summary(fresh), correctRounds: fresh.filter((r) => r.correct).length },
      restart: summary(restart),
      runs: { fresh, restart },
    };
    results.push(entry);
    log(
      `starpunk ${tool.id}: fresh all ready ${entry.fresh.readyMedianMs} ms (exit0 ${entry.fresh.exit0}/${entry.fresh.processes}, ` +
        `correct ${entry.fresh.correctRounds}/${rounds}); restart ${entry.restart.readyMedianMs} ms`,
    );
  }
  return { workers: WORKERS, results };
}

async function boot(tool, db, dir) {
  const env = {
    BENCH_DB_KIND: 'sqlite',
    BENCH_DB_URL: db.url,
    BENCH_DB_FILE: db.file,
    BENCH_MIGRATIONS_DIR: dir,
    BENCH_LIBRARY: LIBRARY,
  };
  const command =
    tool.id === 'dbmate'
      ? { ...tool.command(db, dir), env }
      : { command: process.execPath, args: [WORKER, tool.id], env };
  const spawnedAt = Number(process.hrtime.bigint()) / 1e6;
  const { wallMs, results } = await race(Array.from({ length: WORKERS }, () => command));
  const ready = results.map((r) => {
    const line = /^ready (\S+)$/m.exec(r.stdout);
    return line ? Number(line[1]) - spawnedAt : r.ms;
  });
  return {
    readyMs: round(Math.max(...ready)),
    wallMs: round(wallMs),
    exit0: results.filter((r) => r.code === 0).length,
    errors: results.filter((r) => r.code !== 0).map((r) => r.stderr.trim().split('\n')[0]?.slice(0, 160)),
  };
}

/** Every migration applied exactly once: the settings row once, five ledger rows. */
async function correct(tool, db) {
  try {
    const settings = await db.query('SELECT COUNT(*) AS n FROM settings');
    return Number(settings[0].n) === 1 && (await tool.ledgerRows(db)) === 5;
  } catch {
    return false;
  }
}
