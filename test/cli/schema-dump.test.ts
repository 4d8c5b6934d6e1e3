/**
 * The schema file against the real tools and the real dbmate 2.36 binary, on every database:
 * lockstep's dump of a database is dbmate's `db/schema.sql` of it byte for byte, but for
 * lockstep's own tables, which it leaves out (and only those); the dump is stable; loading it
 * into a fresh database gives the same dump, and lockstep up there runs nothing; a missing tool
 * says which package to install; the password is never on a tool's command line.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dumpSchema, loadSchema, SchemaToolError, writeSchemaFile } from '../../src/schema/index.js';
import {
  CLEAN_ENV,
  type DatabaseKind,
  ROOT,
  runCli,
  runProcess,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const DBMATE = path.join(ROOT, 'node_modules/.bin/dbmate');

/** Each database's migrations: a table with a sequence or counter, an index, a view or trigger. */
const MIGRATIONS: Record<DatabaseKind, Record<string, string>> = {
  postgres: {
    '20240101000000_widgets.sql': `-- migrate:up
CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
CREATE INDEX widgets_name ON widgets (name);
INSERT INTO widgets (name) VALUES ('a'), ('b');
-- migrate:down
DROP TABLE widgets;
`,
    '20240102000000_view.sql': `-- migrate:up
CREATE VIEW widget_names AS SELECT name FROM widgets;
CREATE FUNCTION twice(x integer) RETURNS integer LANGUAGE sql AS $$ SELECT x * 2 $$;
-- migrate:down
DROP VIEW widget_names;
`,
  },
  mysql: {
    '20240101000000_widgets.sql': `-- migrate:up
CREATE TABLE widgets (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL);
CREATE INDEX widgets_name ON widgets (name);
INSERT INTO widgets (name) VALUES ('a'), ('b');
-- migrate:down
DROP TABLE widgets;
`,
    '20240102000000_view.sql': `-- migrate:up
CREATE VIEW widget_names AS SELECT name FROM widgets;
-- migrate:down
DROP VIEW widget_names;
`,
  },
  sqlite: {
    '20240101000000_widgets.sql': `-- migrate:up
CREATE TABLE widgets (id integer PRIMARY KEY AUTOINCREMENT, name text NOT NULL);
CREATE INDEX widgets_name ON widgets (name);
INSERT INTO widgets (name) VALUES ('a'), ('b');
-- migrate:down
DROP TABLE widgets;
`,
    '20240102000000_trigger.sql': `-- migrate:up
CREATE TRIGGER widgets_named AFTER INSERT ON widgets BEGIN
  UPDATE widgets SET name = 'x;
' WHERE id = new.id;
END;
-- migrate:down
DROP TRIGGER widgets_named;
`,
  },
};

/** Tables named as lockstep's long-running migrations' tables are (one with a sequence). */
const ASYNC_TABLES: Record<DatabaseKind, string[]> = {
  postgres: [
    'CREATE TABLE lockstep_async (name text PRIMARY KEY)',
    'CREATE TABLE lockstep_async_errors (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)',
  ],
  mysql: [
    'CREATE TABLE lockstep_async (name varchar(100) PRIMARY KEY)',
    'CREATE TABLE lockstep_async_errors (id int AUTO_INCREMENT PRIMARY KEY, name text)',
  ],
  sqlite: [
    'CREATE TABLE lockstep_async (name text PRIMARY KEY)',
    'CREATE TABLE lockstep_async_errors (id integer PRIMARY KEY AUTOINCREMENT, name text)',
    'CREATE INDEX lockstep_async_errors_name ON lockstep_async_errors (name)',
  ],
};

const OWN_TABLES = ['lockstep_migrations', 'lockstep_async', 'lockstep_async_errors'];

/** dbmate's URL for a test database: the same database, as dbmate spells it. */
function dbmateUrl(db: TestDatabase): string {
  if (db.kind !== 'postgres') return db.url;
  const url = new URL(db.url);
  url.searchParams.set('sslmode', 'disable');
  return url.href;
}

function dbmate(db: TestDatabase, ...args: string[]) {
  return runProcess(
    DBMATE,
    ['--url', dbmateUrl(db), '--migrations-dir', path.join(db.dir, 'migrations'), ...args],
    { cwd: db.dir, env: { PATH: process.env.PATH } },
  );
}

/** The database's name (for SQLite, its file's), as a dump may mention it. */
function nameOf(db: TestDatabase): string {
  return new URL(db.url).pathname.slice(1);
}

/** dbmate's own `dbmate --schema-file <file> dump`, read back. */
async function dbmateDump(db: TestDatabase, name: string): Promise<string> {
  const file = path.join(db.dir, name);
  const r = await dbmate(db, '--schema-file', file, 'dump');
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(file, 'utf8');
}

for (const target of TARGETS) {
  describe(`schema file against dbmate's: ${target.kind}`, () => {
    let db: TestDatabase;
    let fresh: TestDatabase;
    /** dbmate's file before lockstep ran, when the database holds no table of lockstep's. */
    let reference: string;
    before(async () => {
      db = await target.create();
      fresh = await target.create();
      writeMigrations(db.dir, MIGRATIONS[target.kind]);
      const r = await dbmate(db, '--no-dump-schema', 'up');
      assert.equal(r.code, 0, r.stderr);
      reference = await dbmateDump(db, 'dbmate.sql');
    });
    after(async () => {
      await db?.cleanup();
      await fresh?.cleanup();
    });

    test('byte for byte the file dbmate writes, and stable', async () => {
      const ours = await dumpSchema(db.url, { cwd: db.dir });
      assert.equal(ours, reference);
      assert.equal(await dumpSchema(db.url, { cwd: db.dir }), ours);
      assert.match(ours, /Dbmate schema migrations\n/);
      assert.match(ours, /'20240101000000'\),\n {2,4}\('20240102000000'\);\n/);
      assert.doesNotMatch(ours, /^(--.*)?\n/, 'no comment or blank line before the first statement');
      assert.doesNotMatch(ours, /[ \t]\n/, 'no trailing white space');
    });

    test("lockstep's own tables are left out, and nothing else", async () => {
      const up = await runCli(['up', '--url', db.url, '--dir', path.join(db.dir, 'migrations')], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(up.code, 0, up.stderr);
      for (const sql of ASYNC_TABLES[target.kind]) await db.query(sql);
      const withOwn = await dbmateDump(db, 'dbmate-own.sql');
      for (const table of OWN_TABLES) assert.ok(withOwn.includes(table), `dbmate's dump has ${table}`);

      const ours = await dumpSchema(db.url, { cwd: db.dir });
      assert.equal(ours, reference);
      for (const table of OWN_TABLES) assert.ok(!ours.includes(table), `lockstep's dump leaves out ${table}`);
      // Exactly the difference: dbmate's dump of the database without them is lockstep's file.
      for (const table of [...OWN_TABLES].reverse()) await db.query(`DROP TABLE ${table}`);
      assert.equal(await dbmateDump(db, 'dbmate-without.sql'), ours);
    });

    test('loaded into a fresh database it gives the same dump, and lockstep up there runs nothing', async () => {
      const file = await writeSchemaFile(db.url, 'db/schema.sql', { cwd: db.dir });
      assert.equal(file, path.join(db.dir, 'db/schema.sql'));
      assert.equal(readFileSync(file, 'utf8'), reference);
      await loadSchema(fresh.url, 'db/schema.sql', { cwd: db.dir });
      // mariadb-dump's first line is not a comment (its sandbox-mode line), so dbmate keeps the
      // header after it, which names the database: the one difference between the two files.
      assert.equal(
        await dumpSchema(fresh.url, { cwd: db.dir }),
        reference.replaceAll(nameOf(db), nameOf(fresh)),
      );

      const up = await runCli(['up', '--url', fresh.url, '--dir', path.join(db.dir, 'migrations')], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, /adopted 2 migrations that dbmate applied/);
      assert.deepEqual(await fresh.query('SELECT COUNT(*) AS n FROM widgets'), [
        { n: target.kind === 'postgres' ? '0' : 0 },
      ]);
    });

    test('a load that fails says where, and the tool names the line', async () => {
      const bad = path.join(db.dir, 'bad.sql');
      writeFileSync(bad, 'CREATE TABLE ok_one (id integer);\nCREATE TABLE widgets (id integer);\n');
      await assert.rejects(loadSchema(fresh.url, bad, { cwd: db.dir }), (error: unknown) => {
        assert.ok(error instanceof SchemaToolError, String(error));
        assert.equal(error.missing, false);
        assert.match(error.message, /failed to load .*bad\.sql/);
        assert.match(error.message, /line 2|:2:/);
        return true;
      });
    });

    test('a missing tool names the package that installs it', async () => {
      const empty = mkdtempSync(path.join(tmpdir(), 'lockstep-nopath-'));
      const saved = process.env.PATH;
      process.env.PATH = empty;
      try {
        const tool = { postgres: 'pg_dump', mysql: 'mysqldump', sqlite: 'sqlite3' }[target.kind];
        const pkg = { postgres: 'postgresql-client', mysql: 'mariadb-client', sqlite: 'sqlite3' }[
          target.kind
        ];
        await assert.rejects(dumpSchema(db.url, { cwd: db.dir }), (error: unknown) => {
          assert.ok(error instanceof SchemaToolError, String(error));
          assert.equal(error.missing, true);
          assert.equal(error.exitCode, 2);
          assert.match(error.message, new RegExp(`^${tool} is not installed \\(or not on PATH\\)`));
          assert.ok(error.message.includes(`apt-get install ${pkg}`), error.message);
          return true;
        });
      } finally {
        process.env.PATH = saved;
        rmSync(empty, { recursive: true, force: true });
      }
    });
  });
}

if (TARGETS.some((t) => t.kind === 'postgres')) {
  describe("search_path in the URL: pg_dump gets its schemas, dbmate's table is in the first", () => {
    let db: TestDatabase;
    before(async () => {
      db = (await TARGETS.find((t) => t.kind === 'postgres')?.create()) as TestDatabase;
      await db.query('CREATE SCHEMA app; CREATE TABLE public.elsewhere (x int)');
      writeMigrations(db.dir, {
        '20240101000000_a.sql': '-- migrate:up\nCREATE TABLE app.things (id int);\n-- migrate:down\n',
      });
    });
    after(() => db?.cleanup());

    test('the same file as dbmate', async () => {
      const url = new URL(db.url);
      url.searchParams.set('search_path', 'app');
      const scoped = { ...db, url: url.href };
      const r = await dbmate(scoped, '--no-dump-schema', 'up');
      assert.equal(r.code, 0, r.stderr);
      const reference = await dbmateDump(scoped, 'dbmate.sql');
      assert.match(reference, /INSERT INTO app\.schema_migrations/);
      assert.doesNotMatch(reference, /elsewhere/);
      assert.equal(await dumpSchema(url.href, { cwd: db.dir }), reference);
    });
  });
}

describe('the password goes to the tools in the environment, never on a command line', () => {
  /** A fake tool that records its arguments and environment, then fails as a real one would. */
  function fakeTools(names: string[]): { dir: string; seen: (name: string) => string } {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-fake-'));
    for (const name of names) {
      const script = path.join(dir, name);
      writeFileSync(
        script,
        `#!/bin/sh\nprintf '%s\\n' "$@" "PGPASSWORD=$PGPASSWORD" "MYSQL_PWD=$MYSQL_PWD" >> "${dir}/${name}.seen"\n` +
          `[ "$1" = "--version" ] && exit 0\necho "connection to server failed for $*" >&2\nexit 1\n`,
      );
      chmodSync(script, 0o755);
    }
    return { dir, seen: (name) => readFileSync(path.join(dir, `${name}.seen`), 'utf8') };
  }

  for (const [url, tool, variable] of [
    ['postgres://app:s3cr%40tPW@db.example:6543/app?sslmode=require&pooler=session', 'pg_dump', 'PGPASSWORD'],
    ['mysql://app:s3cr%40tPW@db.example:3307/app', 'mariadb-dump', 'MYSQL_PWD'],
  ] as const) {
    test(tool, async () => {
      const fake = fakeTools([tool]);
      const saved = process.env.PATH;
      process.env.PATH = fake.dir;
      try {
        await assert.rejects(dumpSchema(url, { cwd: fake.dir }), (error: unknown) => {
          assert.ok(error instanceof SchemaToolError, String(error));
          assert.ok(!error.message.includes('s3cr'), error.message);
          return true;
        });
      } finally {
        process.env.PATH = saved;
      }
      const seen = fake.seen(tool);
      rmSync(fake.dir, { recursive: true, force: true });
      assert.ok(seen.includes(`${variable}=s3cr@tPW\n`), seen);
      const args = seen.replaceAll(`${variable}=s3cr@tPW\n`, '');
      assert.ok(!args.includes('s3cr'), args);
      if (tool === 'pg_dump') {
        // dbmate's URL but for the password (and lockstep's own pooler= parameter).
        assert.ok(args.includes('postgres://app@db.example:6543/app?sslmode=require\n'), args);
        assert.ok(args.includes('--restrict-key=dbmate\n') === false, 'a fake with no version takes no key');
      } else {
        for (const arg of ['--ssl=false', '--host=db.example', '--port=3307', '--user=app', 'app']) {
          assert.ok(args.includes(`${arg}\n`), `${arg} in ${args}`);
        }
      }
    });
  }
});

describe('the CLI side: dump, load, and the dump after a change', () => {
  /** Runs `body` in `dir` with the environment changed as `env` says, then puts both back. */
  async function within<T>(dir: string, env: Record<string, string | undefined>, body: () => Promise<T>) {
    const cwd = process.cwd();
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    process.chdir(dir);
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    try {
      return await body();
    } finally {
      process.chdir(cwd);
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  test('db/schema.sql by default, DBMATE_SCHEMA_FILE, --schema-file; DBMATE_NO_DUMP_SCHEMA as dbmate reads it', async () => {
    const { dumpAfterChange, dumpCommand, loadCommand, noDumpSchema, schemaFile } = await import(
      '../../src/cli/schema.js'
    );
    const { useEnvFiles } = await import('../../src/cli/common.js');
    /** The CLI reads its variables once per process: read again after each change. */
    const setVariable = (name: string, value: string) => {
      process.env[name] = value;
      useEnvFiles([]);
    };
    useEnvFiles([]);
    const unset = {
      DBMATE_SCHEMA_FILE: undefined,
      DBMATE_NO_DUMP_SCHEMA: undefined,
      DATABASE_URL: undefined,
      PATH: process.env.PATH,
    };
    await within(tmpdir(), unset, async () => {
      useEnvFiles([]);
      assert.equal(schemaFile({}), 'db/schema.sql');
      assert.equal(schemaFile({ 'schema-file': 'x.sql' }), 'x.sql');
      setVariable('DBMATE_SCHEMA_FILE', 'env.sql');
      assert.equal(schemaFile({}), 'env.sql');
      assert.equal(schemaFile({ 'schema-file': 'x.sql' }), 'x.sql');
      assert.equal(noDumpSchema({}), false);
      for (const yes of ['1', 'true', 'TRUE', 't']) {
        setVariable('DBMATE_NO_DUMP_SCHEMA', yes);
        assert.equal(noDumpSchema({}), true);
      }
      setVariable('DBMATE_NO_DUMP_SCHEMA', 'false');
      assert.equal(noDumpSchema({}), false);
      assert.equal(noDumpSchema({ 'no-dump-schema': true }), true);
      setVariable('DBMATE_NO_DUMP_SCHEMA', 'yes');
      assert.throws(() => noDumpSchema({}), /DBMATE_NO_DUMP_SCHEMA="yes" is not a boolean/);
    });

    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-schema-cli-'));
    try {
      const url = 'sqlite:app.db';
      await within(dir, unset, async () => {
        useEnvFiles([]);
        const { default: Database } = await import('better-sqlite3');
        const sqlite = new Database('app.db');
        sqlite.exec(
          "CREATE TABLE t (x int); CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('1')",
        );
        sqlite.close();
        assert.deepEqual(await dumpAfterChange({ url, 'no-dump-schema': true, quiet: true }), {
          schemaFile: 'db/schema.sql',
          skipped: true,
        });
        assert.deepEqual(await dumpAfterChange({ url, quiet: true }), {
          schemaFile: 'db/schema.sql',
          written: true,
        });
        const text = readFileSync('db/schema.sql', 'utf8');
        assert.equal(
          text,
          'CREATE TABLE t (x int);\nCREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);\n-- Dbmate schema migrations\nINSERT INTO "schema_migrations" (version) VALUES\n  (\'1\');\n',
        );
        assert.equal(await dumpCommand({ url, 'schema-file': 'other/s.sql', quiet: true }), 0);
        assert.equal(readFileSync('other/s.sql', 'utf8'), text);
        assert.equal(await loadCommand({ url: 'sqlite:copy.db', quiet: true }), 0);
        assert.equal(await dumpSchema('sqlite:copy.db', { cwd: dir }), text);

        // No sqlite3 on PATH: the migrations stand, the file is left as it was, a warning says why.
        const empty = mkdtempSync(path.join(tmpdir(), 'lockstep-nopath-'));
        process.env.PATH = empty;
        const result = await dumpAfterChange({ url, quiet: true });
        rmSync(empty, { recursive: true });
        assert.equal('failed' in result && result.failed.startsWith('sqlite3 is not installed'), true);
        assert.equal(readFileSync('db/schema.sql', 'utf8'), text);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
