/**
 * `lockstep adopt` and `up`'s check of other tools' tables, on every database: a history the
 * ledger lacks is refused, never run twice; golang-migrate's dirty flag becomes the dirty state;
 * a rolled-back adopted migration is applied again and not adopted back; golang-migrate's
 * schema_migrations is never read as dbmate's. Every migration counts its runs in a table. (The
 * real tools, one by one, are in adopt-tools.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLEAN_ENV, runCli, TARGETS, type TestDatabase, writeMigrations } from '../helpers/targets.js';

/** Migrations 001..003: the first creates `runs`, each records its run there. */
const MIGRATIONS: Record<string, string> = Object.fromEntries(
  [1, 2, 3].map((n) => {
    const v = String(n).padStart(3, '0');
    const up = `${n === 1 ? 'CREATE TABLE runs (v varchar(10) NOT NULL);\n' : ''}INSERT INTO runs (v) VALUES ('${v}');`;
    const down = n === 1 ? 'DROP TABLE runs;' : `DELETE FROM runs WHERE v = '${v}';`;
    return [`${v}_step${n}.sql`, `-- migrate:up\n${up}\n\n-- migrate:down\n${down}\n`];
  }),
);

/** The database as golang-migrate leaves it after applying 001..`version` (`dirty`: the last one half-done). */
async function golangMigrated(db: TestDatabase, version: number, dirty: boolean): Promise<void> {
  const bool = db.kind === 'postgres' ? 'boolean' : 'bool';
  // golang-migrate's own DDL for its table (database/<driver>/<driver>.go, ensureVersionTable).
  await db.query(
    `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty ${bool} NOT NULL)`,
  );
  await db.query('CREATE TABLE runs (v varchar(10) NOT NULL)');
  for (let n = 1; n <= version; n++)
    await db.query(`INSERT INTO runs (v) VALUES ('${String(n).padStart(3, '0')}')`);
  const flag = db.kind === 'postgres' ? String(dirty) : dirty ? '1' : '0';
  await db.query(`INSERT INTO schema_migrations (version, dirty) VALUES (${version}, ${flag})`);
}

async function runs(db: TestDatabase): Promise<string[]> {
  return (await db.query('SELECT v FROM runs ORDER BY v')).map((r) => String(r.v));
}

async function ledger(db: TestDatabase): Promise<string[]> {
  const rows = await db.query('SELECT version, state, applied_by FROM lockstep_migrations ORDER BY version');
  return rows.map((r) => `${r.version} ${r.state} ${r.applied_by}`.replace(/ [^ ]+:\d+$/, ' lockstep'));
}

for (const target of TARGETS) {
  describe(`adopt: ${target.kind}`, () => {
    const cli = (db: TestDatabase, dir: string, ...args: string[]) =>
      runCli([...args, '--url', db.url, '--dir', dir], { env: CLEAN_ENV });

    it('up refuses a history it has not adopted; adopt records it; up then runs only what is new', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        await golangMigrated(db, 2, false);
        const refused = await cli(db, dir, 'up');
        assert.equal(refused.code, 6, refused.stderr);
        assert.match(
          refused.stderr,
          /golang-migrate's schema_migrations records migrations lockstep's ledger does not have \(001, 002\)/,
        );
        assert.match(refused.stderr, /fix: lockstep adopt --from golang-migrate/);
        assert.deepEqual(await runs(db), ['001', '002'], 'nothing ran');

        const status = await cli(db, dir, 'status');
        assert.doesNotMatch(status.stdout, /dbmate/, "golang-migrate's table is not read as dbmate's");

        const dry = await cli(db, dir, 'adopt', '--from', 'golang-migrate', '--dry-run');
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stdout, /would adopt 2 migrations that golang-migrate applied/);
        const adopted = await cli(db, dir, 'adopt', '--from', 'golang-migrate');
        assert.equal(adopted.code, 0, adopted.stderr);
        assert.match(
          adopted.stdout,
          /adopted 2 migrations that golang-migrate applied \(its schema_migrations\): 001, 002/,
        );
        const again = await cli(db, dir, 'adopt', '--from', 'golang-migrate');
        assert.match(again.stdout, /nothing to adopt .*the ledger has all 2 already/);

        const up = await cli(db, dir, 'up');
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(await runs(db), ['001', '002', '003'], 'each ran once');
        assert.deepEqual(await ledger(db), [
          '001 applied golang-migrate',
          '002 applied golang-migrate',
          '003 applied lockstep',
        ]);
      } finally {
        await db.cleanup();
      }
    });

    it("golang-migrate's dirty flag becomes the dirty state; resolved as rolled back, up runs it and not again", async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        await golangMigrated(db, 2, true);
        await db.query("DELETE FROM runs WHERE v = '002'");
        const adopted = await cli(db, dir, 'adopt', '--from', 'golang-migrate');
        assert.equal(adopted.code, 0, adopted.stderr);
        assert.match(adopted.stdout, /recorded 002 as failed: golang-migrate left it dirty/);

        const dirty = await cli(db, dir, 'up');
        assert.equal(dirty.code, 4, dirty.stderr);
        assert.match(dirty.stderr, /migration 002 \(up\) was left half-done by golang-migrate/);
        assert.match(dirty.stderr, /lockstep resolve 002 --rolled-back/);
        assert.deepEqual(await runs(db), ['001']);

        const resolved = await cli(db, dir, 'resolve', '002', '--rolled-back');
        assert.equal(resolved.code, 0, resolved.stderr);
        const up = await cli(db, dir, 'up');
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(await runs(db), ['001', '002', '003']);
        // golang-migrate's table still says 2, dirty: the ledger knows better, and says so by its rows.
        const noop = await cli(db, dir, 'up');
        assert.equal(noop.code, 0, noop.stderr);
        const adoptAgain = await cli(db, dir, 'adopt', '--from', 'golang-migrate');
        assert.match(adoptAgain.stdout, /left as the ledger says: 002/);
        assert.deepEqual(await runs(db), ['001', '002', '003'], 'nothing ran twice');
      } finally {
        await db.cleanup();
      }
    });

    it('an adopted migration rolled back by lockstep is applied again, and never adopted back', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        await golangMigrated(db, 2, false);
        assert.equal((await cli(db, dir, 'adopt', '--from', 'golang-migrate')).code, 0);
        const down = await cli(db, dir, 'down');
        assert.equal(down.code, 0, down.stderr);
        assert.deepEqual(await runs(db), ['001']);
        const status = await cli(db, dir, 'status');
        assert.match(status.stdout, /002\s+step2\s+pending/);
        assert.equal((await cli(db, dir, 'adopt', '--from', 'golang-migrate')).code, 0);
        const up = await cli(db, dir, 'up');
        assert.equal(up.code, 0, up.stderr);
        assert.deepEqual(await runs(db), ['001', '002', '003']);
      } finally {
        await db.cleanup();
      }
    });

    it('refuses, changing nothing: no such table, a tool that is not one, knex migrating now', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, MIGRATIONS);
        const none = await cli(db, dir, 'adopt', '--from', 'goose');
        assert.equal(none.code, 6);
        assert.match(
          none.stderr,
          /goose's goose_db_version is not on .*nothing to adopt, nothing was changed/,
        );
        const unknown = await cli(db, dir, 'adopt', '--from', 'flyway');
        assert.equal(unknown.code, 2);
        assert.match(unknown.stderr, /adopt needs --from <tool>, one of: golang-migrate, goose, knex/);
        const dbmate = await cli(db, dir, 'adopt', '--from', 'dbmate');
        assert.match(dbmate.stderr, /lockstep follows it by itself/);

        await db.query(
          'CREATE TABLE knex_migrations (id integer PRIMARY KEY, name varchar(255), batch integer, migration_time varchar(40))',
        );
        await db.query('CREATE TABLE knex_migrations_lock (id integer PRIMARY KEY, is_locked integer)');
        await db.query("INSERT INTO knex_migrations VALUES (1, '001_step1.js', 1, NULL)");
        await db.query('INSERT INTO knex_migrations_lock VALUES (1, 1)');
        const locked = await cli(db, dir, 'adopt', '--from', 'knex');
        assert.equal(locked.code, 6);
        assert.match(locked.stderr, /knex's knex_migrations_lock is held \(is_locked = 1\)/);
        const up = await cli(db, dir, 'up');
        assert.equal(up.code, 6, 'up refuses too');
        const tables = await db.query(
          db.kind === 'sqlite'
            ? "SELECT name FROM sqlite_master WHERE name = 'lockstep_migrations'"
            : "SELECT table_name FROM information_schema.tables WHERE table_name = 'lockstep_migrations'",
        );
        assert.equal(tables.length, 0, 'no ledger was created');
      } finally {
        await db.cleanup();
      }
    });
  });
}
