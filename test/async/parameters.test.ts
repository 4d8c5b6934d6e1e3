/**
 * SPEC guarantee 12 on the real databases: a parameter of a long-running migration is a typed value,
 * never SQL text. Hostile values (generated) are stored exactly as given and run nothing else,
 * whatever the server's settings; a placeholder that could become SQL is refused when the
 * definition is loaded, with its file and line; an ill-typed value is refused by the CLI (exit 2)
 * and the HTTP API (400), naming the parameter, its type and what is wrong with the value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AsyncMigrator } from '../../src/async/migrator.js';
import { ConfigError } from '../../src/errors.js';
import { serve } from '../../src/server/serve.js';
import { writeDefinitions } from '../helpers/async.js';
import {
  CLEAN_ENV,
  createSqliteDatabase,
  type DatabaseKind,
  runCli,
  TARGETS,
  type TestDatabase,
} from '../helpers/targets.js';

const STORED: Record<DatabaseKind, string> = {
  postgres: 'CREATE TABLE stored (run integer, k integer, v text)',
  mysql: 'CREATE TABLE stored (run integer, k integer, v text) CHARACTER SET utf8mb4',
  sqlite: 'CREATE TABLE stored (run integer, k integer, v text)',
};

async function prepare(db: TestDatabase): Promise<void> {
  await db.query(STORED[db.kind]);
  await db.query('CREATE TABLE sentinel (n integer)');
  await db.query('INSERT INTO sentinel (n) VALUES (1)');
}

/** The sentinel table is still there with its one row, and `run` stored exactly `count` rows. */
async function nothingElseRan(db: TestDatabase, run: number, count: number): Promise<void> {
  const [sentinel] = await db.query('SELECT COUNT(*) AS c FROM sentinel');
  assert.equal(Number(sentinel?.c), 1, 'the sentinel table is untouched');
  const [rows] = await db.query(`SELECT COUNT(*) AS c FROM stored WHERE run = ${run}`);
  assert.equal(Number(rows?.c), count, `run ${run} stored ${count} rows, no more`);
}

async function storedValues(db: TestDatabase, run: number): Promise<string[]> {
  const rows = await db.query(`SELECT v FROM stored WHERE run = ${run} ORDER BY k`);
  return rows.map((r) => String(r.v));
}

const cli = (db: TestDatabase, dir: string, args: string[]) =>
  runCli(['async', ...args, '--url', db.url, '--async-dir', dir], { cwd: db.dir, env: CLEAN_ENV });

const header = (options = '') => `-- async:description stores a label
-- async:parameter label type:text default:'x' a label
-- async:operation ${options}`;

/** Ways a parameter used to become SQL, each with the value that did it. */
function injections(kind: DatabaseKind) {
  const setting = {
    postgres: '',
    mysql: 'setting:sql_mode=NO_BACKSLASH_ESCAPES',
    sqlite: '',
  }[kind];
  return [
    {
      what: "a placeholder inside the author's own quotes",
      text: `${header()}\nINSERT INTO stored (run, k, v) VALUES (1, 0, '{{label}}');\n-- async:rollback\n`,
      value: '), (1, 1, 666), (1, 2, ',
      refused: /0001_inject\.sql:4: operation 1: \{\{label\}\} is inside a quoted string/,
    },
    {
      what: 'a placeholder inside a comment',
      text: `${header()}\nINSERT INTO stored (run, k, v) -- {{label}}\nVALUES (2, 0, 'a');\n-- async:rollback\n`,
      value: "x\nSELECT 1; INSERT INTO stored (run, k, v) VALUES (2, 1, 'pwned') -- ",
      refused: /0001_inject\.sql:4: operation 1: \{\{label\}\} is inside a comment/,
    },
    {
      what: 'a placeholder on the option line',
      text: `-- async:description stores a label
-- async:parameter label '30s' a text parameter
-- async:operation timeout:{{label}}
INSERT INTO stored (run, k, v) VALUES (3, 0, 'a');
-- async:rollback
`,
      value: '30s transaction:false setting:lock_timeout=0',
      refused:
        /0001_inject\.sql:3: option "timeout:\{\{label\}\}": timeout: takes a parameter of type duration or integer; label is text/,
    },
    {
      what: `a value where a literal goes${setting ? ` (${setting})` : ''}`,
      text: `${header(setting)}\nINSERT INTO stored (run, k, v) VALUES (4, 0, {{label}});\n-- async:rollback\n`,
      value: "\\'); DROP TABLE sentinel; -- ",
      refused: undefined,
    },
  ];
}

for (const target of TARGETS) {
  describe(`parameters are values, never SQL: ${target.kind}`, () => {
    it('the forms that used to inject SQL: refused at load with file:line, or stored exactly (CLI --param)', async () => {
      const db = await target.create();
      try {
        await prepare(db);
        if (db.kind === 'postgres') {
          // A server setting under which a backslash in '...' escapes the quote after it.
          const [{ name } = {}] = await db.query('SELECT current_database() AS name');
          await db.query(`ALTER DATABASE ${String(name)} SET standard_conforming_strings = off`);
        }
        for (const [index, form] of injections(db.kind).entries()) {
          const run = index + 1;
          const dir = writeDefinitions(db.dir, { '0001_inject.sql': form.text });
          const r = await cli(db, dir, [
            'trigger',
            '0001_inject',
            '--wait',
            '--param',
            `label=${form.value}`,
          ]);
          if (form.refused) {
            assert.equal(r.code, 2, `${form.what}: refused as bad input\n${r.stdout}${r.stderr}`);
            assert.match(r.stderr, form.refused, form.what);
            await nothingElseRan(db, run, 0);
          } else {
            assert.equal(r.code, 0, `${form.what}: ${r.stderr}`);
            assert.deepEqual(await storedValues(db, run), [form.value], form.what);
            await nothingElseRan(db, run, 1);
          }
        }
      } finally {
        await db.cleanup();
      }
    });

    it('generated hostile text is stored exactly and runs nothing else, under every server setting', async () => {
      const db = await target.create();
      try {
        await prepare(db);
        const dir = writeDefinitions(db.dir, {});
        const lrm = new AsyncMigrator({ url: db.url, dir, cwd: db.dir, pollInterval: 20 });
        let run = 0;
        for (const variant of await variants(db)) {
          await fc.assert(
            fc.asyncProperty(fc.array(HOSTILE, { minLength: 1, maxLength: 4 }), async (values) => {
              run++;
              const name = `r${String(run).padStart(4, '0')}`;
              writeDefinitions(db.dir, {
                [`${name}.sql`]: storingDefinition(run, values.length, variant.options),
              });
              const parameters = Object.fromEntries(values.map((v, k) => [`p${k}`, v]));
              await lrm.trigger(name, { parameters });
              const done = await lrm.wait(name);
              assert.equal(done.state, 'completed', variant.name);
              assert.deepEqual(await storedValues(db, run), values, variant.name);
              await nothingElseRan(db, run, values.length);
            }),
            { numRuns: RUNS, endOnFailure: true },
          );
        }
      } finally {
        await db.cleanup();
      }
    });
  });
}

const RUNS = Number(process.env.LOCKSTEP_PARAMETER_RUNS ?? 12);

/** What breaks literals somewhere: quotes, escapes, comment starters, dollar quotes, placeholders, bytes of other charsets. */
const PIECES = [
  "'",
  "''",
  '"',
  '`',
  '\\',
  "\\'",
  '\\\\',
  ';',
  '; DROP TABLE sentinel; --',
  "'); DROP TABLE sentinel; --",
  "\\'); DROP TABLE sentinel; -- ",
  '$$); DROP TABLE sentinel; --',
  '--',
  '-- ',
  '#',
  '/*',
  '*/',
  '/*!',
  '$$',
  '$a$',
  '$1',
  '?',
  ':start',
  ':end',
  '{{p0}}',
  '{{x}}',
  '}}',
  '\n',
  '\r\n',
  '\t',
  "E'",
  "X'",
  "U&'",
  '丁\\',
  "縷'",
  '😀',
  'é',
  '\u00a0',
  '\u2028',
  '%',
  '_utf8mb4',
  'NULL',
];

const HOSTILE = fc
  .array(
    fc.oneof(
      fc.constantFrom(...PIECES),
      fc.string({ unit: 'grapheme', maxLength: 3 }),
      fc.string({ unit: 'binary-ascii', maxLength: 3 }),
    ),
    { maxLength: 8 },
  )
  // NUL is refused (no database stores it in text): checked on its own below.
  .map((parts) => parts.join('').replaceAll('\0', ''));

function storingDefinition(run: number, count: number, options: string): string {
  const params = Array.from({ length: count }, (_, k) => `-- async:parameter p${k} type:text default:''`);
  const inserts = Array.from(
    { length: count },
    (_, k) => `INSERT INTO stored (run, k, v) VALUES (${run}, ${k}, {{p${k}}});`,
  );
  return [
    '-- async:description stores hostile values',
    ...params,
    '-- async:precheck',
    'SELECT {{p0}} IS NOT NULL',
    `-- async:operation ${options}`,
    ...inserts,
    '-- async:rollback',
    '',
  ].join('\n');
}

/** The server settings that change how string literals are read, one variant each. */
async function variants(db: TestDatabase): Promise<{ name: string; options: string }[]> {
  switch (db.kind) {
    case 'postgres':
      return [
        { name: 'standard_conforming_strings=on', options: '' },
        { name: 'standard_conforming_strings=off', options: 'setting:standard_conforming_strings=off' },
      ];
    case 'mysql':
      return [
        { name: 'default sql_mode', options: '' },
        { name: 'NO_BACKSLASH_ESCAPES', options: 'setting:sql_mode=NO_BACKSLASH_ESCAPES' },
        { name: 'ANSI_QUOTES', options: 'setting:sql_mode=ANSI_QUOTES' },
        { name: 'character_set_client=gbk', options: 'setting:character_set_client=gbk' },
      ];
    case 'sqlite':
      return [{ name: 'sqlite', options: '' }];
  }
}

const TYPED = `-- async:description typed parameters
-- async:parameter n type:integer default:10 how many
-- async:parameter label type:text default:'x' a label
-- async:parameter on type:boolean default:true a switch
-- async:parameter wait type:duration default:1s a pause
-- async:operation
INSERT INTO stored (run, k, v) VALUES ({{n}}, 0, {{label}});
-- async:rollback
`;

describe('ill-typed values are refused before anything runs', () => {
  it('CLI: exit 2, naming the parameter, its type and the problem (and the library throws ConfigError)', async () => {
    const db = await createSqliteDatabase();
    try {
      await prepare(db);
      const dir = writeDefinitions(db.dir, { '0001_typed.sql': TYPED });
      const cases: [string, RegExp][] = [
        [
          'n=10k',
          /parameter n of 0001_typed takes an integer \(a whole number such as 10000\): "10k" is not a whole number/,
        ],
        ['n=1.5', /parameter n of 0001_typed takes an integer .*: "1.5" is not a whole number/],
        ['n=0x10', /parameter n of 0001_typed takes an integer .*: "0x10" is not a whole number/],
        ['n=1); DROP TABLE sentinel; --', /parameter n .* is not a whole number/],
        [
          'on=yes',
          /parameter on of 0001_typed takes a boolean \(true or false\): "yes" is neither true nor false/,
        ],
        ['wait=30', /parameter wait of 0001_typed takes a duration .*: "30" is not a duration with a unit/],
      ];
      for (const [param, message] of cases) {
        const r = await cli(db, dir, ['trigger', '0001_typed', '--param', param]);
        assert.equal(r.code, 2, `${param}: ${r.stderr}`);
        assert.match(r.stderr, message, param);
      }
      const lrm = new AsyncMigrator({ url: db.url, dir, cwd: db.dir });
      for (const parameters of [{ label: 'a\u0000b' }, { n: '7; DROP TABLE sentinel' }, { wait: true }]) {
        await assert.rejects(
          lrm.trigger('0001_typed', { parameters }),
          ConfigError,
          JSON.stringify(parameters),
        );
      }
      assert.equal((await lrm.status('0001_typed')).runs[0]?.state, 'not_started', 'nothing changed');
      const ok = await cli(db, dir, [
        'trigger',
        '0001_typed',
        '--wait',
        '--param',
        'n=7',
        '--param',
        'on=false',
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(await storedValues(db, 7), ['x']);
      const status = JSON.parse((await cli(db, dir, ['status', '0001_typed', '--json'])).stdout);
      assert.deepEqual(status.runs[0].parameters, { n: 7, label: 'x', on: false, wait: 1000 });
      // The frozen plan is reproducible from the file and the typed values (its checksum matches).
      assert.equal(status.runs[0].definitionChanged, false);
      assert.deepEqual(status.runs[0].declaredParameters.n, {
        type: 'integer',
        default: 10,
        description: 'how many',
      });
    } finally {
      await db.cleanup();
    }
  });

  it('HTTP API: 400, naming the parameter, its type and the problem; a NUL is refused too', async () => {
    const db = await createSqliteDatabase();
    const dir = writeDefinitions(db.dir, { '0001_typed.sql': TYPED });
    const token = 'test-token-0123456789abcdef';
    const server = await serve({ url: db.url, asyncDir: dir, token, port: 0, cwd: db.dir });
    try {
      await prepare(db);
      const trigger = async (parameters: unknown) => {
        const response = await fetch(new URL('api/async/0001_typed/trigger', server.url), {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ parameters }),
        });
        return { status: response.status, body: (await response.json()) as { message?: string } };
      };
      const cases: [unknown, RegExp][] = [
        [{ n: 'ten' }, /parameter n of 0001_typed takes an integer .*: "ten" is not a whole number/],
        [{ n: 2.5 }, /parameter n of 0001_typed takes an integer .*: 2.5 is not a whole number/],
        [{ label: 5 }, /parameter label of 0001_typed takes text \(a string\): 5 is not a string/],
        [{ label: 'a\u0000b' }, /parameter label of 0001_typed takes text .*holds a NUL character/],
        [{ label: '\ud800' }, /parameter label of 0001_typed takes text .*lone surrogate/],
        [{ on: 'maybe' }, /parameter on of 0001_typed takes a boolean .*: "maybe" is neither true nor false/],
        [
          { wait: -1 },
          /parameter wait of 0001_typed takes a duration .*: -1 is not a whole number of milliseconds/,
        ],
      ];
      for (const [parameters, message] of cases) {
        const answer = await trigger(parameters);
        assert.equal(answer.status, 400, JSON.stringify(answer.body));
        assert.match(String(answer.body.message), message);
      }
      const ok = await trigger({ n: 8, on: true, wait: '50ms', label: "it's" });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    } finally {
      await server.close();
      await db.cleanup();
    }
  });
});
