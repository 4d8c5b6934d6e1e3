/** The .env reader: dbmate's rules (godotenv 1.5.1), case by case and as properties. */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} in .env text is the point
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DotEnvSyntaxError, loadEnvironment, parseDotEnv } from '../../src/cli/dotenv.js';
import { ConfigError } from '../../src/errors.js';

const get = (text: string, name = 'A') => parseDotEnv(text).get(name);

describe('parseDotEnv: cases (each checked against the dbmate 2.36.0 binary where it names a URL)', () => {
  const cases: [string, string, string | undefined][] = [
    ['plain', 'A=b', 'b'],
    ['spaces around', '  A =  b  ', 'b'],
    ['export', 'export A=b', 'b'],
    ['yaml style', 'A: b', 'b'],
    ['comment after a space', 'A=b # c', 'b'],
    ['the last " #" wins', 'A=b # c # d', 'b # c'],
    ['# without a space is kept', 'A=b#c', 'b#c'],
    ['# at the start of the value is kept', 'A=#c', '#c'],
    ['single quotes: as written', "A='x ${B} \\n'", 'x ${B} \\n'],
    ['double quotes: escapes', 'A="x\\ny\\"z"', 'x\ny"z'],
    ['double quotes span lines', 'A="x\ny"', 'x\ny'],
    ['CRLF', 'A=b\r\nB=c\r\n', 'b'],
    ['empty', 'A=', ''],
    ['empty then more', 'A=\nB=c', ''],
    ['expansion from the same file', 'B=x\nA=${B}y', 'xy'],
    ['$B form', 'B=x\nA=$B.y', 'x.y'],
    ['unset: empty', 'A=${NOT_SET_ANYWHERE}y', 'y'],
    ['defined later: empty', 'A=$B\nB=x', ''],
    ['lower case is not expanded', 'b=x\nA=${b}$b', '${b}$b'],
    ['\\$ keeps a $ (unquoted)', 'B=x\nA=\\$B', '$B'],
    ['\\$ keeps a $ (double quotes)', 'B=x\nA="\\$B"', '$B'],
    ['$( is not a command', 'A=$(B)', '(B)'],
    ['expanded in double quotes', 'B=x\nA="${B}"', 'x'],
    ['later wins', 'A=1\nA=2', '2'],
    ['text after a closing quote starts a statement', 'A="b" C=d', 'b'],
    ['comment lines', '# c\n  # d\nA=b', 'b'],
  ];
  for (const [what, text, expected] of cases) it(what, () => assert.equal(get(text), expected));

  it('text after a closing quote is a statement of its own', () => {
    assert.equal(get('A="b" C=d', 'C'), 'd');
  });

  it('errors say the line, never the value', () => {
    for (const [text, line] of [
      ['A=1\nB="secret-pw', 2],
      ['A=1\nB secret-pw\nC=2', 2],
      ['A=1\n\nB-C=secret-pw', 3],
    ] as const) {
      assert.throws(
        () => parseDotEnv(text),
        (error: unknown) =>
          error instanceof DotEnvSyntaxError && error.line === line && !error.message.includes('secret-pw'),
        text,
      );
    }
  });
});

/** Values that survive the library's quoting: not ending in \ or the quote (its closing-quote rule). */
const value = fc.string({ unit: 'grapheme', maxLength: 30 });
const name = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/);

function doubleQuoted(v: string): string {
  return `"${v
    .replace(/[\\"$]/g, (c) => `\\${c}`)
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')}"`;
}

describe('parseDotEnv: properties', () => {
  it('a single-quoted value without a quote reads back as written', () => {
    fc.assert(
      fc.property(
        name,
        value.filter((v) => !v.includes("'")),
        (n, v) => {
          assert.equal(parseDotEnv(`${n}='${v}'\n`).get(n), v);
        },
      ),
    );
  });

  it('a double-quoted value, escaped, reads back as written', () => {
    fc.assert(
      fc.property(
        name,
        value.filter((v) => !/["\\]$/.test(v)),
        (n, v) => {
          assert.equal(parseDotEnv(`${n}=${doubleQuoted(v)}\n`).get(n), v);
        },
      ),
    );
  });

  it('an unquoted value without #, $, quotes or line breaks reads back trimmed', () => {
    fc.assert(
      fc.property(
        name,
        value.filter((v) => !/[#$\n\r'"\\]/.test(v) && !/^['"]/.test(v.trim())),
        (n, v) => {
          assert.equal(
            parseDotEnv(`${n}=${v}\n`).get(n),
            v.replace(/^[\t\v\f\r \u0085\u00a0]+|[\t\v\f\r \u0085\u00a0]+$/g, ''),
          );
        },
      ),
    );
  });

  it('many variables: each reads back, ${NAME} of an earlier one expands to its value', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            name,
            value.filter((v) => !v.includes("'")),
          ),
          { selector: ([n]) => n, maxLength: 8 },
        ),
        (pairs) => {
          const text = pairs.map(([n, v]) => `${n}='${v}'`).join('\n');
          const refs = pairs.map(([n]) => `\${${n}}`).join('|');
          const parsed = parseDotEnv(`${text}\nZZ_ALL="${refs}"`);
          for (const [n, v] of pairs) assert.equal(parsed.get(n), v);
          if (!pairs.some(([n]) => n === 'ZZ_ALL'))
            assert.equal(parsed.get('ZZ_ALL'), pairs.map(([, v]) => v).join('|'));
        },
      ),
    );
  });

  it('any text: a map or a DotEnvSyntaxError, nothing else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        try {
          assert.ok(parseDotEnv(text) instanceof Map);
        } catch (error) {
          assert.ok(error instanceof DotEnvSyntaxError, String(error));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('loadEnvironment', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-dotenv-'));
  const file = (n: string, text: string) => {
    writeFileSync(path.join(dir, n), text);
    return path.join(dir, n);
  };

  it('the environment wins, then the first file that sets a variable; a missing file is skipped', () => {
    const a = file('a.env', 'X=from-a\nY=from-a\n');
    const b = file('b.env', 'Y=from-b\nZ=from-b\n');
    const env = loadEnvironment([a, path.join(dir, 'none.env'), b], { X: 'from-env' });
    assert.deepEqual([env.get('X'), env.get('Y'), env.get('Z')], ['from-env', 'from-a', 'from-b']);
  });

  it('a variable set empty in the environment counts as set', () => {
    const env = loadEnvironment([file('c.env', 'X=from-file\n')], { X: '' });
    assert.equal(env.get('X'), '');
  });

  it('a file that does not parse: ConfigError naming the file and line', () => {
    const bad = file('bad.env', 'A=1\nB="pw\n');
    assert.throws(
      () => loadEnvironment([bad], {}),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.includes(`${bad}, line 2`) &&
        !error.message.includes('pw'),
    );
  });
});
