/**
 * Guarantees 1, 2 and 4 under real concurrency: 20 OS processes start `lockstep up` (or call
 * `migrate()`) at the same instant on a fresh database, round after round.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { COUNTED_VERSIONS, countedMigrations } from '../helpers/counted-migrations.js';
import { withSessionPooler } from '../helpers/pgbouncer.js';
import {
  CLEAN_ENV,
  type ProcessResult,
  ROOT,
  runCli,
  runNode,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const ROUNDS = Number(process.env.LOCKSTEP_RACE_ROUNDS ?? 10);
const PROCESSES = Number(process.env.LOCKSTEP_RACE_PROCESSES ?? 20);
const VERSIONS = COUNTED_VERSIONS;

async function assertAppliedOnce(db: TestDatabase, results: ProcessResult[], round: number) {
  const failed = results.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, `round ${round}: ${failed.length} processes failed:\n${failed[0]?.stderr}`);
  const counts = await db.query(
    'SELECT version, COUNT(*) AS n FROM applied_log GROUP BY version ORDER BY version',
  );
  assert.deepEqual(
    counts.map((r) => [r.version, Number(r.n)]),
    VERSIONS.map((v) => [v, 1]),
    `round ${round}: every migration ran exactly once`,
  );
  const ledger = await db.query('SELECT version, state FROM lockstep_migrations ORDER BY version');
  assert.deepEqual(
    ledger.map((r) => [r.version, r.state]),
    VERSIONS.map((v) => [v, 'applied']),
    `round ${round}: one ledger row per version`,
  );
  const outputs = results.map(
    (r) => JSON.parse(r.stdout) as { applied: unknown[]; appliedByOthers: unknown[] },
  );
  const appliedHere = outputs.reduce((sum, o) => sum + o.applied.length, 0);
  assert.equal(
    appliedHere,
    VERSIONS.length,
    `round ${round}: the processes report ${VERSIONS.length} applications in all`,
  );
}

for (const target of withSessionPooler(TARGETS)) {
  describe(`boot race: ${target.label ?? target.kind}, ${PROCESSES} processes × ${ROUNDS} rounds`, () => {
    for (const via of ['cli', 'library'] as const) {
      it(`${via}: every process exits 0 and every migration runs exactly once`, async () => {
        for (let round = 1; round <= ROUNDS; round++) {
          const db = await target.create();
          try {
            // SQLite: every other round in WAL mode, which lockstep must work in without changing it.
            if (target.kind === 'sqlite' && round % 2 === 0) await db.query('PRAGMA journal_mode = WAL');
            const dir = writeMigrations(
              db.dir,
              countedMigrations(target.kind === 'postgres' ? 'concurrently' : 'transaction:false'),
            );
            const runs = Array.from({ length: PROCESSES }, () =>
              via === 'cli'
                ? runCli(['up', '--json', '--url', db.url, '--dir', dir], { cwd: db.dir, env: CLEAN_ENV })
                : runNode([path.join(ROOT, 'test/fixtures/migrate.mjs'), db.url, dir], { cwd: db.dir }),
            );
            await assertAppliedOnce(db, await Promise.all(runs), round);
            if (target.kind === 'sqlite') {
              const [mode] = await db.query('PRAGMA journal_mode');
              assert.equal(
                mode?.journal_mode,
                round % 2 === 0 ? 'wal' : 'delete',
                'journal mode left as it was',
              );
            }
          } finally {
            await db.cleanup();
          }
        }
      });
    }
  });
}
