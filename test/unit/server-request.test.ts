/** What the HTTP handler reads from a request: target path, Host, body fields. Pure, never throws. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bodyProblem,
  type FieldKind,
  hostAllowed,
  isUnder,
  parseHost,
  requestHost,
  requestPath,
} from '../../src/server/request.js';

const RUNS = { numRuns: 2000, seed: 1 };
/** Strings made of the characters that break parsers, and any other. */
const nasty = fc.oneof(
  fc.string({
    unit: fc.constantFrom('/', '[', ']', '%', '@', ':', '?', '#', '\\', '.', 'z', '\0', 'é', ' '),
  }),
  fc.string({ unit: 'binary' }),
);

describe('requestPath', () => {
  it('takes the path of origin-form and absolute-form targets, as sent', () => {
    const cases: [string, string | undefined][] = [
      ['/', '/'],
      ['/api/status?x=1#y', '/api/status'],
      ['//[', '//['],
      ['//evil.example/api/status', '//evil.example/api/status'],
      ['/a/../b', '/a/../b'],
      ['/api/async/%zz', '/api/async/%zz'],
      ['http://host:80/api/status?q', '/api/status'],
      ['HTTP://[::1]', '/'],
      ['http://[/x', '/x'],
      ['https://a?b', '/'],
      ['*', undefined],
      ['example.com:443', undefined],
      ['', undefined],
      ['ftp://host/x', undefined],
      ['api/status', undefined],
    ];
    for (const [target, path] of cases) assert.equal(requestPath(target), path, target);
  });

  it('never throws, and a path always starts with /', () => {
    fc.assert(
      fc.property(nasty, (target) => {
        const path = requestPath(target);
        assert.ok(path === undefined || path.startsWith('/'));
      }),
      RUNS,
    );
  });

  it('requestHost: an absolute-form target names the host, else the Host header does', () => {
    assert.equal(requestHost('/api/status', 'localhost:4600'), 'localhost:4600');
    assert.equal(requestHost('/api/status', undefined), undefined);
    assert.equal(requestHost('http://attacker.example/api/status', 'localhost:4600'), 'attacker.example');
    assert.equal(requestHost('HTTP://[::1]:80?x', undefined), '[::1]:80');
    assert.equal(requestHost('//attacker.example/x', 'localhost'), 'localhost');
  });

  it('isUnder: the base itself and below it, not a longer name', () => {
    assert.ok(isUnder('/lockstep', '/lockstep'));
    assert.ok(isUnder('/lockstep/api/status', '/lockstep'));
    assert.ok(!isUnder('/lockstepx', '/lockstep'));
    assert.ok(!isUnder('//lockstep', '/lockstep'));
    assert.ok(isUnder('/anything', ''));
  });
});

describe('Host', () => {
  const allowed = ['127.0.0.1', 'localhost', '[::1]', 'status.example.com', 'proxy.internal:8080'].map(
    (h) => parseHost(h) as NonNullable<ReturnType<typeof parseHost>>,
  );

  it('parses names, IPv4, [IPv6], with or without a port; refuses anything else', () => {
    assert.deepEqual(parseHost('LocalHost:4600'), { name: 'localhost', port: 4600 });
    assert.deepEqual(parseHost('[::1]'), { name: '[::1]', port: undefined });
    assert.deepEqual(parseHost('10.0.0.1:80'), { name: '10.0.0.1', port: 80 });
    for (const bad of ['', ':80', 'a b', 'a:b:c', '::1', '[', 'a:99999', 'http://a', 'a/b', 'a@b', 'a:']) {
      assert.equal(parseHost(bad), undefined, bad);
    }
  });

  it('allows the names at any port, a name:port at that port only, case-insensitively', () => {
    for (const ok of [
      '127.0.0.1:4600',
      'LOCALHOST:1',
      '[::1]:4600',
      'status.example.com',
      'proxy.internal:8080',
    ]) {
      assert.ok(hostAllowed(ok, allowed), ok);
    }
    for (const no of [
      undefined,
      '',
      'attacker.example:4600',
      'localhost.attacker.example',
      '127.0.0.1.nip.io',
      'proxy.internal',
      'proxy.internal:8081',
      '127.0.0.1:4600, evil',
    ]) {
      assert.ok(!hostAllowed(no, allowed), String(no));
    }
  });

  it('never throws, and allows only what it was given', () => {
    fc.assert(
      fc.property(nasty, (header) => {
        const host = parseHost(header);
        if (hostAllowed(header, allowed)) assert.ok(host && allowed.some((a) => a.name === host.name));
      }),
      RUNS,
    );
  });
});

describe('bodyProblem: fields are own properties only', () => {
  const FIELDS: Record<string, FieldKind> = { parameters: 'parameters', queue: 'boolean' };
  const INHERITED = Object.getOwnPropertyNames(Object.prototype);

  it('a name Object.prototype has is an unknown field, like any other', () => {
    assert.ok(INHERITED.includes('__proto__') && INHERITED.includes('hasOwnProperty'));
    for (const key of INHERITED) {
      // JSON.parse makes "__proto__" an own property, as a client's body would.
      const body = JSON.parse(`{${JSON.stringify(key)}: true}`);
      assert.equal(
        bodyProblem('trigger', FIELDS, body),
        `trigger takes only parameters, queue, not ${JSON.stringify(key)}`,
        key,
      );
      assert.match(bodyProblem('resume', {}, body) ?? '', /^resume takes no fields, not /, key);
    }
  });

  it('any key that is not an own field is refused; known fields of the right type pass', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(fc.string(), fc.constantFrom(...INHERITED)), fc.jsonValue()),
        (object) => {
          const body = JSON.parse(JSON.stringify(object));
          const unknown = Object.keys(body).some((k) => !Object.hasOwn(FIELDS, k));
          const problem = bodyProblem('trigger', FIELDS, body);
          if (unknown) assert.match(problem ?? '', /^trigger takes only parameters, queue, not /);
        },
      ),
      RUNS,
    );
    assert.equal(
      bodyProblem('trigger', FIELDS, { queue: true, parameters: { n: 1, s: 'x', b: true } }),
      undefined,
    );
    assert.equal(bodyProblem('trigger', FIELDS, {}), undefined);
  });

  it('types and shapes are checked', () => {
    assert.equal(bodyProblem('trigger', FIELDS, { queue: 'yes' }), '"queue" must be true or false');
    for (const parameters of [null, [], 'x', { n: null }, { n: {} }, { n: Number.NaN }]) {
      assert.equal(
        bodyProblem('trigger', FIELDS, { parameters }),
        '"parameters" must be an object of names to strings, numbers or booleans',
      );
    }
    for (const body of [null, [], 'x', 1, true]) {
      assert.equal(bodyProblem('trigger', FIELDS, body), 'the body must be a JSON object');
    }
  });
});
