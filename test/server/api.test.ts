/**
 * The HTTP API over real HTTP against the real databases: every action in every state (allowed:
 * the transition; not allowed: 409), authentication, bad bodies, headers, and twenty simultaneous
 * trigger requests of which exactly one starts a run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AsyncMigrator } from '../../src/async/migrator.js';
import { ASYNC_STATES, type AsyncState } from '../../src/async/states.js';
import { type AsyncAction, allowedActions } from '../../src/async/transitions.js';
import { type RunningServer, serve } from '../../src/server/serve.js';
import { stateRow, traceTableSql, writeDefinitions } from '../helpers/async.js';
import { eventually, startCli } from '../helpers/process.js';
import { freshRequest } from '../helpers/raw-http.js';
import {
  type DatabaseKind,
  runCli,
  TARGETS,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const TOKEN = 'test-token-0123456789abcdef';

/** A statement that takes a few seconds, so a state can be looked at while a worker is in it. */
const LONG: Record<DatabaseKind, string> = {
  postgres: 'SELECT pg_sleep(2)',
  mysql: 'SELECT SLEEP(2)',
  sqlite:
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT COUNT(*) FROM c',
};

const POOL = 16;

/** Pools of identical definitions, one fresh name per case. */
function definitions(kind: DatabaseKind): Record<string, string> {
  const files: Record<string, string> = {};
  const log = (name: string) => `INSERT INTO trace (name, ev) VALUES ('${name}', 'op');`;
  for (let i = 1; i <= POOL; i++) {
    const n = String(i).padStart(2, '0');
    // slow: its second operation takes a while.
    files[`slow${n}.sql`] = `-- async:description slow
-- async:parameter label 'x' a label
-- async:operation
${log(`slow${n}`)}
-- async:rollback
-- async:operation transaction:false
${LONG[kind]};
-- async:rollback
`;
    // quick, with a slow rollback.
    files[`quick${n}.sql`] = `-- async:description quick, slow to roll back
-- async:operation transaction:false
${log(`quick${n}`)}
-- async:rollback
${LONG[kind]};
`;
    files[`fail${n}.sql`] = `-- async:description fails
-- async:operation
INSERT INTO missing_table (n) VALUES (1);
-- async:rollback
`;
    files[`pre${n}.sql`] = `-- async:description its precheck fails
-- async:precheck
SELECT 1 = 0;
-- async:operation
${log(`pre${n}`)}
-- async:rollback
`;
  }
  return files;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

for (const target of TARGETS) {
  describe(`HTTP API: ${target.kind}`, () => {
    let db: TestDatabase;
    let server: RunningServer;
    let dir: string;
    let lrm: AsyncMigrator;
    const used = new Map<string, number>();
    const fresh = (pool: string) => {
      const next = (used.get(pool) ?? 0) + 1;
      used.set(pool, next);
      assert.ok(next <= POOL, `pool ${pool} exhausted`);
      return `${pool}${String(next).padStart(2, '0')}`;
    };

    const call = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
      const response = await freshRequest(new URL(path, server.url), {
        method,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      return {
        status: response.status,
        body: JSON.parse(response.text),
        headers: response.headers,
      } as Answer;
    };
    const action = (name: string, a: AsyncAction) =>
      call(
        'POST',
        `api/async/${name}/${a === 'force-stop' ? 'stop' : a}`,
        a === 'force-stop' ? { force: true } : {},
      );
    const state = async (name: string) => (await stateRow(db, name))?.state ?? 'not_started';
    /** A worker in its own process, so that this process' server answers while it works. */
    const worker = () =>
      startCli(['async', 'worker', '--once', '--poll', '50ms', '--url', db.url, '--async-dir', dir], {
        cwd: db.dir,
      });

    /** A fresh run in `wanted`, with a worker process in it where the state needs one. */
    async function reach(wanted: AsyncState): Promise<{ name: string; settle: () => Promise<void> }> {
      const none = async () => {};
      switch (wanted) {
        case 'not_started':
          return { name: fresh('slow'), settle: none };
        case 'starting': {
          const name = fresh('slow');
          await lrm.trigger(name);
          return { name, settle: none };
        }
        case 'queued': {
          const first = fresh('slow');
          const name = fresh('slow');
          await lrm.trigger(first);
          await lrm.trigger(name, { queue: true });
          return { name, settle: async () => void (await lrm.stop(first)) };
        }
        case 'running':
        case 'stopping': {
          const name = fresh('slow');
          await lrm.trigger(name);
          const w = worker();
          await eventually(
            async () => Number((await stateRow(db, name))?.op_index) === 1,
            `${name} in operation 2`,
          );
          if (wanted === 'stopping') await lrm.stop(name);
          return { name, settle: async () => void (await w.done) };
        }
        case 'rolling_back': {
          const name = fresh('quick');
          await lrm.trigger(name);
          await lrm.wait(name);
          await lrm.rollback(name);
          const w = worker();
          await eventually(async () => (await stateRow(db, name))?.worker !== null, `${name} picked up`);
          return { name, settle: async () => void (await w.done) };
        }
        case 'errored': {
          const name = fresh('fail');
          await lrm.trigger(name);
          await lrm.wait(name).catch(() => {});
          return { name, settle: none };
        }
        case 'completed':
        case 'rolled_back': {
          const name = fresh('quick');
          await lrm.trigger(name);
          await lrm.wait(name);
          if (wanted === 'rolled_back') {
            await lrm.rollback(name);
            await lrm.wait(name);
          }
          return { name, settle: none };
        }
        case 'failed_at_startup': {
          const name = fresh('pre');
          await lrm.trigger(name);
          await lrm.wait(name).catch(() => {});
          return { name, settle: none };
        }
      }
    }

    before(async () => {
      db = await target.create();
      if (target.kind === 'sqlite') await db.query('PRAGMA journal_mode = WAL');
      await db.query(traceTableSql(target.kind));
      dir = writeDefinitions(db.dir, definitions(target.kind));
      const migrations = writeMigrations(db.dir, {
        '001_a.sql': '-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n',
      });
      await runCli(['up', '--url', db.url, '--dir', migrations], { cwd: db.dir });
      server = await serve({
        url: db.url,
        dir: migrations,
        asyncDir: dir,
        token: TOKEN,
        port: 0,
        cwd: db.dir,
      });
      lrm = new AsyncMigrator({ url: db.url, dir, cwd: db.dir, pollInterval: 50 });
    });
    after(async () => {
      await server?.close();
      await db?.cleanup();
    });

    const ACTIONS: readonly AsyncAction[] = ['trigger', 'stop', 'force-stop', 'resume', 'rollback'];

    /** After a case: its worker done, every run it left active or queued stopped and settled. */
    async function cleanup(settle: () => Promise<void>): Promise<void> {
      await settle();
      const active = "('queued', 'starting', 'running', 'stopping', 'rolling_back')";
      for (const r of await db.query(`SELECT name, state FROM lockstep_async WHERE state IN ${active}`)) {
        if (r.state !== 'stopping') await lrm.stop(String(r.name)).catch(() => {});
      }
      await lrm.work({ once: true });
      assert.deepEqual(await db.query(`SELECT name, state FROM lockstep_async WHERE state IN ${active}`), []);
    }

    for (const wanted of ASYNC_STATES) {
      const allowed = allowedActions(wanted);
      it(`in ${wanted}: ${allowed.join(', ')} allowed; everything else 409, nothing changed`, async () => {
        // Every refused action on one run; each allowed one on a run of its own (the first reused).
        const first = await reach(wanted);
        assert.equal(await state(first.name), wanted);
        for (const a of ACTIONS.filter((x) => !allowed.includes(x))) {
          const answer = await action(first.name, a);
          assert.equal(answer.status, 409, `${a} in ${wanted}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.error, 'ASYNC_REFUSED');
          assert.match(String(answer.body.message), /^cannot /);
          assert.equal(await state(first.name), wanted, `${a} changed nothing`);
        }
        for (const [i, a] of allowed.entries()) {
          const run = i === 0 ? first : await reach(wanted);
          const answer = await action(run.name, a);
          assert.equal(answer.status, 200, `${a} in ${wanted}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.previous, wanted);
          // A forced stop of a stopping run cancels its statement; the state moves when the worker sees it.
          if (!(a === 'force-stop' && wanted === 'stopping')) {
            assert.notEqual(answer.body.state, wanted, `${a} moved it on`);
            // A worker in the run may take a stopping run on to errored as soon as its statement
            // ends, before the state is read back.
            const after = await state(run.name);
            const stopped = answer.body.state === 'stopping' && after === 'errored';
            if (!stopped) assert.equal(after, answer.body.state);
          }
          if (a === 'force-stop') assert.equal(typeof answer.body.cancelled, 'number');
          await cleanup(run.settle);
        }
      });
    }

    it('a refusal names the running migration (409)', async () => {
      const running = await reach('running');
      const other = fresh('slow');
      const answer = await call('POST', `api/async/${other}/trigger`, {});
      assert.equal(answer.status, 409);
      assert.equal(answer.body.active, running.name);
      assert.match(String(answer.body.message), new RegExp(`${running.name} is running`));
      await lrm.stop(running.name);
      await cleanup(running.settle);
    });

    it('twenty simultaneous trigger requests for different migrations: exactly one starts', async () => {
      const names = Array.from(
        { length: 20 },
        (_, i) =>
          `${['slow', 'quick', 'fail', 'pre'][i % 4]}${String(POOL - Math.floor(i / 4)).padStart(2, '0')}`,
      );
      const answers = await Promise.all(names.map((n) => call('POST', `api/async/${n}/trigger`, {})));
      const started = answers.filter((a) => a.status === 200);
      assert.equal(started.length, 1, JSON.stringify(answers.map((a) => a.status)));
      const winner = started[0]?.body.name;
      for (const a of answers.filter((x) => x.status !== 200)) {
        assert.equal(a.status, 409);
        assert.equal(a.body.active, winner);
      }
      await cleanup(async () => {});
    });

    it('authentication: no token 401, a wrong one 401, the right one works; reads need none', async () => {
      const name = fresh('quick');
      const missing = await call('POST', `api/async/${name}/trigger`, {}, null);
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="lockstep"');
      assert.match(String(missing.body.message), /needs the token/);
      const wrong = await call('POST', `api/async/${name}/trigger`, {}, `${TOKEN}x`);
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.message, 'wrong token');
      assert.equal(await state(name), 'not_started', 'nothing changed');
      assert.equal((await call('GET', 'api/status', undefined, null)).status, 200);
      const right = await call('POST', `api/async/${name}/trigger`, {});
      assert.equal(right.status, 200);
      await lrm.wait(name);
    });

    it('bad requests: 400 with a clear message, 404, 405, 413, 415 — never a stack trace', async () => {
      const name = fresh('slow');
      const cases: [string, string, unknown, number, RegExp][] = [
        ['POST', `api/async/${name}/trigger`, '{not json', 400, /the body is not JSON/],
        ['POST', `api/async/${name}/trigger`, [], 400, /must be a JSON object/],
        [
          'POST',
          `api/async/${name}/trigger`,
          { force: true },
          400,
          /trigger takes only parameters, queue, not "force"/,
        ],
        ['POST', `api/async/${name}/trigger`, { queue: 'yes' }, 400, /"queue" must be true or false/],
        ['POST', `api/async/${name}/trigger`, { parameters: [1] }, 400, /"parameters" must be an object/],
        [
          'POST',
          `api/async/${name}/trigger`,
          { parameters: { size: 1 } },
          400,
          /has no parameter "size"; its parameters: label/,
        ],
        ['POST', `api/async/${name}/resume`, { now: true }, 400, /resume takes no fields, not "now"/],
        ['POST', 'api/async/bad%20name/trigger', {}, 400, /is not a long-running migration name/],
        ['POST', 'api/async/bad%E0%A4%A/trigger', {}, 400, /is not a long-running migration name/],
        ['POST', 'api/async/nope/trigger', {}, 404, /no long-running migration named "nope"/],
        ['GET', 'api/async/nope', undefined, 404, /no long-running migration named "nope"/],
        ['POST', `api/async/${name}/explode`, {}, 404, /no action "explode"/],
        ['GET', `api/async/${name}/trigger`, undefined, 405, /use POST here/],
        ['DELETE', 'api/status', undefined, 405, /use GET here/],
        ['GET', 'api/nothing', undefined, 404, /no such page/],
        [
          'POST',
          `api/async/${name}/trigger`,
          JSON.stringify({ parameters: { label: 'x'.repeat(20_000) } }),
          413,
          /larger than 16384 bytes/,
        ],
      ];
      for (const [method, path, body, status, message] of cases) {
        const answer = await call(method, path, body);
        assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
        assert.match(String(answer.body.message), message, `${method} ${path}`);
        assert.doesNotMatch(JSON.stringify(answer.body), /\n\s+at /, 'no stack trace');
      }
      const plain = await fetch(new URL(`api/async/${name}/trigger`, server.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
        body: '{}',
      });
      assert.equal(plain.status, 415);
      assert.equal(await state(name), 'not_started');
    });

    it('the status snapshot, the page and its assets, with security headers', async () => {
      const status = await call('GET', 'api/status');
      assert.equal(status.status, 200);
      assert.equal(status.body.mutations, true);
      assert.deepEqual(
        (status.body.migrations as { version: string; status: string }[]).map((m) => [m.version, m.status]),
        [['001', 'applied']],
      );
      assert.ok(Array.isArray((status.body.async as { runs: unknown[] }).runs));
      for (const path of ['', 'app.js', 'app.css']) {
        const response = await fetch(new URL(path, server.url));
        assert.equal(response.status, 200, path);
        assert.match(
          response.headers.get('content-security-policy') ?? '',
          /default-src 'none'; script-src 'self'/,
        );
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(response.headers.get('x-frame-options'), 'DENY');
        assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
        assert.equal(response.headers.get('set-cookie'), null, 'no cookies');
      }
      const page = await (await fetch(server.url)).text();
      assert.doesNotMatch(page, /https?:\/\/(?!www\.w3)/, 'no external assets');
      // fetch() will not send a Host header of its own: a raw request does, as a rebinding page would.
      const rebinding = await new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          new URL('api/status', server.url),
          { headers: { host: 'attacker.example' } },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        );
        request.on('error', reject);
        request.end();
      });
      assert.equal(rebinding, 421, 'a foreign Host header is refused (DNS rebinding)');
    });
  });
}

describe('HTTP API: without a token, and secrets', {
  skip: !TARGETS.some((t) => t.kind === 'sqlite') && 'sqlite is not among LOCKSTEP_TEST_TARGETS',
}, () => {
  it('a server without a token shows, refuses every action with 403, and says why', async () => {
    const db = await TARGETS.find((t) => t.kind === 'sqlite')?.create();
    assert.ok(db);
    const dir = writeDefinitions(db.dir, {
      'a.sql': '-- async:description a\n-- async:operation\nSELECT 1;\n-- async:rollback\n',
    });
    const server = await serve({ url: db.url, asyncDir: dir, port: 0, cwd: db.dir });
    try {
      assert.equal(server.mutations, false);
      const status = await (await fetch(new URL('api/status', server.url))).json();
      assert.equal(status.mutations, false);
      const refused = await fetch(new URL('api/async/a/trigger', server.url), {
        method: 'POST',
        headers: { authorization: 'Bearer anything-at-all-here' },
      });
      assert.equal(refused.status, 403);
      assert.match((await refused.json()).message, /started without a token.*LOCKSTEP_TOKEN/);
    } finally {
      await server.close();
      await db.cleanup();
    }
  });

  it('a password in the URL is in no response', async () => {
    const project = mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
    const dir = writeMigrations(project, { '001_a.sql': '-- migrate:up\nSELECT 1;\n' });
    const server = await serve({
      url: 'postgres://someone:S3cretPW@127.0.0.1:1/db',
      dir,
      port: 0,
      token: TOKEN,
    });
    try {
      for (const path of ['api/status', 'api/migrations', 'api/async']) {
        const response = await fetch(new URL(path, server.url));
        const text = await response.text();
        assert.equal(response.status, 503, `${path}: ${text}`);
        assert.doesNotMatch(text, /S3cretPW/);
        assert.match(text, /someone:\*\*\*@/);
      }
    } finally {
      await server.close();
      rmSync(project, { recursive: true, force: true });
    }
  });
});

describe('lockstep serve: the process', () => {
  it('prints where it listens, answers, says when it is read-only, stops on SIGTERM', async () => {
    const project = mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
    try {
      const server = startCli(
        ['serve', '--port', '0', '--url', `sqlite://${project}/t.db`, '--dir', project],
        {
          cwd: project,
          env: { LOCKSTEP_TOKEN: undefined },
        },
      );
      await server.waitFor(/lockstep status page: \S+\nread-only: no token/);
      const url = /status page: (\S+)/.exec(server.output().stdout)?.[1] as string;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const status = await fetch(new URL('api/status', url));
      assert.equal(status.status, 200);
      assert.equal((await status.json()).mutations, false);
      server.child.kill('SIGTERM');
      const result = await server.done;
      assert.equal(result.code, 0, result.stderr);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('refuses a short token and bad options, with exit 2', async () => {
    const short = await runCli(['serve', '--token', 'short'], { env: { DATABASE_URL: undefined } });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /the token must be at least 16 characters/);
    const bad = await runCli(['serve', '--bogus'], { env: { DATABASE_URL: undefined } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option --bogus/);
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /POST api\/async\/<name>\/trigger/);
  });
});
