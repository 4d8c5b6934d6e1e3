// `npm run soak`: the fault campaign. Per database, racing rounds (5–50 processes over a random
// migration set, then the invariants) and fault rounds (a runner struck at an instant chosen from
// its own events; then the guarantees). Every random choice comes from one seeded generator.
//
//   npm run soak -- [--quick] [--targets postgres,mysql,sqlite] [--races N] [--processes MIN-MAX]
//                   [--seed S] [--<fault option> N: --kills N, --terminations N, one per faults/*.mjs]
//
// Writes soak/results.json and soak/RESULTS.md (a --quick run: soak/quick-results.*); an anomaly's
// logs go to soak/anomalies/<id>/ and its database is kept.
import { execSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase, dropAll, MYSQL_ADMIN_URL, PG_ADMIN_URL } from './lib/databases.mjs';
import { faultRound } from './lib/fault-round.mjs';
import { calibrateSqlite } from './lib/generate.mjs';
import { createRandom } from './lib/prng.mjs';
import { ROOT, SOAK } from './lib/processes.mjs';
import { raceRound } from './lib/race.mjs';
import { summarise, writeResults } from './lib/report.mjs';

/**
 * One module per fault kind in faults/: { kind, option (its --option: how many per database),
 * rounds: { quick, full }, targets, instants, victimExits, inject }. A new kind is one more file.
 */
const FAULTS = {};
for (const file of readdirSync(path.join(SOAK, 'faults'))
  .filter((f) => f.endsWith('.mjs'))
  .sort()) {
  const fault = (await import(`./faults/${file}`)).default;
  FAULTS[fault.option] = fault;
}

const { values } = parseArgsOrFail({
  options: {
    quick: { type: 'boolean', default: false },
    targets: { type: 'string', default: 'postgres,mysql,sqlite' },
    races: { type: 'string' },
    ...Object.fromEntries(Object.keys(FAULTS).map((option) => [option, { type: 'string' }])),
    processes: { type: 'string' },
    seed: { type: 'string' },
  },
});
const base = values.quick ? { races: 10, processes: '5-20' } : { races: 1000, processes: '5-50' };
const seed = values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31);
const config = {
  targets: values.targets.split(','),
  races: Number(values.races ?? base.races),
  processes: (values.processes ?? base.processes).split('-').map(Number),
};
for (const [option, fault] of Object.entries(FAULTS)) {
  config[option] = Number(values[option] ?? (values.quick ? fault.rounds.quick : fault.rounds.full));
}
for (const [option, n] of Object.entries({ seed, races: config.races, ...config })) {
  if (option !== 'targets' && option !== 'processes' && !Number.isInteger(n))
    fail(`--${option} takes an integer`);
}
for (const t of config.targets) {
  if (!['postgres', 'mysql', 'sqlite'].includes(t)) fail(`unknown target ${t} (postgres, mysql, sqlite)`);
}
const argv = [
  values.quick ? '--quick' : '',
  `--targets ${config.targets.join(',')}`,
  `--races ${config.races}`,
  ...Object.keys(FAULTS).map((option) => `--${option} ${config[option]}`),
  `--processes ${config.processes.join('-')}`,
  `--seed ${seed}`,
]
  .filter(Boolean)
  .join(' ');

const started = Date.now();
const log = (message) =>
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
log(`soak: seed ${seed} (replay: npm run soak -- ${argv})`);
process.on('SIGINT', async () => {
  await dropAll();
  process.exit(130);
});

const require = createRequire(path.join(ROOT, 'package.json'));
const Sqlite = require('better-sqlite3');
const probe = new Sqlite(':memory:');
config.sqliteRowsPerMs = await calibrateSqlite(async (sql) => probe.prepare(sql).all());
probe.close();

const random = createRandom(seed);
const rounds = [];
let anomalyCount = 0;
for (const target of config.targets) {
  const plan = [
    ...Array.from({ length: config.races }, () => ({ type: 'race' })),
    ...Object.entries(FAULTS).flatMap(([option, fault]) =>
      fault.targets.includes(target)
        ? Array.from({ length: config[option] }, () => ({ type: 'fault', fault }))
        : [],
    ),
  ];
  for (const [i, step] of plan.entries()) {
    const roundRandom = random.fork();
    const id = `${target}-${step.type === 'race' ? 'race' : step.fault.kind}-${i + 1}-s${seed}`;
    const record = await round(target, step, roundRandom, id);
    rounds.push(record);
    if (record.anomalies.length > 0) anomalyCount += record.anomalies.length;
    const what =
      record.type === 'race'
        ? `race: ${record.processes} processes, ${record.migrations} migrations${record.failing ? `, ${record.failing} fails` : ''}`
        : `${record.fault} at ${record.instant}${record.missed ? ' (missed)' : `: ${record.outcome}${record.proceedMs !== null ? `, next proceeded after ${Math.round(record.proceedMs)} ms` : ''}`}`;
    log(
      `${target} ${i + 1}/${plan.length} ${what}${record.anomalies.length ? ` — ANOMALY: ${record.anomalies.join('; ')}` : ''}`,
    );
  }
}
await dropAll();

const meta = {
  date: new Date().toISOString(),
  seed,
  argv,
  quick: values.quick,
  config,
  machine: machine(),
  servers: await serverVersions(),
  commit: commit(),
  durationSeconds: Math.round((Date.now() - started) / 1000),
};
const results = { ...summarise(meta, rounds), rounds: rounds.map(({ logs: _, ...r }) => r) };
const prefix = values.quick ? 'quick-results' : 'results';
const mdFile = path.join(SOAK, values.quick ? 'quick-results.md' : 'RESULTS.md');
writeResults(results, path.join(SOAK, `${prefix}.json`), mdFile);
log(
  `done in ${meta.durationSeconds} s: ${rounds.length} rounds, ${anomalyCount} anomalies; wrote ${path.relative(ROOT, mdFile)}`,
);
process.exit(anomalyCount === 0 ? 0 : 1);

// ---------------------------------------------------------------------------------------------

async function round(target, step, roundRandom, id) {
  const db = await createDatabase(target, `r${rounds.length + 1}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), `soak-${id}-`));
  const logs = [];
  const context = { kind: target, random: roundRandom, db, dir, config, logs };
  let outcome;
  try {
    outcome =
      step.type === 'race' ? await raceRound(context) : await faultRound({ ...context, fault: step.fault });
  } catch (error) {
    outcome = { anomalies: [`the harness failed: ${error.stack}`] };
  }
  const record = {
    id,
    target,
    type: step.type,
    fault: step.fault?.kind,
    instant: outcome.instant,
    missed: outcome.missed ?? false,
    outcome: outcome.outcome,
    proceedMs: outcome.proceedMs ?? null,
    processes: outcome.processes,
    failing: outcome.failing,
    migrations: outcome.set?.migrations.length,
    anomalies: outcome.anomalies,
    kept: null,
  };
  if (process.env.SOAK_KEEP_LOGS) {
    mkdirSync(process.env.SOAK_KEEP_LOGS, { recursive: true });
    writeFileSync(
      path.join(process.env.SOAK_KEEP_LOGS, `${id}.json`),
      JSON.stringify({ record, set: outcome.set, logs }, null, 2),
    );
  }
  if (outcome.anomalies.length > 0) {
    const keep = path.join(SOAK, 'anomalies', id);
    mkdirSync(keep, { recursive: true });
    cpSync(dir, path.join(keep, 'work'), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    record.kept = db.where;
    writeFileSync(
      path.join(keep, 'round.json'),
      `${JSON.stringify({ ...record, set: outcome.set, logs }, null, 2)}\n`,
    );
    await db.keep();
    log(`kept ${db.where} and the logs in soak/anomalies/${id}/`);
  } else {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  return record;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

async function serverVersions() {
  const pg = require('pg');
  const mysql = require('mysql2/promise');
  const servers = {};
  if (config.targets.includes('postgres')) {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    servers.postgres = `PostgreSQL ${(await client.query('SHOW server_version')).rows[0].server_version}`;
    await client.end();
  }
  if (config.targets.includes('mysql')) {
    const connection = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
    const [[row]] = await connection.query('SELECT VERSION() AS v');
    servers.mysql = `MariaDB ${String(row.v).replace(/-MariaDB.*$/, '')}`;
    await connection.end();
  }
  if (config.targets.includes('sqlite')) {
    const db = new Sqlite(':memory:');
    servers.sqlite = `SQLite ${db.prepare('SELECT sqlite_version() AS v').get().v} (better-sqlite3)`;
    db.close();
  }
  return servers;
}

function commit() {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain -- src', { cwd: ROOT }).toString().trim() !== '';
    return dirty ? `${head} + uncommitted changes in src/` : head;
  } catch {
    return 'unknown';
  }
}

function parseArgsOrFail(spec) {
  try {
    return parseArgs(spec);
  } catch (error) {
    fail(
      `${error.message}\nusage: npm run soak -- [--quick] [--targets postgres,mysql,sqlite] [--races N] [--processes MIN-MAX] [--seed S] ${Object.keys(
        FAULTS,
      )
        .map((o) => `[--${o} N]`)
        .join(' ')}`,
    );
  }
}

function fail(message) {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}
