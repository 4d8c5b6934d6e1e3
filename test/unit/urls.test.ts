/** URLs as dbmate and libpq read them: the splitting, PostgreSQL's and MySQL's parameters, sslmode's attempts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseMysqlUrl } from '../../src/drivers/mysql/url.js';
import { tlsAttempts } from '../../src/drivers/postgres/tls.js';
import { parsePostgresUrl, runtimeOption, searchPathSchemas } from '../../src/drivers/postgres/url.js';
import { splitUrl } from '../../src/drivers/url-parts.js';
import { ConfigError } from '../../src/errors.js';

const refused = (message: RegExp) => (error: unknown) =>
  error instanceof ConfigError && message.test(error.message);

describe('splitUrl', () => {
  const text = fc.string({
    minLength: 1,
    maxLength: 12,
    unit: fc.constantFrom('a', 'Z', '9', '@', ':', '/', '?', '#', '%', ' ', 'é', '&', '='),
  });
  it('gives back every part as written, whatever it holds, once percent-encoded', () => {
    fc.assert(
      fc.property(
        text,
        fc.option(text),
        fc.constantFrom('', 'db.example', '127.0.0.1', '[::1]'),
        fc.option(fc.integer({ min: 1, max: 65535 })),
        text,
        fc.array(fc.tuple(text, text), { maxLength: 3 }),
        (user, password, host, port, database, params) => {
          const userinfo = `${encodeURIComponent(user)}${password === null ? '' : `:${encodeURIComponent(password)}`}@`;
          const query = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
          const url = `postgres://${userinfo}${host}${port === null ? '' : `:${port}`}/${encodeURIComponent(database)}${query ? `?${query}` : ''}`;
          const parts = splitUrl(url);
          assert.ok(parts, url);
          assert.equal(parts.user, user);
          assert.equal(parts.password, password ?? undefined);
          assert.equal(parts.host, host.replace(/^\[(.*)\]$/, '$1'));
          assert.equal(parts.port, port === null ? '' : String(port));
          assert.equal(parts.path, database);
          assert.deepEqual(parts.params, params);
        },
      ),
    );
  });
  it('takes an empty host after user information (dbmate socket URLs), which WHATWG URL refuses', () => {
    assert.throws(() => new URL('mysql://user@/db?socket=/run/mysqld/mysqld.sock'));
    assert.deepEqual(splitUrl('mysql://user@/db?socket=/run/mysqld/mysqld.sock'), {
      scheme: 'mysql',
      user: 'user',
      host: '',
      port: '',
      path: 'db',
      params: [['socket', '/run/mysqld/mysqld.sock']],
    });
  });
});

describe('PostgreSQL URL', () => {
  const parse = (url: string, env: Record<string, string> = {}) => parsePostgresUrl(url, env, 'linux');

  it('reads host, port, user, password, database', () => {
    const t = parse('postgresql://app:p%40ss@db.example:6543/myapp');
    assert.deepEqual(
      [t.host, t.port, t.user, t.password, t.database],
      ['db.example', 6543, 'app', 'p@ss', 'myapp'],
    );
  });

  describe('Unix sockets, in every form dbmate README shows', () => {
    const cases: [string, string][] = [
      ['postgres://user@/db?host=/var/run/postgresql', '/var/run/postgresql'],
      ['postgres://user:pw@/db?socket=/var/run/postgresql', '/var/run/postgresql'],
      ['postgres:///db?socket=/tmp', '/tmp'],
      ['postgres://user@/db', '/var/run/postgresql'],
      ['postgres://ignored/db?host=/run/pg', '/run/pg'],
    ];
    for (const [url, host] of cases) {
      it(`${url} → ${host}, no TLS (libpq: none over a socket)`, () => {
        const t = parse(url);
        assert.equal(t.host, host);
        assert.equal(t.tls, undefined);
      });
    }
    it('an empty host is /tmp on macOS, localhost where there is no default socket', () => {
      assert.equal(parsePostgresUrl('postgres://u@/db', {}, 'darwin').host, '/tmp');
      assert.equal(parsePostgresUrl('postgres://u@/db', {}, 'win32').host, 'localhost');
    });
  });

  describe('sslmode', () => {
    it('no sslmode is prefer (libpq), PGSSLMODE next, the URL first', () => {
      assert.deepEqual(parse('postgres://h/db').tls, { mode: 'prefer', from: 'default' });
      assert.deepEqual(parse('postgres://h/db', { PGSSLMODE: 'require' }).tls, {
        mode: 'require',
        from: 'PGSSLMODE',
      });
      assert.deepEqual(parse('postgres://h/db?sslmode=disable', { PGSSLMODE: 'require' }).tls, {
        mode: 'disable',
        from: 'url',
      });
    });
    it('refuses a value libpq does not know, naming it (never read as another mode)', () => {
      assert.throws(
        () => parse('postgres://h/db?sslmode=no-verify'),
        refused(/node-postgres's.*sslmode=require/),
      );
      assert.throws(() => parse('postgres://h/db?ssl=true'), refused(/ssl= is node-postgres's/));
      for (const bad of ['true', 'REQUIRE', '']) {
        assert.throws(
          () => parse(`postgres://h/db?sslmode=${bad}`),
          refused(new RegExp(`sslmode=${bad} is not an sslmode`)),
        );
      }
      assert.throws(() => parse('postgres://h/db', { PGSSLMODE: 'bogus' }), refused(/PGSSLMODE=bogus/));
    });
    it('refuses sslrootcert=system below verify-full, and TLS files with disable', () => {
      assert.throws(
        () => parse('postgres://h/db?sslmode=require&sslrootcert=system'),
        refused(/verify-full/),
      );
      assert.throws(
        () => parse('postgres://h/db?sslmode=disable&sslrootcert=/ca.pem'),
        refused(/sslmode=disable/),
      );
    });
  });

  describe("each mode's attempts", () => {
    const read = (file: string) => Buffer.from(`pem of ${file}`);
    const home = '/nonexistent-home';
    const plan = (mode: string, rootCert?: string) =>
      tlsAttempts({ mode, from: 'url', ...(rootCert ? { rootCert } : {}) } as never, read, home);
    it('disable: plaintext only', () => assert.deepEqual(plan('disable'), { first: false }));
    it('allow: plaintext, then TLS when the server refuses plaintext', () => {
      const a = plan('allow');
      assert.equal(a.first, false);
      assert.deepEqual(a.fallback?.attempt, { rejectUnauthorized: false });
      assert.equal(
        a.fallback?.retryOn(
          Object.assign(new Error('no pg_hba.conf entry … no encryption'), { code: '28000' }),
        ),
        true,
      );
      assert.equal(
        a.fallback?.retryOn(Object.assign(new Error('password authentication failed'), { code: '28P01' })),
        false,
      );
    });
    it('prefer: TLS unverified, then plaintext only when the server refuses TLS', () => {
      const a = plan('prefer');
      assert.deepEqual(a.first, { rejectUnauthorized: false });
      assert.equal(a.fallback?.attempt, false);
      assert.equal(a.fallback?.retryOn(new Error('The server does not support SSL connections')), true);
      assert.equal(a.fallback?.retryOn(new Error('self-signed certificate')), false);
    });
    it('require: TLS, no fallback, the chain checked only with a root certificate', () => {
      assert.deepEqual(plan('require'), { first: { rejectUnauthorized: false } });
      const withCa = plan('require', '/ca.pem').first as Record<string, unknown>;
      assert.equal(withCa.rejectUnauthorized, true);
      assert.equal(String(withCa.ca), 'pem of /ca.pem');
      assert.equal(typeof withCa.checkServerIdentity, 'function');
    });
    it('verify-ca checks the chain, not the name; verify-full both', () => {
      const ca = plan('verify-ca', '/ca.pem').first as Record<string, unknown>;
      assert.equal(ca.rejectUnauthorized, true);
      assert.equal(typeof ca.checkServerIdentity, 'function');
      const full = plan('verify-full', '/ca.pem').first as Record<string, unknown>;
      assert.equal(full.rejectUnauthorized, true);
      assert.equal(full.checkServerIdentity, undefined);
      assert.equal((plan('verify-full', 'system').first as Record<string, unknown>).ca, undefined);
    });
  });

  describe('other parameters: used, passed to the server, or refused by name', () => {
    it('an unknown parameter is a run-time setting for the server (as lib/pq sends it)', () => {
      assert.deepEqual(parse('postgres://h/db?statement_timeout=5s&my.flag=on').runtime, {
        statement_timeout: '5s',
        'my.flag': 'on',
      });
    });
    it('a libpq parameter lockstep does not implement is refused, never dropped', () => {
      assert.throws(
        () => parse('postgres://h/db?target_session_attrs=read-write'),
        refused(/target_session_attrs/),
      );
      assert.throws(
        () => parse('postgres://h/db?sslcrl=/x&hostaddr=1.2.3.4'),
        refused(/hostaddr, sslcrl|sslcrl, hostaddr/),
      );
    });
    it('refuses several hosts, a parameter given twice, a bad port', () => {
      assert.throws(() => parse('postgres://a,b/db'), refused(/several hosts/));
      assert.throws(() => parse('postgres://h/db?sslmode=require&sslmode=disable'), refused(/twice/));
      assert.throws(() => parse('postgres://h:99999/db'), refused(/port/));
    });
    it('no error shows the password', () => {
      const password = fc.string({
        minLength: 4,
        maxLength: 16,
        unit: fc.constantFrom('s', '3', 'K', '!', '$', '-', '_', '.', '~'),
      });
      const bad = fc.constantFrom(
        '?sslmode=nope',
        '?keepalives=1',
        '?a=1&a=2',
        '?sslmode=require&sslrootcert=system',
        '?bad-name=1',
      );
      fc.assert(
        fc.property(password, bad, (secret, query) => {
          try {
            parse(`postgres://app:${encodeURIComponent(secret)}@h/db${query}`);
            assert.fail('accepted');
          } catch (error) {
            assert.ok(error instanceof ConfigError);
            assert.ok(!error.message.includes(secret), error.message);
          }
        }),
      );
    });
  });

  describe('search_path', () => {
    const cases: [string, string[]][] = [
      ['myschema', ['myschema']],
      ['myschema, public', ['myschema', 'public']],
      ['MySchema,public', ['myschema', 'public']],
      ['"My Schema",public', ['My Schema', 'public']],
      ['"a""b", c', ['a"b', 'c']],
      ['"$user", public', ['$user', 'public']],
      ['', []],
      [' , x', ['x']],
    ];
    for (const [text, schemas] of cases) {
      it(`${JSON.stringify(text)} → ${JSON.stringify(schemas)}`, () =>
        assert.deepEqual(searchPathSchemas(text), schemas));
    }
    it('a quoted name reads back as itself, whatever it holds', () => {
      fc.assert(
        fc.property(
          fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
          (names) => {
            const text = names.map((n) => `"${n.replaceAll('"', '""')}"`).join(', ');
            assert.deepEqual(searchPathSchemas(text), names);
          },
        ),
      );
    });
    it('runtimeOption escapes spaces and backslashes as libpq options want', () => {
      assert.equal(runtimeOption('search_path', 'a, "b c"\\'), '-c search_path=a,\\ "b\\ c"\\\\');
    });
  });
});

describe('MySQL URL', () => {
  it("reads dbmate's socket form", () => {
    const t = parseMysqlUrl('mysql://root@/app?socket=/run/mysqld/mysqld.sock');
    assert.equal(t.socketPath, '/run/mysqld/mysqld.sock');
    assert.equal(t.host, undefined);
    assert.equal(t.database, 'app');
  });
  it('reads tls= as go-sql-driver does', () => {
    const tls = (v: string) => parseMysqlUrl(`mysql://h/app?tls=${v}`).tls;
    assert.deepEqual(['true', '1', 'false', '0', 'skip-verify', 'preferred', 'PREFERRED'].map(tls), [
      'verify',
      'verify',
      'none',
      'none',
      'skip-verify',
      'preferred',
      'preferred',
    ]);
    assert.equal(parseMysqlUrl('mysql://h/app').tls, 'none');
    assert.throws(() => tls('custom'), refused(/tls=custom is not a TLS mode/));
  });
  it("keeps mysql2's ssl= (JSON options or a profile), refuses it beside tls=", () => {
    assert.deepEqual(parseMysqlUrl('mysql://h/app?ssl={"rejectUnauthorized":false}').ssl, {
      rejectUnauthorized: false,
    });
    assert.equal(parseMysqlUrl('mysql://h/app?ssl=Amazon%20RDS').ssl, 'Amazon RDS');
    assert.throws(() => parseMysqlUrl('mysql://h/app?ssl=true&tls=true'), refused(/both tls= and ssl=/));
  });
  it('other parameters: charset, collation, timeout used; client-side ones meaningless; the rest system variables', () => {
    const t = parseMysqlUrl(
      "mysql://h/app?charset=utf8mb4,utf8&timeout=1m30s&parseTime=true&sql_mode='ANSI_QUOTES'",
    );
    assert.equal(t.charset, 'utf8mb4');
    assert.equal(t.connectTimeoutMs, 90_000);
    assert.deepEqual(t.variables, { sql_mode: "'ANSI_QUOTES'" });
    assert.throws(() => parseMysqlUrl('mysql://h/app?readTimeout=5s'), refused(/readTimeout/));
    assert.throws(() => parseMysqlUrl('mysql://h/app?bad-name=1'), refused(/bad-name/));
    assert.throws(() => parseMysqlUrl('mysql://h:3306/app?socket=/x'), refused(/both a host and socket/));
  });
  it('no error shows the password', () => {
    const password = fc.string({
      minLength: 4,
      maxLength: 16,
      unit: fc.constantFrom('s', '3', 'K', '!', '$', '-', '_', '.', '~'),
    });
    const bad = fc.constantFrom(
      '?tls=maybe',
      '?readTimeout=1s',
      '?a=1&a=2',
      '?bad-name=1',
      '?timeout=soon',
      '',
    );
    fc.assert(
      fc.property(password, bad, (secret, query) => {
        try {
          parseMysqlUrl(`mysql://root:${encodeURIComponent(secret)}@h${query ? '/db' : '/'}${query}`);
          assert.fail('accepted');
        } catch (error) {
          assert.ok(error instanceof ConfigError, String(error));
          assert.ok(!error.message.includes(secret), error.message);
        }
      }),
    );
  });
});

describe('any text as a URL', () => {
  it('is read or refused with a ConfigError, never another error', () => {
    const unit = fc.constantFrom(
      'p',
      'o',
      's',
      't',
      'g',
      ':',
      '/',
      '@',
      '?',
      '&',
      '=',
      '#',
      '%',
      '[',
      ']',
      ',',
      '1',
      'ssl',
      'mode',
      'host',
      'socket',
      'tls',
      ' ',
    );
    fc.assert(
      fc.property(
        fc.constantFrom('postgres://', 'mysql://', ''),
        fc.string({ maxLength: 40, unit }),
        (scheme, rest) => {
          for (const parse of [(u: string) => parsePostgresUrl(u, {}, 'linux'), parseMysqlUrl]) {
            try {
              parse(scheme + rest);
            } catch (error) {
              assert.ok(error instanceof ConfigError, `${scheme + rest}: ${error}`);
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
