/**
 * Switching from dbmate with zero edits, against the real dbmate 2.36.0 binary on the same
 * databases: what dbmate applied is adopted (never run again), dbmate's schema_migrations is kept
 * up to date so dbmate can take over again, and twenty runners racing on a database dbmate
 * migrated adopt it exactly once. Every migration counts its runs in a table.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  CLEAN_ENV,
  type ProcessResult,
  ROOT,
  runCli,
  runProcess,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const DBMATE = path.join(ROOT, 'node_modules/.bin/dbmate');
const ROUNDS = Number(process.env.LOCKSTEP_RACE_ROUNDS ?? 3);

/** Migration `n`: records its run; the first creates the table the others write to. */
function migration(n: number): Record<string, string> {
  const version = String(n).padStart(3, '0');
  const up =
    n === 1
      ? "CREATE TABLE runs (v varchar(10) NOT NULL);\nINSERT INTO runs (v) VALUES ('001');"
      : `INSERT INTO runs (v) VALUES ('${version}');`;
  const down = n === 1 ? 'DROP TABLE runs;' : `DELETE FROM runs WHERE v = '${version}';`;
  return { [`${version}_step${n}.sql`]: `-- migrate:up\n${up}\n\n-- migrate:down\n${down}\n` };
}

/** dbmate's URL for a test database: the same database, as dbmate spells it. */
function dbmateUrl(db: TestDatabase): string {
  if (db.kind !== 'postgres') return db.url;
  const url = new URL(db.url);
  url.searchParams.set('sslmode', 'disable');
  return url.href;
}

for (const target of TARGETS) {
  describe(`switching from dbmate (the real binary): ${target.kind}`, () => {
    const dbmate = (db: TestDatabase, ...args: string[]): Promise<ProcessResult> =>
      runProcess(
        DBMATE,
        [
          ...['--url', dbmateUrl(db), '--migrations-dir', path.join(db.dir, 'migrations')],
          '--no-dump-schema',
          ...args,
        ],
        { cwd: db.dir, env: { PATH: process.env.PATH } },
      );
    const lockstep = (db: TestDatabase, ...args: string[]): Promise<ProcessResult> =>
      runCli([...args, '--url', db.url, '--dir', path.join(db.dir, 'migrations')], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
    const runs = async (db: TestDatabase) =>
      (await db.query('SELECT v FROM runs ORDER BY v')).map((r) => String(r.v));
    const dbmateVersions = async (db: TestDatabase) =>
      (await db.query('SELECT version FROM schema_migrations ORDER BY version')).map((r) =>
        String(r.version),
      );
    const ledger = async (db: TestDatabase) =>
      (await db.query('SELECT version, state, applied_by FROM lockstep_migrations ORDER BY version')).map(
        (r) => `${r.version}:${r.state}:${r.applied_by === 'dbmate' ? 'dbmate' : 'lockstep'}`,
      );

    it('dbmate migrates, lockstep continues, dbmate continues again, lockstep rolls back: each migration ran once, the two ledgers agree', async () => {
      const db = await target.create();
      try {
        writeMigrations(db.dir, { ...migration(1), ...migration(2) });
        const first = await dbmate(db, 'up');
        assert.equal(first.code, 0, first.stderr + first.stdout);

        writeMigrations(db.dir, migration(3));
        const status = await lockstep(db, 'status');
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /001 +step1 +applied +dbmate \(adopted by the next up\)/);
        assert.match(status.stdout, /003 +step3 +pending/);
        assert.equal(
          await db.query('SELECT 1 FROM lockstep_migrations').then(
            () => 'exists',
            () => 'absent',
          ),
          'absent',
          'status changed nothing',
        );

        const up = await lockstep(db, 'up');
        assert.equal(up.code, 0, up.stderr);
        assert.match(
          up.stderr,
          /adopted 2 migrations that dbmate applied \(its schema_migrations\): 001, 002; they are recorded as applied and not run again/,
        );
        assert.doesNotMatch(up.stderr, /while this runner waited/);
        assert.deepEqual(await runs(db), ['001', '002', '003']);
        assert.deepEqual(await ledger(db), [
          '001:applied:dbmate',
          '002:applied:dbmate',
          '003:applied:lockstep',
        ]);
        assert.deepEqual(await dbmateVersions(db), ['001', '002', '003']);
        const dbmateStatus = await dbmate(db, 'status');
        assert.match(dbmateStatus.stdout, /Applied: 3\s+Pending: 0/);

        writeMigrations(db.dir, migration(4));
        const again = await dbmate(db, 'up');
        assert.equal(again.code, 0, again.stderr + again.stdout);
        assert.match(again.stdout, /Applying: 004_step4\.sql/);
        assert.doesNotMatch(again.stdout, /Applying: 00[123]/);
        const adopted = await lockstep(db, 'up');
        assert.equal(adopted.code, 0, adopted.stderr);
        assert.match(
          adopted.stderr,
          /adopted 1 migration that dbmate applied \(its schema_migrations\): 004/,
        );
        assert.match(adopted.stdout, /up to date/);
        assert.deepEqual(await runs(db), ['001', '002', '003', '004']);

        const down = await lockstep(db, 'down', '--steps', '2');
        assert.equal(down.code, 0, down.stderr);
        assert.deepEqual(await runs(db), ['001', '002']);
        assert.deepEqual(await dbmateVersions(db), ['001', '002']);
        const back = await dbmate(db, 'up');
        assert.equal(back.code, 0, back.stderr + back.stdout);
        assert.deepEqual(await runs(db), ['001', '002', '003', '004']);
        assert.match(
          (await lockstep(db, 'up')).stderr,
          /adopted 2 migrations that dbmate applied .*: 003, 004/,
        );
        assert.deepEqual(await dbmateVersions(db), ['001', '002', '003', '004']);
        assert.equal(
          (await lockstep(db, 'up')).stdout.trim(),
          'up to date: 4 migrations applied, nothing pending',
        );
      } finally {
        await db.cleanup();
      }
    });

    it(`${ROUNDS} rounds of 20 runners racing on a database dbmate migrated: all exit 0, adopted exactly once, nothing run again`, async () => {
      for (let round = 1; round <= ROUNDS; round++) {
        const db = await target.create();
        try {
          writeMigrations(db.dir, { ...migration(1), ...migration(2), ...migration(3) });
          assert.equal((await dbmate(db, 'up')).code, 0);
          writeMigrations(db.dir, { ...migration(4), ...migration(5) });
          const racers = await Promise.all(Array.from({ length: 20 }, () => lockstep(db, 'up')));
          for (const r of racers) assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
          const adopters = racers.filter((r) => /adopted 3 migrations/.test(r.stderr));
          assert.equal(adopters.length, 1, `round ${round}: ${racers.map((r) => r.stderr).join('\n')}`);
          assert.deepEqual(await runs(db), ['001', '002', '003', '004', '005'], `round ${round}`);
          assert.deepEqual(
            await ledger(db),
            [
              '001:applied:dbmate',
              '002:applied:dbmate',
              '003:applied:dbmate',
              '004:applied:lockstep',
              '005:applied:lockstep',
            ],
            `round ${round}`,
          );
          assert.deepEqual(await dbmateVersions(db), ['001', '002', '003', '004', '005'], `round ${round}`);
        } finally {
          await db.cleanup();
        }
      }
    });

    it('a migration dbmate rolled back: up refuses, naming it and both ways out; resolve --rolled-back --force settles both ledgers', async () => {
      const db = await target.create();
      try {
        writeMigrations(db.dir, { ...migration(1), ...migration(2) });
        assert.equal((await dbmate(db, 'up')).code, 0);
        writeMigrations(db.dir, migration(3));
        assert.equal((await lockstep(db, 'up')).code, 0);
        const rollback = await dbmate(db, 'rollback');
        assert.equal(rollback.code, 0, rollback.stderr + rollback.stdout);
        assert.deepEqual(await runs(db), ['001', '002']);

        const refused = await lockstep(db, 'up');
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(
          refused.stderr,
          /003: is applied \(by .*\) but dbmate's schema_migrations lacks it\. If dbmate rolled it back: lockstep resolve 003 --rolled-back --force/,
        );
        const resolved = await lockstep(db, 'resolve', '003', '--rolled-back', '--force');
        assert.equal(resolved.code, 0, resolved.stderr);
        const up = await lockstep(db, 'up');
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(await runs(db), ['001', '002', '003']);
        assert.deepEqual(await dbmateVersions(db), ['001', '002', '003']);
      } finally {
        await db.cleanup();
      }
    });

    it("--dbmate keep on a database dbmate never saw: lockstep creates dbmate's table, and dbmate finds everything applied", async () => {
      const db = await target.create();
      try {
        writeMigrations(db.dir, { ...migration(1), ...migration(2) });
        const up = await lockstep(db, 'up', '--dbmate', 'keep');
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(await dbmateVersions(db), ['001', '002']);
        const status = await dbmate(db, 'status', '--exit-code');
        assert.equal(status.code, 0, status.stdout);
        assert.match(status.stdout, /Applied: 2\s+Pending: 0/);
        // An existing ledger, a table created later: what lockstep applied is recorded there.
        await db.query('DROP TABLE schema_migrations');
        const refill = await lockstep(db, 'up', '--dbmate', 'keep');
        assert.match(
          refill.stderr,
          /created dbmate's schema_migrations and recorded there what lockstep applied: 001, 002/,
        );
        assert.deepEqual(await dbmateVersions(db), ['001', '002']);
      } finally {
        await db.cleanup();
      }
    });

    it("--dbmate off: dbmate's table is not read; --table schema_migrations is refused, saying it is dbmate's", async () => {
      const db = await target.create();
      try {
        writeMigrations(db.dir, migration(1));
        assert.equal((await dbmate(db, 'up')).code, 0);
        const status = await lockstep(db, 'status', '--dbmate', 'off');
        assert.match(status.stdout, /001 +step1 +pending/);
        const table = await lockstep(db, 'up', '--table', 'schema_migrations');
        assert.equal(table.code, 2, table.stderr);
        assert.match(
          table.stderr,
          /^lockstep: the ledger table cannot be schema_migrations: that is dbmate's table/,
        );
        assert.doesNotMatch(table.stderr, /\n\s+at /, 'no stack trace');
        const bad = await lockstep(db, 'up', '--dbmate', 'sometimes');
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /invalid dbmate mode "sometimes": use auto, keep or off/);
      } finally {
        await db.cleanup();
      }
    });
  });
}
