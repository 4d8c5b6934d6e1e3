/**
 * dbmate's command line, side by side with the real dbmate binary (2.36.0) where lockstep should
 * behave the same: exit codes (dbmate exits 2 for every error; lockstep's codes are its own, and
 * both are non-zero), created and dropped databases, which variable wins, .env expansion.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} in .env text is the point
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import {
  MYSQL_ADMIN_URL,
  PG_ADMIN_URL,
  type ProcessResult,
  ROOT,
  runCli,
  runProcess,
  writeMigrations,
} from '../helpers/targets.js';

const DBMATE = path.join(ROOT, 'node_modules/.bin/dbmate');
const BASE_ENV: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && !k.startsWith('DBMATE_')),
);

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function dbmate(args: readonly string[], cwd: string, env: Record<string, string | undefined> = {}) {
  return runProcess(DBMATE, args, { cwd, env: { ...BASE_ENV, ...env } });
}

function lockstep(args: readonly string[], cwd: string, env: Record<string, string | undefined> = {}) {
  return runCli(args, { cwd, env: { ...BASE_ENV, ...env } });
}

/** Both tools, each in a scratch directory of its own laid out by `setup`. */
async function both(
  args: readonly string[],
  setup: (dir: string) => void,
  env: Record<string, string | undefined> = {},
): Promise<{ dbmate: ProcessResult & { files: string[] }; lockstep: ProcessResult & { files: string[] } }> {
  const run = async (tool: typeof dbmate) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
    mkdirSync(path.join(dir, 'db/migrations'), { recursive: true });
    setup(dir);
    const result = await tool(args, dir, env);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.db'))
      .sort();
    rmSync(dir, { recursive: true, force: true });
    return { ...result, files };
  };
  return { dbmate: await run(dbmate), lockstep: await run(lockstep) };
}

const zeroOrNot = (r: ProcessResult) => (r.code === 0 ? 0 : 'error');

const MIGRATION = `-- migrate:up
CREATE TABLE t1 (id integer);
-- migrate:down
DROP TABLE t1;
`;

describe('dbmate CLI: .env files, side by side (the SQLite file each tool creates shows the URL it read)', () => {
  const cases: [string, string, Record<string, string>?][] = [
    ['plain', 'DATABASE_URL=sqlite:plain.db'],
    ['${VAR} from the same file', 'NAME=fromfile\nDATABASE_URL=sqlite:${NAME}.db', { NAME: 'fromenv' }],
    ['${VAR} only in the environment: empty', 'DATABASE_URL=sqlite:x${ONLY_ENV}.db', { ONLY_ENV: 'e' }],
    ['$VAR defined later: empty', 'DATABASE_URL=sqlite:y$LATER.db\nLATER=z'],
    // (The last " #" rule and a # inside a value are in test/unit/dotenv.test.ts: a # in a SQLite URL
    // is read differently by the two tools' URL parsers.)
    ['a comment after a space', 'DATABASE_URL=sqlite:c.db # one'],
    ['single quotes: no expansion', "N=v\nDATABASE_URL='sqlite:${N}.db'"],
    ['double quotes: escapes and expansion', 'N=v\nDATABASE_URL="sqlite:q\\"${N}.db"'],
    ['export and yaml style', 'export OTHER=1\nDATABASE_URL: sqlite:yaml.db'],
    ['the environment wins over .env', 'DATABASE_URL=sqlite:file.db', { DATABASE_URL: 'sqlite:env.db' }],
  ];
  for (const [what, text, env] of cases) {
    it(what, async () => {
      const r = await both(['create'], (dir) => writeFileSync(path.join(dir, '.env'), text), env);
      assert.equal(r.dbmate.code, 0, show(r.dbmate));
      assert.equal(r.lockstep.code, 0, show(r.lockstep));
      assert.deepEqual(r.lockstep.files, r.dbmate.files);
    });
  }

  it('--env-file, repeated: the first file that sets a variable wins; the default .env is then not read', async () => {
    const r = await both(['--env-file', 'one.env', '--env-file', 'two.env', 'create'], (dir) => {
      writeFileSync(path.join(dir, '.env'), 'DATABASE_URL=sqlite:dotenv.db');
      writeFileSync(path.join(dir, 'one.env'), 'A=1');
      writeFileSync(path.join(dir, 'two.env'), 'DATABASE_URL=sqlite:two.db\nA=2');
    });
    assert.deepEqual([r.dbmate.code, r.lockstep.code], [0, 0], show(r.lockstep));
    assert.deepEqual(r.lockstep.files, ['two.db']);
    assert.deepEqual(r.lockstep.files, r.dbmate.files);
  });

  it('-e names the variable that holds the URL; --url wins over it', async () => {
    const env = { MY_DB: 'sqlite:mine.db', DATABASE_URL: 'sqlite:default.db' };
    let r = await both(['-e', 'MY_DB', 'create'], () => {}, env);
    assert.deepEqual(r.lockstep.files, ['mine.db'], show(r.lockstep));
    assert.deepEqual(r.lockstep.files, r.dbmate.files);
    r = await both(['--url', 'sqlite:flag.db', '-e', 'MY_DB', 'create'], () => {}, env);
    assert.deepEqual(r.lockstep.files, ['flag.db'], show(r.lockstep));
    assert.deepEqual(r.lockstep.files, r.dbmate.files);
  });

  it('a .env that does not parse: an error naming the file and line (dbmate: exit 3, lockstep: 2), nothing run', async () => {
    const r = await both(['create'], (dir) =>
      writeFileSync(path.join(dir, '.env'), 'A=1\nDATABASE_URL="sqlite:pw.db'),
    );
    assert.equal(r.dbmate.code, 3, show(r.dbmate));
    assert.equal(r.lockstep.code, 2, show(r.lockstep));
    assert.match(r.lockstep.stderr, /\.env, line 2: unterminated quoted value/);
    assert.doesNotMatch(r.lockstep.stderr, /pw\.db/);
    assert.deepEqual(r.lockstep.files, []);
  });
});

describe('dbmate CLI: options and variables', () => {
  it('no URL with a dbmate command: an error in both (no default SQLite file)', async () => {
    for (const command of ['migrate', 'create', 'wait', 'rollback']) {
      const r = await both([command], () => {});
      assert.equal(zeroOrNot(r.dbmate), 'error', show(r.dbmate));
      assert.equal(r.lockstep.code, 2, show(r.lockstep));
      assert.match(r.lockstep.stderr, /no database URL: set DATABASE_URL/);
      assert.deepEqual(r.lockstep.files, []);
    }
  });

  it('DBMATE_MIGRATIONS_DIR, --migrations-dir and -d choose the directory; status --exit-code is 1 with one pending', async () => {
    const setup = (dir: string) => writeMigrations(dir, { '001_t.sql': MIGRATION }, 'elsewhere');
    const env = { DATABASE_URL: 'sqlite:s.db' };
    for (const [args, extra] of [
      [['status', '--exit-code'], { DBMATE_MIGRATIONS_DIR: 'elsewhere' }],
      [['--migrations-dir', 'elsewhere', 'status', '--exit-code'], {}],
      [['-d', 'elsewhere', 'status', '--exit-code'], {}],
    ] as const) {
      const r = await both(args, setup, { ...env, ...extra });
      assert.equal(r.dbmate.code, 1, show(r.dbmate));
      assert.equal(r.lockstep.code, 1, `${args.join(' ')}\n${show(r.lockstep)}`);
    }
  });

  it('status --quiet prints nothing and exits 1 when pending, 0 when up to date', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
    writeMigrations(dir, { '001_t.sql': MIGRATION }, 'db/migrations');
    const env = { DATABASE_URL: 'sqlite:q.db' };
    let r = await lockstep(['status', '--quiet'], dir, env);
    assert.deepEqual([r.code, r.stdout], [1, ''], show(r));
    assert.equal((await lockstep(['up'], dir, env)).code, 0);
    r = await lockstep(['status', '--quiet'], dir, env);
    assert.deepEqual([r.code, r.stdout], [0, ''], show(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('bad DBMATE_* values are refused in both, saying which', async () => {
    for (const env of [{ DBMATE_WAIT: 'yes' }, { DBMATE_WAIT_TIMEOUT: '30' }]) {
      const r = await both(['status'], () => {}, { DATABASE_URL: 'sqlite:b.db', ...env });
      assert.equal(r.dbmate.code, 2, show(r.dbmate));
      assert.equal(r.lockstep.code, 2, show(r.lockstep));
      assert.match(r.lockstep.stderr, new RegExp(Object.keys(env)[0] as string));
    }
  });

  it('what lockstep cannot do is refused, saying what to use: dump of no database, --driver against the URL, several -d; -s and --no-dump-schema work', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
    const env = { DATABASE_URL: 'sqlite:r.db' };
    for (const [args, pattern] of [
      [['dump'], /no SQLite database at .*r\.db: nothing to dump/],
      [['--driver', 'postgres', 'up'], /--driver postgres.*scheme, here sqlite/],
      [['-d', 'a', '-d', 'b', 'up'], /one directory/],
      [['--migrations-dir', 'a', '--migrations-dir', 'b', 'up'], /one directory/],
    ] as const) {
      const r = await lockstep(args, dir, env);
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, pattern);
    }
    assert.equal(existsSync(path.join(dir, 'r.db')), false);
    // Accepted: --driver that agrees, --no-dump-schema.
    writeMigrations(dir, { '001_t.sql': MIGRATION }, 'db/migrations');
    const r = await lockstep(['--driver', 'sqlite', '--no-dump-schema', 'up'], dir, env);
    assert.equal(r.code, 0, show(r));
    assert.equal(existsSync(path.join(dir, 'db/schema.sql')), false, '--no-dump-schema');
    // -s: the schema file is rewritten after an up that applied something.
    writeMigrations(dir, { '002_u.sql': MIGRATION.replaceAll('t1', 'u1') }, 'db/migrations');
    const dumped = await lockstep(['-s', 'db/schema.sql', 'up'], dir, env);
    assert.equal(dumped.code, 0, show(dumped));
    assert.match(dumped.stderr, /wrote db\/schema\.sql/);
    assert.match(readFileSync(path.join(dir, 'db/schema.sql'), 'utf8'), /CREATE TABLE u1/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('n, rollback, -v: dbmate names; --strict refuses an out-of-order migration, without it a warning', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
    const env = { DATABASE_URL: 'sqlite:n.db' };
    let r = await lockstep(['n', 'add_things'], dir, env);
    assert.equal(r.code, 0, show(r));
    assert.equal(
      readdirSync(path.join(dir, 'db/migrations')).filter((f) => f.endsWith('_add_things.sql')).length,
      1,
    );
    rmSync(path.join(dir, 'db/migrations'), { recursive: true });
    writeMigrations(dir, { '002_b.sql': MIGRATION.replaceAll('t1', 't2') }, 'db/migrations');
    r = await lockstep(['up', '-v'], dir, env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /CREATE TABLE t2/);
    writeMigrations(dir, { '001_a.sql': MIGRATION }, 'db/migrations');
    r = await lockstep(['migrate', '--strict'], dir, env);
    assert.equal(r.code, 2, show(r));
    r = await lockstep(['migrate'], dir, env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /warning: 001_a is older than the newest applied 002/);
    r = await lockstep(['rollback'], dir, env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /rolled back 002/);
    rmSync(dir, { recursive: true, force: true });
  });
});

const unique = () => `lockstep_dbm_${process.pid}_${randomBytes(3).toString('hex')}`;

function pgUrl(name: string, sslDisable = false): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  if (sslDisable) url.searchParams.set('sslmode', 'disable');
  return url.href;
}

function mysqlUrl(name: string): string {
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.href;
}

async function pgExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

async function mysqlExists(name: string): Promise<boolean> {
  const mysql = await import('mysql2/promise');
  const c = await mysql.createConnection({ uri: MYSQL_ADMIN_URL });
  try {
    const [rows] = await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [name]);
    return (rows as unknown[]).length > 0;
  } finally {
    await c.end();
  }
}

const SERVERS = [
  { kind: 'postgres', url: pgUrl, dbmateUrl: (n: string) => pgUrl(n, true), exists: pgExists },
  { kind: 'mysql', url: mysqlUrl, dbmateUrl: mysqlUrl, exists: mysqlExists },
] as const;

describe('dbmate CLI: create, drop, up creating the database, side by side', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
  writeMigrations(dir, { '001_t.sql': MIGRATION }, 'db/migrations');
  const names: [(typeof SERVERS)[number], string][] = [];
  after(async () => {
    for (const [server, name] of names) {
      await lockstep(['--url', server.url(name), 'drop'], dir);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  for (const server of SERVERS) {
    it(`${server.kind}: create, create again (refused), drop, drop again: as dbmate`, async () => {
      for (const [tool, url] of [
        [dbmate, server.dbmateUrl],
        [lockstep, server.url],
      ] as const) {
        const name = unique();
        names.push([server, name]);
        const steps: [string, number | 'error', boolean][] = [
          ['create', 0, true],
          ['create', 'error', true],
          ['drop', 0, false],
          ['drop', 0, false],
        ];
        for (const [command, code, existsAfter] of steps) {
          const r = await tool(['--url', url(name), command], dir);
          assert.equal(
            zeroOrNot(r),
            code,
            `${tool === dbmate ? 'dbmate' : 'lockstep'} ${command}\n${show(r)}`,
          );
          assert.equal(await server.exists(name), existsAfter, command);
        }
      }
      const name = unique();
      names.push([server, name]);
      assert.equal((await lockstep(['--url', server.url(name), 'create'], dir)).code, 0);
      const again = await lockstep(['--url', server.url(name), 'create'], dir);
      assert.equal(again.code, 6, show(again));
      assert.match(again.stderr, /already exists: nothing was changed/);
    });

    it(`${server.kind}: up creates a missing database and migrates it; migrate does not create it`, async () => {
      const name = unique();
      names.push([server, name]);
      const m = await lockstep(['--url', server.url(name), 'migrate'], dir);
      assert.notEqual(m.code, 0, show(m));
      assert.equal(await server.exists(name), false);
      const d = await dbmate(['--url', server.dbmateUrl(name), 'migrate'], dir);
      assert.notEqual(d.code, 0, show(d));
      const r = await lockstep(['--url', server.url(name), 'up'], dir);
      assert.equal(r.code, 0, show(r));
      assert.equal(await server.exists(name), true);
      assert.match(r.stdout, /applied 1 migration/);
    });
  }

  it('sqlite: create makes the file (an existing one is fine, as dbmate), drop removes it', async () => {
    const r = await both(['--url', 'sqlite:f.db', 'create'], () => {});
    assert.deepEqual([r.dbmate.files, r.lockstep.files], [['f.db'], ['f.db']]);
    const again = await both(['--url', 'sqlite:f.db', 'create'], (d) =>
      writeFileSync(path.join(d, 'f.db'), ''),
    );
    assert.deepEqual([again.dbmate.code, again.lockstep.code], [0, 0], show(again.lockstep));
    const drop = await both(['--url', 'sqlite:f.db', 'drop'], (d) => writeFileSync(path.join(d, 'f.db'), ''));
    assert.deepEqual(
      [drop.dbmate.code, drop.lockstep.code, drop.lockstep.files],
      [0, 0, []],
      show(drop.lockstep),
    );
  });

  it('20 processes run up at once on a missing database: all exit 0, it is created once and migrated once', async () => {
    const name = unique();
    names.push([SERVERS[0], name]);
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => lockstep(['--url', pgUrl(name), 'up'], dir)),
    );
    for (const r of runs) assert.equal(r.code, 0, show(r));
    assert.equal(runs.filter((r) => /applied 1 migration in/.test(r.stdout)).length, 1);
  });
});

describe('dbmate CLI: wait', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
  mkdirSync(path.join(dir, 'db/migrations'), { recursive: true });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a port nobody listens on: times out after --wait-timeout, exit 5 (dbmate: 2)', async () => {
    const url = 'postgres://postgres@127.0.0.1:1/none';
    const started = Date.now();
    const r = await lockstep(['--wait-timeout', '2s', '--wait-interval', '200ms', '--url', url, 'wait'], dir);
    const took = Date.now() - started;
    assert.equal(r.code, 5, show(r));
    assert.match(r.stderr, /did not accept a connection within 2\.0s/);
    assert.ok(took >= 1800 && took < 6000, `took ${took} ms`);
    const d = await dbmate(['--wait-timeout', '2s', '--url', url, 'wait'], dir);
    assert.equal(d.code, 2, show(d));
    // --wait before a command: the command does not run.
    const w = await lockstep(['--wait', '--wait-timeout', '1s', '--url', url, 'up'], dir, {
      DBMATE_WAIT_INTERVAL: '100ms',
    });
    assert.equal(w.code, 5, show(w));
  });

  for (const server of SERVERS) {
    it(`${server.kind}: a live server is ready at once, even when the database does not exist yet`, async () => {
      for (const [tool, url] of [
        [lockstep, server.url],
        [dbmate, server.dbmateUrl],
      ] as const) {
        const r = await tool(['--url', url(unique()), 'wait'], dir);
        assert.equal(r.code, 0, show(r));
      }
      // --wait, then a lock-free status on an existing database with nothing to apply: 0.
      const r = await lockstep(['--wait', '--url', server.url('test'), 'status', '--exit-code'], dir);
      assert.equal(r.code, 0, show(r));
    });
  }
});

describe('dbmate CLI: no password in any output', () => {
  it('create, drop, wait and up that fail never print the password, in text or --json', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-'));
    mkdirSync(path.join(dir, 'db/migrations'), { recursive: true });
    const secret = 'Zq8SecretPw';
    for (const url of [
      `postgres://postgres:${secret}@127.0.0.1:1/x`,
      `mysql://root:${secret}@127.0.0.1:3306/x`, // the server refuses the password
      `mysql://root:${secret}@127.0.0.1:1/x`,
    ]) {
      for (const command of ['create', 'drop', 'wait', 'up']) {
        for (const json of [[], ['--json']]) {
          const r = await lockstep(
            ['--wait-timeout', '1s', '--wait-interval', '200ms', '--url', url, command, ...json],
            dir,
          );
          assert.notEqual(r.code, 0, show(r));
          assert.ok(!`${r.stdout}${r.stderr}`.includes(secret), `${command} ${url}\n${show(r)}`);
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
});
