// `npm run bench` (from the repository root, after building lockstep): installs the bench's own
// dependencies if they are missing, runs the five scenarios, and writes bench/results.json and
// bench/RESULTS.md. Scenarios: BENCH_SCENARIOS=race,handoff,pending,scale,starpunk (default: all).
// BENCH_QUICK=1 shrinks every scenario, to check the pipeline; its numbers mean nothing.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const started = Date.now();

ensureDependencies();
if (!existsSync(path.join(ROOT, 'dist/index.js'))) fail('lockstep is not built: run `npm run build` first');
// A clean scratch space every run; shared.mjs recreates it.
rmSync(path.join(BENCH, '.work'), { recursive: true, force: true });

const shared = await import('./lib/shared.mjs');
const { TOOLS, PEERS, lockstep, nodePgMigrateWait } = await import('./lib/tools.mjs');
const { calibrateSqliteSpin } = await import('./lib/migrations.mjs');
const { writeReport, evaluateTargets } = await import('./report.mjs');
const { log, KINDS } = shared;

const CONFIG = {
  scenarios: (process.env.BENCH_SCENARIOS ?? 'race,handoff,pending,scale,starpunk').split(','),
  race: {
    sizes: [4, 20, 50],
    lockstepRounds: 3,
    // Peers get fewer rounds so the whole run fits in 15 minutes on 2 cores; lockstep never does.
    peerRounds: { 4: 2, 20: 2, 50: 1 },
  },
  handoffs: 220,
  pending: { cliRuns: 15, peerCliRuns: 9, inProcessRuns: 30 },
  scale: { planSizes: [1000, 10000], applySizes: [100, 1000], applyKinds: KINDS },
  starpunkRounds: 5,
};
if (process.env.BENCH_QUICK) {
  Object.assign(CONFIG, {
    race: { sizes: [4], lockstepRounds: 1, peerRounds: { 4: 1 } },
    handoffs: 10,
    pending: { cliRuns: 3, peerCliRuns: 2, inProcessRuns: 5 },
    scale: { planSizes: [100, 1000], applySizes: [10, 100], applyKinds: KINDS },
    starpunkRounds: 1,
  });
}

process.on('SIGINT', async () => {
  await shared.dropAllDatabases();
  process.exit(130);
});

await checkServers();
const meta = {
  date: new Date().toISOString(),
  machine: machine(),
  servers: await shared.serverVersions(),
  tools: Object.fromEntries([...TOOLS].map((t) => [t.id, t.version()])),
  drivers: driverVersions(),
  lockstepCommit: lockstepCommit(),
  sqliteSpinRows: calibrateSqliteSpin(),
  config: CONFIG,
};
log(`bench on ${meta.machine.cpu} ×${meta.machine.cores}; ${JSON.stringify(meta.tools)}`);

const results = { meta };
const timings = {};
async function scenario(name, run) {
  if (!CONFIG.scenarios.includes(name)) return;
  const t0 = Date.now();
  log(`== ${name}`);
  try {
    results[name] = await run();
  } finally {
    await shared.dropAllDatabases();
  }
  timings[name] = Math.round((Date.now() - t0) / 100) / 10;
  log(`== ${name} took ${timings[name]} s`);
}

try {
  await scenario('race', async () => {
    const { bootRace } = await import('./scenarios/boot-race.mjs');
    return bootRace({
      tools: [...TOOLS, nodePgMigrateWait],
      kinds: KINDS,
      sizes: CONFIG.race.sizes,
      rounds: (tool, n) => (tool === lockstep ? CONFIG.race.lockstepRounds : CONFIG.race.peerRounds[n]),
    });
  });
  await scenario('handoff', async () => {
    const { lockHandoff } = await import('./scenarios/lock-handoff.mjs');
    return lockHandoff({ kinds: KINDS, handoffs: CONFIG.handoffs });
  });
  await scenario('pending', async () => {
    const { nothingPending } = await import('./scenarios/nothing-pending.mjs');
    return nothingPending({ tools: [lockstep, ...PEERS], kinds: KINDS, ...CONFIG.pending });
  });
  await scenario('scale', async () => {
    const { scale } = await import('./scenarios/scale.mjs');
    return scale(CONFIG.scale);
  });
  await scenario('starpunk', async () => {
    const { starpunk } = await import('./scenarios/starpunk.mjs');
    return starpunk({ tools: TOOLS, rounds: CONFIG.starpunkRounds });
  });
} finally {
  await shared.dropAllDatabases();
  rmSync(shared.WORK, { recursive: true, force: true });
}

meta.durationSeconds = Math.round((Date.now() - started) / 1000);
meta.scenarioSeconds = timings;
results.targets = evaluateTargets(results);
writeFileSync(path.join(BENCH, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeReport(results, path.join(BENCH, 'RESULTS.md'));
const missed = results.targets.filter((t) => t.pass === false);
log(
  `done in ${meta.durationSeconds} s: ${results.targets.length - missed.length} PASS, ${missed.length} MISS; ` +
    'wrote bench/RESULTS.md and bench/results.json',
);
for (const t of missed) log(`MISS ${t.target}: ${t.measured}`);

// ---------------------------------------------------------------------------------------------

/** Installs bench/node_modules from the lockfile when a pinned package is missing or differs. */
function ensureDependencies() {
  const manifest = JSON.parse(readFileSync(path.join(BENCH, 'package.json'), 'utf8'));
  // dbmate's binary package installs on linux-x64 only (the one platform the registry serves).
  const binary = process.platform === 'linux' && process.arch === 'x64' ? manifest.optionalDependencies : {};
  const wanted = { ...manifest.dependencies, ...binary };
  const installed = (name) => {
    try {
      return JSON.parse(readFileSync(path.join(BENCH, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  const missing = Object.entries(wanted).filter(([name, version]) => installed(name) !== version);
  if (missing.length === 0) return;
  process.stderr.write(
    `bench: installing its dependencies (npm ci in bench/): ${missing.map(([n]) => n).join(', ')}\n`,
  );
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: BENCH, stdio: 'inherit' });
  if (result.status !== 0) fail('npm ci in bench/ failed');
  if (!existsSync(path.join(ROOT, 'node_modules/better-sqlite3'))) {
    fail("better-sqlite3 comes from lockstep's own install: run `npm ci` at the repository root");
  }
}

async function checkServers() {
  const problems = [];
  try {
    const client = new shared.pg.Client({
      connectionString: shared.PG_ADMIN_URL,
      connectionTimeoutMillis: 5000,
    });
    await client.connect();
    await client.end();
  } catch (error) {
    problems.push(`PostgreSQL at ${shared.PG_ADMIN_URL}: ${error.message}`);
  }
  try {
    const connection = await shared.mysql.createConnection({
      uri: shared.MYSQL_ADMIN_URL,
      connectTimeout: 5000,
    });
    await connection.end();
  } catch (error) {
    problems.push(`MariaDB at ${shared.MYSQL_ADMIN_URL}: ${error.message}`);
  }
  if (problems.length > 0) {
    fail(
      `the database servers must be running (DEVELOPERS.md says how to start them):\n  ${problems.join('\n  ')}`,
    );
  }
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

function driverVersions() {
  const version = (dir) => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  return {
    pg: version(path.join(BENCH, 'node_modules/pg')),
    mysql2: version(path.join(BENCH, 'node_modules/mysql2')),
    'better-sqlite3': version(path.join(ROOT, 'node_modules/better-sqlite3')),
    'lockstep pg': version(path.join(ROOT, 'node_modules/pg')),
    'lockstep mysql2': version(path.join(ROOT, 'node_modules/mysql2')),
  };
}

function lockstepCommit() {
  try {
    const commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain -- src', { cwd: ROOT }).toString().trim() !== '';
    return dirty ? `${commit} + uncommitted changes in src/` : commit;
  } catch {
    return 'unknown';
  }
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}
