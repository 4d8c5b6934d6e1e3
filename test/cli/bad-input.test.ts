/**
 * Bad input through the real CLI process, against every database: each case exits with the right
 * code, names the offending file (and line), and changes nothing in the database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  CLEAN_ENV,
  type DatabaseKind,
  type ProcessResult,
  runCli,
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

    it('rejects an unknown option on a marker, naming file:line', async () => {
      write({
        '001_a.sql': A,
        '002_opt.sql': '-- a comment\n\n-- migrate:up transactional:nope\nCREATE TABLE opt (id integer);\n',
      });
      const result = await rejected();
      assert.match(result.stderr, /migrations\/002_opt\.sql:3\b/);
      assert.match(result.stderr, /transactional:nope/);
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
        const result = await rejected(['up', '--url', url.href, '--dir', 'migrations'], 5);
        assert.match(result.stderr, /cannot connect/);
        assert.match(result.stderr, NO_SUCH_DATABASE[target.kind]);
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
      'sqlite://host/path',
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
      const commands = [
        ['up'],
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
          write({ '003_x.sql': '-- migrate:up nope:1\nSELECT 1;\n' });
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
        ['migrate', '--url', db.url, '--dir', 'migrations', '--json'],
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

    it('rejects a directory named like a migration file with exit 2, naming it', async () => {
      write({ '001_a.sql': A });
      mkdirSync(path.join(db.dir, 'migrations', '002_folder.sql'));
      const before = await snapshot(db);
      const result = await cli(['up', '--url', db.url, '--dir', 'migrations']);
      assert.equal(result.code, 2, show(result));
      assert.match(result.stderr, /migrations\/002_folder\.sql/);
      assert.deepEqual(await snapshot(db), before);
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
  });
}
