/** Long-running migrations: SQL definition files, run plans, progress, tags and states. Pure. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedDefinition, SourceOperation } from '../../src/async/definition.js';
import {
  bindRange,
  type ProgressPoint,
  planChecksum,
  planRun,
  progressPercent,
  queryTag,
  resolveParameters,
  runMarker,
  tagged,
} from '../../src/async/plan.js';
import { parseAsyncSql } from '../../src/async/sql-definition.js';
import { ACTIVE_STATES, ASYNC_STATES, type AsyncState } from '../../src/async/states.js';
import { type AsyncAction, allowedActions } from '../../src/async/transitions.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { ConfigError, SourceError, type SourceProblem } from '../../src/errors.js';

const FILE = 'async/backfill_email.sql';
// Drivers are made without connecting: their split dialects are what plans are made with.
const POSTGRES = createPostgresDriver('postgres://x@localhost/db', { table: 't', runnerId: 'r' }).dialect;
const SQLITE = createSqliteDriver('sqlite:/tmp/x.db', { table: 't', runnerId: 'r' }).dialect;

const lines = (...text: string[]) => text.join('\n');

/** The one problem `problems` should hold, at `line` of FILE. */
function assertOneProblem(problems: readonly SourceProblem[], line: number | undefined, problem: RegExp) {
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]?.file, FILE);
  assert.equal(problems[0]?.line, line);
  assert.match(problems[0]?.problem ?? '', problem);
}

describe('parseAsyncSql: a valid file', () => {
  const text = lines(
    '-- Lower-cases every email.', // 1
    '-- async:description Backfill users.email_lower', // 2
    '-- async:depends_on add_email_lower, add_index  add_users', // 3
    '-- async:parameter batch_size 10000 rows per batch', // 4
    "-- async:parameter label 'it''s done' logged at the end", // 5
    '-- async:parameter mode fast', // 6
    '-- async:precheck', // 7
    'SELECT COUNT(*) > 0 FROM users;', // 8
    '-- async:healthcheck', // 9
    'SELECT 1;', // 10
    '-- async:is_required', // 11
    'SELECT EXISTS (SELECT 1 FROM users WHERE email_lower IS NULL);', // 12
    '-- async:operation timeout:30m transaction:false setting:work_mem=64MB', // 13
    'CREATE INDEX CONCURRENTLY users_email ON users (email);', // 14
    '-- async:rollback', // 15
    'DROP INDEX CONCURRENTLY users_email;', // 16
    '-- async:operation', // 17
    'ANALYZE users;', // 18
    '-- async:rollback', // 19
    '-- async:operation batched table:users key:id batch_size:{{batch_size}} pause:50ms', // 20
    'UPDATE users SET email_lower = lower(email)', // 21
    'WHERE id >= :start AND id < :end;', // 22
    '-- async:rollback', // 23
    'UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;', // 24
  );
  const parsed = parseAsyncSql(text, FILE);

  it('reads the header, parameters and checks', () => {
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.description, 'Backfill users.email_lower');
    assert.deepEqual(parsed.dependsOn, ['add_email_lower', 'add_index', 'add_users']);
    assert.deepEqual(parsed.parameters, {
      batch_size: { type: 'integer', default: 10000, description: 'rows per batch' },
      label: { type: 'text', default: "it's done", description: 'logged at the end' },
      mode: { type: 'text', default: 'fast' },
    });
    assert.deepEqual(parsed.checks, {
      precheck: { sql: 'SELECT COUNT(*) > 0 FROM users', line: 8 },
      healthcheck: { sql: 'SELECT 1', line: 10 },
      is_required: { sql: 'SELECT EXISTS (SELECT 1 FROM users WHERE email_lower IS NULL)', line: 12 },
    });
  });

  it('gives the operations with their options, texts and lines', () => {
    const problems: SourceProblem[] = [];
    const operations = parsed.operations({ batch_size: 10000, label: "it's done", mode: 'fast' }, problems);
    assert.deepEqual(problems, []);
    assert.deepEqual(operations, [
      {
        sql: 'CREATE INDEX CONCURRENTLY users_email ON users (email);\n',
        rollback: 'DROP INDEX CONCURRENTLY users_email;\n',
        line: 14,
        rollbackLine: 16,
        timeoutMs: 30 * 60_000,
        settings: { work_mem: '64MB' },
        transaction: false,
      },
      {
        sql: 'ANALYZE users;\n',
        rollback: '',
        line: 18,
        rollbackLine: 20,
        timeoutMs: null,
        settings: {},
        transaction: true,
      },
      {
        sql: 'UPDATE users SET email_lower = lower(email)\nWHERE id >= :start AND id < :end;\n',
        rollback: 'UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;\n',
        line: 21,
        rollbackLine: 24,
        timeoutMs: null,
        settings: {},
        transaction: true,
        batch: { table: 'users', key: 'id', size: 10000, pauseMs: 50 },
      },
    ]);
  });

  it('takes batch_size from the parameter value passed in', () => {
    const problems: SourceProblem[] = [];
    const [, , batched] = parsed.operations({ batch_size: 250 }, problems);
    assert.deepEqual(problems, []);
    assert.equal(batched?.batch?.size, 250);
  });

  it("reports a parameter value the operation's options cannot take, at the operation's line", () => {
    const problems: SourceProblem[] = [];
    parsed.operations({ batch_size: 0 }, problems);
    assertOneProblem(problems, 20, /batch_size:<whole number ≥ 1>, got "0"/);
  });
});

describe('parseAsyncSql: problems', () => {
  const D = '-- async:description d';
  const OP = ['-- async:operation', 'SELECT 1;', '-- async:rollback'];
  const PRE = '-- async:precheck';
  const RANGED = 'UPDATE t SET a = 1 WHERE id >= :start AND id < :end;';
  /** A valid file but for the options of its one operation, whose marker is line 2. */
  const O = (options: string) => lines(D, `-- async:operation ${options}`, RANGED, '-- async:rollback');
  /** [what, file text, line of the problem (none: the whole file), problem] */
  const cases: readonly [string, string, number | undefined, RegExp][] = [
    ['an unknown marker', lines(D, ...OP, '-- async:cleanup'), 5, /unknown marker "-- async:cleanup"/],
    ['an operation without rollback', lines(D, ...OP.slice(0, 2)), 2, /without "-- async:rollback"/],
    ['a rollback before any operation', lines(D, '-- async:rollback', ...OP), 2, /must follow an/],
    ['a second rollback', lines(D, ...OP, 'SELECT 2;', '-- async:rollback'), 6, /second .* at line 2/],
    ['SQL outside any section', lines(D, '-- fine', 'DELETE FROM t;', ...OP), 3, /SQL outside any/],
    ['no description', lines(...OP), undefined, /no "-- async:description/],
    ['no operation', D, undefined, /no "-- async:operation" section/],
    ['an unknown option', O('fast:yes'), 2, /unknown option "fast:yes"/],
    ['a bad timeout', O('timeout:soon'), 2, /"timeout:soon": timeout takes a duration/],
    ['transaction:maybe', O('transaction:maybe'), 2, /"transaction:maybe": transaction takes true or/],
    ['batched without table and key', O('batched batch_size:100'), 2, /needs table:<table> and key:/],
    ['batch_size 0', O('batched table:t key:id batch_size:0'), 2, /batch_size:<whole number ≥ 1>, got "0"/],
    [
      'batched transaction:false',
      O('batched table:t key:id batch_size:9 transaction:false'),
      2,
      /always runs each batch in a/,
    ],
    ['table: without batched', O('table:t'), 2, /table only apply to a "batched" operation/],
    ['an unknown {{parameter}} in options', O('timeout:{{wait}}'), 2, /\{\{wait\}\} is not a parameter/],
    // Not an own property: a name that Object.prototype has is no parameter either.
    ['{{toString}} in options', O('timeout:{{toString}}'), 2, /\{\{toString\}\} is not a parameter/],
    ['an empty precheck', lines(D, PRE, '', ...OP), 2, /empty "-- async:precheck"/],
    [
      'a second precheck',
      lines(D, PRE, 'SELECT 1;', PRE, 'SELECT 2;', ...OP),
      4,
      /a second "-- async:precheck"/,
    ],
    ['a bad parameter line', lines(D, '-- async:parameter batch_size', ...OP), 2, /expected "-- async:param/],
    [
      'an unterminated quoted default',
      lines(D, "-- async:parameter label 'open", ...OP),
      2,
      /expected "-- async:param/,
    ],
  ];
  for (const [name, text, line, problem] of cases) {
    it(`reports ${name}`, () => assertOneProblem(parseAsyncSql(text, FILE).problems, line, problem));
  }
});

describe('resolveParameters', () => {
  const definition = {
    name: 'backfill',
    parameters: {
      batch_size: { type: 'integer', default: 10000 },
      label: { type: 'text', default: 'done' },
    },
  } as const;
  const cases: readonly [string, Record<string, unknown>, Record<string, unknown>][] = [
    ['the defaults', {}, { batch_size: 10000, label: 'done' }],
    ['an override', { batch_size: 500 }, { batch_size: 500, label: 'done' }],
    ['a number from a string', { batch_size: '5000' }, { batch_size: 5000, label: 'done' }],
    ['a string', { label: "it's; over" }, { batch_size: 10000, label: "it's; over" }],
  ];
  for (const [name, given, values] of cases) {
    it(`gives ${name}`, () => assert.deepEqual(resolveParameters(definition, given), values));
  }
  it('gives the defaults when given nothing', () => {
    assert.deepEqual(resolveParameters(definition), { batch_size: 10000, label: 'done' });
  });

  const bad: readonly { given: Record<string, unknown>; message: RegExp }[] = [
    {
      given: { batch_size: 'abc' },
      message:
        /parameter batch_size of backfill takes an integer \(a whole number such as 10000\): "abc" is not a whole number/,
    },
    { given: { batch_size: ' ' }, message: /parameter batch_size of backfill takes an integer/ },
    {
      given: { label: 7 },
      message: /parameter label of backfill takes text \(a string\): 7 is not a string/,
    },
    { given: { size: 1 }, message: /backfill has no parameter "size"; its parameters: batch_size, label/ },
    { given: { toString: 1 }, message: /backfill has no parameter "toString"/ },
  ];
  for (const { given, message } of bad) {
    it(`refuses ${JSON.stringify(given)}`, () => {
      assert.throws(
        () => resolveParameters(definition, given),
        (e) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }
});

describe('planRun', () => {
  function op(sql: string, fields: Partial<SourceOperation> = {}): SourceOperation {
    return { sql, rollback: '', line: 10, timeoutMs: null, settings: {}, transaction: true, ...fields };
  }
  function definition(
    operations: SourceOperation[],
    fields: Partial<LoadedDefinition> = {},
  ): LoadedDefinition {
    return {
      name: 'backfill',
      file: FILE,
      description: 'd',
      dependsOn: [],
      parameters: {},
      operations: () => operations,
      ...fields,
    };
  }
  const BATCH = { table: 'users', key: 'id', size: 100, pauseMs: 0 };

  it('splits statements, each with its line in the file', () => {
    const source = op(
      '-- first\nCREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1); INSERT INTO a VALUES (2);\n',
      {
        rollback: '\nDROP TABLE a;\n',
        rollbackLine: 20,
        timeoutMs: 1000,
        settings: { work_mem: '64MB' },
      },
    );
    const plan = planRun(definition([source]), {}, SQLITE);
    assert.deepEqual(plan.operations, [
      {
        kind: 'sql',
        statements: [
          { sql: 'CREATE TABLE a (id int)', line: 11 },
          { sql: 'INSERT INTO a VALUES (1)', line: 13 },
          { sql: 'INSERT INTO a VALUES (2)', line: 13 },
        ],
        rollback: [{ sql: 'DROP TABLE a', line: 21 }],
        timeoutMs: 1000,
        settings: { work_mem: '64MB' },
        transaction: true,
      },
    ]);
  });

  it("splits with the database's dialect", () => {
    const sql = 'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\nSELECT 3;\n';
    const plan = planRun(definition([op(sql)]), {}, POSTGRES);
    assert.deepEqual(plan.operations[0]?.statements, [
      { sql: 'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$', line: 10 },
      { sql: 'SELECT 3', line: 11 },
    ]);
  });

  it('substitutes parameters after splitting and carries dependsOn and parameters', () => {
    const values = { label: 'a; b', size: 50 };
    const plan = planRun(
      definition([op('INSERT INTO log VALUES ({{label}}); SELECT {{size}};')], { dependsOn: ['add_log'] }),
      values,
      SQLITE,
    );
    assert.deepEqual(
      plan.operations[0]?.statements.map((s) => s.sql),
      ["INSERT INTO log VALUES ((CAST(X'613b2062' AS TEXT)))", 'SELECT 50'],
    );
    assert.deepEqual(plan.parameters, values);
    assert.deepEqual(plan.dependsOn, ['add_log']);
  });

  it('plans a batched operation', () => {
    const sql = 'UPDATE users SET a = 1 WHERE id >= :start AND id < :end;';
    const plan = planRun(definition([op(sql, { rollback: '', batch: BATCH })]), {}, SQLITE);
    assert.equal(plan.operations[0]?.kind, 'batched');
    assert.deepEqual(plan.operations[0]?.batch, BATCH);
    assert.deepEqual(plan.operations[0]?.rollback, []);
  });

  const bad: readonly { name: string; operations: SourceOperation[]; line?: number; problem: RegExp }[] = [
    {
      name: 'an unknown {{parameter}}',
      operations: [op('SELECT 1;\nSELECT {{nope}};')],
      line: 11,
      problem: /operation 1: \{\{nope\}\} is not a parameter/,
    },
    {
      name: 'an unknown {{parameter}} in a rollback',
      operations: [op('SELECT 1;'), op('SELECT 2;', { rollback: 'SELECT {{nope}};', rollbackLine: 30 })],
      line: 30,
      problem: /operation 2 \(rollback\): \{\{nope\}\} is not a parameter/,
    },
    {
      name: 'a batched operation without :start and :end',
      operations: [op('UPDATE users SET a = 1 WHERE id >= :start;', { batch: BATCH })],
      line: 10,
      problem: /batched operation 1 must limit its SQL to the batch with :start and :end/,
    },
    {
      name: 'a batched rollback without :start and :end',
      operations: [
        op('UPDATE users SET a = 1 WHERE id >= :start AND id < :end;', {
          rollback: 'UPDATE users SET a = 0;',
          batch: BATCH,
        }),
      ],
      line: 10,
      problem: /must limit its SQL and rollback to the batch/,
    },
    {
      name: 'an operation with no SQL',
      operations: [op('-- nothing\n')],
      line: 10,
      problem: /operation 1 has no SQL/,
    },
    { name: 'no operations', operations: [], problem: /has no operations/ },
  ];
  for (const { name, operations, line, problem } of bad) {
    it(`refuses ${name} with its file and line`, () => {
      assert.throws(
        () => planRun(definition(operations), { n: 1 }, SQLITE),
        (e) => {
          assert.ok(e instanceof SourceError);
          assertOneProblem(e.problems, line, problem);
          return true;
        },
      );
    });
  }

  it('plans a parsed SQL file', () => {
    const parsed = parseAsyncSql(
      lines(
        '-- async:description d', // 1
        '-- async:parameter note 5', // 2
        '-- async:operation', // 3
        'SELECT {{note}};', // 4
        '', // 5
        'SELECT 2;', // 6
        '-- async:rollback', // 7
        'SELECT 3;', // 8
      ),
      FILE,
    );
    const values = resolveParameters({ name: 'd', parameters: parsed.parameters }, { note: '7' });
    const loaded = definition([], { operations: (v) => parsed.operations(v, []) });
    const [planned] = planRun(loaded, values, SQLITE).operations;
    assert.deepEqual(planned?.statements, [
      { sql: 'SELECT 7', line: 4 },
      { sql: 'SELECT 2', line: 6 },
    ]);
    assert.deepEqual(planned?.rollback, [{ sql: 'SELECT 3', line: 8 }]);
  });

  it('gives a checksum that is stable for equal plans and follows parameters', () => {
    const plan = (values: Record<string, number>) =>
      planRun(definition([op('SELECT {{n}};')]), values, SQLITE);
    assert.equal(planChecksum(plan({ n: 1 })), planChecksum(plan({ n: 1 })));
    assert.match(planChecksum(plan({ n: 1 })), /^[0-9a-f]{64}$/);
    assert.notEqual(planChecksum(plan({ n: 1 })), planChecksum(plan({ n: 2 })));
    assert.notEqual(planChecksum(plan({ n: 1 })), planChecksum(plan({ n: 1, unused: 1 })));
  });
});

describe('bindRange', () => {
  const cases: readonly [string, string][] = [
    ['WHERE id >= :start AND id < :end', 'WHERE id >= 100 AND id < 200'],
    ['WHERE id BETWEEN :start AND (:end - 1)', 'WHERE id BETWEEN 100 AND (200 - 1)'],
    ['SELECT x::start, :startx, a:end, :ending', 'SELECT x::start, :startx, a:end, :ending'],
  ];
  for (const [sql, expected] of cases) {
    it(sql, () => assert.equal(bindRange(sql, 100n, 200n), expected));
  }
});

describe('progressPercent', () => {
  const at = (fields: Partial<ProgressPoint>): ProgressPoint => ({
    direction: 'forward',
    opIndex: 0,
    opCount: 3,
    cursor: null,
    min: null,
    max: null,
    ...fields,
  });
  const HALF = { cursor: 51n, min: 1n, max: 100n };
  const cases: readonly { name: string; point: ProgressPoint; percent: number }[] = [
    { name: 'forward, nothing done', point: at({}), percent: 0 },
    { name: 'forward, op 2 in flight', point: at({ opIndex: 1 }), percent: 33.33 },
    { name: 'forward, op 2 half-way', point: at({ opIndex: 1, ...HALF }), percent: 50 },
    {
      name: 'forward, op 3 at its first key',
      point: at({ opIndex: 2, cursor: 1n, min: 1n, max: 100n }),
      percent: 66.67,
    },
    { name: 'forward, all done', point: at({ opIndex: 3 }), percent: 100 },
    { name: 'rollback of op 3 starting', point: at({ direction: 'rollback', opIndex: 2 }), percent: 100 },
    {
      name: 'rollback of op 2 half-way',
      point: at({ direction: 'rollback', opIndex: 1, ...HALF }),
      percent: 50,
    },
    {
      name: 'rollback of op 1 past its last key',
      point: at({ direction: 'rollback', opIndex: 0, cursor: 101n, min: 1n, max: 100n }),
      percent: 0,
    },
    { name: 'rollback, all undone', point: at({ direction: 'rollback', opIndex: -1 }), percent: 0 },
    { name: 'clamped to 100', point: at({ opIndex: 5 }), percent: 100 },
    { name: 'clamped to 0', point: at({ direction: 'rollback', opIndex: -4 }), percent: 0 },
    { name: 'no operations', point: at({ opCount: 0 }), percent: 100 },
  ];
  for (const { name, point, percent } of cases) {
    it(name, () => assert.equal(progressPercent(point), percent));
  }
});

describe('query tags', () => {
  it('start with the run marker and name the direction, operation and attempt', () => {
    assert.equal(runMarker('backfill'), 'lockstep-async:backfill:');
    assert.equal(queryTag('backfill', 3, 'forward', 1, 'b42'), 'lockstep-async:backfill:op2:a3:b42');
    assert.equal(queryTag('backfill', 1, 'rollback', 0, 's1'), 'lockstep-async:backfill:undo1:a1:s1');
    assert.ok(queryTag('backfill', 1, 'forward', 0, 's1').startsWith(runMarker('backfill')));
    assert.equal(tagged('t:op1', 'SELECT 1'), '/* t:op1 */ SELECT 1');
  });
});

describe('allowedActions', () => {
  const cases: readonly [AsyncState, AsyncAction[]][] = [
    ['not_started', ['trigger']],
    ['queued', ['stop']],
    ['starting', ['stop']],
    ['running', ['stop', 'force-stop']],
    ['stopping', ['force-stop']],
    ['errored', ['resume', 'rollback']],
    ['rolling_back', ['stop', 'force-stop']],
    ['rolled_back', ['trigger']],
    ['completed', ['rollback']],
    ['failed_at_startup', ['trigger']],
  ];
  it('covers every state', () =>
    assert.deepEqual(cases.map(([state]) => state).sort(), [...ASYNC_STATES].sort()));
  for (const [state, actions] of cases) {
    const active = ACTIVE_STATES.includes(state);
    it(state, () => {
      assert.deepEqual(allowedActions(state), actions);
      assert.deepEqual(allowedActions(state, true), actions);
      assert.deepEqual(allowedActions(state, false), active ? ['resume', 'rollback', 'stop'] : actions);
    });
  }
  it('has only known states among the active ones', () => {
    assert.deepEqual(
      ACTIVE_STATES.filter((s) => !ASYNC_STATES.includes(s)),
      [],
    );
    assert.deepEqual([...ACTIVE_STATES].sort(), ['rolling_back', 'running', 'starting', 'stopping']);
  });
});
