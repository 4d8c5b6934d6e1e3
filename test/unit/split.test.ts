/** Statement splitting: pure, table-driven, with each driver's own dialect. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { lineAt, lineFinder, type SplitDialect, splitStatements } from '../../src/sql/split.js';
import { type Case, COMMON, POSTGRES, SQLITE } from './split-cases.js';

// The dialects the drivers really use (building a driver opens no connection).
const options = { table: 'lockstep_migrations', runnerId: 'test:1' };
const postgres: SplitDialect = createPostgresDriver('postgres://localhost/unused', options).dialect.syntax;
const sqlite: SplitDialect = createSqliteDriver('sqlite:unused.db', options).dialect.syntax;
const DIALECTS = [
  { name: 'postgres', dialect: postgres },
  { name: 'sqlite', dialect: sqlite },
] as const;

const split = (text: string, dialect: SplitDialect) => splitStatements(text, dialect).map((s) => s.sql);

/** Every statement's offset points at its own first character in the text that was split. */
function assertOffsets(text: string, dialect: SplitDialect) {
  for (const statement of splitStatements(text, dialect)) {
    assert.equal(text.slice(statement.offset, statement.offset + statement.sql.length), statement.sql);
  }
}

function runCases(dialect: SplitDialect, cases: readonly Case[]) {
  for (const { name, text, expected } of cases) {
    it(name, () => {
      assert.deepEqual(split(text, dialect), expected);
      assertOffsets(text, dialect);
    });
  }
}

for (const { name, dialect } of DIALECTS) {
  describe(`splitStatements (${name}): common constructs`, () => runCases(dialect, COMMON));
}
describe('splitStatements (postgres)', () => runCases(postgres, POSTGRES));
describe('splitStatements (sqlite)', () => runCases(sqlite, SQLITE));

describe('splitStatements: offsets and lines', () => {
  const text = [
    '-- a header comment',
    '',
    'CREATE TABLE a (id int);  /* trailing */',
    '',
    '  /* leading */ INSERT INTO a',
    '  VALUES (1);',
    "-- comment; with 'quote",
    'SELECT 3',
  ].join('\n');

  for (const { name, dialect } of DIALECTS) {
    it(`points at the first token of each statement (${name})`, () => {
      const statements = splitStatements(text, dialect);
      assert.deepEqual(
        statements.map((s) => ({ offset: s.offset, line: lineAt(text, s.offset) })),
        [
          { offset: text.indexOf('CREATE'), line: 3 },
          { offset: text.indexOf('INSERT'), line: 5 },
          { offset: text.indexOf('SELECT 3'), line: 8 },
        ],
      );
      assert.deepEqual(
        statements.map((s) => s.sql),
        ['CREATE TABLE a (id int)', 'INSERT INTO a\n  VALUES (1)', 'SELECT 3'],
      );
    });
  }

  it('counts CRLF line endings once', () => {
    const crlf = 'SELECT 1;\r\n\r\nSELECT 2;\r\n';
    const statements = splitStatements(crlf, postgres);
    assert.deepEqual(
      statements.map((s) => [s.sql, lineAt(crlf, s.offset)]),
      [
        ['SELECT 1', 1],
        ['SELECT 2', 3],
      ],
    );
  });
});

describe('lineAt', () => {
  const cases: readonly { text: string; offset: number; line: number }[] = [
    { text: 'abc', offset: 0, line: 1 },
    { text: 'a\nb\nc', offset: 1, line: 1 }, // the newline itself ends line 1
    { text: 'a\nb\nc', offset: 2, line: 2 },
    { text: 'a\nb\nc', offset: 4, line: 3 },
    { text: 'a\nb\nc', offset: 99, line: 3 }, // past the end: the last line
    { text: 'a\r\nb', offset: 3, line: 2 },
    { text: '', offset: 0, line: 1 },
  ];
  for (const { text, offset, line } of cases) {
    it(`${JSON.stringify(text)} at ${offset} is line ${line}`, () =>
      assert.equal(lineAt(text, offset), line));
  }
});

describe('lineFinder', () => {
  it('gives what lineAt gives, for ascending and then descending offsets', () => {
    const text = 'a\nbb\r\n\nccc\n';
    const lineOf = lineFinder(text);
    const offsets = [0, 1, 2, 3, 5, 6, 7, 8, 11, 12, 99, 4, 0, 9];
    assert.deepEqual(
      offsets.map((o) => lineOf(o)),
      offsets.map((o) => lineAt(text, o)),
    );
  });
});
