/**
 * SPEC guarantee 11, channel by channel, with real processes and real databases: a password made
 * of every special character appears in no output — stderr, stdout and --json, status, the ledger's
 * error column, the library's events and errors, ctx.log lines, and the HTTP API of `lockstep
 * serve` — not even when a migration's own error quotes the URL and the password, and not when the
 * URL does not parse.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  type DatabaseKind,
  type ProcessResult,
  ROOT,
  runCli,
  runNode,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

/** Every character that is special in URLs, JSON, SQL or shells, and some beyond ASCII. */
const PASSWORD = `Zq@:/?#[]!$&'()*+,;=%" \\ü€😀x9`;
/** The special characters a URL takes unencoded in its user info and query values, and more. */
const RAW_PASSWORD = `Zq!$'()*+,;=ü€😀x9`;

const SECOND_LEDGER = 'lockstep_second';

/** How the test writes the password into the URL. */
const SPELLINGS = [
  { name: 'percent-encoded', password: PASSWORD, write: encodeURIComponent },
  { name: 'unencoded', password: RAW_PASSWORD, write: (p: string) => p },
] as const;

/** The spellings of a secret that a channel could carry. */
function spellings(secret: string): string[] {
  return [
    ...new Set([
      secret,
      encodeURIComponent(secret),
      encodeURI(secret),
      JSON.stringify(secret).slice(1, -1),
      secret.replaceAll("'", "''"),
      secret.replace(/[\\']/g, '\\$&'),
    ]),
  ];
}

/** Not one spelling of the secret, and not a piece of one (6 characters) either. */
function assertHidden(channel: string, text: string, secret = PASSWORD): void {
  for (const form of spellings(secret)) {
    const chars = [...form];
    const size = Math.min(6, chars.length);
    for (let i = 0; i + size <= chars.length; i++) {
      const piece = chars.slice(i, i + size).join('');
      assert.ok(
        !text.includes(piece),
        `${channel} shows ${JSON.stringify(piece)} of the password spelt ${JSON.stringify(form)}:\n${text}`,
      );
    }
  }
}

function show(r: ProcessResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The test database's URL with a password in it (as `write` spells it), accepted by the database. */
const WITH_PASSWORD: Record<
  DatabaseKind,
  (db: TestDatabase, password: string, write: (p: string) => string) => Promise<string>
> = {
  // Trust authentication ignores the password: the URL works, and its password must stay hidden.
  postgres: async (db, password, write) => {
    const url = new URL(db.url);
    return `postgres://${url.username}:${write(password)}@${url.host}${url.pathname}`;
  },
  // MariaDB checks passwords: a user of its own, on the test database only (dropped with it).
  mysql: async (db, password, write) => {
    const url = new URL(db.url);
    const user = `lockstep_pw_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE USER '${user}'@'%' IDENTIFIED BY ?`, [password]);
    await db.query(`GRANT ALL ON \`${url.pathname.slice(1)}\`.* TO '${user}'@'%'`);
    return `mysql://${user}:${write(password)}@${url.host}${url.pathname}`;
  },
  // SQLite has no user, and lockstep refuses any query parameter (see below): no URL holds a secret.
  sqlite: async (db) => db.url,
};

/** A migration whose error quotes the URL and the password, as the database (or module) raises it. */
function failingMigration(kind: DatabaseKind, url: string, password: string): Record<string, string> {
  const text = `cannot reach ${url} as ${password} (${encodeURIComponent(password)})`;
  switch (kind) {
    case 'postgres':
      return {
        '002_fail.sql': `-- migrate:up\nDO $$ BEGIN RAISE EXCEPTION '%', $pw$${text}$pw$; END $$;\n`,
      };
    case 'mysql':
      return {
        '002_fail.sql': `-- migrate:up\nSIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${text.replace(/[\\']/g, '\\$&')}';\n`,
      };
    case 'sqlite':
      return {
        '002_fail.mjs':
          "export function up() { throw new Error('cannot reach ' + process.env.LEAK_URL + ' as ' + process.env.LEAK_PASSWORD); }\n",
      };
  }
}

/** A module migration that logs the URL and the password through ctx.log, and runs a query with them. */
const LOGGING_MIGRATION = {
  '001_log.mjs': `export async function up(ctx) {
  ctx.log('connected to ' + process.env.LEAK_URL + ' as ' + process.env.LEAK_PASSWORD);
  await ctx.query('SELECT ' + "'" + process.env.LEAK_PASSWORD.replaceAll("'", "''") + "'" + ' AS pw');
}
`,
};

/** GETs each API path of a running `lockstep serve`; returns the bodies (none if it refused to start). */
async function serveBodies(
  args: string[],
  cwd: string,
  env: Record<string, string | undefined> = {},
): Promise<{ bodies: Record<string, string>; output: string; refused?: ProcessResult }> {
  const server = startCli(['serve', '--port', '0', ...args], {
    cwd,
    env: { ...CLEAN_ENV, LOCKSTEP_TOKEN: undefined, ...env },
  });
  const exited = server.done.then((r) => r);
  try {
    const started = await Promise.race([
      server.waitFor(/lockstep status page: \S+/).then(() => true),
      exited.then(() => false),
    ]);
    if (!started) {
      const refused = await exited;
      return { bodies: {}, output: refused.stdout + refused.stderr, refused };
    }
    const url = /status page: (\S+)/.exec(server.output().stdout)?.[1] as string;
    const bodies: Record<string, string> = {};
    for (const api of ['api/status', 'api/migrations', 'api/async']) {
      bodies[api] = await (await fetch(new URL(api, url))).text();
    }
    return { bodies, output: server.output().stdout + server.output().stderr };
  } finally {
    server.child.kill('SIGTERM');
    await server.done;
  }
}

describe('secrets never leave the process: a SQLite URL with a secret parameter', () => {
  for (const { name, password, write } of SPELLINGS) {
    it(`is refused (lockstep drops no parameter silently), the password ${name} hidden`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-secrets-'));
      try {
        const url = `sqlite:${dir}/app.db?password=${write(password)}`;
        for (const json of [[], ['--json']]) {
          const result = await runCli(['up', '--url', url, '--dir', dir, ...json], {
            cwd: dir,
            env: CLEAN_ENV,
          });
          assert.equal(result.code, 2, result.stderr);
          assert.match(result.stdout + result.stderr, /password=\*\*\*/);
          assertHidden('sqlite refusal', result.stdout + result.stderr, password);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

for (const target of TARGETS.filter((t) => t.kind !== 'sqlite')) {
  for (const { name, password, write } of SPELLINGS) {
    describe(`secrets never leave the process: ${target.kind}, the password ${name}`, () => {
      let db: TestDatabase;
      let url: string;
      const channels: Record<string, string> = {};

      before(async () => {
        db = await target.create();
        url = await WITH_PASSWORD[target.kind](db, password, write);
        writeMigrations(db.dir, { ...LOGGING_MIGRATION, ...failingMigration(target.kind, url, password) });
        const env = { ...CLEAN_ENV, LEAK_URL: url, LEAK_PASSWORD: password };
        const cli = (args: string[], extra: Record<string, string> = {}) =>
          runCli(args, { cwd: db.dir, env: { ...env, ...extra } });

        // The library first: its events (ctx.log, queries, progress) and its error.
        const library = await runNode([path.join(ROOT, 'test/fixtures/events.mjs'), url, 'migrations'], {
          cwd: db.dir,
          env,
        });
        const { events, error } = JSON.parse(library.stdout) as { events: unknown[]; error: unknown };
        assert.ok(error, `the migration failed: ${show(library)}`);
        assert.ok(
          events.some((e) => (e as { type: string }).type === 'log'),
          `ctx.log reached the events: ${library.stdout}`,
        );
        channels['library events (ctx.log, queries)'] = JSON.stringify(events);
        channels['library error (message, stack, toJSON)'] = JSON.stringify(error);
        channels['library stderr'] = library.stderr;

        // Then the CLI: the failure again (retried, or refused as dirty), human and --json.
        const json = await cli(['up', '--url', url, '--dir', 'migrations', '--json']);
        assert.notEqual(json.code, 0, show(json));
        assert.ok(JSON.parse(json.stdout).error, show(json));
        channels['up --json: stdout'] = json.stdout;
        channels['up --json: stderr'] = json.stderr;
        // A second ledger: everything runs again, so ctx.log prints its line to stderr too.
        const human = await cli(['up', '--dir', 'migrations', '--table', SECOND_LEDGER], {
          DATABASE_URL: url,
        });
        assert.notEqual(human.code, 0, show(human));
        assert.match(human.stderr, /001: connected to \S+ as \*\*\*/, show(human));
        channels['up: stderr'] = human.stderr;
        channels['up: stdout'] = human.stdout;
        for (const args of [['status'], ['status', '--json']]) {
          const status = await cli([...args, '--url', url, '--dir', 'migrations']);
          assert.equal(status.code, 0, show(status));
          channels[`${args.join(' ')}: stdout`] = status.stdout + status.stderr;
        }

        const rows = [
          ...(await db.query('SELECT version, error FROM lockstep_migrations')),
          ...(await db.query(`SELECT version, error FROM ${SECOND_LEDGER}`)),
        ];
        assert.ok(
          rows.filter((r) => r.error).length === 2,
          `the ledger recorded the error: ${JSON.stringify(rows)}`,
        );
        channels['ledger error column'] = JSON.stringify(rows);

        const served = await serveBodies(['--url', url, '--dir', 'migrations'], db.dir, env);
        for (const [api, body] of Object.entries(served.bodies)) channels[`HTTP ${api}`] = body;
        channels['serve: output'] = served.output;
      });
      after(async () => {
        await db?.cleanup();
      });

      it('the failing migration was reported, with its message, as *** where the secrets were', () => {
        const hidden = /cannot reach \S+(:\*\*\*@|password=\*\*\*)\S* as \*\*\*/;
        assert.match(channels['up: stderr'] as string, hidden);
        assert.match(channels['HTTP api/migrations'] as string, hidden);
      });

      for (const channel of [
        'library events (ctx.log, queries)',
        'library error (message, stack, toJSON)',
        'library stderr',
        'up --json: stdout',
        'up --json: stderr',
        'up: stderr',
        'up: stdout',
        'status: stdout',
        'status --json: stdout',
        'ledger error column',
        'HTTP api/status',
        'HTTP api/migrations',
        'HTTP api/async',
        'serve: output',
      ]) {
        it(`${channel}: no password`, () => {
          assert.ok(channels[channel] !== undefined, `${channel} was captured`);
          assertHidden(channel, channels[channel] as string, password);
        });
      }
    });
  }
}

describe('secrets in URLs that do not parse', () => {
  let project: string;
  before(() => {
    project = mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
    writeMigrations(project, { '001_a.sql': '-- migrate:up\nSELECT 1;\n' });
  });
  after(() => rmSync(project, { recursive: true, force: true }));

  /** Every channel of a CLI run and a server for one configured URL: exit 2, the secret nowhere. */
  async function assertRefusedEverywhere(
    secret: string,
    env: Record<string, string | undefined>,
    urlArgs: string[],
    message: RegExp,
  ) {
    for (const json of [false, true]) {
      const args = ['up', ...urlArgs, '--dir', 'migrations', ...(json ? ['--json'] : [])];
      const result = await runCli(args, { cwd: project, env: { ...CLEAN_ENV, ...env } });
      assert.equal(result.code, 2, show(result));
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /unexpected error/);
      assertHidden(`${args.join(' ')}: stderr`, result.stderr, secret);
      assertHidden(`${args.join(' ')}: stdout`, result.stdout, secret);
      if (json) assert.equal(JSON.parse(result.stdout).error, 'CONFIG');
    }
    const served = await serveBodies([...urlArgs, '--dir', 'migrations'], project, env);
    if (served.refused) {
      // It did not even start: said once, at start-up.
      assert.equal(served.refused.code, 2, show(served.refused));
      assert.match(served.refused.stderr, message);
    } else assert.equal(Object.keys(served.bodies).length, 3);
    for (const [api, body] of Object.entries(served.bodies)) {
      assert.match(body, /"error":"CONFIG"/, `${api}: ${body}`);
      assertHidden(`HTTP ${api}`, body, secret);
    }
    assertHidden('serve: output', served.output, secret);
  }

  for (const scheme of ['postgres', 'mysql']) {
    it(`${scheme}: a "#" in a .env value (whole, or a comment after a space) is refused without the value`, async () => {
      // .env is read as dbmate reads it: `Kx7qW#rest@…` is whole (an unencoded # in the URL), and
      // ` #rest@…` after a space is a comment, which cuts the URL to `<scheme>://u:Kx7qW`.
      for (const value of [
        `${scheme}://u:Kx7qW#rest@127.0.0.1/db`,
        `${scheme}://u:Kx7qW #rest@127.0.0.1/db`,
      ]) {
        writeFileSync(path.join(project, '.env'), `DATABASE_URL=${value}\n`);
        try {
          await assertRefusedEverywhere('Kx7qW', {}, [], /malformed .*URL ".*:\/\/u:\*\*\*/);
        } finally {
          rmSync(path.join(project, '.env'));
        }
      }
    });

    it(`${scheme}: a URL cut before its "@" (the password's start stays hidden)`, async () => {
      const cut = { DATABASE_URL: `${scheme}://u:Kx7qW` };
      await assertRefusedEverywhere('Kx7qW', cut, [], /malformed .*URL ".*:\/\/u:\*\*\*"/);
    });

    it(`${scheme}: the password written unencoded`, async () => {
      const raw = `${scheme}://u:${PASSWORD}@127.0.0.1/db`;
      await assertRefusedEverywhere(PASSWORD, { DATABASE_URL: raw }, [], /u:\*\*\*@127\.0\.0\.1\/db/);
    });

    it(`${scheme}: a password that is not valid percent-encoding is bad input, not echoed`, async () => {
      const bad = `${scheme}://u:Kx7qW%ZZ9@127.0.0.1:1/db`;
      await assertRefusedEverywhere('Kx7qW', {}, ['--url', bad], /password is not valid percent-encoding/);
    });
  }
});
