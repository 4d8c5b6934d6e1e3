/**
 * Host checks against DNS rebinding, with real requests: `lockstep serve` answers to the listening
 * host, the loopback names and `--allow-host` names — on every interface too — and to any Host only
 * when told (`--allow-any-host`). Plus the connection edge cases: half-closed sockets, oversize
 * headers and bodies, odd targets and methods, bad encodings.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { type RunningServer, type ServeOptions, serve } from '../../src/server/serve.js';
import { writeDefinitions } from '../helpers/async.js';
import { startCli } from '../helpers/process.js';
import { jsonOf, rawRequest } from '../helpers/raw-http.js';
import { runCli } from '../helpers/targets.js';

const TOKEN = 'hosts-token-0123456789abcdef';

let project: string;
let url: string;
let asyncDir: string;

before(() => {
  project = mkdtempSync(path.join(tmpdir(), 'lockstep-test-'));
  url = `sqlite://${project}/hosts.db`;
  asyncDir = writeDefinitions(project, {
    'a.sql': '-- async:description a\n-- async:operation\nSELECT 1;\n-- async:rollback\n',
  });
});
after(() => rmSync(project, { recursive: true, force: true }));

async function withServer(
  options: ServeOptions,
  check: (server: RunningServer, port: number) => Promise<void>,
) {
  const server = await serve({ url, dir: project, asyncDir, port: 0, cwd: project, ...options });
  try {
    await check(server, Number(new URL(server.url).port));
  } finally {
    await server.close();
  }
}

/** The status code of `GET api/status` with this Host header (none: an HTTP/1.0 request without one). */
async function statusWithHost(
  port: number,
  host: string | undefined,
  target = '/api/status',
): Promise<number> {
  const request =
    host === undefined
      ? `GET ${target} HTTP/1.0\r\n\r\n`
      : `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  return (await rawRequest(port, request)).status ?? 0;
}

async function expectHosts(
  port: number,
  allowed: readonly string[],
  refused: readonly (string | undefined)[],
) {
  for (const host of allowed)
    assert.equal(await statusWithHost(port, host), 200, `Host: ${host} is answered`);
  for (const host of refused) assert.equal(await statusWithHost(port, host), 421, `Host: ${host} is refused`);
}

describe('Host rules (DNS rebinding)', () => {
  it('on 127.0.0.1: the listening host and the loopback names, at any port, in any case; nothing else', async () => {
    await withServer({}, async (_server, port) => {
      await expectHosts(
        port,
        [
          `127.0.0.1:${port}`,
          `localhost:${port}`,
          `LocalHost:${port}`,
          `[::1]:${port}`,
          '127.0.0.1',
          'localhost:1',
        ],
        [
          `attacker.example:${port}`,
          'attacker.example',
          `localhost.attacker.example:${port}`,
          `127.0.0.1.nip.io:${port}`,
          '',
          undefined,
          `127.0.0.1:${port}@attacker.example`,
        ],
      );
      const refused = await rawRequest(
        port,
        `GET /api/status HTTP/1.1\r\nHost: attacker.example:${port}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(
        String(jsonOf(refused).message),
        /answers to 127\.0\.0\.1, localhost, \[::1\], not "attacker\.example:\d+"/,
      );
      assert.equal(await statusWithHost(port, 'attacker.example', '/'), 421, 'the page too');
      const twice = `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: attacker.example\r\nConnection: close\r\n\r\n`;
      assert.equal((await rawRequest(port, twice)).status, 400, 'two Host headers');
    });
  });

  it('on 0.0.0.0: the same rule — loopback names, the listening host and --allow-host names only', async () => {
    await withServer(
      { host: '0.0.0.0', allowHosts: ['status.example.com', 'proxy.internal:8080'] },
      async (_s, port) => {
        await expectHosts(
          port,
          [
            `127.0.0.1:${port}`,
            `localhost:${port}`,
            `0.0.0.0:${port}`,
            'status.example.com',
            'STATUS.example.com:443',
            'proxy.internal:8080',
          ],
          ['attacker.example', `attacker.example:${port}`, 'proxy.internal', 'proxy.internal:9', undefined],
        );
      },
    );
  });

  it('--allow-host on a loopback listener adds names; a malformed one is a configuration error', async () => {
    await withServer({ allowHosts: ['status.example.com'] }, async (_s, port) => {
      await expectHosts(port, ['status.example.com', `127.0.0.1:${port}`], ['other.example.com']);
    });
    for (const bad of ['http://status.example.com', 'a b', 'status.example.com/x', '', 'a:99999']) {
      await assert.rejects(serve({ url, port: 0, allowHosts: [bad] }), ConfigError, bad);
    }
  });

  it('allowAnyHost answers any Host, or none', async () => {
    await withServer({ allowAnyHost: true }, async (_s, port) => {
      await expectHosts(port, ['attacker.example', '', `127.0.0.1:${port}`], []);
      assert.equal(await statusWithHost(port, undefined), 200);
    });
  });

  it('lockstep serve --host 0.0.0.0: --allow-host, --allow-any-host, a bad --allow-host exits 2', async () => {
    const start = async (flags: string[]) => {
      const server = startCli(
        ['serve', '--port', '0', '--host', '0.0.0.0', '--url', url, '--dir', project, ...flags],
        {
          cwd: project,
          env: { LOCKSTEP_TOKEN: undefined },
        },
      );
      await server.waitFor(/status page: http:\/\/0\.0\.0\.0:\d+\//);
      return { server, port: Number(/0\.0\.0\.0:(\d+)/.exec(server.output().stdout)?.[1]) };
    };
    const named = await start(['--allow-host', 'public.example']);
    try {
      await expectHosts(
        named.port,
        ['public.example', `public.example:${named.port}`, `localhost:${named.port}`],
        ['attacker.example'],
      );
    } finally {
      named.server.child.kill('SIGTERM');
      assert.equal((await named.server.done).code, 0);
    }
    const any = await start(['--allow-any-host']);
    try {
      await expectHosts(any.port, ['attacker.example', `127.0.0.1:${any.port}`], []);
    } finally {
      any.server.child.kill('SIGTERM');
      assert.equal((await any.server.done).code, 0);
    }
    const bad = await runCli(['serve', '--port', '0', '--url', url, '--allow-host', 'http://public.example']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /--allow-host "http:\/\/public\.example" is not a host name: give a name or name:port/,
    );
    const help = await runCli(['serve', '--help']);
    assert.match(help.stdout, /--allow-any-host/);
    assert.match(help.stdout, /on\s+every interface too/);
  });
});

describe('connections: odd requests are answered or closed, others are not affected', () => {
  let server: RunningServer;
  let port: number;
  const host = () => `Host: 127.0.0.1:${port}`;
  const stillAnswers = async () => assert.equal(await statusWithHost(port, `127.0.0.1:${port}`), 200);

  // The handler logs internal errors (500s) to stderr: none of these requests may cause one.
  const logged: string[] = [];
  const write = process.stderr.write.bind(process.stderr);

  before(async () => {
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      if (String(chunk).startsWith('lockstep serve:')) logged.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof process.stderr.write;
    server = await serve({ url, dir: project, asyncDir, port: 0, cwd: project, token: TOKEN });
    port = Number(new URL(server.url).port);
  });
  after(async () => {
    process.stderr.write = write;
    await server.close();
    assert.deepEqual(logged, [], 'no internal error');
  });

  it('targets: origin-form with //, absolute-form, asterisk, authority-form; bad escapes and bytes', async () => {
    const cases: [string, number | undefined][] = [
      ['GET //[ HTTP/1.1', 404],
      ['GET // HTTP/1.1', 404],
      [`GET http://127.0.0.1:${port}/api/status HTTP/1.1`, 200],
      ['GET http://[/api/status HTTP/1.1', 421],
      ['GET http://attacker.example/api/status?x HTTP/1.1', 421], // its authority replaces the Host header
      ['OPTIONS * HTTP/1.1', 400],
      ['GET example.com:443 HTTP/1.1', 400],
      ['CONNECT example.com:443 HTTP/1.1', undefined], // no proxy here: the connection is closed
      ['GET /api/async/%zz HTTP/1.1', 400],
      ['GET /api/async/%c0%af HTTP/1.1', 400], // overlong UTF-8
      ['GET /api/async/%ed%a0%80 HTTP/1.1', 400], // a lone surrogate
      ['GET /api/async/a%00 HTTP/1.1', 400],
      ['GET /api/async/__proto__ HTTP/1.1', 400], // not a name
      ['GET /api/async/constructor HTTP/1.1', 404],
      ['GET /api/async/a/constructor HTTP/1.1', 404],
      ['GET /api/async/a/../../status HTTP/1.1', 404],
      ['GET /api/async/../status HTTP/1.1', 400],
      ['GET /api/\u00c0\u00af HTTP/1.1', 400], // raw non-ASCII: the parser refuses it
      ['GET /api/status\u0000 HTTP/1.1', 400],
      ['PROPFIND /api/status HTTP/1.1', 405],
      ['BREW /api/status HTTP/1.1', 400],
    ];
    for (const [line, status] of cases) {
      const answer = await rawRequest(
        port,
        Buffer.from(`${line}\r\n${host()}\r\nConnection: close\r\n\r\n`, 'latin1'),
      );
      assert.equal(answer.status, status, `${line}: ${answer.text.slice(0, 200)}`);
    }
    await stillAnswers();
  });

  it('a long target, name, action, Host or field is clipped in the message, not echoed whole', async () => {
    // Echoed whole, 16 KB of letters costs the secret redaction of the answer a second of CPU.
    const long = 'a'.repeat(12_000);
    const body = `{"${long}":1}`;
    const requests = [
      `GET /${long} HTTP/1.1\r\n${host()}`,
      `GET /api/async/${long}- HTTP/1.1\r\n${host()}`,
      `POST /api/async/a/${long} HTTP/1.1\r\n${host()}`,
      `GET /api/status HTTP/1.1\r\nHost: ${long}`,
      `POST /api/async/a/trigger HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ];
    for (const request of requests) {
      const text = request.includes('\r\n\r\n') ? request : `${request}\r\nConnection: close\r\n\r\n`;
      const answer = await rawRequest(port, text);
      const message = String(jsonOf(answer).message);
      assert.ok(answer.status && answer.status >= 400 && answer.status < 500, `${answer.status} ${message}`);
      assert.ok(message.length < 300, `${answer.status}: a message of ${message.length} characters`);
      assert.match(message, /a…/);
    }
  });

  it('half-closed sockets, mid-request or after a whole one', async () => {
    for (const text of [
      'GET /api/sta',
      `GET /api/status HTTP/1.1\r\n${host()}\r\n`,
      `GET /api/status HTTP/1.1\r\n${host()}\r\n\r\n`,
    ]) {
      const answer = await rawRequest(port, text, { quietMs: 0 });
      assert.ok(answer.status === undefined || answer.status === 400 || answer.status === 200, text);
    }
    const body = `POST /api/async/a/stop HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"fo`;
    assert.notEqual((await rawRequest(port, body, { quietMs: 200 })).status, 200, 'a body cut short');
    await stillAnswers();
  });

  it('oversize headers get 431, oversize bodies 413 (chunked too), the answer arrives', async () => {
    const big = await rawRequest(
      port,
      `GET /api/status HTTP/1.1\r\n${host()}\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
    );
    assert.equal(big.status, 431);
    const post = (headers: string, body: string) =>
      rawRequest(
        port,
        `POST /api/async/a/trigger HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n${headers}\r\n${body}`,
      );
    const declared = await post('Content-Length: 20000\r\n', 'x'.repeat(20_000));
    assert.equal(declared.status, 413, declared.text.slice(0, 200));
    const chunk = `{"parameters":{"a":"${'z'.repeat(20_000)}"}}`;
    const chunked = await post(
      'Transfer-Encoding: chunked\r\n',
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.equal(chunked.status, 413, chunked.text.slice(0, 200));
    assert.match(String(jsonOf(chunked).message), /larger than 16384 bytes/);
    await stillAnswers();
  });

  it('bodies: bad UTF-8, NUL, deep nesting, a BOM, inherited names as fields are 400s', async () => {
    const post = (body: Buffer) =>
      rawRequest(
        port,
        Buffer.concat([
          Buffer.from(
            `POST /api/async/a/trigger HTTP/1.1\r\n${host()}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
          ),
          body,
        ]),
      );
    const bodies = [
      Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]), // { overlong / }
      Buffer.from('{"queue":tr\u0000ue}'),
      Buffer.from(`${'['.repeat(8000)}${']'.repeat(8000)}`),
      Buffer.from(`{"parameters":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}`),
      Buffer.from('\ufeff{"queue":true,"x":1}'),
      Buffer.from('{"hasOwnProperty":true}'),
      Buffer.from('{"__proto__":{"queue":true}}'),
      Buffer.from('{"parameters":{"a":1},"constructor":{"prototype":{}}}'),
    ];
    for (const body of bodies) {
      const answer = await post(body);
      assert.equal(answer.status, 400, `${body.toString('latin1').slice(0, 40)}: ${answer.text.slice(-200)}`);
    }
    await stillAnswers();
  });
});
