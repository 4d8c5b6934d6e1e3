/**
 * Bad input through the real CLI process, against every database: each case exits with the right
 * code, names the offending file (and line), and changes nothing in the database.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  CLI,
  type DatabaseKind,
  type ProcessResult,
  runCli,
  runProcess,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const LEDGER = 'lockstep_migrations';
const SECRET = 'S3cretPW';

const A = `-- migrate:up
CREATE TABLE a_table (id integer PRIMARY KEY);
-- migrate:down
DROP TABLE a_table;
`;
const B = `-- migrate:up
CREATE TABLE b_table (id integer PRIMARY KEY);
-- migrate:down
DROP TABLE b_table;
`;
const C = `-- migrate:up
CREATE TABLE c_table (id integer PRIMARY KEY);
-- migrate:down
DROP TABLE c_table;
`;

interface Snapshot {
  readonly tables: string[];
  readonly ledger: Record<string, unknown>[] | null;
}

/** Lists every table a run could have created, one `name` per row (schema-qualified on Postgres). */
const LIST_TABLES: Record<DatabaseKind, string> = {
  postgres: `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
              WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  mysql: `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
  sqlite: `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`,
};

/** The user tables and the ledger rows of a database, read outside lockstep. */
async function snapshot(db: TestDatabase): Promise<Snapshot> {
  const names = (await db.query(LIST_TABLES[db.kind])).map((t) => String(t.name));
  const hasLedger = names.some((n) => n === LEDGER || n === `public.${LEDGER}`);
  const ledger = hasLedger ? await db.query(`SELECT * FROM ${LEDGER} ORDER BY version`) : null;
  return { tables: names, ledger };
}

/** Per database: a URL that can be neither reached nor opened, and the message that says so. */
const UNREACHABLE: Record<DatabaseKind, (dir: string) => { url: string; message: RegExp }> = {
  postgres: () => ({
    url: 'postgres://postgres@127.0.0.1:1/x',
    message: /cannot connect to postgres:\/\/postgres@127\.0\.0\.1:1\/x/,
  }),
  mysql: () => ({
    url: 'mysql://root@127.0.0.1:1/x',
    message: /cannot connect to mysql:\/\/root@127\.0\.0\.1:1\/x/,
  }),
  sqlite: (dir) => {
    // The "directory" of the database file is a regular file: it can be neither created nor opened.
    writeFileSync(path.join(dir, 'not-a-dir'), '');
    return {
      url: `sqlite://${path.join(dir, 'not-a-dir', 'x.db')}`,
      message: /cannot open SQLite database .*not-a-dir/,
    };
  },
};

/** The server's word for a database that does not exist (servers do not create one; SQLite does). */
const NO_SUCH_DATABASE: Record<Exclude<DatabaseKind, 'sqlite'>, RegExp> = {
  postgres: /database "lockstep_no_such_database" does not exist/,
  mysql: /Unknown database 'lockstep_no_such_database'/,
};

/** The test database's URL with SECRET as its password, still accepted; `undo` removes what it set up. */
const WORKING_URL_WITH_SECRET: Partial<
  Record<DatabaseKind, (db: TestDatabase) => Promise<{ url: string; undo(): Promise<void> }>>
> = {
  // Trust authentication ignores the password: the URL works and its password must stay hidden.
  postgres: async (db) => {
    const url = new URL(db.url);
    url.password = SECRET;
    return { url: url.href, undo: async () => {} };
  },
  // MariaDB checks passwords (root has none): a user of its own with SECRET, on the test database only.
  mysql: async (db) => {
    const url = new URL(db.url);
    const user = `lockstep_pw_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${SECRET}'`);
    await db.query(`GRANT ALL ON \`${url.pathname.slice(1)}\`.* TO '${user}'@'%'`);
    url.username = user;
    url.password = SECRET;
    return { url: url.href, undo: async () => void (await db.query(`DROP USER IF EXISTS '${user}'@'%'`)) };
  },
};

function tableNames(s: Snapshot): string[] {
  return s.tables.map((t) => t.replace(/^public\./, ''));
}

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

for (const target of TARGETS) {
  describe(`cli bad input: ${target.kind}`, () => {
    let db: TestDatabase;
    const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
      runCli(args, { cwd: db.dir, env: { ...CLEAN_ENV, ...env } });
    const up = (...extra: string[]) => cli(['up', '--url', db.url, '--dir', 'migrations', ...extra]);
    const write = (files: Record<string, string>) => writeMigrations(db.dir, files);
    const remove = (name: string) => rmSync(path.join(db.dir, 'migrations', name));

    /** Runs `up` (or the given command), expects exit 2 and nothing changed; returns the result. */
    async function rejected(
      args: string[] = ['up', '--url', db.url, '--dir', 'migrations'],
      expectedCode = 2,
    ): Promise<ProcessResult> {
      const before = await snapshot(db);
      const result = await cli(args);
      assert.equal(result.code, expectedCode, show(result));
      assert.deepEqual(await snapshot(db), before, 'nothing changed in the database');
      return result;
    }

    beforeEach(async () => {
      db = await target.create();
    });
    afterEach(async () => {
      await db.cleanup();
    });

    it('rejects duplicate versions (1_a.sql and 001_b.sql), naming both files', async () => {
      write({ '1_a.sql': A, '001_b.sql': B });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/1_a\.sql/);
      assert.match(result.stderr, /migrations\/001_b\.sql/);
      assert.match(result.stderr, /duplicate version/);
      assert.equal((await snapshot(db)).ledger, null, 'no ledger created');
    });

    it('rejects two files with the same version after others were applied', async () => {
      write({ '001_a.sql': A });
      assert.equal((await up()).code, 0);
      write({ '002_b.sql': B, '002_c.sql': C });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/002_b\.sql/);
      assert.match(result.stderr, /migrations\/002_c\.sql/);
      assert.deepEqual(tableNames(await snapshot(db)).sort(), ['a_table', LEDGER]);
    });

    it('rejects a .sql file with no -- migrate:up section', async () => {
      write({ '001_a.sql': A });
      assert.equal((await up()).code, 0);
      write({
        '002_b.sql': B,
        '003_noup.sql': 'CREATE TABLE noup (id integer);\n-- migrate:down\nDROP TABLE noup;\n',
      });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/003_noup\.sql/);
      assert.match(result.stderr, /no "-- migrate:up" section/);
      assert.ok(
        !tableNames(await snapshot(db)).includes('b_table'),
        'the valid pending migration was not applied',
      );
    });

    it('warns about an option dbmate ignores, naming file:line, and applies the migration', async () => {
      write({
        '001_a.sql': A,
        '002_opt.sql': '-- a comment\n\n-- migrate:up transactional:nope\nCREATE TABLE opt (id integer);\n',
      });
      const result = await up();
      assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
      assert.match(result.stderr, /warning: migrations\/002_opt\.sql:3: ignored "transactional:nope"/);
      assert.ok(tableNames(await snapshot(db)).includes('opt'));
    });

    it('rejects a bad value of a lockstep option on a marker, naming file:line', async () => {
      write({
        '001_a.sql': A,
        '002_opt.sql': '-- a comment\n\n-- migrate:up lock_timeout:soon\nCREATE TABLE opt (id integer);\n',
      });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/002_opt\.sql:3\b/);
      assert.match(result.stderr, /lock_timeout:soon/);
      assert.equal((await snapshot(db)).ledger, null);
      assert.deepEqual((await snapshot(db)).tables, []);
    });

    it('rejects an applied migration whose file changed, unless --allow-changed', async () => {
      write({ '001_a.sql': A });
      assert.equal((await up()).code, 0);
      write({
        '001_a.sql': A.replace('id integer PRIMARY KEY', 'id integer PRIMARY KEY, extra text'),
        '002_b.sql': B,
      });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/001_a\.sql/);
      assert.match(result.stderr, /--allow-changed/);
      assert.ok(!tableNames(await snapshot(db)).includes('b_table'));

      const allowed = await up('--allow-changed');
      assert.equal(allowed.code, 0, show(allowed));
      assert.ok(tableNames(await snapshot(db)).includes('b_table'), 'it proceeds with the pending migration');
    });

    it('rejects an applied migration whose file was deleted, unless --allow-missing', async () => {
      write({ '001_a.sql': A, '002_b.sql': B });
      assert.equal((await up()).code, 0);
      remove('001_a.sql');
      write({ '003_c.sql': C });
      const result = await rejected();
      assert.match(result.stderr, /001_a/);
      assert.match(result.stderr, /missing/);
      assert.match(result.stderr, /--allow-missing/);
      assert.ok(!tableNames(await snapshot(db)).includes('c_table'));

      const allowed = await up('--allow-missing');
      assert.equal(allowed.code, 0, show(allowed));
      assert.ok(tableNames(await snapshot(db)).includes('c_table'));
    });

    it('rejects an out-of-order pending version, unless --allow-out-of-order', async () => {
      write({ '002_b.sql': B });
      assert.equal((await up()).code, 0);
      write({ '001_a.sql': A });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/001_a\.sql/);
      assert.match(result.stderr, /--allow-out-of-order/);
      assert.ok(!tableNames(await snapshot(db)).includes('a_table'));

      const allowed = await up('--allow-out-of-order');
      assert.equal(allowed.code, 0, show(allowed));
      const after = await snapshot(db);
      assert.ok(tableNames(after).includes('a_table'));
      assert.deepEqual(
        after.ledger?.map((r) => r.version),
        ['001', '002'],
      );
    });

    it('exits 5 with a clear message when the database cannot be reached', async () => {
      write({ '001_a.sql': A });
      const { url, message } = UNREACHABLE[target.kind](db.dir);
      for (const command of ['up', 'status', 'down']) {
        const result = await rejected([command, '--url', url, '--dir', 'migrations'], 5);
        assert.match(result.stderr, message);
        assert.doesNotMatch(result.stderr, /unexpected error|\n\s+at /, 'a message, not a stack trace');
      }
    });

    it('handles a database that does not exist', async () => {
      write({ '001_a.sql': A });
      if (target.kind !== 'sqlite') {
        const url = new URL(db.url);
        url.pathname = '/lockstep_no_such_database';
        // migrate and status do not create it (up does, as dbmate's: test/cli/dbmate-cli.test.ts).
        for (const command of ['migrate', 'status']) {
          const result = await rejected([command, '--url', url.href, '--dir', 'migrations'], 5);
          assert.match(result.stderr, /cannot connect/);
          assert.match(result.stderr, NO_SUCH_DATABASE[target.kind]);
        }
      } else {
        // SQLite creates a missing database file (and its directory), as documented.
        const file = path.join(db.dir, 'new', 'fresh.db');
        const result = await cli(['up', '--url', `sqlite://${file}`, '--dir', 'migrations']);
        assert.equal(result.code, 0, show(result));
        assert.ok(existsSync(file));
      }
    });

    for (const url of [
      'postgres://[bad',
      'mysql-nope://x',
      'sqlite:app.db?_foreign_keys=1', // a go-sqlite3 parameter lockstep does not implement
      'postgres://h/x?sslmode=bogus',
      'mysql://root@127.0.0.1:3306/x?tls=bogus',
      'postgres://postgres@127.0.0.1:notaport/x',
      'mysql://root@127.0.0.1:notaport/x',
      'mysql://root@127.0.0.1:3306/', // no database: it would hold the ledger
    ]) {
      it(`rejects the malformed URL ${url} with exit 2`, async () => {
        write({ '001_a.sql': A });
        await snapshot(db); // opens (on SQLite: creates) the test's own database file first
        const files = readdirSync(db.dir).sort();
        for (const command of ['up', 'status', 'down']) {
          const result = await rejected([command, '--url', url, '--dir', 'migrations']);
          assert.match(result.stderr, /URL/);
          assert.ok(result.stderr.includes(url), result.stderr);
        }
        assert.deepEqual(readdirSync(db.dir).sort(), files, 'no file created for the URL');
      });
    }

    it('rejects an empty --url instead of falling back to the default SQLite file', async () => {
      write({ '001_a.sql': A });
      await snapshot(db);
      const files = readdirSync(db.dir).sort();
      for (const command of ['up', 'status', 'down']) {
        const result = await rejected([command, '--url', '', '--dir', 'migrations']);
        assert.match(result.stderr, /--url is empty/);
      }
      assert.deepEqual(readdirSync(db.dir).sort(), files, 'no db/lockstep.sqlite3 created');
    });

    it('never prints a password from the URL, in text or --json output', async () => {
      write({ '001_a.sql': A });
      const urls = [
        `postgres://postgres:${SECRET}@127.0.0.1:1/x`,
        `postgresql://postgres:${SECRET}@127.0.0.1:5432/lockstep_no_such_database`,
        `postgres://postgres:${SECRET}@[bad/x`,
        `postgres://postgres:${SECRET}@127.0.0.1:notaport/x`,
        `postgres://postgres:${encodeURIComponent(`${SECRET}@x`)}@127.0.0.1:1/x`,
        `postgres://postgres@127.0.0.1:1/x?password=${SECRET}`,
        `postgres://postgres:pre@${SECRET}@127.0.0.1:1/x`, // an unencoded @ in the password
        `mysql://root:${SECRET}@127.0.0.1:1/x`,
        `mysql://root:${SECRET}@127.0.0.1:3306/lockstep_no_such_database`, // the server refuses the password
        `mysql://root:${SECRET}@127.0.0.1:notaport/x`,
        `mariadb://root:pre@${SECRET}@127.0.0.1:1/x`,
        `mysql://root@127.0.0.1:1/x?password=${SECRET}`,
      ];
      // migrate: up, but without creating the missing database (lockstep_no_such_database).
      const commands = [
        ['migrate'],
        ['status'],
        ['down'],
        ['resolve', '001', '--applied'],
        ['down', '--steps', '0'],
      ];
      for (const url of urls) {
        for (const command of commands) {
          for (const json of [[], ['--json']]) {
            const args = [...command, '--url', url, '--dir', 'migrations', ...json];
            const result = await cli(args);
            assert.ok(result.code === 2 || result.code === 5, `${args.join(' ')}\n${show(result)}`);
            assert.ok(
              !`${result.stdout}${result.stderr}`.includes(SECRET),
              `${args.join(' ')} leaked:\n${show(result)}`,
            );
            if (json.length > 0) {
              const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
              assert.equal(parsed.exitCode, result.code);
            }
          }
        }
      }
      // The same URL from the environment and from .env.
      const url = `postgres://postgres:${SECRET}@127.0.0.1:1/x`;
      const fromEnv = await cli(['up', '--dir', 'migrations', '--json'], { DATABASE_URL: url });
      assert.equal(fromEnv.code, 5);
      assert.ok(!`${fromEnv.stdout}${fromEnv.stderr}`.includes(SECRET), show(fromEnv));
      writeFileSync(path.join(db.dir, '.env'), `DATABASE_URL=${url}\n`);
      const fromDotEnv = await cli(['status', '--dir', 'migrations']);
      assert.equal(fromDotEnv.code, 5);
      assert.ok(!`${fromDotEnv.stdout}${fromDotEnv.stderr}`.includes(SECRET), show(fromDotEnv));
    });

    it('never prints a password from a URL given where it does not belong', async () => {
      // A URL typed as a positional argument, or as a command, is echoed in the usage error.
      const url = `postgres://postgres:${SECRET}@127.0.0.1:1/x`;
      const unencoded = `postgres://postgres:pre@${SECRET}@127.0.0.1:1/x`;
      for (const args of [
        ['up', url],
        [url],
        ['status', url],
        ['resolve', url, '--applied'],
        ['new', url],
        ['up', unencoded],
        ['down', '--url', url, 'extra', `--url=${unencoded}`],
      ]) {
        for (const json of [[], ['--json']]) {
          const result = await cli([...args, ...json]);
          assert.equal(result.code, 2, show(result));
          assert.ok(
            !`${result.stdout}${result.stderr}`.includes(SECRET),
            `${args.join(' ')} leaked:\n${show(result)}`,
          );
        }
      }
    });

    const withSecret = WORKING_URL_WITH_SECRET[target.kind];
    if (withSecret) {
      it('never prints a password from a working URL, whatever goes wrong', async () => {
        const { url, undo } = await withSecret(db);
        try {
          const run = (...args: string[]) => cli([...args, '--url', url, '--dir', 'migrations']);
          const clean = (r: ProcessResult, what: string) =>
            assert.ok(!`${r.stdout}${r.stderr}`.includes(SECRET), `${what} leaked:\n${show(r)}`);

          write({
            '001_a.sql': A,
            '002_bad.sql':
              '-- migrate:up transaction:false\nCREATE TABLE t2 (id integer);\nSELECT * FROM missing_table;\n',
          });
          for (const json of [[], ['--json']]) {
            const failed = await run('up', ...json);
            clean(failed, 'migration failure');
            assert.equal(failed.code, json.length > 0 ? 4 : 1, show(failed)); // the 2nd run finds it dirty
            const status = await run('status', ...json);
            assert.equal(status.code, 0, show(status));
            clean(status, 'status');
          }
          const dirty = await run('up', '--json');
          assert.equal(dirty.code, 4);
          clean(dirty, 'dirty state');
          clean(await run('resolve', '002', '--rolled-back', '--json'), 'resolve');
          await db.query('DROP TABLE t2');
          remove('002_bad.sql');
          write({ '002_b.sql': B });
          clean(await run('up', '--json'), 'up');
          write({ '001_a.sql': A.replace('PRIMARY KEY', 'PRIMARY KEY, x text') });
          const changed = await run('up', '--json');
          assert.equal(changed.code, 2);
          clean(changed, 'history error');
          write({ '003_x.sql': '-- migrate:up lock_timeout:soon\nSELECT 1;\n' });
          const source = await run('up', '--json');
          assert.equal(source.code, 2);
          clean(source, 'source error');
          const down = await run('down', '--steps', '5', '--json');
          clean(down, 'down');
        } finally {
          await undo();
        }
      });
    }

    it('rejects an unknown option or command with a hint to --help', async () => {
      write({ '001_a.sql': A });
      for (const args of [
        ['up', '--bogus', '--url', db.url, '--dir', 'migrations'],
        ['--frobnicate'],
        ['frobnicate', '--url', db.url, '--dir', 'migrations'],
        ['frobnicate', '--url', db.url, '--dir', 'migrations', '--json'],
      ]) {
        const result = await rejected(args);
        assert.match(result.stderr, /--help/, show(result));
        assert.match(result.stderr, /bogus|frobnicate|migrate/);
      }
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('rejects a migrations directory that does not exist, naming it', async () => {
      const result = await rejected(['up', '--url', db.url, '--dir', 'no-such-dir']);
      assert.match(result.stderr, /no-such-dir: migrations directory not found/);
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('rejects a --dir that is a file with exit 2, not an internal error', async () => {
      writeFileSync(path.join(db.dir, 'not-a-dir'), '');
      const result = await cli(['up', '--url', db.url, '--dir', 'not-a-dir']);
      assert.equal(result.code, 2, show(result));
      assert.match(result.stderr, /not-a-dir/);
      assert.doesNotMatch(result.stderr, /unexpected error/);
    });

    it('skips a directory named like a migration file, as dbmate does, with a warning naming it', async () => {
      write({ '001_a.sql': A });
      mkdirSync(path.join(db.dir, 'migrations', '002_folder.sql'));
      const result = await cli(['up', '--url', db.url, '--dir', 'migrations']);
      assert.equal(result.code, 0, show(result));
      assert.match(result.stderr, /warning: migrations\/002_folder\.sql: ignored: a directory/);
      assert.match(result.stdout, /applied 1 migration/);
    });

    it('rejects a TS migration module without an up export; nothing changed', async () => {
      write({ '001_a.sql': A });
      assert.equal((await up()).code, 0);
      write({
        '002_b.sql': B,
        '003_noup.ts': `export async function down(ctx: { exec(sql: string): Promise<void> }): Promise<void> {
  await ctx.exec('DROP TABLE noup');
}
export const note: string = 'no up here';
`,
      });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/003_noup\.ts/);
      assert.match(result.stderr, /up\(ctx\)/);
      assert.ok(
        !tableNames(await snapshot(db)).includes('b_table'),
        'the migration before it was not applied either',
      );
    });

    it('rejects a TS migration module without an up export on a fresh database; no ledger created', async () => {
      write({ '001_a.sql': A, '002_noup.ts': `export const transaction: boolean = true;\n` });
      const before = await snapshot(db);
      const result = await cli(['up', '--url', db.url, '--dir', 'migrations']);
      assert.equal(result.code, 2, show(result));
      assert.match(result.stderr, /migrations\/002_noup\.ts/);
      assert.deepEqual(await snapshot(db), before, 'nothing changed: the ledger table was not created');
    });

    /** A careless-input refusal: exit 2, a message, never a stack trace or "unexpected error". */
    function plainRefusal(result: ProcessResult) {
      assert.equal(result.code, 2, show(result));
      assert.doesNotMatch(result.stderr, /unexpected error|\n\s+at /, show(result));
    }

    it('refuses a --table that names an existing table that is not a ledger, for every command', async () => {
      write({ '001_a.sql': A });
      await db.query('CREATE TABLE not_a_ledger (id integer PRIMARY KEY, note text)');
      await db.query("INSERT INTO not_a_ledger (id, note) VALUES (1, 'kept')");
      // A table with some of the ledger's columns, but not all, is not one either.
      await db.query('CREATE TABLE half_ledger (version varchar(64) PRIMARY KEY, name text)');
      for (const table of ['not_a_ledger', 'half_ledger']) {
        for (const command of [['up'], ['status'], ['down'], ['resolve', '001', '--applied']]) {
          for (const json of [[], ['--json']]) {
            const args = [...command, '--url', db.url, '--dir', 'migrations', '--table', table, ...json];
            const result = await rejected(args);
            plainRefusal(result);
            assert.match(result.stderr, new RegExp(`${table}.*is not a lockstep ledger`), show(result));
            assert.match(result.stderr, /--table/);
            if (json.length > 0) assert.equal(JSON.parse(result.stdout).exitCode, 2);
          }
        }
      }
      assert.deepEqual(await db.query('SELECT id, note FROM not_a_ledger'), [{ id: 1, note: 'kept' }]);
    });

    it('refuses a version longer than the ledger column holds before connecting; nothing is created', async () => {
      const long = '1'.repeat(65);
      write({ '001_a.sql': A, [`${long}_long.sql`]: B });
      const result = await rejected();
      plainRefusal(result);
      assert.match(result.stderr, new RegExp(`migrations/${long}_long\\.sql: .*64 digits`));
      assert.equal((await snapshot(db)).ledger, null, 'no (empty) ledger created');
      // The longest version allowed round-trips through the ledger of every database.
      rmSync(path.join(db.dir, 'migrations', `${long}_long.sql`));
      const longest = '9'.repeat(64);
      write({ [`${longest}_longest.sql`]: B });
      assert.equal((await up()).code, 0);
      assert.deepEqual(
        (await snapshot(db)).ledger?.map((r) => r.version),
        ['001', longest],
      );
      assert.match((await up()).stdout, /up to date: 2 migrations applied/);
    });

    it('refuses a dangling symbolic link in the migrations folder, naming it and its target', async () => {
      write({ '001_a.sql': A });
      symlinkSync('gone.sql', path.join(db.dir, 'migrations', '002_b.sql'));
      const result = await rejected();
      plainRefusal(result);
      assert.match(
        result.stderr,
        /migrations\/002_b\.sql: is a symbolic link to gone\.sql, which does not exist/,
      );
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('refuses a FIFO named like a migration instead of hanging on it', { timeout: 30_000 }, async () => {
      write({ '001_a.sql': A });
      execFileSync('mkfifo', [path.join(db.dir, 'migrations', '002_b.sql')]);
      const result = await rejected();
      plainRefusal(result);
      assert.match(result.stderr, /migrations\/002_b\.sql: is not a regular file/);
    });

    it('refuses a symbolic link to a directory named like a migration', async () => {
      write({ '001_a.sql': A });
      mkdirSync(path.join(db.dir, 'elsewhere'));
      symlinkSync(path.join(db.dir, 'elsewhere'), path.join(db.dir, 'migrations', '002_b.sql'));
      const result = await rejected();
      plainRefusal(result);
      assert.match(result.stderr, /migrations\/002_b\.sql: is a directory/);
    });

    // The tests run as root, whom file modes do not stop: the CLI runs as `nobody` instead.
    it('refuses a migration file it may not read (EACCES), naming it', async () => {
      write({ '001_a.sql': A, '002_b.sql': B });
      openUpForNobody(db.dir);
      chmodSync(path.join(db.dir, 'migrations', '002_b.sql'), 0o000);
      const result = await asNobody(['up', '--url', db.url, '--dir', 'migrations'], db.dir);
      plainRefusal(result);
      assert.match(result.stderr, /migrations\/002_b\.sql: cannot be read: permission denied/);
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('refuses a migrations folder it may not list (EACCES), naming it', async () => {
      write({ '001_a.sql': A });
      openUpForNobody(db.dir);
      chmodSync(path.join(db.dir, 'migrations'), 0o700);
      const result = await asNobody(['up', '--url', db.url, '--dir', 'migrations'], db.dir);
      plainRefusal(result);
      assert.match(result.stderr, /migrations: cannot be read: permission denied/);
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('refuses a migration file name that is not valid UTF-8, showing its bytes', async () => {
      write({ '001_a.sql': A });
      const name = Buffer.concat([Buffer.from('002_caf'), Buffer.from([0xe9]), Buffer.from('.sql')]);
      writeFileSync(Buffer.concat([Buffer.from(`${db.dir}/migrations/`), name]), B);
      const result = await rejected();
      plainRefusal(result);
      assert.match(result.stderr, /migrations\/002_caf\\xe9\.sql: the file name is not valid UTF-8/);
      assert.equal((await snapshot(db)).ledger, null);
    });

    it('refuses invalid UTF-8 inside a migration, naming file, line and column; nothing is stored', async () => {
      const bad = Buffer.concat([
        Buffer.from("-- migrate:up\nCREATE TABLE u (id integer, note text);\nINSERT INTO u VALUES (1, 'caf"),
        Buffer.from([0xe9]),
        Buffer.from("');\n"),
      ]);
      write({ '001_a.sql': A });
      writeFileSync(path.join(db.dir, 'migrations', '002_latin1.sql'), bad);
      const result = await rejected();
      plainRefusal(result);
      assert.match(result.stderr, /migrations\/002_latin1\.sql:3:30: not valid UTF-8 \(byte 0xe9\)/);
      assert.equal((await snapshot(db)).ledger, null);
      // The same in a module migration, and a UTF-16 file is named as such.
      rmSync(path.join(db.dir, 'migrations', '002_latin1.sql'));
      writeFileSync(
        path.join(db.dir, 'migrations', '002_latin1.js'),
        Buffer.concat([Buffer.from("export const note = 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]),
      );
      writeFileSync(
        path.join(db.dir, 'migrations', '003_utf16.sql'),
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('-- migrate:up\nSELECT 1;\n', 'utf16le')]),
      );
      const again = await rejected();
      plainRefusal(again);
      assert.match(again.stderr, /migrations\/002_latin1\.js:1:25: not valid UTF-8 \(byte 0xe9\)/);
      assert.match(again.stderr, /migrations\/003_utf16\.sql:1:1: .*UTF-16/);
    });

    it('accepts a UTF-8 byte order mark and ignores it: same checksum as without', async () => {
      const BOM = '\uFEFF';
      write({ '001_a.sql': `${BOM}${A}`, '002_m.js': `${BOM}export function up() {}\n` });
      const first = await up();
      assert.equal(first.code, 0, show(first));
      assert.deepEqual(
        (await snapshot(db)).ledger?.map((r) => r.version),
        ['001', '002'],
      );
      // Saved again without the mark (or with it added back): not a changed migration.
      write({ '001_a.sql': A, '002_m.js': 'export function up() {}\n' });
      const again = await up();
      assert.equal(again.code, 0, show(again));
      assert.match(again.stdout, /up to date/);
    });

    it('escapes control characters (ANSI escapes) in names and paths wherever they are printed', async () => {
      const red = '002_\x1b[31mred\x1b[0m';
      const bell = '003_\x07bell\u009b2J';
      write({
        '001_a.sql': A,
        [`${red}.sql`]: B,
        [`${bell}.sql`]: '-- migrate:up\nSELECT * FROM missing_table;\n',
      });
      const outputs: ProcessResult[] = [];
      for (const json of [[], ['--json']]) {
        outputs.push(await up(...json));
        outputs.push(await cli(['status', '--url', db.url, '--dir', 'migrations', ...json]));
      }
      write({ '003_x.sql': '-- migrate:up lock_timeout:soon\nSELECT 1;\n' }); // now a duplicate of 003, and bad
      outputs.push(await up());
      outputs.push(await up('--json'));
      for (const r of outputs) {
        const all = `${r.stdout}${r.stderr}`;
        assert.doesNotMatch(
          all,
          // biome-ignore lint/suspicious/noControlCharactersInRegex: no raw control character may be printed
          /[\x00-\x08\x0b-\x1f\x7f-\x9f]/,
          `raw control character printed:\n${JSON.stringify(all)}`,
        );
      }
      const human = `${outputs[0]?.stderr}${outputs[1]?.stdout}${outputs[4]?.stderr}`;
      assert.ok(human.includes('002_\\x1b[31mred\\x1b[0m') || human.includes('\\x1b[31mred'), human);
      assert.ok(human.includes('\\x07bell\\u009b2J'), human);
      // The ledger keeps the name as it is; only its printing is escaped.
      const names = (await snapshot(db)).ledger?.map((r) => r.name);
      assert.ok(names?.includes('\x1b[31mred\x1b[0m'), String(names));
    });
  });
}

/** Lets `nobody` into a test's scratch directory (mkdtemp makes it private to root). */
function openUpForNobody(dir: string) {
  chmodSync(dir, 0o755);
  chmodSync(path.join(dir, 'migrations'), 0o755);
}

/** Runs the CLI as the unprivileged user `nobody`, for whom file modes apply. */
function asNobody(args: string[], cwd: string): Promise<ProcessResult> {
  return runProcess(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args],
    { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' } },
  );
}

type ResolveState = 'running' | 'failed' | 'applied' | 'changed' | 'rolled_back' | 'pending' | 'unknown';

interface ResolveOutcome {
  readonly code: number;
  /** The ledger row of the version afterwards: as it was, applied (with the file's checksum), or gone. */
  readonly row: 'unchanged' | 'applied' | 'gone';
  readonly says?: RegExp;
}

const RESOLVED = { code: 0, row: 'applied' } as const;
const REMOVED = { code: 0, row: 'gone' } as const;

/** Every ledger state × --applied / --rolled-back × with and without --force. */
const RESOLVE_MATRIX: Record<
  ResolveState,
  Record<'--applied' | '--rolled-back', { readonly plain: ResolveOutcome; readonly force: ResolveOutcome }>
> = {
  running: {
    '--applied': { plain: RESOLVED, force: RESOLVED },
    '--rolled-back': { plain: REMOVED, force: REMOVED },
  },
  failed: {
    '--applied': { plain: RESOLVED, force: RESOLVED },
    '--rolled-back': { plain: REMOVED, force: REMOVED },
  },
  applied: {
    '--applied': {
      plain: { code: 6, row: 'unchanged', says: /is applied.*nothing to resolve/s },
      force: { code: 6, row: 'unchanged', says: /is applied.*nothing to change/s },
    },
    '--rolled-back': {
      plain: { code: 6, row: 'unchanged', says: /is applied.*lockstep down.*--force/s },
      force: REMOVED,
    },
  },
  changed: {
    '--applied': {
      plain: { code: 6, row: 'unchanged', says: /is applied.*changed since.*--allow-changed.*--force/s },
      force: RESOLVED,
    },
    '--rolled-back': {
      plain: { code: 6, row: 'unchanged', says: /is applied.*lockstep down/s },
      force: REMOVED,
    },
  },
  rolled_back: {
    '--applied': {
      plain: { code: 6, row: 'unchanged', says: /rolled back.*lockstep up.*--force/s },
      force: RESOLVED,
    },
    '--rolled-back': {
      plain: { code: 6, row: 'unchanged', says: /already rolled back.*lockstep up/s },
      force: REMOVED,
    },
  },
  pending: {
    '--applied': {
      plain: { code: 6, row: 'unchanged', says: /is pending.*lockstep up.*--force/s },
      force: RESOLVED,
    },
    '--rolled-back': {
      plain: { code: 6, row: 'unchanged', says: /is pending.*nothing to/s },
      force: { code: 6, row: 'unchanged', says: /is pending.*nothing to/s },
    },
  },
  unknown: {
    '--applied': {
      plain: { code: 2, row: 'unchanged', says: /no ledger row and no file/ },
      force: { code: 2, row: 'unchanged', says: /no ledger row and no file/ },
    },
    '--rolled-back': {
      plain: { code: 2, row: 'unchanged', says: /no ledger row and no file/ },
      force: { code: 2, row: 'unchanged', says: /no ledger row and no file/ },
    },
  },
};

const B_CHANGED = B.replace('id integer PRIMARY KEY', 'id integer PRIMARY KEY, extra text');

for (const target of TARGETS) {
  describe(`resolve only resolves: ${target.kind}`, () => {
    let db: TestDatabase;
    beforeEach(async () => {
      db = await target.create();
    });
    afterEach(async () => {
      await db.cleanup();
    });

    /** Puts migration 002 (file and ledger row) into `state`, from the backup of both applied. */
    async function enter(state: ResolveState) {
      writeMigrations(db.dir, { '002_b.sql': state === 'changed' ? B_CHANGED : B });
      await db.query(`DELETE FROM ${LEDGER}`);
      await db.query(`INSERT INTO ${LEDGER} SELECT * FROM resolve_backup`);
      const set = (assignments: string) =>
        db.query(`UPDATE ${LEDGER} SET ${assignments} WHERE version = '002'`);
      if (state === 'running') await set("state = 'running', finished_at = NULL, statements_done = 0");
      if (state === 'failed') await set("state = 'failed', error = 'boom'");
      if (state === 'rolled_back') await set("state = 'rolled_back', error = 'boom'");
      if (state === 'pending') await db.query(`DELETE FROM ${LEDGER} WHERE version = '002'`);
    }

    const rowOf = async (version: string) =>
      (await db.query(`SELECT * FROM ${LEDGER} WHERE version = '${version}'`))[0];

    for (const [state, flags] of Object.entries(RESOLVE_MATRIX) as [
      ResolveState,
      (typeof RESOLVE_MATRIX)[ResolveState],
    ][]) {
      it(`resolve of a migration that is ${state}: every flag, with and without --force`, async () => {
        writeMigrations(db.dir, { '001_a.sql': A, '002_b.sql': B });
        const cli = (args: string[]) => runCli(args, { cwd: db.dir, env: CLEAN_ENV });
        const common = ['--url', db.url, '--dir', 'migrations'];
        assert.equal((await cli(['up', ...common])).code, 0);
        await db.query(`CREATE TABLE resolve_backup AS SELECT * FROM ${LEDGER}`);
        const version = state === 'unknown' ? '009' : '002';
        for (const [flag, outcomes] of Object.entries(flags) as [
          '--applied' | '--rolled-back',
          (typeof flags)['--applied'],
        ][]) {
          for (const force of [false, true]) {
            await enter(state);
            const before = await db.query(`SELECT * FROM ${LEDGER} ORDER BY version`);
            const expected = force ? outcomes.force : outcomes.plain;
            const args = ['resolve', version, flag, ...(force ? ['--force'] : []), ...common];
            const result = await cli(args);
            const what = `${state}: ${args.join(' ')}\n${show(result)}`;
            assert.equal(result.code, expected.code, what);
            assert.doesNotMatch(result.stderr, /unexpected error/, what);
            if (expected.says) assert.match(result.stderr, expected.says, what);
            const row = await rowOf(version);
            if (expected.row === 'unchanged') {
              assert.deepEqual(await db.query(`SELECT * FROM ${LEDGER} ORDER BY version`), before, what);
            } else if (expected.row === 'gone') {
              assert.equal(row, undefined, what);
            } else {
              assert.equal(row?.state, 'applied', what);
              // Recorded as the file is now: `up` finds nothing changed and nothing pending.
              const after = await cli(['up', ...common]);
              assert.equal(after.code, 0, `${what}\nthen up:\n${show(after)}`);
              assert.match(after.stdout, /up to date/, what);
            }
          }
        }
      });
    }
  });
}

describe('command line: never misread silently', () => {
  let dir: string;
  let url: string;
  const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(args, { cwd: dir, env: { ...CLEAN_ENV, ...env } });
  const applied = () => existsSync(path.join(dir, 'db.sqlite3'));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lockstep-argv-'));
    url = `sqlite://${path.join(dir, 'db.sqlite3')}`;
    writeMigrations(dir, { '001_a.sql': A });
    writeMigrations(dir, {}, 'async');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** [args, what stderr must say]: each is exit 2, applies nothing and says what was meant. */
  const MISREADS: [string[], RegExp][] = [
    // After up, migrate and down, -v is dbmate's --verbose; before the command, --version.
    [['-v', 'up'], /-v is not verbose here.*lockstep --version/s],
    [['up', '--version'], /--version takes no command/],
    [['status', '-v'], /-v is not verbose/],
    [['async', 'list', '-v'], /-v is not verbose/],
    [['serve', '--version'], /--version takes no command/],
    [['-v', '--json'], /--version takes no command and no other option/],
    [
      ['up', '-d', 'elsewhere', '-d', 'migrations'],
      /--dir \(-d\) given twice \("elsewhere", then "migrations"\): lockstep reads the migrations of one directory/,
    ],
    [['up', '--dir', 'migrations', '--dir=migrations'], /--dir \(-d\) given twice/],
    [['up', '--url', 'sqlite:one.db', '-u', 'sqlite:two.db'], /--url given twice/],
    [['--lock-timeout', '1s', 'up', '--lock-timeout', '2s'], /--lock-timeout given twice/],
    [['async', 'worker', '--poll', '1s', '--poll', '2s'], /--poll given twice/],
    [['up', '--steps', '2'], /--steps is not an option of `lockstep up`.*lockstep down/s],
    [['--steps', '2'], /--steps is not an option of `lockstep up`/],
    [['status', '--applied'], /--applied is not an option of `lockstep status`.*lockstep resolve/s],
    [['down', '--ts'], /--ts is not an option of `lockstep down`.*lockstep new.*lockstep async new/s],
    [['up', '--allow-changed', '--steps', '1'], /--steps/],
    [['new', 'x', '--steps', '1'], /--steps is not an option of `lockstep new`/],
    [['status', '--lock-timeout', '1s'], /--lock-timeout is not an option of `lockstep status`/],
    [['down', '--allow-missing'], /--allow-missing is not an option of `lockstep down`.*lockstep up/s],
    [['async', 'list', '--steps', '1'], /--steps is not an option of `lockstep async list`/],
    [['async', 'stop', 'x', '--wait'], /--wait is not an option of `lockstep async stop`.*async trigger/s],
    [
      ['async', 'list', '--force'],
      /--force is not an option of `lockstep async list`.*lockstep resolve.*lockstep async stop/s,
    ],
    [['serve', '--json'], /--json is not an option of `lockstep serve`/],
    [['serve', '--steps', '1'], /--steps is not an option of `lockstep serve`/],
    [['up', '--bogus'], /unknown option --bogus.*lockstep up --help/s],
    [['async', 'list', '--bogus'], /unknown option --bogus.*lockstep async --help/s],
    [['up', '--dir', '--json'], /--dir/],
  ];

  for (const [args, says] of MISREADS) {
    it(`lockstep ${args.join(' ')}: exit 2, nothing applied`, async () => {
      const result = await cli(args, { DATABASE_URL: url });
      assert.equal(result.code, 2, show(result));
      assert.match(result.stderr, says, show(result));
      assert.doesNotMatch(result.stderr, /unexpected error/);
      if (args.includes('--json')) assert.equal(JSON.parse(result.stdout).exitCode, 2);
      else assert.equal(result.stdout, '', 'no version, no result');
      assert.ok(!applied(), 'nothing applied');
    });
  }

  it('lockstep -v and --version alone print the version', async () => {
    for (const flag of ['-v', '--version']) {
      const result = await cli([flag]);
      assert.equal(result.code, 0, show(result));
      assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
    }
  });

  it('accepts every option before and after the command, the same way', async () => {
    for (const args of [
      ['--dir', 'migrations', '--url', url, 'up'],
      ['-d', 'migrations', 'status', '-u', url, '--json'],
      ['--steps', '1', '--url', url, 'down', '--dir', 'migrations'],
      ['--url', url, '--async-dir', 'async', 'async', 'list'],
      ['--async-dir', 'async', 'async', '--url', url, 'status', '--json'],
      ['--ts', 'new', 'second', '--dir', 'migrations'],
    ]) {
      const result = await cli(args);
      assert.equal(result.code, 0, `${args.join(' ')}\n${show(result)}`);
    }
    assert.ok(existsSync(path.join(dir, 'migrations')));
    assert.ok(readdirSync(path.join(dir, 'migrations')).some((f) => f.endsWith('_second.ts')));
  });

  it('--help anywhere prints that command’s help and does nothing else', async () => {
    for (const [args, says] of [
      [['up', '--help'], /^Usage: lockstep up\b/m],
      [['--help', 'down'], /^Usage: lockstep down\b.*--steps/ms],
      [['resolve', '002', '--applied', '-h'], /^Usage: lockstep resolve\b.*--force/ms],
      [['status', '--url', url, '--dir', 'migrations', '--help'], /^Usage: lockstep status\b/m],
      [['up', '-v', '--help'], /^Usage: lockstep up\b/m],
      [['async', 'trigger', 'x', '--help'], /^Usage: lockstep async <command>/m],
      [['serve', '--port', '1', '--help'], /^Usage: lockstep serve/m],
      [['--help'], /^Usage: lockstep <command>/m],
    ] as [string[], RegExp][]) {
      const result = await cli(args, { DATABASE_URL: url });
      assert.equal(result.code, 0, `${args.join(' ')}\n${show(result)}`);
      assert.match(result.stdout, says, `${args.join(' ')}\n${show(result)}`);
      assert.ok(!applied(), 'nothing applied');
    }
  });

  for (const [how, token] of [
    ['a space', 'abcdefgh ijklmnop12'],
    ['a trailing newline', 'abcdefghijklmnop12\n'],
    ['a tab', 'abcdefgh\tijklmnop12'],
  ] as const) {
    for (const from of ['--token', 'LOCKSTEP_TOKEN']) {
      it(`serve refuses a token with ${how} from ${from} at start, without printing it`, async () => {
        const args = [
          'serve',
          '--url',
          url,
          '--port',
          '0',
          ...(from === '--token' ? ['--token', token] : []),
        ];
        const server = startCli(args, {
          cwd: dir,
          env: from === 'LOCKSTEP_TOKEN' ? { LOCKSTEP_TOKEN: token } : {},
        });
        const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
        const result = await server.done;
        clearTimeout(timer);
        assert.equal(result.code, 2, show(result));
        assert.match(result.stderr, /token .*whitespace/, show(result));
        assert.ok(!result.stderr.includes('ijklmnop12'), 'the token is not printed');
      });
    }
  }
});
