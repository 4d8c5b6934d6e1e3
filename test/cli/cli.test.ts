/** The CLI as a real OS process against every database: commands, output, exit codes. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  CLEAN_ENV,
  type DatabaseKind,
  type ProcessResult,
  ROOT,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const LEDGER = 'lockstep_migrations';
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/unreachable';

const MIGRATIONS = {
  '001_users.sql': `-- migrate:up
CREATE TABLE users (id integer PRIMARY KEY, email text);
-- migrate:down
DROP TABLE users;
`,
  '002_posts.sql': `-- migrate:up
CREATE TABLE posts (id integer PRIMARY KEY, user_id integer);
-- migrate:down
DROP TABLE posts;
`,
  '003_tags.sql': `-- migrate:up
CREATE TABLE tags (id integer PRIMARY KEY, label text);
-- migrate:down
DROP TABLE tags;
`,
};

/** Non-transactional; its 2nd statement (line 4) fails because `audit_log` does not exist. */
const HALF_FAILING = `-- migrate:up transaction:false
CREATE TABLE half (id integer);

INSERT INTO audit_log VALUES (1);
-- migrate:down
DROP TABLE half;
`;

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function json<T = Record<string, unknown>>(r: ProcessResult): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch (error) {
    assert.fail(`stdout is not one JSON value (${(error as Error).message}):\n${show(r)}`);
  }
  assert.ok(
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
    `one JSON object:\n${show(r)}`,
  );
  return parsed as T;
}

/** Per database: how to list the user tables, and how `status --json` names the target. */
const DIALECT: Record<DatabaseKind, { readonly listTables: string; readonly target: RegExp }> = {
  postgres: {
    listTables: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    target: /^postgres:\/\//,
  },
  mysql: {
    listTables: `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
    target: /^mysql:\/\//,
  },
  sqlite: {
    listTables: `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`,
    target: /^sqlite:/,
  },
};

async function userTables(db: TestDatabase): Promise<string[]> {
  const rows = await db.query(DIALECT[db.kind].listTables);
  return rows.map((r) => String(r.name)).filter((n) => n !== LEDGER);
}

async function ledger(db: TestDatabase): Promise<Record<string, unknown>[]> {
  return db.query(`SELECT * FROM ${LEDGER} ORDER BY version`);
}

describe('cli: no database needed', () => {
  const cli = (args: string[], cwd = ROOT) => runCli(args, { cwd, env: CLEAN_ENV });

  it('--help mentions every command and every exit code', async () => {
    for (const flag of ['--help', '-h']) {
      const result = await cli([flag]);
      assert.equal(result.code, 0, show(result));
      for (const command of ['up', 'down', 'status', 'new', 'resolve']) {
        assert.match(result.stdout, new RegExp(`^  ${command}\\b`, 'm'), `mentions ${command}`);
      }
      for (const code of [0, 1, 2, 3, 4, 5]) {
        assert.match(result.stdout, new RegExp(`^  ${code}  \\S`, 'm'), `explains exit code ${code}`);
      }
      assert.match(result.stdout, /--allow-changed/);
      assert.equal(result.stderr, '');
    }
  });

  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const result = await cli([flag]);
      assert.equal(result.code, 0, show(result));
      assert.equal(result.stdout, `${version}\n`);
    }
  });
});

for (const target of TARGETS) {
  describe(`cli: ${target.kind}`, () => {
    let db: TestDatabase;
    const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
      runCli(args, { cwd: db.dir, env: { ...CLEAN_ENV, ...env } });
    /** A command against the test database and <dir>/migrations. */
    const run = (...args: string[]) => cli([...args, '--url', db.url, '--dir', 'migrations']);
    const write = (files: Record<string, string>) => writeMigrations(db.dir, files);

    beforeEach(async () => {
      db = await target.create();
    });
    afterEach(async () => {
      await db.cleanup();
    });

    it('new <name> creates a timestamped .sql file (or .ts with --ts) in --dir, and rejects a bad name', async () => {
      const before = Date.now();
      const sql = await cli(['new', 'add_users', '--dir', 'migrations']);
      assert.equal(sql.code, 0, show(sql));
      const [sqlFile, ...more] = readdirSync(path.join(db.dir, 'migrations'));
      assert.equal(more.length, 0);
      const match = /^(\d{14})_add_users\.sql$/.exec(sqlFile ?? '');
      assert.ok(match, `timestamped name, got ${sqlFile}`);
      const stamp = match[1] as string;
      const when = Date.UTC(
        +stamp.slice(0, 4),
        +stamp.slice(4, 6) - 1,
        +stamp.slice(6, 8),
        +stamp.slice(8, 10),
        +stamp.slice(10, 12),
        +stamp.slice(12, 14),
      );
      assert.ok(when >= before - 2_000 && when <= Date.now() + 1_000, `UTC timestamp now, got ${stamp}`);
      assert.match(sql.stdout, new RegExp(`migrations/${sqlFile}`));
      const text = readFileSync(path.join(db.dir, 'migrations', sqlFile as string), 'utf8');
      assert.match(text, /^-- migrate:up$/m);
      assert.match(text, /^-- migrate:down$/m);

      // A different name, so two files made within one second do not share a version.
      await new Promise((r) => setTimeout(r, 1_100));
      const ts = await cli(['new', 'add-posts', '--ts', '--dir', 'migrations', '--json']);
      assert.equal(ts.code, 0, show(ts));
      const created = json<{ created: string }>(ts).created;
      assert.match(created, /^migrations\/\d{14}_add-posts\.ts$/);
      assert.match(readFileSync(path.join(db.dir, created), 'utf8'), /export async function up\(ctx/);

      for (const bad of ['bad name', '../escape', '_leading', 'semi;colon', '']) {
        const rejected = await cli(['new', bad, '--dir', 'migrations']);
        assert.equal(rejected.code, 2, `${JSON.stringify(bad)}: ${show(rejected)}`);
        assert.match(rejected.stderr, /name|usage/);
      }
      assert.equal(readdirSync(path.join(db.dir, 'migrations')).length, 2, 'no file for a bad name');
      assert.ok(!existsSync(path.join(db.dir, 'escape.sql')));

      const none = await cli(['new', '--dir', 'migrations']);
      assert.equal(none.code, 2, show(none));
      assert.match(none.stderr, /usage: lockstep new <name>/);
    });

    it('a file made by `new` and `new --ts` applies once filled in', async () => {
      assert.equal((await cli(['new', 'first', '--dir', 'migrations'])).code, 0);
      await new Promise((r) => setTimeout(r, 1_100));
      assert.equal((await cli(['new', 'second', '--ts', '--dir', 'migrations'])).code, 0);
      const dir = path.join(db.dir, 'migrations');
      const files = readdirSync(dir).sort();
      const [sqlFile, tsFile] = files as [string, string];
      writeFileSync(
        path.join(dir, sqlFile),
        readFileSync(path.join(dir, sqlFile), 'utf8').replace(
          '-- migrate:up\n',
          '-- migrate:up\nCREATE TABLE from_new (id integer);\n',
        ),
      );
      writeFileSync(
        path.join(dir, tsFile),
        readFileSync(path.join(dir, tsFile), 'utf8')
          .replace('ctx.exec(``)', 'ctx.exec(`CREATE TABLE from_new_ts (id integer)`)')
          .replace('ctx.exec(``)', 'ctx.exec(`DROP TABLE from_new_ts`)'),
      );
      const up = await run('up');
      assert.equal(up.code, 0, show(up));
      assert.deepEqual(await userTables(db), ['from_new', 'from_new_ts']);
      const down = await run('down');
      assert.equal(down.code, 0, show(down));
      assert.deepEqual(await userTables(db), ['from_new']);
    });

    it('up applies everything; up again prints up to date and exits 0', async () => {
      write(MIGRATIONS);
      const first = await run('up');
      assert.equal(first.code, 0, show(first));
      assert.match(first.stdout, /applied 3 migrations/);
      assert.match(first.stderr, /applied 001 users/);
      assert.deepEqual(await userTables(db), ['posts', 'tags', 'users']);
      const second = await run('up');
      assert.equal(second.code, 0, show(second));
      assert.match(second.stdout, /up to date/);
      assert.doesNotMatch(second.stderr, /applying/);
      assert.equal((await ledger(db)).length, 3);
    });

    it('status lists applied and pending migrations, by whom; --json has the fields', async () => {
      write({ '001_users.sql': MIGRATIONS['001_users.sql'], '002_posts.sql': MIGRATIONS['002_posts.sql'] });
      const fresh = await run('status', '--json');
      assert.equal(fresh.code, 0, show(fresh));
      assert.equal(json(fresh).ledgerExists, false);

      assert.equal((await run('up')).code, 0);
      write({ '003_tags.sql': MIGRATIONS['003_tags.sql'] });
      const text = await run('status');
      assert.equal(text.code, 0, show(text));
      const by = new RegExp(`${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+`);
      assert.match(text.stdout, /^VERSION\s+NAME\s+STATE\s+APPLIED AT\s+BY\s+TOOK$/m);
      const line = (version: string) =>
        text.stdout.split('\n').find((l) => l.startsWith(`${version} `)) ?? '';
      assert.match(line('001'), /^001\s+users\s+applied\s+\d{4}-\d\d-\d\dT/);
      assert.match(line('001'), by, 'applied by host:pid');
      assert.match(line('002'), /^002\s+posts\s+applied\b/);
      assert.match(line('003'), /^003\s+tags\s+pending$/);
      assert.match(text.stdout, /lock:\s+free/);
      assert.match(text.stdout, /2 applied, 1 pending/);

      const result = await run('status', '--json');
      assert.equal(result.code, 0, show(result));
      const status = json<{
        target: string;
        ledgerExists: boolean;
        lockHolder: unknown;
        migrations: {
          version: string;
          name: string;
          file: string | null;
          status: string;
          row: { appliedBy: string; state: string; checksum: string; finishedAt: string | null } | null;
        }[];
      }>(result);
      assert.equal(status.ledgerExists, true);
      assert.equal(status.lockHolder, null);
      assert.match(status.target, DIALECT[target.kind].target);
      assert.deepEqual(
        status.migrations.map((m) => [m.version, m.name, m.file, m.status]),
        [
          ['001', 'users', 'migrations/001_users.sql', 'applied'],
          ['002', 'posts', 'migrations/002_posts.sql', 'applied'],
          ['003', 'tags', 'migrations/003_tags.sql', 'pending'],
        ],
      );
      for (const m of status.migrations.slice(0, 2)) {
        assert.match(m.row?.appliedBy ?? '', by);
        assert.equal(m.row?.state, 'applied');
        assert.match(m.row?.checksum ?? '', /^[0-9a-f]{64}$/);
        assert.ok(m.row?.finishedAt && !Number.isNaN(Date.parse(m.row.finishedAt)));
      }
      assert.equal(status.migrations[2]?.row, null);
    });

    it('down rolls back the newest; down --steps 2 the next two, newest first', async () => {
      write(MIGRATIONS);
      assert.equal((await run('up')).code, 0);
      const one = await run('down');
      assert.equal(one.code, 0, show(one));
      assert.match(one.stdout, /rolled back 003 tags$/m);
      assert.deepEqual(await userTables(db), ['posts', 'users']);

      const two = await run('down', '--steps', '2');
      assert.equal(two.code, 0, show(two));
      assert.match(two.stdout, /rolled back 002 posts, 001 users/);
      const order = [...two.stderr.matchAll(/rolling back (\d+)/g)].map((m) => m[1]);
      assert.deepEqual(order, ['002', '001']);
      assert.deepEqual(await userTables(db), []);
      assert.deepEqual(await ledger(db), []);

      const nothing = await run('down');
      assert.equal(nothing.code, 0, show(nothing));
      assert.match(nothing.stdout, /nothing to roll back/);

      const bad = await run('down', '--steps', 'two');
      assert.equal(bad.code, 2, show(bad));
      assert.match(bad.stderr, /--steps/);
    });

    it('down of a migration without a down section is a no-op that says so (as in dbmate)', async () => {
      write({
        '001_users.sql': MIGRATIONS['001_users.sql'],
        '002_nodown.sql': '-- migrate:up\nCREATE TABLE nodown (id integer);\n',
        '003_emptydown.sql': '-- migrate:up\nCREATE TABLE emptydown (id integer);\n-- migrate:down\n',
      });
      assert.equal((await run('up')).code, 0);
      const result = await run('down', '--steps', '2');
      assert.equal(result.code, 0, show(result));
      assert.match(result.stderr, /migrations\/003_emptydown\.sql: its down section is empty or absent/);
      assert.match(result.stderr, /migrations\/002_nodown\.sql: its down section is empty or absent/);
      assert.match(result.stdout, /rolled back 003 emptydown, 002 nodown/);
      assert.deepEqual(await userTables(db), ['emptydown', 'nodown', 'users'], 'the tables stay');
      assert.deepEqual(
        (await ledger(db)).map((r) => r.version),
        ['001'],
        'only the ledger rows went',
      );
    });

    describe('a non-transactional migration that fails half-way', () => {
      const setup = async () => {
        write({ '001_users.sql': MIGRATIONS['001_users.sql'], '002_half.sql': HALF_FAILING });
        const failed = await run('up');
        assert.equal(failed.code, 1, show(failed));
        assert.match(failed.stderr, /migrations\/002_half\.sql:4/);
        assert.match(failed.stderr, /statement 2 of 2/);
        assert.match(failed.stderr, /partially applied/);
        assert.deepEqual(await userTables(db), ['half', 'users'], 'statement 1 stays applied');
        write({ '003_tags.sql': MIGRATIONS['003_tags.sql'] });
      };

      it('blocks up with exit 4 until resolve --rolled-back, then applies once fixed', async () => {
        await setup();
        const dirty = await run('up');
        assert.equal(dirty.code, 4, show(dirty));
        assert.match(dirty.stderr, /migration 002/);
        assert.match(dirty.stderr, /migrations\/002_half\.sql:4/, 'the file and line reached');
        assert.match(dirty.stderr, /statements 1\.\.1 of 2 completed; statement 2/, 'the statement reached');
        assert.match(dirty.stderr, /lockstep resolve 002 --applied/);
        assert.match(dirty.stderr, /lockstep resolve 002 --rolled-back/);
        assert.ok(!(await userTables(db)).includes('tags'), 'nothing after it ran');

        const dirtyJson = await run('up', '--json');
        assert.equal(dirtyJson.code, 4);
        const error = json(dirtyJson);
        assert.equal(error.error, 'DIRTY_STATE');
        assert.equal(error.version, '002');
        assert.equal(error.exitCode, 4);

        const status = await run('status');
        assert.equal(status.code, 0, show(status));
        assert.match(status.stdout, /^002\s+half\s+failed\b/m);
        assert.match(status.stdout, /lockstep resolve 002 --applied \| --rolled-back/);
        const statusJson = json<{ migrations: { version: string; status: string }[] }>(
          await run('status', '--json'),
        );
        assert.equal(statusJson.migrations.find((m) => m.version === '002')?.status, 'failed');

        // Undo statement 1 by hand, then record that.
        await db.query('DROP TABLE half');
        const resolved = await run('resolve', '002', '--rolled-back', '--json');
        assert.equal(resolved.code, 0, show(resolved));
        assert.deepEqual(json(resolved), {
          version: '002',
          resolvedAs: 'rolled-back',
          previousState: 'failed',
        });
        assert.deepEqual(
          (await ledger(db)).map((r) => r.version),
          ['001'],
        );

        write({ '002_half.sql': HALF_FAILING.replace('INSERT INTO audit_log', 'INSERT INTO half') });
        const up = await run('up');
        assert.equal(up.code, 0, show(up));
        assert.match(up.stdout, /applied 2 migrations/);
        assert.deepEqual(await userTables(db), ['half', 'tags', 'users']);
        assert.deepEqual(await db.query('SELECT id FROM half'), [{ id: 1 }]);
        assert.deepEqual(
          (await ledger(db)).map((r) => [r.version, r.state]),
          [
            ['001', 'applied'],
            ['002', 'applied'],
            ['003', 'applied'],
          ],
        );
      });

      it('resolve --applied records it as applied, and up continues after it', async () => {
        await setup();
        // Finish the change by hand.
        await db.query('CREATE TABLE audit_log (id integer)');
        await db.query('INSERT INTO audit_log VALUES (1)');
        const resolved = await run('resolve', '002', '--applied');
        assert.equal(resolved.code, 0, show(resolved));
        assert.match(resolved.stdout, /migration 002 recorded as applied \(was failed\)/);
        const status = await run('status');
        assert.match(status.stdout, /^002\s+half\s+applied\b/m);
        assert.match(status.stdout, /^003\s+tags\s+pending$/m);

        const up = await run('up');
        assert.equal(up.code, 0, show(up));
        assert.match(up.stdout, /applied 1 migration\b/);
        assert.deepEqual(await userTables(db), ['audit_log', 'half', 'tags', 'users']);
        const again = await run('up');
        assert.match(again.stdout, /up to date: 3 migrations applied/);
      });

      it('resolve needs a version and exactly one of --applied / --rolled-back', async () => {
        await setup();
        const before = await ledger(db);
        for (const args of [
          ['resolve', '002'],
          ['resolve', '002', '--applied', '--rolled-back'],
          ['resolve', '--applied'],
          ['resolve', 'abc', '--applied'],
          ['resolve', '999', '--rolled-back'],
        ]) {
          const result = await run(...args);
          assert.equal(result.code, 2, `${args.join(' ')}: ${show(result)}`);
        }
        assert.deepEqual(await ledger(db), before);
      });
    });

    it('honours DATABASE_URL from the environment and from ./.env; --url wins over both', async () => {
      write({ '001_users.sql': MIGRATIONS['001_users.sql'] });
      const fromEnv = await cli(['status', '--dir', 'migrations', '--json'], { DATABASE_URL: db.url });
      assert.equal(fromEnv.code, 0, show(fromEnv));
      assert.equal(json(fromEnv).ledgerExists, false);

      writeFileSync(path.join(db.dir, '.env'), `# local settings\nOTHER=1\nDATABASE_URL=${db.url}\n`);
      const fromDotEnv = await cli(['up', '--dir', 'migrations']);
      assert.equal(fromDotEnv.code, 0, show(fromDotEnv));
      assert.deepEqual(await userTables(db), ['users']);

      // The environment wins over .env, --url over both.
      writeFileSync(path.join(db.dir, '.env'), `DATABASE_URL=${UNREACHABLE}\n`);
      write({ '002_posts.sql': MIGRATIONS['002_posts.sql'] });
      const envOverDotEnv = await cli(['status', '--dir', 'migrations'], { DATABASE_URL: db.url });
      assert.equal(envOverDotEnv.code, 0, show(envOverDotEnv));
      const dotEnvOnly = await cli(['status', '--dir', 'migrations']);
      assert.equal(dotEnvOnly.code, 5, `.env is read: ${show(dotEnvOnly)}`);
      const urlWins = await cli(['up', '--url', db.url, '--dir', 'migrations'], {
        DATABASE_URL: UNREACHABLE,
      });
      assert.equal(urlWins.code, 0, show(urlWins));
      assert.deepEqual(await userTables(db), ['posts', 'users']);
    });

    it('applies a TypeScript migration module with no build step', async () => {
      const ts = `interface Context {
  readonly dialect: string;
  exec(sql: string): Promise<void>;
}

type Column = { name: string; type: 'integer' | 'text' };
const columns: Column[] = [
  { name: 'id', type: 'integer' },
  { name: 'label', type: 'text' },
];

export async function up(ctx: Context): Promise<void> {
  const list: string = columns.map((c: Column) => \`\${c.name} \${c.type}\`).join(', ');
  await ctx.exec(\`CREATE TABLE ts_made (\${list})\`);
  await ctx.exec(\`INSERT INTO ts_made (id, label) VALUES (1, '\${ctx.dialect}')\`);
}

export async function down(ctx: Context): Promise<void> {
  await ctx.exec('DROP TABLE ts_made');
}
`;
      write({ '001_users.sql': MIGRATIONS['001_users.sql'], '002_ts_made.ts': ts });
      const up = await run('up');
      assert.equal(up.code, 0, show(up));
      assert.match(up.stderr, /applied 002 ts_made/);
      assert.deepEqual(await db.query('SELECT id, label FROM ts_made'), [{ id: 1, label: target.kind }]);
      assert.deepEqual(
        readdirSync(path.join(db.dir, 'migrations')).sort(),
        ['001_users.sql', '002_ts_made.ts'],
        'nothing built',
      );
      const status = json<{ migrations: { version: string; status: string }[] }>(
        await run('status', '--json'),
      );
      assert.deepEqual(
        status.migrations.map((m) => m.status),
        ['applied', 'applied'],
      );
      const down = await run('down');
      assert.equal(down.code, 0, show(down));
      assert.deepEqual(await userTables(db), ['users']);
    });

    it('--json prints one parseable JSON object on stdout for up, status, down and resolve', async () => {
      write(MIGRATIONS);
      const up = await run('up', '--json');
      assert.equal(up.code, 0, show(up));
      const applied = json<{
        applied: { version: string; name: string; durationMs: number }[];
        upToDate: boolean;
        total: number;
      }>(up);
      assert.deepEqual(
        applied.applied.map((m) => m.version),
        ['001', '002', '003'],
      );
      assert.equal(applied.upToDate, false);
      assert.equal(applied.total, 3);
      assert.ok(applied.applied.every((m) => typeof m.durationMs === 'number'));

      const again = json<{ applied: unknown[]; upToDate: boolean; total: number }>(await run('up', '--json'));
      assert.deepEqual([again.applied, again.upToDate, again.total], [[], true, 3]);

      const status = json<{ migrations: unknown[] }>(await run('status', '--json'));
      assert.equal(status.migrations.length, 3);

      const down = await run('down', '--steps', '2', '--json');
      assert.equal(down.code, 0, show(down));
      assert.deepEqual(
        json<{ rolledBack: { version: string }[] }>(down).rolledBack.map((m) => m.version),
        ['003', '002'],
      );

      write({ '004_half.sql': HALF_FAILING });
      const failed = await run('up', '--json');
      assert.equal(failed.code, 1, show(failed));
      const failure = json(failed);
      assert.equal(failure.error, 'MIGRATION_FAILED');
      assert.equal(failure.version, '004');
      assert.equal(failure.line, 4);

      const resolve = await run('resolve', '004', '--applied', '--json');
      assert.equal(resolve.code, 0, show(resolve));
      assert.deepEqual(json(resolve), { version: '004', resolvedAs: 'applied', previousState: 'failed' });

      const usage = await run('resolve', '--json');
      assert.equal(usage.code, 2);
      assert.equal(json(usage).error, 'CONFIG');
    });
  });
}
