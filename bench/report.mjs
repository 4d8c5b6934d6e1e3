// Turns bench results into the targets table (PASS/MISS) and bench/RESULTS.md.
// `node bench/report.mjs` alone re-renders RESULTS.md from results.json (after a change to this file).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SLOW_MS } from './lib/migrations.mjs';
import { KIND_LABEL, KINDS } from './lib/shared.mjs';
import { nodePgMigrateWait, TOOLS } from './lib/tools.mjs';

const ALL_TOOLS = [...TOOLS, nodePgMigrateWait];
const label = (id) => ALL_TOOLS.find((t) => t.id === id)?.label ?? id;
/** "Memory flat in N": peak RSS at 10× N at most this many times the peak at N. */
const FLAT_RATIO = 1.25;

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const ms = (v) => (v === null || v === undefined ? '—' : `${v} ms`);
const verdict = (pass) => (pass === null ? 'n/a' : pass ? '**PASS**' : '**MISS**');

/** Every target of the issue, with what was measured and PASS/MISS. */
export function evaluateTargets(results) {
  const targets = [];
  const add = (id, target, measured, pass, note) => targets.push({ id, target, measured, pass, note });

  const race = results.race;
  if (race) {
    for (const kind of KINDS) {
      const entry = race.results.find((e) => e.tool === 'lockstep' && e.kind === kind);
      if (!entry) continue;
      const all = entry.sizes;
      const processes = all.reduce((s, x) => s + x.processes, 0);
      const exit0 = all.reduce((s, x) => s + x.exit0, 0);
      const doubles = all.reduce((s, x) => s + x.doubles, 0);
      const rounds = all.reduce((s, x) => s + x.rounds, 0);
      const ok = all.reduce((s, x) => s + x.schemaOkRounds, 0);
      add(
        `race-correct-${kind}`,
        `Boot race, ${KIND_LABEL[kind]}: 100% of processes exit 0, zero double applications, correct schema, every N (${all.map((x) => x.n).join(', ')}) and round`,
        `${exit0}/${processes} exited 0; ${doubles} double applications; schema correct in ${ok}/${rounds} rounds`,
        exit0 === processes && doubles === 0 && ok === rounds,
      );
      for (const size of all) {
        add(
          `race-wall-${kind}-${size.n}`,
          `Boot race wall time, ${KIND_LABEL[kind]}, N=${size.n}: ≤ 1.3 × (single run + start-up of N processes)`,
          `median ${size.wallMedianMs} ms (worst ${size.wallMaxMs} ms) vs limit ${size.target.limitMs} ms = 1.3 × (${entry.singleMs} + ${size.target.extraMs})`,
          size.target.wallPass,
          'race-wall',
        );
      }
    }
  }

  const handoff = results.handoff?.results.find((r) => r.kind === 'postgres');
  if (handoff) {
    add(
      'handoff-median',
      'Lock handoff on PostgreSQL: median ≤ 5 ms',
      `${handoff.medianMs} ms over ${handoff.valid} handoffs`,
      handoff.medianMs <= 5,
    );
    add(
      'handoff-p99',
      'Lock handoff on PostgreSQL: p99 ≤ 25 ms',
      `${handoff.p99Ms} ms (max ${handoff.maxMs} ms)`,
      handoff.p99Ms <= 25,
    );
  }

  const pending = results.pending;
  if (pending) {
    for (const kind of KINDS) {
      const r = pending.results.find((x) => x.tool === 'lockstep' && x.kind === kind);
      if (!r || r.error) {
        if (r) add(`pending-${kind}`, `Nothing pending, ${KIND_LABEL[kind]}`, `error: ${r.error}`, false);
        continue;
      }
      const trips = kind === 'sqlite' ? r.queryEvents : Math.max(r.queryEvents, r.roundTrips);
      add(
        `pending-trips-${kind}`,
        `Nothing pending, ${KIND_LABEL[kind]}: ≤ 2 round trips and no lock taken`,
        `${r.queryEvents} 'query' event(s)${kind === 'sqlite' ? ' (in-process statements: SQLite has no round trips)' : `, ${r.roundTrips} sent at the driver`}; lock taken: ${r.lockTaken ? 'yes' : 'no'}`,
        trips <= 2 && !r.lockTaken,
      );
      add(
        `pending-cli-${kind}`,
        `Nothing pending, ${KIND_LABEL[kind]}: CLI median ≤ 2.5 × \`node -e 0\``,
        `${r.cliMedianMs} ms = ${(r.cliMedianMs / pending.nodeMedianMs).toFixed(2)} × ${pending.nodeMedianMs} ms`,
        r.cliMedianMs <= 2.5 * pending.nodeMedianMs,
        'cli',
      );
      if (kind === 'postgres') {
        add(
          'pending-inprocess',
          'Nothing pending: in-process median ≤ 3 ms on loopback PostgreSQL',
          `${r.inProcessMedianMs} ms`,
          r.inProcessMedianMs <= 3,
          'in-process',
        );
        if (r.inProcessPoolMedianMs !== undefined) {
          add(
            'pending-inprocess-pool',
            "Nothing pending: in-process median ≤ 3 ms on loopback PostgreSQL, on the application's pg.Pool",
            `${r.inProcessPoolMedianMs} ms (its own connection: ${r.inProcessMedianMs} ms)`,
            r.inProcessPoolMedianMs <= 3,
            'in-process',
          );
        }
      }
    }
  }

  const scale = results.scale;
  if (scale) {
    const big = scale.plan.find((p) => p.files === 10000);
    const small = scale.plan.find((p) => p.files === 1000);
    if (big) {
      add(
        'plan-status',
        '10,000 migration files planned in ≤ 1 s: `lockstep status` (CLI, empty ledger)',
        `${big.statusCliMedianMs} ms (in-process status(): ${big.statusInProcessMedianMs} ms)`,
        big.statusCliMedianMs <= 1000,
        'plan',
      );
      add(
        'plan-up',
        '10,000 migration files planned in ≤ 1 s: `lockstep up` with all 10,000 applied (CLI)',
        `${big.upToDateCliMedianMs} ms`,
        big.upToDateCliMedianMs <= 1000,
        'plan',
      );
    }
    const pg1000 = scale.apply.find((a) => a.kind === 'postgres' && a.migrations === 1000);
    if (pg1000) {
      add(
        'apply-1000',
        '1,000 small PostgreSQL migrations in one run: ≤ 3 ms each',
        `${pg1000.perMigrationMs} ms each (${pg1000.wallMs} ms for the whole CLI run; bare-loop floor ${scale.postgresFloor?.perMigrationMs} ms)`,
        pg1000.code === 0 && pg1000.applied === 1000 && pg1000.perMigrationMs <= 3,
        'apply',
      );
    }
    if (big && small) {
      for (const [what, key] of [
        ['`status`', 'statusPeakRssMiB'],
        ['`up` with all applied', 'upToDatePeakRssMiB'],
      ]) {
        add(
          `memory-plan-${key}`,
          `Memory flat in N: ${what}, 1,000 → 10,000 files (peak RSS ≤ ${FLAT_RATIO}×)`,
          `${small[key]} → ${big[key]} MiB (× ${(big[key] / small[key]).toFixed(2)})`,
          big[key] <= FLAT_RATIO * small[key],
          'memory',
        );
      }
    }
    for (const kind of KINDS) {
      const a = scale.apply.find((x) => x.kind === kind && x.migrations === 100);
      const b = scale.apply.find((x) => x.kind === kind && x.migrations === 1000);
      if (!a || !b) continue;
      add(
        `memory-apply-${kind}`,
        `Memory flat in N: applying 100 → 1,000 migrations, ${KIND_LABEL[kind]} (peak RSS ≤ ${FLAT_RATIO}×)`,
        `${a.peakRssMiB} → ${b.peakRssMiB} MiB (× ${(b.peakRssMiB / a.peakRssMiB).toFixed(2)})`,
        b.peakRssMiB <= FLAT_RATIO * a.peakRssMiB,
        'memory',
      );
    }
  }

  const star = results.starpunk?.results.find((r) => r.tool === 'lockstep');
  if (star) {
    add(
      'starpunk',
      'StarPunk: 4 SQLite workers booting on a fresh database all ready in < 500 ms',
      `median ${star.fresh.readyMedianMs} ms (worst ${star.fresh.readyMaxMs} ms); ${star.fresh.exit0}/${star.fresh.processes} exited 0; applied exactly once in ${star.fresh.correctRounds}/${star.rounds} rounds`,
      star.fresh.readyMedianMs < 500 && star.fresh.exit0 === star.fresh.processes,
    );
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------

function table(headers, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c ?? '—').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function writeReport(results, file) {
  const out = [];
  const { meta } = results;
  const p = (...lines) => {
    for (const line of lines) out.push(...(line.startsWith('#') ? [line, ''] : [line]));
    if (out.at(-1) !== '') out.push('');
  };

  p(
    '# lockstep benchmarks',
    `Written by \`npm run bench\` on ${meta.date.slice(0, 10)} (${meta.date}); the whole run took ${Math.floor(meta.durationSeconds / 60)} min ${meta.durationSeconds % 60} s. ` +
      'Raw numbers: [results.json](results.json). Every number below comes from that one run on this machine; ' +
      'nothing is edited by hand except the fixed text that explains the method.',
  );

  p('## Machine and versions');
  p(
    table(
      ['', ''],
      [
        ['CPU', `${meta.machine.cpu}, ${meta.machine.cores} cores`],
        ['Memory', `${meta.machine.memoryGiB} GiB`],
        ['OS', meta.machine.os],
        ['Node', meta.machine.node],
        ['PostgreSQL', meta.servers.postgres],
        ['MariaDB', meta.servers.mysql],
        ['SQLite', meta.servers.sqlite],
        ['lockstep', `${meta.tools.lockstep} (commit ${meta.lockstepCommit})`],
        ...ALL_TOOLS.filter((t) => t.id !== 'lockstep' && t !== nodePgMigrateWait).map((t) => [
          t.label,
          meta.tools[t.id],
        ]),
        [
          'drivers',
          Object.entries(meta.drivers)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ],
        [
          'run time per scenario',
          Object.entries(meta.scenarioSeconds)
            .map(([k, v]) => `${k} ${v} s`)
            .join(', '),
        ],
      ],
    ),
  );

  const targets = results.targets;
  const misses = targets.filter((t) => t.pass === false);
  p(
    '## lockstep against its targets',
    `${targets.length - misses.length} of ${targets.length} targets met. ` +
      (misses.length > 0 ? `**${misses.length} missed** — see "Where lockstep misses" below.` : ''),
  );
  p(
    table(
      ['target', 'measured', 'result'],
      targets.map((t) => [t.target, t.measured, verdict(t.pass)]),
    ),
  );

  p('## The tools and how each is run');
  p(
    'Each tool gets the same migrations, generated from one definition (`bench/lib/migrations.mjs`) into its own format ' +
      "(`bench/lib/tools.mjs`). Every process is a real OS process started with the tool's own entry point: node plus " +
      "the tool's CLI script, or the binary. Each round uses a new database (`CREATE DATABASE bench_<random>`, dropped after) " +
      'or a new SQLite file.',
  );
  p(
    table(
      ['tool', 'version', 'entry point', 'lock', 'one migration outside a transaction'],
      ALL_TOOLS.map((t) => [
        t.label,
        meta.tools[t.id] ?? meta.tools['node-pg-migrate'],
        t.entry,
        t.lock,
        t.nonTransactional,
      ]),
    ),
  );
  p(
    `**Not supported, so not run:** ${unsupported()}. Every other tool runs on all three databases.`,
    '',
    'Adjustments, said plainly:',
    "- **dbmate** sends a migration's statements to Postgres as one query string, which Postgres runs as one implicit " +
      'transaction, where `CREATE INDEX CONCURRENTLY` is refused even with `transaction:false`. So the index migration ' +
      'is that one statement alone, for every tool.',
    '- **kysely** cannot mark one migration non-transactional (on Postgres it runs the whole batch in one transaction, or ' +
      'none with `disableTransactions`), so its index migration is a plain `CREATE INDEX`.',
    '- **kysely** and **umzug** have no CLI of their own; their entry point is a minimal node script calling the library ' +
      '(`bench/workers/kysely.mjs`, `bench/workers/umzug.mjs`).',
    '- **umzug** has no SQL storage of its own (only Sequelize, MongoDB, JSON, memory); it gets the minimal custom storage its ' +
      'docs describe (`CREATE TABLE IF NOT EXISTS`, `SELECT`, `INSERT`). It has no lock and runs no transactions.',
    '- **node-pg-migrate** runs with its defaults (`--advisory-lock-mode fail`, `--single-transaction`); "node-pg-migrate (wait)" ' +
      'is the same with `--advisory-lock-mode wait`, the option a user would reach for to make the other processes wait.',
    `- SQLite has no \`sleep()\`: the ~${SLOW_MS} ms migration counts through a recursive CTE, sized at the start of the run to ` +
      `take ${SLOW_MS} ms in better-sqlite3 here (${meta.sqliteSpinRows} rows); dbmate's Go SQLite may take a different time.`,
  );

  if (results.race) raceSection(results, p);
  if (results.handoff) handoffSection(results, p);
  if (results.pending) pendingSection(results, p);
  if (results.scale) scaleSection(results, p);
  if (results.starpunk) starpunkSection(results, p);
  notesSection(results, p);
  writeFileSync(file, `${out.join('\n').trimEnd()}\n`);
}

/** Tool/database pairs a tool does not support, with its reason. */
function unsupported() {
  const pairs = [];
  for (const tool of TOOLS) {
    const reasons = new Map();
    for (const kind of KINDS) {
      const answer = tool.supports(kind);
      if (answer !== true) reasons.set(answer, [...(reasons.get(answer) ?? []), KIND_LABEL[kind]]);
    }
    for (const [reason, kinds] of reasons) pairs.push(`${tool.label} on ${kinds.join(' and ')} (${reason})`);
  }
  return pairs.join('; ') || 'none';
}

function raceSection(results, p) {
  const { race, meta } = results;
  const cfg = meta.config.race;
  p(
    '## 1. Boot race',
    `A fresh database, five migrations: \`0001\` creates two tables, \`0002\` adds a column, \`0003\` creates an index ` +
      `(\`CREATE INDEX CONCURRENTLY\` on Postgres, marked non-transactional where the tool can), \`0004\` is a counter insert, ` +
      `\`0005\` takes ~${SLOW_MS} ms. Every migration but the index also inserts its own row into \`bench_applied\`: a count ` +
      'above 1 is a **double application**, counted from outside the tool. **Schema correct** means the column and the ' +
      "index exist (and the index is valid), every migration left its row, and the tool's ledger holds exactly five rows. " +
      `N processes are spawned back to back; **wall** runs from the first spawn to the last exit. ` +
      `lockstep: ${plural(cfg.lockstepRounds, 'round')} at every N. Peers: ` +
      cfg.sizes.map((n) => `${plural(cfg.peerRounds[n], 'round')} at N=${n}`).join(', ') +
      ' (fewer at N=50, so the whole bench fits in 15 minutes on 2 cores; every outcome is shown, none averaged away). ' +
      "Each tool's **× single** is its median wall time divided by its own single-process run (median of 3).",
  );
  const startup = race.startup;
  p(
    "Start-up cost of N processes, the allowance in lockstep's wall-time target: N concurrent `lockstep --version` minus " +
      `one (${startup.oneMs} ms). It is measured right before each of lockstep's rounds, so that both see the same load, ` +
      'and the target uses the median of those. Measured once at the start (median of 3): ' +
      cfg.sizes.map((n) => `N=${n}: ${startup[n].wallMs} ms → +${startup[n].extraMs} ms`).join('; ') +
      '.',
  );
  const boots = race.results.filter((e) => e.tool === 'lockstep' && e.upAllowance);
  if (boots.length > 0) {
    p(
      'The same allowance measured with boots: N concurrent nothing-pending `lockstep up` minus one, what N processes ' +
        'cost when each also loads its driver and connects (median of 3; shown, not used by the target): ' +
        boots
          .map(
            (e) =>
              `${KIND_LABEL[e.kind]} (one: ${e.upAllowance.oneMs} ms) ` +
              cfg.sizes.map((n) => `N=${n}: +${e.upAllowance[n].extraMs} ms`).join(', '),
          )
          .join('; ') +
        '.',
    );
  }
  for (const kind of KINDS) {
    const entries = race.results.filter((e) => e.kind === kind);
    if (entries.length === 0) continue;
    const rows = [];
    for (const e of entries) {
      for (const s of e.sizes) {
        rows.push([
          label(e.tool),
          s.n,
          s.rounds,
          `${s.exit0}/${s.processes}${s.timedOut ? ` (${s.timedOut} killed at 30 s)` : ''}`,
          s.doubles === 0
            ? '0'
            : `**${s.doubles}** (in ${s.roundsWithDoubles} round${s.roundsWithDoubles === 1 ? '' : 's'})`,
          `${s.schemaOkRounds}/${s.rounds}${s.roundsLockLeft ? ` (lock table left unusable in ${s.roundsLockLeft})` : ''}`,
          ms(s.wallMedianMs),
          `× ${s.ratio}`,
          Object.entries(s.errors)
            .map(([msg, n]) => `${n}× ${msg}`)
            .join('; ') || '—',
        ]);
      }
    }
    p(
      `### ${KIND_LABEL[kind]}`,
      `Single-process wall time: ${entries.map((e) => `${label(e.tool)} ${e.singleMs} ms`).join(', ')}.`,
    );
    p(
      table(
        [
          'tool',
          'N',
          'rounds',
          'exited 0',
          'double applications',
          'schema correct',
          'wall (median)',
          '× single',
          'failures seen (count × first error line)',
        ],
        rows,
      ),
    );
  }
}

function handoffSection(results, p) {
  const { handoff } = results;
  p(
    '## 2. Lock handoff (lockstep)',
    'Two long-lived OS processes (`bench/workers/handoff-worker.mjs`) take turns; each round uses a new ledger table. ' +
      `The holder applies \`001\`, a module migration that takes ${handoff.method.holdMs} ms. Once it has started, the ` +
      'other process runs `migrate()` with `001` and `002`, finds the lock taken, and waits (checked: its `lock-waiting` ' +
      'event came before the holder finished, it applied only `002` and reports `001` as applied by the other). ' +
      "**Handoff** = the waiter's `migrating` event for `002` − the holder's `migrated` event for `001`, both read from " +
      "CLOCK_MONOTONIC (`process.hrtime`), which all processes share. It therefore includes the holder's unlock round " +
      "trip, the wake-up, the waiter's lock query, its ledger re-read and planning. **→ lock** stops at the waiter's " +
      `\`lock-acquired\` event. ${handoff.method.warmup} warm-up rounds per database are not counted.`,
  );
  p(
    table(
      ['database', 'valid handoffs', 'median', 'p90', 'p99', 'max', 'min', 'median → lock', 'p99 → lock'],
      handoff.results.map((r) => [
        KIND_LABEL[r.kind],
        `${r.valid}/${r.attempts}`,
        ms(r.medianMs),
        ms(r.p90Ms),
        ms(r.p99Ms),
        ms(r.maxMs),
        ms(r.minMs),
        ms(r.acquireMedianMs),
        ms(r.acquireP99Ms),
      ]),
    ),
  );
  p(
    'Targets apply to PostgreSQL. MariaDB hands a released `GET_LOCK` straight to a blocked waiter; SQLite waiters poll ' +
      'with a backoff of 2 → 40 ms (by design: SQLite has no wake-up), which is what its numbers show.',
  );
}

function pendingSection(results, p) {
  const { pending } = results;
  p(
    '## 3. Boot cost when nothing is pending',
    `${pending.migrations} migrations, all applied by the tool itself first. **CLI**: the tool's own entry point started ` +
      `as an OS process (median of ${results.meta.config.pending.cliRuns} runs for lockstep, ${results.meta.config.pending.peerCliRuns} for peers), ` +
      `against \`node -e 0\`: median ${pending.nodeMedianMs} ms. **In-process**: one migrate-to-latest call that opens and ` +
      `closes its own connection, as a booting worker does (median of ${results.meta.config.pending.inProcessRuns} after 3 warm-ups). ` +
      '**Round trips**: queries sent during one in-process call, counted at the driver (`pg` `Client#query`, `mysql2` ' +
      '`query`/`execute`, wrapped in both copies of each driver); for lockstep also its own `query` events.',
  );
  p(
    table(
      ['tool', 'database', 'CLI median', '× node -e 0', 'in-process median', 'round trips', 'notes'],
      pending.results.map((r) => [
        label(r.tool),
        KIND_LABEL[r.kind],
        ms(r.cliMedianMs),
        r.cliMedianMs ? `× ${(r.cliMedianMs / pending.nodeMedianMs).toFixed(2)}` : '—',
        r.inProcessMedianMs === undefined
          ? 'n/a (no library)'
          : ms(r.inProcessMedianMs) +
            (r.inProcessPoolMedianMs === undefined
              ? ''
              : `; ${ms(r.inProcessPoolMedianMs)} on the app's pg.Pool`),
        r.kind === 'sqlite'
          ? r.queryEvents !== undefined
            ? `${r.queryEvents} statement(s)`
            : 'n/a'
          : (r.roundTrips ?? 'n/a'),
        r.error ??
          (r.tool === 'lockstep'
            ? `${r.queryEvents} query event(s); lock taken: ${r.lockTaken ? 'yes' : 'no'}; up-to-date event: ${r.upToDate ? 'yes' : 'no'}`
            : ''),
      ]),
    ),
  );
  const lockstepQueries = pending.results.find(
    (r) => r.tool === 'lockstep' && r.kind === 'postgres',
  )?.queries;
  if (lockstepQueries)
    p(`lockstep's queries on PostgreSQL: ${lockstepQueries.map((q) => `\`${q}…\``).join(', ')}.`);
  const f = pending.floors;
  p(
    `Floors on this machine, without any migration tool: a bare \`pg\` connection takes ${f.pgConnectMs} ms to open, ` +
      `${f.pgQueryMs} ms for one query and ${f.pgEndMs} ms to close; reading the ${pending.migrations} migration files takes ` +
      `${f.readFileAsync100Ms} ms with concurrent async \`readFile\` and ${f.readFileSync100Ms} ms with \`readFileSync\`.`,
  );
}

function scaleSection(results, p) {
  const { scale } = results;
  p(
    '## 4. Scale (lockstep)',
    'Planning: N one-statement migration files against PostgreSQL, the CLI as an OS process (median of 3): `status` with an ' +
      'empty ledger (every file pending), and `up` with all N applied (every file read, checksummed and checked, nothing to ' +
      "do; the ledger rows are inserted with lockstep's own checksums). Peak memory is the process's maxRSS.",
  );
  p(
    table(
      [
        'files',
        '`status` CLI',
        'in-process `status()`',
        '`status` peak RSS',
        '`up`, all applied',
        '`up` peak RSS',
      ],
      scale.plan.map((r) => [
        r.files.toLocaleString('en'),
        ms(r.statusCliMedianMs),
        ms(r.statusInProcessMedianMs),
        `${r.statusPeakRssMiB} MiB`,
        ms(r.upToDateCliMedianMs),
        `${r.upToDatePeakRssMiB} MiB`,
      ]),
    ),
  );
  p(
    'Applying: N small migrations (one `CREATE TABLE` each) in one `lockstep up` run on a fresh database; time per ' +
      'migration = the whole CLI run (process start included) ÷ N. The PostgreSQL 1,000 case, the target, is the median ' +
      'of 3 runs that alternate with the 3 runs of the bare loop below.',
  );
  p(
    table(
      ['database', 'migrations', 'applied', 'wall', 'per migration', 'peak RSS'],
      scale.apply.map((r) => [
        KIND_LABEL[r.kind],
        r.migrations.toLocaleString('en'),
        r.applied,
        ms(r.wallMs),
        ms(r.perMigrationMs),
        `${r.peakRssMiB} MiB`,
      ]),
    ),
  );
  if (scale.postgresFloor) {
    p(
      `Floor: the same four queries per migration (\`BEGIN; SET LOCAL lock_timeout\`, the \`CREATE TABLE\`, a ledger ` +
        `\`INSERT\`, \`COMMIT\`) sent by a bare loop on one \`pg\` connection: ${scale.postgresFloor.perMigrationMs} ms per migration ` +
        `(median of ${scale.postgresFloor.runs.length}: ${scale.postgresFloor.runs.join(', ')} ms).`,
    );
  }
}

function starpunkSection(results, p) {
  const { starpunk } = results;
  p(
    '## 5. The StarPunk case',
    `StarPunk is a single-user IndieWeb CMS on SQLite whose ${starpunk.workers} web workers each run migrations at boot. ` +
      `${starpunk.workers} worker processes start at once on one SQLite file, each calling the tool's library ` +
      '(`bench/workers/starpunk-worker.mjs`), then print "ready"; dbmate, not a library, runs as each worker\'s pre-start ' +
      'command and is ready when it exits. Five StarPunk-sized migrations (notes, tokens, auth sessions, an index, a ' +
      '`settings` row). **All ready** = first spawn → last "ready". **Restart** boots the same workers again with nothing ' +
      'pending. "Applied once" checks one `settings` row and five ledger rows.',
  );
  p(
    table(
      [
        'tool',
        'rounds',
        'fresh: all ready (median)',
        'worst',
        'exited 0',
        'applied once',
        'restart: all ready',
        'failures seen',
      ],
      starpunk.results.map((r) => [
        label(r.tool),
        r.rounds,
        ms(r.fresh.readyMedianMs),
        ms(r.fresh.readyMaxMs),
        `${r.fresh.exit0}/${r.fresh.processes}`,
        `${r.fresh.correctRounds}/${r.rounds}`,
        ms(r.restart.readyMedianMs),
        [...r.fresh.errors, ...r.restart.errors].slice(0, 2).join('; ') || '—',
      ]),
    ),
  );
}

/** Explanations for each kind of miss, built from the run's own diagnostics. */
function notesSection(results, p) {
  const misses = results.targets.filter((t) => t.pass === false);
  p('## Where lockstep misses, and best guesses why');
  if (misses.length === 0) {
    p('No target missed in this run.');
  }
  const kinds = new Set(misses.map((t) => t.note ?? t.id));
  const cpu = results.race?.results.filter((e) => e.tool === 'lockstep' && e.cpu);
  if (kinds.has('race-wall') && cpu?.length) {
    const lines = cpu.map(
      (e) =>
        `${KIND_LABEL[e.kind]}: ${e.cpu.upCpuMedianMs} ms per \`up\` process vs ${e.cpu.versionCpuMedianMs} ms for \`--version\``,
    );
    const worst = cpu.reduce((a, b) => (b.cpu.upCpuMedianMs > a.cpu.upCpuMedianMs ? b : a));
    const extra = ((50 * (worst.cpu.upCpuMedianMs - worst.cpu.versionCpuMedianMs)) / 2 / 1000).toFixed(1);
    const load = results.pending?.floors?.driverLoadMs;
    p(
      '**Boot-race wall time.** No correctness problem: every process exited 0 and nothing ran twice. The time goes to CPU on a ' +
        '2-core machine. The limit allows for what N processes cost to *start* (`--version`); a real racing `lockstep up` ' +
        `process costs more CPU than that (median over an extra, untimed N=${cpu[0].cpu.n} race: ${lines.join('; ')}). ` +
        `With 50 processes on 2 cores that difference alone is about ${extra} s more than the allowance. Best guess where ` +
        'it goes: every process loads its database driver and opens a connection before it can learn that another one ' +
        'holds the lock' +
        (load
          ? ` (loading the driver alone takes pg ${load.pg} ms and mysql2 ${load['mysql2/promise']} ms here, scenario 3)`
          : '') +
        '; on 2 cores, N processes doing that at once cannot fit in 30% over the bare start-up cost.',
    );
  }
  if (kinds.has('in-process') && results.pending?.floors) {
    const f = results.pending.floors;
    p(
      '**In-process nothing-pending call.** Each `migrate()` opens and closes its own connection, and on this machine a bare ' +
        `\`pg\` connection alone takes ${f.pgConnectMs} ms to open and ${f.pgEndMs} ms to close (plus ${f.pgQueryMs} ms for the ` +
        'one query): more than the 3 ms target before lockstep does anything. (Reading the ' +
        `${results.pending.migrations} files costs ${f.readFileSync100Ms} ms with \`readFileSync\`, ${f.readFileAsync100Ms} ms ` +
        'with concurrent async reads.) Best guess: 3 ms is out of reach with a new connection per call on this machine; it ' +
        "would take reusing the application's connection.",
    );
  }
  const reading = results.scale?.plan.find((r) => r.files === 10000)?.reading;
  const readingText = reading
    ? 'In a fresh process here, the 10,000 files (1.5 MB in all) take ' +
      `${reading.sync.ms} ms and ${reading.sync.rssMiB} MiB to read one by one with \`readFileSync\`, ` +
      `${reading.async.ms} ms and ${reading.async.rssMiB} MiB with one \`Promise.all\` of async reads, and lockstep's own ` +
      `\`readMigrations\` (read, parse, checksum) takes ${reading.lockstep.ms} ms and ${reading.lockstep.rssMiB} MiB.`
    : '';
  if (kinds.has('plan')) {
    p(
      `**Planning 10,000 files.** ${readingText} The CLI adds process start, the driver, the ledger read (10,000 rows ` +
        'for `up`) and, for `status`, printing 10,000 rows.',
    );
  }
  if (kinds.has('memory')) {
    p(
      `**Memory not flat in N** (the criterion here: peak RSS at 10× N at most ${FLAT_RATIO}× the peak at N). ` +
        `${readingText} Best guess: every migration is kept in memory for the whole run — its file text and parsed ` +
        'sections, held by its loader — and `status`/`up` add the ledger rows and the plan for all of them; `up` also ' +
        'splits every pending migration into statements before it runs the first (so that a bad file changes nothing). ' +
        'So peak RSS grows with the number of files, by a few KiB each.',
    );
  }
  const load = results.pending?.floors?.driverLoadMs;
  if (kinds.has('cli') && load) {
    p(
      "**CLI boot with nothing pending.** The CLI's time is node's start, lockstep's own modules, the database driver, " +
        `one connection and one query. Loading the driver alone, in a fresh process here: pg ${load.pg} ms, mysql2 ` +
        `${load['mysql2/promise']} ms, better-sqlite3 ${load['better-sqlite3']} ms (\`node -e 0\`: ` +
        `${results.pending.nodeMedianMs} ms). Best guess: where the CLI misses 2.5×, the driver's load time and the ` +
        'connection handshake are the difference.',
    );
  }
  const floor = results.scale?.postgresFloor;
  const pg1000 = results.scale?.apply.find(
    (a) => a.kind === 'postgres' && a.migrations === floor?.migrations,
  );
  const inProcessApply = results.scale?.inProcessApply;
  if (kinds.has('apply') && floor && pg1000) {
    p(
      `**1,000 Postgres migrations.** The CLI runs took ${pg1000.runs.join(', ')} ms in all (median ` +
        `${pg1000.perMigrationMs} ms per migration); a bare loop sending the same four queries per migration on one ` +
        `connection, alternating with them, took ${floor.perMigrationMs} ms per migration (runs: ${floor.runs.join(', ')}).` +
        (inProcessApply
          ? ` In-process, lockstep sent ${inProcessApply.queriesPerMigration} queries per migration and a migration took ` +
            `${inProcessApply.perMigrationMedianMs} ms (median; mean ${inProcessApply.perMigrationMeanMs} ms) from its ` +
            '`migrating` to its `migrated` event.'
          : '') +
        " Best guess: a migration's time is mostly the server's commit (one WAL flush per transaction, " +
        "`synchronous_commit = on`), whose latency on this machine's disk varies between runs, as the spread of " +
        "lockstep's own runs shows; lockstep adds process start, reading and planning the files, and its bookkeeping " +
        'per migration.',
    );
  }
  const other = misses.filter(
    (t) => !['race-wall', 'in-process', 'plan', 'memory', 'cli', 'apply'].includes(t.note),
  );
  for (const t of other) p(`**${t.target}** — measured ${t.measured}.`);

  const peerLines = [];
  for (const e of results.race?.results ?? []) {
    if (e.tool === 'lockstep') continue;
    const failed = e.sizes.reduce((s, x) => s + x.processes - x.exit0, 0);
    const doubles = e.sizes.reduce((s, x) => s + x.doubles, 0);
    const bad = e.sizes.reduce((s, x) => s + x.rounds - x.schemaOkRounds, 0);
    const locked = e.sizes.reduce((s, x) => s + (x.roundsLockLeft ?? 0), 0);
    const processes = e.sizes.reduce((s, x) => s + x.processes, 0);
    const rounds = e.sizes.reduce((s, x) => s + x.rounds, 0);
    const single = e.singles.every((x) => x.exit0 === 1 && x.schemaOk);
    if (failed || doubles || bad || !single) {
      peerLines.push(
        `- ${label(e.tool)} on ${KIND_LABEL[e.kind]}: ${failed} of ${processes} processes failed; ` +
          `${doubles} double applications; ${bad} of ${rounds} rounds ended with a wrong or incomplete schema` +
          (locked
            ? `; ${locked} rounds left its lock table unusable (a row left locked, or two rows from racing first ` +
              'runs): every later run fails with "Migration table is already locked" until `knex migrate:unlock`'
            : '') +
          (single ? '' : '; its single-process run also failed') +
          '.',
      );
    }
  }
  if (peerLines.length > 0) p('## What the peers did in the boot race', ...peerLines);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const results = JSON.parse(readFileSync(path.join(here, 'results.json'), 'utf8'));
  results.targets = evaluateTargets(results);
  writeReport(results, path.join(here, 'RESULTS.md'));
}
