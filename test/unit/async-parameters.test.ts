/**
 * Parameters of long-running migrations (SPEC guarantee 12), without a database: typed values,
 * literals made only of characters no lexer reads, and every place a placeholder may not stand
 * refused when the definition is loaded, with its file and line, on every database's lexer.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  checkParameterValue,
  findPlaceholders,
  type ParameterType,
  renderLiteral,
} from '../../src/async/parameters.js';
import { readDefinitionFiles } from '../../src/async/sources.js';
import { clickhouseDialect } from '../../src/drivers/clickhouse/dialect.js';
import type { Dialect } from '../../src/drivers/driver.js';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { SourceError } from '../../src/errors.js';

const OPTIONS = { table: 't', runnerId: 'r' };
// Made without connecting: loading needs only their dialect and lexer.
const sqlite = createSqliteDriver('sqlite:/tmp/x.db', OPTIONS).dialect;
const DRIVERS: Record<'postgres' | 'mysql' | 'sqlite' | 'clickhouse', Dialect> = {
  postgres: createPostgresDriver('postgres://x@localhost/db', OPTIONS).dialect,
  mysql: createMysqlDriver('mysql://x@localhost/db', OPTIONS).dialect,
  sqlite,
  clickhouse: clickhouseDialect('db', sqlite.ledger),
};
type Kind = keyof typeof DRIVERS;
const KINDS = Object.keys(DRIVERS) as Kind[];

describe('checkParameterValue', () => {
  const good: [ParameterType, unknown, unknown][] = [
    ['text', "it's; -- \\", "it's; -- \\"],
    ['text', '', ''],
    ['integer', '42', 42],
    ['integer', ' -7 ', -7],
    ['integer', 9, 9],
    ['number', '0.5', 0.5],
    ['number', '-1e3', -1000],
    ['number', 2, 2],
    ['boolean', 'true', true],
    ['boolean', false, false],
    ['duration', '100ms', 100],
    ['duration', '2m', 120_000],
    ['duration', 250, 250],
  ];
  for (const [type, input, value] of good) {
    it(`${type}: ${JSON.stringify(input)} → ${JSON.stringify(value)}`, () =>
      assert.deepEqual(checkParameterValue(type, input), { value }));
  }
  const bad: [ParameterType, unknown, RegExp][] = [
    ['text', 5, /^5 is not a string$/],
    ['text', 'a\0b', /holds a NUL character/],
    ['text', 'a\udc00', /lone surrogate/],
    ['integer', '1.5', /"1.5" is not a whole number/],
    ['integer', '0x10', /is not a whole number/],
    ['integer', '1e3', /is not a whole number/],
    ['integer', '', /is not a whole number/],
    ['integer', '1; DROP TABLE t', /is not a whole number/],
    ['integer', 2 ** 60, /is beyond/],
    ['integer', true, /true is not a whole number/],
    ['number', 'Infinity', /is not a finite decimal number/],
    ['number', 'NaN', /is not a finite decimal number/],
    ['number', '0x1f', /is not a finite decimal number/],
    ['number', Number.NaN, /is not a finite decimal number/],
    ['boolean', 'yes', /"yes" is neither true nor false/],
    ['boolean', 1, /1 is neither true nor false/],
    ['duration', '30', /"30" is not a duration with a unit/],
    ['duration', 'soon', /is not a duration with a unit/],
    ['duration', -5, /-5 is not a whole number of milliseconds/],
  ];
  for (const [type, input, problem] of bad) {
    it(`${type}: refuses ${JSON.stringify(input) ?? String(input)}`, () => {
      const checked = checkParameterValue(type, input);
      assert.ok('problem' in checked, JSON.stringify(checked));
      assert.match(checked.problem, problem);
    });
  }
  it('shortens a long value in the problem', () => {
    const checked = checkParameterValue('integer', 'x'.repeat(500));
    assert.ok('problem' in checked && checked.problem.length < 120, JSON.stringify(checked));
  });
});

describe('renderLiteral', () => {
  const cases: [unknown, Kind, string][] = [
    [42, 'postgres', '42'],
    [-5, 'mysql', '(-5)'],
    [0.25, 'sqlite', '0.25'],
    [true, 'postgres', 'TRUE'],
    [false, 'mysql', 'FALSE'],
    [true, 'sqlite', '1'],
    ["it's", 'postgres', "E'it\\u0027s'"],
    ['a:start', 'postgres', "E'a\\u003astart'"],
    ['😀', 'postgres', "E'\\U0001f600'"],
    ["it's", 'mysql', "_utf8mb4 X'69742773'"],
    ['', 'mysql', "_utf8mb4 X''"],
    ["it's", 'sqlite', "(CAST(X'69742773' AS TEXT))"],
    [true, 'clickhouse', '1'],
    [-5, 'clickhouse', '(-5)'],
    ["it's", 'clickhouse', "unhex('69742773')"],
  ];
  for (const [value, kind, literal] of cases) {
    it(`${JSON.stringify(value)} on ${kind}: ${literal}`, () =>
      assert.equal(renderLiteral(value as string, kind), literal));
  }
  it('refuses what is no finite value, and a database it does not know', () => {
    assert.throws(() => renderLiteral(Number.NaN, 'postgres'), /cannot write NaN/);
    assert.throws(() => renderLiteral('x', 'oracle'), /cannot write parameters for the oracle database/);
  });

  // The property that makes a literal inert: no quote, backslash-quote, comment starter, colon or
  // non-ASCII byte of the value reaches the lexer; and it decodes back to the value.
  const INERT: Record<Kind, RegExp> = {
    postgres: /^E'(?:[A-Za-z0-9 _]|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})*'$/,
    mysql: /^_utf8mb4 X'(?:[0-9a-f]{2})*'$/,
    sqlite: /^\(CAST\(X'(?:[0-9a-f]{2})*' AS TEXT\)\)$/,
    clickhouse: /^unhex\('(?:[0-9a-f]{2})*'\)$/,
  };
  const decode: Record<Kind, (literal: string) => string> = {
    postgres: (l) =>
      l
        .slice(2, -1)
        .replace(/\\u([0-9a-f]{4})|\\U([0-9a-f]{8})/g, (_, a, b) =>
          String.fromCodePoint(parseInt(a ?? b, 16)),
        ),
    mysql: (l) => Buffer.from(l.slice(11, -1), 'hex').toString('utf8'),
    sqlite: (l) => Buffer.from(l.slice(8, -11), 'hex').toString('utf8'),
    clickhouse: (l) => Buffer.from(l.slice(7, -2), 'hex').toString('utf8'),
  };
  for (const kind of KINDS) {
    it(`text on ${kind}: only inert characters, and it decodes to the value (generated)`, () => {
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (value) => {
          const literal = renderLiteral(value, kind);
          assert.match(literal, INERT[kind]);
          assert.equal(decode[kind](literal), value);
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('findPlaceholders', () => {
  it('finds each placeholder with its offset, and says nothing of one that stands alone', () => {
    const sql = 'SELECT {{a}}, ({{ b }}), 1-{{c}}, {{a}}::int FROM t WHERE x IN ({{b}})';
    const found = findPlaceholders(sql, DRIVERS.postgres.syntax);
    assert.deepEqual(
      found.map((p) => [p.name, sql.slice(p.offset, p.offset + p.length), p.problem]),
      [
        ['a', '{{a}}', undefined],
        ['b', '{{ b }}', undefined],
        ['c', '{{c}}', undefined],
        ['a', '{{a}}', undefined],
        ['b', '{{b}}', undefined],
      ],
    );
  });

  it('ends a comment where the database does: after /*/*/ a placeholder is a value (MySQL, SQLite)', () => {
    for (const kind of ['mysql', 'sqlite'] as const) {
      const found = findPlaceholders('SELECT /*/*/ {{a}}', DRIVERS[kind].syntax);
      assert.deepEqual(
        found.map((p) => [p.name, p.problem]),
        [['a', undefined]],
        kind,
      );
    }
  });
});

/** Definitions written into a scratch directory, loaded as a trigger would load them. */
const scratch = mkdtempSync(path.join(tmpdir(), 'lockstep-params-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;

async function loadProblems(kind: Kind, files: Record<string, string>): Promise<string[]> {
  const dir = path.join(scratch, `d${++dirs}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const problems: string[] = [];
  for (const file of await readDefinitionFiles(dir, scratch)) {
    try {
      await file.load(DRIVERS[kind]);
    } catch (error) {
      assert.ok(error instanceof SourceError, String(error));
      problems.push(...error.problems.map((p) => `${path.basename(p.file)}:${p.line ?? '-'}: ${p.problem}`));
    }
  }
  return problems;
}

const HEADER = [
  '-- async:description d', // 1
  "-- async:parameter x type:text default:'a'", // 2
  '-- async:parameter n type:integer default:5', // 3
];
/** A definition whose one operation's SQL starts at line 5. */
const withSql = (sql: string) => [...HEADER, '-- async:operation', sql, '-- async:rollback', ''].join('\n');

describe('a misplaced placeholder is refused at load, with file and line', () => {
  const STRING = /\{\{x\}\} is inside a quoted string/;
  /** [what, SQL at line 5, databases, problem] */
  const cases: [string, string, readonly Kind[], RegExp][] = [
    ["inside the author's quotes", "SELECT '{{x}}'", KINDS, STRING],
    ['inside a longer string', "SELECT 'a {{x}} b'", KINDS, STRING],
    ['inside an E-string', "SELECT E'{{x}}'", KINDS, STRING],
    ['inside a N-string', "SELECT N'{{x}}'", KINDS, STRING],
    ['inside double quotes', 'SELECT "{{x}}"', KINDS, /\{\{x\}\} is inside a quoted (identifier|string)/],
    ['inside backticks', 'SELECT `{{x}}`', ['mysql'], /\{\{x\}\} is inside a quoted identifier/],
    ['inside brackets', 'SELECT [{{x}}]', ['sqlite'], /\{\{x\}\} is inside a quoted identifier/],
    ['inside a -- comment', 'SELECT 1 -- {{x}}', KINDS, /\{\{x\}\} is inside a comment/],
    ['inside a /* */ comment', 'SELECT 1 /* {{x}} */', KINDS, /\{\{x\}\} is inside a comment/],
    ['inside a MySQL executable comment', 'SELECT 1 /*! + {{x}} */', ['mysql'], /inside a comment/],
    ['inside a # comment', 'SELECT 1 # {{x}}', ['mysql'], /\{\{x\}\} is inside a comment/],
    ['inside a dollar quote', 'SELECT $q$ {{x}} $q$', ['postgres'], /inside a dollar-quoted string/],
    ['inside a DO body', 'DO $$ BEGIN PERFORM {{x}}; END $$', ['postgres'], /inside a dollar-quoted/],
    // With standard_conforming_strings on, {{x}} is outside; off, inside: refused either way.
    ['inside a string under scs=off', "SELECT 'a\\' , {{x}} -- '", ['postgres'], STRING],
    // MySQL by default reads 'a\'' as a string; with NO_BACKSLASH_ESCAPES the string goes on.
    ['inside a string under NO_BACKSLASH_ESCAPES', "SELECT 'a\\'' , {{x}} -- '", ['mysql'], STRING],
    ['glued to a name', 'SELECT users_{{x}}', KINDS, /\{\{x\}\} is glued to "_\{\{x\}\} "/],
    ['after a dot', 'SELECT s.{{x}}', KINDS, /is glued to/],
    ['before a name', 'SELECT {{x}}abc', KINDS, /is glued to/],
    ['as a string prefix', "SELECT {{x}}'a'", KINDS, /is glued to/],
    ['after a cast-less colon', 'SELECT :{{n}}', KINDS, /is glued to/],
    ['a malformed placeholder', 'SELECT {{bad-name}}', KINDS, /"\{\{bad-name\}\}" is not a placeholder/],
    ['an unclosed placeholder', 'SELECT {{x', KINDS, /"\{\{" is not a placeholder/],
    ['an unknown name', 'SELECT {{nope}}', KINDS, /\{\{nope\}\} is not a parameter/],
    [
      'a name Object.prototype has',
      'SELECT {{constructor}}',
      KINDS,
      /\{\{constructor\}\} is not a parameter/,
    ],
  ];
  for (const [what, sql, kinds, problem] of cases) {
    for (const kind of kinds) {
      it(`${what} (${kind})`, async () => {
        const problems = await loadProblems(kind, { 'a.sql': withSql(sql) });
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.match(problems[0] ?? '', /^a\.sql:5: operation 1: /);
        assert.match(problems[0] ?? '', problem);
      });
    }
  }

  it('refuses two placeholders glued together, both', async () => {
    const problems = await loadProblems('postgres', { 'g.sql': withSql('SELECT {{n}}{{x}}') });
    assert.deepEqual(
      problems.map((p) => p.replace(/ is glued .*/, '')),
      ['g.sql:5: operation 1: {{n}}', 'g.sql:5: operation 1: {{x}}'],
    );
  });

  it('names the line within a statement, in a rollback and in a check', async () => {
    const text = [
      ...HEADER,
      '-- async:precheck', // 4
      'SELECT 1 = 1', // 5
      "  AND '{{x}}' = 'a'", // 6
      '-- async:operation', // 7
      'SELECT 1;', // 8
      'UPDATE t', // 9
      '  SET a = 1 -- {{n}}', // 10
      '  WHERE b = {{x}};', // 11
      '-- async:rollback', // 12
      'SELECT "{{n}}";', // 13
      '',
    ].join('\n');
    for (const kind of KINDS) {
      const problems = await loadProblems(kind, { 'b.sql': text });
      assert.deepEqual(
        problems.map((p) => p.replace(/ is inside .*/, '')),
        [
          'b.sql:6: precheck: {{x}}',
          'b.sql:10: operation 1: {{n}}',
          'b.sql:13: operation 1 (rollback): {{n}}',
        ],
        kind,
      );
    }
  });

  it('accepts a placeholder wherever a literal goes, and gives it as a literal', async () => {
    const sql = 'INSERT INTO t (a, b) VALUES ({{x}}, {{n}}), (-{{n}}, 1-{{n}}) -- {not one}';
    for (const kind of KINDS) assert.deepEqual(await loadProblems(kind, { 'c.sql': withSql(`${sql};`) }), []);
  });
});

describe('the option line takes typed values only', () => {
  const file = (options: string, extra = '') =>
    [
      '-- async:description d', // 1
      "-- async:parameter x type:text default:'a'", // 2
      '-- async:parameter n type:integer default:5', // 3
      '-- async:parameter p type:duration default:50ms', // 4
      '-- async:parameter b type:boolean default:false', // 5
      extra, // 6
      `-- async:operation ${options}`, // 7
      'UPDATE t SET a = 1 WHERE id >= :start AND id < :end;',
      '-- async:rollback',
      '',
    ].join('\n');
  const cases: [string, string, RegExp][] = [
    ['in a setting', 'setting:work_mem={{x}}', /setting: takes fixed text/],
    ['in a setting, an integer', 'setting:work_mem={{n}}', /setting: takes fixed text/],
    ['as the table', 'batched table:{{x}} key:id batch_size:5', /table: takes fixed text/],
    ['as the key', 'batched table:t key:{{x}} batch_size:5', /key: takes fixed text/],
    ['as an option of its own', '{{x}}', /never an option of its own/],
    [
      'part of a value',
      'batched table:t key:id batch_size:1{{n}}',
      /must be the whole value: batch_size:\{\{name\}\}/,
    ],
    [
      'text as a batch size',
      'batched table:t key:id batch_size:{{x}}',
      /batch_size: takes a parameter of type integer; x is text/,
    ],
    [
      'text as a timeout',
      'timeout:{{x}}',
      /timeout: takes a parameter of type duration or integer; x is text/,
    ],
    [
      'a boolean as a pause',
      'batched table:t key:id batch_size:5 pause:{{b}}',
      /pause: takes .*; b is boolean/,
    ],
    [
      'an integer as transaction',
      'transaction:{{n}}',
      /transaction: takes a parameter of type boolean; n is integer/,
    ],
    ['an unknown name', 'timeout:{{nope}}', /\{\{nope\}\} is not a parameter/],
  ];
  for (const [what, options, problem] of cases) {
    it(`refuses a placeholder ${what}, at the operation's line`, async () => {
      const problems = await loadProblems('postgres', { 'o.sql': file(options) });
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', /^o\.sql:7: option "/);
      assert.match(problems[0] ?? '', problem);
    });
  }

  it('takes typed values from the parameters, never their text', async () => {
    const dir = path.join(scratch, `d${++dirs}`);
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'ok.sql'),
      file('batched table:t key:id batch_size:{{n}} pause:{{p}} timeout:{{p}}').replace(
        '-- async:rollback',
        '-- async:rollback\n-- async:operation transaction:{{b}} timeout:{{n}}\nSELECT 1;\n-- async:rollback',
      ),
    );
    const [loaded] = await Promise.all(
      (await readDefinitionFiles(dir, scratch)).map((f) => f.load(DRIVERS.sqlite)),
    );
    const [batched, plain] = loaded?.operations({ x: 'a', n: 7, p: 1500, b: false }) ?? [];
    assert.deepEqual(batched?.batch, { table: 't', key: 'id', size: 7, pauseMs: 1500 });
    assert.equal(batched?.timeoutMs, 1500);
    assert.equal(plain?.transaction, false);
    assert.equal(plain?.timeoutMs, 7);
  });
});

describe('parameter declarations', () => {
  const declared = (line: string) =>
    [line, '-- async:operation', 'SELECT 1;', '-- async:rollback', ''].join('\n');
  const D = '-- async:description d\n';
  const cases: [string, RegExp][] = [
    ['-- async:parameter n type:float default:1', /parameter n: unknown type "float" \(known: text, integer/],
    ['-- async:parameter n type:integer default:1.5', /parameter n: its default "1.5" is not a whole number/],
    ['-- async:parameter n type:boolean default:yes', /its default "yes" is neither true nor false/],
    ['-- async:parameter n type:integer', /parameter n needs default:<value>/],
    ['-- async:parameter n', /expected "-- async:parameter <name> type:/],
    ["-- async:parameter n type:text default:'open", /expected "-- async:parameter/],
  ];
  for (const [line, problem] of cases) {
    it(`refuses ${line}, at its line`, async () => {
      const problems = await loadProblems('sqlite', { 'p.sql': D + declared(line) });
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', /^p\.sql:2: /);
      assert.match(problems[0] ?? '', problem);
    });
  }
  it('refuses a second declaration of a name', async () => {
    const two = `${D}-- async:parameter n 1\n${declared('-- async:parameter n 2')}`;
    assert.deepEqual(await loadProblems('sqlite', { 'p.sql': two }), ['p.sql:3: a second parameter n']);
  });

  it('reads types, defaults and descriptions (the untyped form infers from the default)', async () => {
    const dir = path.join(scratch, `d${++dirs}`);
    mkdirSync(dir);
    const lines = [
      "-- async:parameter a type:text default:'it''s' a label",
      '-- async:parameter b type:boolean default:true',
      '-- async:parameter c type:duration default:100ms pause',
      '-- async:parameter d type:number default:0.5',
      '-- async:parameter e 10000 rows per batch',
      '-- async:parameter f 2.5',
      '-- async:parameter g fast',
      "-- async:parameter h '12'",
      '-- async:parameter i 1e3',
      '-- async:parameter j -3',
      '-- async:parameter k true',
      '-- async:parameter l default:5',
    ];
    writeFileSync(path.join(dir, 'ok.sql'), `${D}${lines.join('\n')}\n${declared('')}`);
    const [file] = await readDefinitionFiles(dir, scratch);
    const loaded = await file?.load(DRIVERS.postgres);
    assert.deepEqual(loaded?.parameters, {
      a: { type: 'text', default: "it's", description: 'a label' },
      b: { type: 'boolean', default: true },
      c: { type: 'duration', default: 100, description: 'pause' },
      d: { type: 'number', default: 0.5 },
      e: { type: 'integer', default: 10000, description: 'rows per batch' },
      f: { type: 'number', default: 2.5 },
      g: { type: 'text', default: 'fast' },
      h: { type: 'text', default: '12' },
      i: { type: 'number', default: 1000 },
      j: { type: 'integer', default: -3 },
      k: { type: 'text', default: 'true' },
      l: { type: 'integer', default: 5 },
    });
  });
});

describe('a TS/JS module definition', () => {
  const module = (parameters: string, sql: string) =>
    `export default { description: 'd', parameters: ${parameters}, operations: [{ sql: ${JSON.stringify(sql)}, rollback: '' }] };\n`;
  it('types its parameters (or infers them) and checks its placeholders at load', async () => {
    const problems = await loadProblems('postgres', {
      'm1.mjs': module("{ n: { type: 'integer', default: 1.5 } }", 'SELECT 1'),
      'm2.mjs': module("{ n: { type: 'bigint', default: 1 } }", 'SELECT 1'),
      'm3.mjs': module("{ s: { default: 'x' } }", "SELECT '{{s}}'"),
      'm4.mjs': module('{ s: {} }', 'SELECT 1'),
      'm5.mjs': module("{ s: { default: 'x' }, n: { default: 3 } }", 'SELECT {{s}}, {{n}}'),
    });
    assert.deepEqual(problems, [
      'm1.mjs:-: parameter n: its default 1.5 is not a whole number (an integer (a whole number such as 10000))',
      'm2.mjs:-: parameter n: unknown type "bigint" (known: text, integer, number, boolean, duration)',
      'm3.mjs:-: operation 1: {{s}} is inside a quoted string',
      'm4.mjs:-: parameter s needs a default (a number, a string or a boolean) or a type',
    ]);
  });
});
