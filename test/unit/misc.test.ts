/** Small pure helpers: durations, version order, secret redaction, SQLite URLs. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compareVersions } from '../../src/core/migration.js';
import { redactUrl, scrubSecrets } from '../../src/drivers/registry.js';
import { sqlitePath } from '../../src/drivers/sqlite/index.js';
import { ConfigError } from '../../src/errors.js';
import { formatDuration, parseDuration } from '../../src/util/duration.js';

describe('parseDuration', () => {
  const cases: readonly [string, number | undefined][] = [
    ['500ms', 500],
    ['2s', 2000],
    ['1.5s', 1500],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['30', 30_000], // a bare number is seconds
    ['0', 0],
    [' 2 s ', 2000],
    ['', undefined],
    ['s', undefined],
    ['-1s', undefined],
    ['2d', undefined],
    ['2 seconds', undefined],
    ['off', undefined],
    ['1e3', undefined],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  }
});

describe('formatDuration', () => {
  const cases: readonly [number, string][] = [
    [0, '0ms'],
    [12.4, '12ms'],
    [999, '999ms'],
    [999.7, '1.0s'],
    [1000, '1.0s'],
    [1549, '1.5s'],
    [59_900, '59.9s'],
    [59_999, '1m0s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [119_999, '2m0s'],
    [3_600_000, '60m0s'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} → ${text}`, () => assert.equal(formatDuration(ms), text));
  }
});

describe('compareVersions', () => {
  const cases: readonly [string, string, -1 | 0 | 1][] = [
    ['1', '2', -1],
    ['9', '10', -1],
    ['10', '9', 1],
    ['001', '1', 0],
    ['0010', '9', 1],
    ['002', '10', -1],
    ['0', '000', 0],
    ['20240101120000', '20240101120001', -1],
    ['20240101120000', '99', 1],
  ];
  for (const [a, b, expected] of cases) {
    it(`${a} vs ${b} → ${expected}`, () => assert.equal(Math.sign(compareVersions(a, b)), expected));
  }

  it('sorts numerically, ignoring leading zeros', () => {
    assert.deepEqual(['10', '9', '002', '1', '0100'].sort(compareVersions), ['1', '002', '9', '10', '0100']);
  });
});

describe('redactUrl', () => {
  const cases: readonly [string, string][] = [
    ['postgres://app:s3cret@db.example.com:5432/app', 'postgres://app:***@db.example.com:5432/app'],
    ['postgres://app:p%40ss%2Fw%3Ard@db/app', 'postgres://app:***@db/app'],
    ['postgres://app:p@ss@db/app', 'postgres://app:***@db/app'], // an unencoded @ in the password
    ['postgres://app:@db/app', 'postgres://app:***@db/app'],
    ['POSTGRESQL://app:s3cret@db/app', 'POSTGRESQL://app:***@db/app'],
    [
      'postgres://db/app?user=app&password=s3cret&sslmode=require',
      'postgres://db/app?user=app&password=***&sslmode=require',
    ],
    ['postgres://db/app?PASSWORD=s3cret', 'postgres://db/app?PASSWORD=***'],
    ['postgres://app:one@db/app?password=two', 'postgres://app:***@db/app?password=***'],
    // No password: unchanged.
    ['postgres://app@db.example.com:5432/app', 'postgres://app@db.example.com:5432/app'],
    ['postgres://db.example.com:5432/app', 'postgres://db.example.com:5432/app'],
    ['postgres://db/app?application_name=a@b', 'postgres://db/app?application_name=a@b'],
    ['sqlite:///var/data/app.db', 'sqlite:///var/data/app.db'],
    ['sqlite:data/app.db', 'sqlite:data/app.db'],
  ];
  for (const [url, expected] of cases) {
    it(url, () => assert.equal(redactUrl(url), expected));
  }
});

describe('scrubSecrets', () => {
  const cases: readonly { name: string; url: string; text: string; expected: string }[] = [
    {
      name: 'the URL echoed whole',
      url: 'postgres://app:s3cret@db/app',
      text: 'cannot connect to postgres://app:s3cret@db/app: timeout',
      expected: 'cannot connect to postgres://app:***@db/app: timeout',
    },
    {
      name: 'the password alone',
      url: 'postgres://app:s3cret@db/app',
      text: 'password "s3cret" rejected',
      expected: 'password "***" rejected',
    },
    {
      name: 'a percent-encoded password, decoded',
      url: 'postgres://app:p%40ss@db/app',
      text: 'password "p@ss" rejected (p%40ss)',
      expected: 'password "***" rejected (***)',
    },
    {
      name: 'a password with an unencoded @',
      url: 'postgres://app:p@ss@db/app',
      text: 'password "p@ss" rejected',
      expected: 'password "***" rejected',
    },
    {
      name: 'a ?password= query parameter',
      url: 'postgres://db/app?user=app&password=s3cret',
      text: 'password "s3cret" rejected',
      expected: 'password "***" rejected',
    },
    {
      name: 'a percent-encoded ?password=, decoded',
      url: 'postgres://db/app?password=p%26ss',
      text: 'password "p&ss" rejected',
      expected: 'password "***" rejected',
    },
    {
      name: 'nothing when the URL has no password',
      url: 'postgres://app@db/app',
      text: 'role "app" does not exist at postgres://app@db/app',
      expected: 'role "app" does not exist at postgres://app@db/app',
    },
  ];
  for (const { name, url, text, expected } of cases) {
    it(name, () => assert.equal(scrubSecrets(text, url), expected));
  }
});

describe('sqlitePath', () => {
  const cwd = path.join(path.sep, 'work', 'project');
  const cases: readonly [string, string][] = [
    ['sqlite:app.db', path.join(cwd, 'app.db')],
    ['sqlite:rel/path.db', path.join(cwd, 'rel', 'path.db')],
    ['sqlite:./data/../app.db', path.join(cwd, 'app.db')],
    ['sqlite3:app.db', path.join(cwd, 'app.db')],
    ['SQLITE:app.db', path.join(cwd, 'app.db')],
    ['sqlite:///abs/path.db', '/abs/path.db'],
    ['sqlite:/abs/path.db', '/abs/path.db'],
    ['sqlite:my%20app.db', path.join(cwd, 'my app.db')],
    ['sqlite:///abs/caf%C3%A9.db', '/abs/café.db'],
    ['sqlite:app.db?mode=rwc', path.join(cwd, 'app.db')],
    ['sqlite:app.db#fragment', path.join(cwd, 'app.db')],
    // dbmate's readings: two slashes and a "host" are an absolute path, extra slashes collapse.
    ['sqlite://tmp/path.db', '/tmp/path.db'],
    ['sqlite:////abs/path.db', '/abs/path.db'],
    ['sqlite3:///abs/path.db', '/abs/path.db'],
  ];
  for (const [url, expected] of cases) {
    it(`${url} → ${expected}`, () => assert.equal(sqlitePath(url, cwd), expected));
  }

  const rejected: readonly [string, RegExp][] = [
    ['sqlite:app.db?_foreign_keys=1', /parameter _foreign_keys \(/],
    ['sqlite:app.db?mode=ro', /mode \(but mode=rwc\)/],
    ['sqlite:///', /names no file/],
    ['sqlite::memory:', /names no file/],
    ['sqlite:', /names no file/],
    ['sqlite:?mode=rwc', /names no file/],
    ['sqlite:bad%zz.db', /bad %-escape/],
  ];
  for (const [url, message] of rejected) {
    it(`rejects ${url}`, () => {
      assert.throws(
        () => sqlitePath(url, cwd),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    });
  }
});

describe('redactUrl on malformed URLs', () => {
  it('hides a password containing unencoded / ? # as well', () => {
    for (const url of [
      'postgres://u:pa/ss@host/db',
      'postgres://u:pa?ss@host/db',
      'postgres://u:pa#ss@host/db',
    ]) {
      assert.equal(redactUrl(url), 'postgres://u:***@host/db');
    }
  });
});
