/**
 * No request can take the server down (SPEC 12): thousands of generated request lines, headers
 * and bodies over raw TCP — odd paths, authorities, encodings, methods, lengths — against a real
 * `lockstep serve` process and against `createStatusHandler` mounted in a plain node:http server
 * (with and without a `next`), while slow clients trickle their headers. Every request is answered
 * (never with a 500) or closed, and afterwards each process is alive and `GET api/status` is 200.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { writeDefinitions } from '../helpers/async.js';
import { startCli } from '../helpers/process.js';
import { jsonOf, type RawAnswer, rawRequest, show } from '../helpers/raw-http.js';
import { ROOT, writeMigrations } from '../helpers/targets.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const SEED = Number(process.env.LOCKSTEP_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.LOCKSTEP_FUZZ_RUNS ?? 1500);
const CONCURRENCY = 8;
/** Replaced by the server's own `127.0.0.1:<port>` when sent, so that many requests get past the Host check. */
const HOST = '\u0001HOST\u0001';

// Everything is built as latin1 text: one character, one byte, so any byte can be sent.
const byte = fc.integer({ min: 0, max: 255 }).map((n) => String.fromCharCode(n));
const anyBytes = (maxLength: number) => fc.string({ unit: byte, maxLength });
const ENCODED = ['%zz', '%', '%2', '%2f', '%2F', '%00', '%c0%af', '%ed%a0%80', '%ff', '%e2%82', '%25'];
/** Raw bytes in a target: non-ASCII (an overlong UTF-8 among them), NUL, tab, and what some parsers treat specially. */
const RAW = ['\u00c0\u00af', '\u00ff\u00fe', '\u00e9', '\u0000', '\t', '~', '\\'];

/** Path segments a parser lets through, tricky for the handler: %-escapes, dot segments, names of Object.prototype. */
const cleanSegment = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom('api', 'status', 'async', 'migrations', 'a', 'nosuch', 'lockstep'),
  },
  { weight: 3, arbitrary: fc.constantFrom('trigger', 'stop', 'resume', 'rollback', 'app.js', 'app.css', '') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...ENCODED, 'constructor', '__proto__', '..', '.', '[', ']', '@', ':'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => 'x'.repeat(n)) },
);
const segment = fc.oneof(
  { weight: 8, arbitrary: cleanSegment },
  { weight: 1, arbitrary: fc.constantFrom(...RAW) },
  { weight: 1, arbitrary: anyBytes(12) },
);
const cleanPath = fc.array(cleanSegment, { maxLength: 6 }).map((s) => `/${s.join('/')}`);
const pathArb = fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`);
const cleanQuery = fc
  .tuple(fc.constantFrom('', '?', '#', '?a=%zz&', '??'), fc.string({ maxLength: 8 }))
  .map(([mark, rest]) => (mark ? mark + rest : ''));
const query = fc
  .oneof(
    { weight: 4, arbitrary: fc.constant('') },
    {
      weight: 3,
      arbitrary: fc.tuple(fc.constantFrom('?', '#', '?a=%zz&', '??'), fc.string({ maxLength: 8 })),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('?', '#'), anyBytes(8)) },
  )
  .map((q) => (typeof q === 'string' ? q : q.join('')));
const authority = fc.constantFrom(
  '127.0.0.1',
  'localhost:1',
  '[::1]',
  '[',
  '[::1',
  'a@b',
  'u:p@h',
  'evil.example',
  '',
);
/** The handler's own routes, with odd names and actions in them. */
const route = fc.oneof(
  fc.constantFrom('/', '', '/api/status', '/api/migrations', '/api/async', '/app.js', '/favicon.ico'),
  fc
    .tuple(
      fc.constantFrom('a', 'a', 'nosuch', ...ENCODED, 'constructor', '__proto__', '..', ''),
      cleanSegment,
    )
    .map(([name, action]) => `/api/async/${name}/${action}`),
  fc.constantFrom('trigger', 'stop', 'resume', 'rollback').map((action) => `/api/async/a/${action}`),
);
const cleanTarget = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(fc.constantFrom('', '/lockstep'), route, cleanQuery).map((t) => t.join('')),
  },
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.constantFrom('', '/lockstep', '/lockstep/'), cleanPath, cleanQuery)
      .map((t) => t.join('')),
  },
  { weight: 1, arbitrary: cleanPath.map((p) => `/${p}`) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('http://127.0.0.1', 'http://x:1', 'HTTP://[::1]'), cleanPath)
      .map((t) => t.join('')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('*', '//[', '//', 'a:443', '/lockstep', '/lockstep/api/status', '/api/status'),
  },
);
const target = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom('', '/lockstep', '/lockstep/'), pathArb, query)
      .map((t) => t.join('')),
  },
  { weight: 2, arbitrary: pathArb.map((p) => `/${p}`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('http://', 'HTTP://', 'https://', 'ftp://', '//', 'http:'), authority, pathArb)
      .map((t) => t.join('')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '*',
      '//[',
      '//',
      '[::1]:80',
      'a:443',
      '',
      '?',
      '#',
      '%',
      'http://[',
      '/\u0000',
      '/ /',
    ),
  },
  { weight: 1, arbitrary: anyBytes(30) },
);
const method = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('GET', 'POST') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'HEAD',
      'PUT',
      'DELETE',
      'OPTIONS',
      'CONNECT',
      'TRACE',
      'PATCH',
      'PROPFIND',
      'M-SEARCH',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom('get', 'G ET', 'FOO', '', 'POST\u0000', 'GET\t') },
);
const cleanMethod = fc.constantFrom(
  'GET',
  'GET',
  'POST',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
);
const version = fc.oneof(
  { weight: 10, arbitrary: fc.constant('HTTP/1.1') },
  {
    weight: 1,
    arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', '', 'HTTP/1.1 x', 'HTTP/9'),
  },
);
type Header = readonly [string, string];
const hostHeader = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Header[]>([['Host', HOST]]) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(
        'localhost',
        'LOCALHOST:9',
        '[::1]',
        'evil.example',
        '',
        '[',
        'a:b:c',
        '127.0.0.1:99999',
        '\u00e9',
      )
      .map((h): Header[] => [['Host', h]]),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Header[]>(
      [],
      [
        ['Host', HOST],
        ['Host', 'evil.example'],
      ],
    ),
  },
);
const cleanHeader = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Header>(
      ['Content-Type', 'application/json'],
      ['Content-Type', 'application/json; charset=latin1'],
      ['Content-Type', 'text/plain'],
      ['Authorization', `Bearer ${TOKEN}`],
      ['Authorization', `bearer   ${TOKEN}  `],
      ['Authorization', 'Bearer'],
      ['Authorization', 'Bearer wrong-token-0123456789'],
      ['Authorization', 'Basic Zm9vOmJhcg=='],
      ['Expect', '100-continue'],
      ['Connection', 'upgrade'],
      ['Upgrade', 'websocket'],
      ['Upgrade', 'h2c'],
      ['Connection', 'close'],
      ['Accept-Encoding', 'gzip'],
      ['X-Forwarded-Host', 'evil.example'],
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,9}$/), fc.string({ maxLength: 20 })),
  },
);
const header = fc.oneof(
  { weight: 10, arbitrary: cleanHeader },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Header>(
      ['Content-Length', '-1'],
      ['Content-Length', 'abc'],
      ['Content-Length', '99999999999999999999'],
      ['Content-Length', '1, 2'],
      ['Transfer-Encoding', 'chunked'],
      ['Transfer-Encoding', 'gzip, chunked'],
      ['Content-Type', 'application/json; charset=\u00ff'],
      ['Authorization', `Bearer ${TOKEN}\u00ff`],
      ['X-Long', 'y'.repeat(20_000)],
    ),
  },
  { weight: 1, arbitrary: fc.tuple(anyBytes(10), anyBytes(20)) },
);
const body = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '{}',
      '{"queue":true}',
      '{"force":true}',
      '{"constructor":true}',
      '{"__proto__":{"queue":true}}',
      '{"toString":1}',
      '{"parameters":{"__proto__":1}}',
      '{"parameters":{"constructor":{}}}',
      '[]',
      'null',
      '{',
      '\u00ef\u00bb\u00bf{}',
      '{"a":"\u00c0\u00af"}',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
      `{"parameters":${'['.repeat(5000)}`,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 40_000 }).map((n) => `{"a":"${'z'.repeat(n)}"}`) },
  { weight: 2, arbitrary: anyBytes(64) },
);

type Parts = {
  method: string;
  target: string;
  version: string;
  host: readonly Header[];
  headers: readonly Header[];
  body: string;
  length: 'right' | 'none' | 'short' | 'long';
  eol: string;
};

/** Requests the parser accepts, to exercise the handler: odd targets, Hosts, headers, bodies. */
const clean: fc.Arbitrary<Parts> = fc.record({
  method: cleanMethod,
  target: cleanTarget,
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
  host: hostHeader,
  headers: fc.array(cleanHeader, { maxLength: 3 }),
  body,
  length: fc.constant('right' as const),
  eol: fc.constant('\r\n'),
});

/** Anything goes, each part a little more often wrong: for the parser and the connection handling. */
const wild: fc.Arbitrary<Parts> = fc.record({
  method,
  target,
  version,
  host: hostHeader,
  headers: fc.array(header, { maxLength: 3 }),
  body,
  length: fc.oneof(
    { weight: 4, arbitrary: fc.constant('right' as const) },
    { weight: 1, arbitrary: fc.constantFrom('none' as const, 'short' as const, 'long' as const) },
  ),
  eol: fc.oneof(
    { weight: 6, arbitrary: fc.constant('\r\n') },
    { weight: 1, arbitrary: fc.constantFrom('\n', '\r') },
  ),
});

/** An authorised action with a generated body: for the body reader and the field checks. */
const action: fc.Arbitrary<Parts> = fc.record({
  method: fc.constant('POST'),
  target: fc
    .tuple(fc.constantFrom('', '/lockstep'), fc.constantFrom('trigger', 'stop', 'resume', 'rollback'))
    .map(([base, a]) => `${base}/api/async/a/${a}`),
  version: fc.constant('HTTP/1.1'),
  host: fc.constant<Header[]>([['Host', HOST]]),
  headers: fc
    .array(cleanHeader, { maxLength: 1 })
    .map((more): Header[] => [
      ['Authorization', `Bearer ${TOKEN}`],
      ['Content-Type', 'application/json'],
      ...more,
    ]),
  body: fc.oneof(
    body,
    fc.json(),
    fc
      .dictionary(
        fc.constantFrom('parameters', 'queue', 'force', 'constructor', '__proto__', 'x'),
        fc.jsonValue(),
      )
      .map((o) => JSON.stringify(o)),
  ),
  length: fc.constant('right' as const),
  eol: fc.constant('\r\n'),
});

/** One request as bytes. */
const request = fc
  .oneof({ weight: 3, arbitrary: clean }, { weight: 1, arbitrary: action }, { weight: 2, arbitrary: wild })
  .map((r) => {
    const lengths = {
      right: r.body.length,
      none: undefined,
      short: Math.max(0, r.body.length - 3),
      long: r.body.length + 7,
    };
    const length = lengths[r.length];
    const headers = [
      ...r.host,
      ...r.headers,
      ...(length === undefined ? [] : [['Content-Length', String(length)] as const]),
    ];
    const head = [
      `${r.method} ${r.target} ${r.version}`.replace(/ $/, ''),
      ...headers.map(([n, v]) => `${n}: ${v}`),
    ];
    return `${head.join(r.eol)}${r.eol}${r.eol}${r.body}`;
  });

interface Server {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly statusPath: string;
  output(): string;
}

/** Sends every request, `CONCURRENCY` at a time; returns how many got each status. */
async function fire(server: Server, requests: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const bad: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const text = (requests[next++] as string).replaceAll(HOST, `127.0.0.1:${server.port}`);
      const bytes = Buffer.from(text, 'latin1');
      const answer: RawAnswer = await rawRequest(server.port, bytes);
      const key = answer.status === undefined ? 'closed' : String(answer.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (answer.status !== undefined && answer.status >= 500 && answer.status !== 503)
        bad.push(`${answer.status} for ${show(bytes)}: ${answer.text.slice(-300)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.deepEqual(bad, [], `${server.name}: server errors`);
  return counts;
}

/** Opens a connection that sends one header byte every 300 ms, for ever. */
function slowloris(port: number): { socket: Socket; closed: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const text = `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: ${'a'.repeat(1000)}`;
  let i = 0;
  const timer = setInterval(() => socket.write(text[i++ % text.length] as string), 300);
  let received = '';
  socket.on('data', (d) => {
    received += d;
  });
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve(received);
    }),
  );
  return { socket, closed };
}

async function statusOf(server: Server): Promise<number> {
  const answer = await rawRequest(
    server.port,
    `GET ${server.statusPath} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n\r\n`,
  );
  return answer.status ?? 0;
}

/** A plain node:http server with the handler mounted at /lockstep: one with `next`, one without. */
const MOUNTED = (library: string) => `
import { createServer } from 'node:http';
import { createStatusHandler } from ${JSON.stringify(library)};
const options = { url: process.env.URL, dir: process.env.DIR, asyncDir: process.env.ASYNC_DIR, token: process.env.TOKEN, basePath: '/lockstep' };
const withNext = createStatusHandler(options);
const bare = createStatusHandler(options);
const app = createServer((req, res) => withNext(req, res, () => res.end('the app')));
const alone = createServer((req, res) => bare(req, res));
app.listen(0, '127.0.0.1', () => alone.listen(0, '127.0.0.1', () =>
  console.log('listening', app.address().port, alone.address().port)));
`;

function startNode(
  script: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  return { child, output: () => output };
}

describe('no request can take the server down', () => {
  let project: string;
  const servers: Server[] = [];

  before(async () => {
    project = mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
    const url = `sqlite://${project}/fuzz.db`;
    const dir = writeMigrations(project, { '001_a.sql': '-- migrate:up\nCREATE TABLE a (id integer);\n' });
    const asyncDir = writeDefinitions(project, {
      'a.sql': '-- async:description a\n-- async:operation\nSELECT 1;\n-- async:rollback\n',
    });
    const serve = startCli(['serve', '--port', '0', '--url', url, '--dir', dir, '--async-dir', asyncDir], {
      cwd: project,
      env: { LOCKSTEP_TOKEN: TOKEN },
    });
    await serve.waitFor(/status page: http:\/\/127\.0\.0\.1:(\d+)\//);
    const port = Number(/status page: http:\/\/127\.0\.0\.1:(\d+)\//.exec(serve.output().stdout)?.[1]);
    const both = () => `${serve.output().stdout}${serve.output().stderr}`;
    servers.push({
      name: 'lockstep serve',
      port,
      child: serve.child,
      statusPath: '/api/status',
      output: both,
    });

    const script = path.join(project, 'mounted.mjs');
    writeFileSync(script, MOUNTED(pathToFileURL(path.join(ROOT, 'dist/server/index.js')).href));
    // Its own database: the two processes never write one SQLite file at once.
    const mounted = startNode(script, {
      URL: `sqlite://${project}/mounted.db`,
      DIR: dir,
      ASYNC_DIR: asyncDir,
      TOKEN,
    });
    const deadline = Date.now() + 20_000;
    while (!/listening \d+ \d+/.test(mounted.output()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const [, app, alone] = /listening (\d+) (\d+)/.exec(mounted.output()) ?? [];
    assert.ok(app && alone, `the mounted server did not start: ${mounted.output()}`);
    for (const [name, p] of [
      ['mounted, with next', app],
      ['mounted, without next', alone],
    ] as const) {
      servers.push({
        name,
        port: Number(p),
        child: mounted.child,
        statusPath: '/lockstep/api/status',
        output: mounted.output,
      });
    }
  });

  after(() => {
    for (const s of servers) s.child.kill('SIGKILL');
    rmSync(project, { recursive: true, force: true });
  });

  it('the reported request: GET //[ (and outside the basePath, where next is called)', async () => {
    for (const server of servers) {
      const answer = await rawRequest(
        server.port,
        `GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`,
      );
      const expected = server.name === 'mounted, with next' ? 200 : 404;
      assert.equal(answer.status, expected, `${server.name}: ${answer.text}`);
      assert.equal(await statusOf(server), 200, `${server.name} still answers`);
    }
    const app = servers.find((s) => s.name === 'mounted, with next') as Server;
    assert.match((await rawRequest(app.port, `GET //[ HTTP/1.1\r\nHost: x\r\n\r\n`)).text, /the app$/);
  });

  it('thousands of generated requests: each answered (no 500) or closed, the processes stay up', async (t) => {
    const started = Date.now();
    // Slow clients trickle headers during the whole run: cut off by the headers timeout, not wedging anything.
    const slow = Array.from({ length: 20 }, () => slowloris(servers[0]?.port as number));
    const requests = fc.sample(request, { numRuns: RUNS, seed: SEED });
    for (const server of servers) {
      const sent = server.name === 'lockstep serve' ? requests : requests.slice(0, RUNS / 2);
      const counts = await fire(server, sent);
      t.diagnostic(
        `${server.name}: ${sent.length} requests, answers ${JSON.stringify(Object.fromEntries(counts))}, ${Date.now() - started} ms so far (seed ${SEED})`,
      );
      assert.equal(server.child.exitCode, null, `${server.name} exited: ${server.output()}`);
      assert.equal(await statusOf(server), 200, `${server.name} still answers`);
    }
    const cutOff = await Promise.race([
      Promise.all(slow.map((s) => s.closed)),
      new Promise<undefined>((r) => setTimeout(r, Math.max(0, 15_000 - (Date.now() - started)))),
    ]);
    for (const s of slow) s.socket.destroy();
    assert.ok(cutOff, 'a client trickling its headers is cut off by the headers timeout');
    assert.ok(
      cutOff.every((r) => r === '' || r.startsWith('HTTP/1.1 408')),
      `a cut-off slow client gets 408 or a close: ${cutOff.join(' | ')}`,
    );
    for (const server of servers) {
      assert.doesNotMatch(server.output(), /\n\s+at |Uncaught|unhandled/i, `${server.name} logged a crash`);
    }
  });

  it('body fields are own properties only: constructor, __proto__, toString, hasOwnProperty are unknown', async () => {
    for (const server of servers.slice(0, 2)) {
      const base = server.statusPath.replace(/status$/, '');
      for (const field of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
        const body = `{${JSON.stringify(field)}: true}`;
        const answer = await rawRequest(
          server.port,
          `POST ${base}async/a/trigger HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
        assert.equal(answer.status, 400, `${server.name} ${field}: ${answer.text}`);
        assert.equal(jsonOf(answer).message, `trigger takes only parameters, queue, not "${field}"`);
      }
    }
  });
});
