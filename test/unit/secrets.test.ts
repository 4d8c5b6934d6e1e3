/** The scrubber (src/util/secrets.ts): every spelling of a URL's secrets, and URLs that do not parse. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, MigrationError } from '../../src/errors.js';
import {
  redactUrl,
  redactUrlsIn,
  scrubbingHandler,
  scrubDeep,
  secretScrubber,
  withoutSecrets,
} from '../../src/util/secrets.js';

/** Every character that is special somewhere: URLs, JSON, SQL, shells; and some beyond ASCII. */
const PASSWORD = `Zq@:/?#[]!$&'()*+,;=%" \\ü€😀x9`;

/** The spellings of PASSWORD a channel could carry; none may survive scrubbing. */
function spellings(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    encodeURI(secret),
    JSON.stringify(secret).slice(1, -1),
    secret.replaceAll("'", "''"),
    secret.replace(/[\\']/g, '\\$&'),
  ];
}

/** Not one spelling of the secret, and not a piece of one (6 characters) either. */
function assertHidden(text: string, secret: string) {
  for (const form of spellings(secret)) {
    const chars = [...form];
    for (let i = 0; i + 6 <= chars.length; i++) {
      const piece = chars.slice(i, i + 6).join('');
      assert.ok(!text.includes(piece), `"${piece}" of "${form}" in: ${text}`);
    }
  }
}

describe('secretScrubber', () => {
  const encoded = `postgres://app:${encodeURIComponent(PASSWORD)}@db.example:5432/app`;
  const cases: { name: string; url: string; text: (url: string) => string }[] = [
    { name: 'the URL itself', url: encoded, text: (url) => `cannot connect to ${url}: refused` },
    { name: 'the decoded password', url: encoded, text: () => `password is ${PASSWORD}.` },
    {
      name: 'the password as JSON',
      url: encoded,
      text: () => JSON.stringify({ message: `pw ${PASSWORD}` }),
    },
    {
      name: 'the password in a SQL literal',
      url: encoded,
      text: () => `RAISE EXCEPTION '${PASSWORD.replaceAll("'", "''")}'`,
    },
    {
      name: 'the password in a MySQL literal',
      url: encoded,
      text: () => `SET MESSAGE_TEXT = '${PASSWORD.replace(/[\\']/g, '\\$&')}'`,
    },
    {
      name: 'an unencoded password (a URL that does not parse)',
      url: `postgres://app:${PASSWORD}@db/app`,
      text: (url) => `malformed URL "${url}", password ${encodeURIComponent(PASSWORD)}`,
    },
    {
      name: 'a secret query parameter, encoded',
      url: `sqlite:///tmp/x.db?password=${encodeURIComponent(PASSWORD)}`,
      text: (url) => `${url} ${PASSWORD}`,
    },
    {
      name: 'sslpassword',
      url: `postgres://app@db/app?sslmode=require&sslpassword=${encodeURIComponent(PASSWORD)}`,
      text: (url) => `${url} ${PASSWORD}`,
    },
  ];
  for (const { name, url, text } of cases) {
    it(`hides ${name}`, () => {
      const scrubbed = secretScrubber(url)(text(url));
      assertHidden(scrubbed, PASSWORD);
      assert.match(scrubbed, /\*\*\*/);
    });
  }

  it('hides any password, in any text around it (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 4, maxLength: 24, unit: 'binary' }),
        fc.string({ maxLength: 20 }),
        (password, around) => {
          const url = `mysql://u:${encodeURIComponent(password)}@h:3306/d`;
          const scrub = secretScrubber(url);
          const text = `${around}${password}${around} ${url} ${JSON.stringify(password)}`;
          const scrubbed = scrub(text);
          return !scrubbed.includes(password) && !scrubbed.includes(encodeURIComponent(password));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('leaves text without secrets as it was', () => {
    const scrub = secretScrubber('postgres://app:s3cretpw@db/app');
    const text =
      'migration 001 failed at 001_a.sql:3: relation "x" does not exist; see http://localhost:4600/';
    assert.equal(scrub(text), text);
  });

  it('hides a short password inside URLs only', () => {
    const scrub = secretScrubber('postgres://app:ab@db/app');
    assert.equal(scrub('postgres://app:ab@db/app: about tables'), 'postgres://app:***@db/app: about tables');
  });
});

describe('redactUrl and redactUrlsIn: URLs that do not parse', () => {
  const cases: [string, string][] = [
    // A .env line `postgres://u:Kx7q#ss@h/db` is cut at its `#` comment.
    ['postgres://u:Kx7q', 'postgres://u:***'],
    ['postgres://u:Kx7q/db', 'postgres://u:***'],
    [`postgres://u:${PASSWORD}@h/db`, 'postgres://u:***@h/db'],
    ['postgres://h:5432/db', 'postgres://h:5432/db'],
    ['postgres://[::1]:5432/db', 'postgres://[::1]:5432/db'],
    ['postgres://u:pw@[::1]:5432/db', 'postgres://u:***@[::1]:5432/db'],
    ['postgres://h/db?sslpassword=x&sslmode=require', 'postgres://h/db?sslpassword=***&sslmode=require'],
    ['postgres://h/db?api_key=x&token=y&key=z', 'postgres://h/db?api_key=***&token=***&key=***'],
  ];
  for (const [url, expected] of cases) {
    it(url, () => assert.equal(redactUrl(url), expected));
  }

  it('leaves URLs without credentials alone', () => {
    const text = 'listening on http://[::1]:4600/ and http://127.0.0.1:4600/api/status?name=a';
    assert.equal(redactUrlsIn(text), text);
  });

  it('finds URLs in a text, also cut ones, and keeps JSON valid', () => {
    const text = JSON.stringify({ a: 'see "postgres://u:Kx7q" and mysql://r:pw@h/d, not http://h:80/x' });
    const redacted = redactUrlsIn(text);
    assert.doesNotMatch(redacted, /Kx7q|:pw@/);
    assert.match(
      JSON.parse(redacted).a,
      /postgres:\/\/u:\*\*\*" and mysql:\/\/r:\*\*\*@h\/d, not http:\/\/h:80\/x/,
    );
  });
});

describe('errors and events', () => {
  const url = `postgres://app:${encodeURIComponent(PASSWORD)}@db/app`;

  it('withoutSecrets scrubs every field of an error, its stack and its cause, keeping its class', async () => {
    const cause = new Error(`inner ${PASSWORD}`);
    const thrown = new MigrationError({
      version: '001',
      file: '001_a.sql',
      line: 3,
      statementIndex: 0,
      statementCount: 1,
      statement: `SELECT '${PASSWORD}'`,
      dbMessage: `cannot reach ${url}`,
      stateLeft: 'rolled back',
      direction: 'up',
      fix: `check ${PASSWORD}`,
    });
    Object.defineProperty(thrown, 'cause', { value: cause });
    const error = await withoutSecrets(url, async () => {
      throw thrown;
    }).catch((e: unknown) => e);
    assert.ok(error instanceof MigrationError);
    for (const text of [
      error.message,
      error.stack ?? '',
      JSON.stringify(error.toJSON()),
      String((error.cause as Error).message),
    ]) {
      assertHidden(text, PASSWORD);
    }
    assert.equal(error.statement, "SELECT '***'");
  });

  it('toJSON hides the credentials of any URL in any field', () => {
    const json = JSON.stringify(new ConfigError('bad "postgres://u:Kx7q" here').toJSON());
    assert.doesNotMatch(json, /Kx7q/);
  });

  it('an event handler sees events scrubbed, the runner keeps its own objects', () => {
    const seen: unknown[] = [];
    const on = scrubbingHandler((event: unknown) => seen.push(event), url);
    const event = { type: 'log', version: '1', message: `using ${url} with ${PASSWORD}` };
    on(event);
    assertHidden(JSON.stringify(seen), PASSWORD);
    assert.match(event.message, /Zq@/);
  });

  it('scrubDeep walks arrays and objects, and leaves other values alone', () => {
    const at = new Date(0);
    const result = scrubDeep({ list: [PASSWORD, 1, null], at }, (t) => t.replaceAll(PASSWORD, '***'));
    assert.deepEqual(result, { list: ['***', 1, null], at });
  });
});
