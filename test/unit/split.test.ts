/** Statement splitting: pure, table-driven, with each driver's own dialect. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPostgresDriver } from '../../src/drivers/postgres.js';
import { createSqliteDriver } from '../../src/drivers/sqlite.js';
import { lineAt, type SplitDialect, splitStatements } from '../../src/sql/split.js';

// The dialects the drivers really use (building a driver opens no connection).
const options = { table: 'lockstep_migrations', runnerId: 'test:1' };
const postgres: SplitDialect = createPostgresDriver('postgres://localhost/unused', options).syntax;
const sqlite: SplitDialect = createSqliteDriver('sqlite:unused.db', options).syntax;
const DIALECTS = [
  { name: 'postgres', dialect: postgres },
  { name: 'sqlite', dialect: sqlite },
] as const;

interface Case {
  readonly name: string;
  readonly text: string;
  readonly expected: readonly string[];
}

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

/** Constructs both dialects read the same way. */
const COMMON: readonly Case[] = [
  { name: 'splits on semicolons', text: 'SELECT 1; SELECT 2;', expected: ['SELECT 1', 'SELECT 2'] },
  {
    name: 'keeps a semicolon inside a string',
    text: "INSERT INTO t VALUES ('a;b'); SELECT 2",
    expected: ["INSERT INTO t VALUES ('a;b')", 'SELECT 2'],
  },
  {
    name: 'reads a doubled quote as part of the string',
    text: "SELECT 'it''s; fine'; SELECT 2",
    expected: ["SELECT 'it''s; fine'", 'SELECT 2'],
  },
  {
    name: 'keeps a string that spans lines',
    text: "INSERT INTO t VALUES ('line 1;\nline 2');\nSELECT 2",
    expected: ["INSERT INTO t VALUES ('line 1;\nline 2')", 'SELECT 2'],
  },
  {
    name: 'keeps a semicolon inside a "quoted identifier"',
    text: 'CREATE TABLE "odd;name" (x int); SELECT 2',
    expected: ['CREATE TABLE "odd;name" (x int)', 'SELECT 2'],
  },
  {
    name: 'reads a doubled "" inside a quoted identifier',
    text: 'CREATE TABLE "a"";b" (x int); SELECT 2',
    expected: ['CREATE TABLE "a"";b" (x int)', 'SELECT 2'],
  },
  {
    name: 'does not treat a backslash in a plain string as an escape',
    text: "SELECT 'C:\\'; SELECT 2",
    expected: ["SELECT 'C:\\'", 'SELECT 2'],
  },
  {
    name: 'ignores a semicolon in a -- comment',
    text: 'SELECT 1 -- not; here\n; SELECT 2',
    expected: ['SELECT 1 -- not; here', 'SELECT 2'],
  },
  {
    name: 'ignores a semicolon in a /* */ comment',
    text: 'SELECT /* ; */ 1; SELECT 2',
    expected: ['SELECT /* ; */ 1', 'SELECT 2'],
  },
  {
    name: 'does not read -- or /* inside a string as a comment',
    text: "SELECT '--'; SELECT '/*'; SELECT 3",
    expected: ["SELECT '--'", "SELECT '/*'", 'SELECT 3'],
  },
  {
    name: 'leaves out comments before a statement',
    text: '-- header; with a semicolon\n/* block; */\nSELECT 1;',
    expected: ['SELECT 1'],
  },
  {
    name: 'keeps a last statement without a trailing semicolon',
    text: 'SELECT 1;\nSELECT 2\n',
    expected: ['SELECT 1', 'SELECT 2'],
  },
  { name: 'drops empty statements', text: ';;\n ; SELECT 1;; ;', expected: ['SELECT 1'] },
  { name: 'gives nothing for empty input', text: '', expected: [] },
  { name: 'gives nothing for whitespace', text: ' \n\t\r\n', expected: [] },
  {
    name: 'gives nothing for comments only',
    text: '-- just a comment\n/* and; another */\n-- last line without newline',
    expected: [],
  },
  {
    name: 'splits a CASE ... END expression outside any body',
    text: 'SELECT CASE WHEN true THEN 1 END; SELECT 2',
    expected: ['SELECT CASE WHEN true THEN 1 END', 'SELECT 2'],
  },
  {
    name: 'splits a transaction block into its statements',
    text: 'BEGIN; INSERT INTO t VALUES (1); COMMIT;',
    expected: ['BEGIN', 'INSERT INTO t VALUES (1)', 'COMMIT'],
  },
];

const POSTGRES: readonly Case[] = [
  {
    name: "honours \\' inside E'...'",
    text: "SELECT E'it\\'s; here'; SELECT 2",
    expected: ["SELECT E'it\\'s; here'", 'SELECT 2'],
  },
  {
    name: "honours \\\\ inside e'...' (lower case)",
    text: "SELECT e'\\\\'; SELECT 2",
    expected: ["SELECT e'\\\\'", 'SELECT 2'],
  },
  {
    name: "does not take a word ending in E for the E'...' prefix",
    text: "SELECT time'\\'; SELECT 2",
    expected: ["SELECT time'\\'", 'SELECT 2'],
  },
  {
    name: 'nests /* */ comments',
    text: '/* outer /* inner */ still; comment */ SELECT 1; SELECT 2',
    expected: ['SELECT 1', 'SELECT 2'],
  },
  {
    name: 'keeps semicolons inside a $$ body',
    text: `CREATE FUNCTION f() RETURNS trigger AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
SELECT 2`,
    expected: [
      'CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql',
      'SELECT 2',
    ],
  },
  {
    name: 'keeps semicolons and $$ inside a $tag$ body',
    text: "DO $body$ BEGIN PERFORM $$;$$; RAISE NOTICE 'x;'; END $body$; SELECT 2",
    expected: ["DO $body$ BEGIN PERFORM $$;$$; RAISE NOTICE 'x;'; END $body$", 'SELECT 2'],
  },
  {
    name: 'matches the closing $tag$ exactly',
    text: 'SELECT $a$ ; $b$ ; $A$ ; $a$; SELECT 2',
    expected: ['SELECT $a$ ; $b$ ; $A$ ; $a$', 'SELECT 2'],
  },
  {
    name: 'does not take $1 parameters for dollar quotes',
    text: 'PREPARE p(int) AS SELECT $1; SELECT 2',
    expected: ['PREPARE p(int) AS SELECT $1', 'SELECT 2'],
  },
  {
    name: 'does not take a $ inside an identifier for a dollar quote',
    text: 'SELECT a$b$c FROM t; SELECT 2',
    expected: ['SELECT a$b$c FROM t', 'SELECT 2'],
  },
  {
    name: 'keeps a BEGIN ATOMIC ... END body whole, with CASE ... END inside',
    text: `CREATE FUNCTION sign_of(x int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN x > 0 THEN 1 WHEN x < 0 THEN -1 ELSE 0 END;
END;
SELECT 2`,
    expected: [
      'CREATE FUNCTION sign_of(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 WHEN x < 0 THEN -1 ELSE 0 END;\nEND',
      'SELECT 2',
    ],
  },
  {
    name: 'keeps a procedure body with several statements and nested CASE',
    text: 'create procedure p() language sql begin atomic insert into t values (case when true then case when false then 1 else 2 end end); delete from u; end; select 3',
    expected: [
      'create procedure p() language sql begin atomic insert into t values (case when true then case when false then 1 else 2 end end); delete from u; end',
      'select 3',
    ],
  },
  {
    name: 'keeps a CREATE RULE ... DO ALSO ( ...; ... ) action list whole',
    text: 'CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO log VALUES (new.id); INSERT INTO log VALUES (new.id * 10)); SELECT 2',
    expected: [
      'CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO log VALUES (new.id); INSERT INTO log VALUES (new.id * 10))',
      'SELECT 2',
    ],
  },
  {
    name: 'keeps a DO INSTEAD action list whole across lines, with nested parentheses',
    text: 'create rule r as on update to a do instead (\n  update b set x = (select max(x) from c);\n  notify a;\n);\nselect 2',
    expected: [
      'create rule r as on update to a do instead (\n  update b set x = (select max(x) from c);\n  notify a;\n)',
      'select 2',
    ],
  },
  {
    name: 'does not count parentheses in strings, identifiers, comments or dollar quotes',
    text: 'CREATE RULE r AS ON DELETE TO a DO ALSO (SELECT \')\', ")", $$)$$ /* ) */; SELECT 1); SELECT 2',
    expected: [
      'CREATE RULE r AS ON DELETE TO a DO ALSO (SELECT \')\', ")", $$)$$ /* ) */; SELECT 1)',
      'SELECT 2',
    ],
  },
  {
    name: 'splits after a stray closing parenthesis',
    text: 'SELECT 1); SELECT (2); SELECT 3',
    expected: ['SELECT 1)', 'SELECT (2)', 'SELECT 3'],
  },
];

const SQLITE: readonly Case[] = [
  {
    name: 'keeps a semicolon inside a `backtick identifier`',
    text: 'CREATE TABLE `odd;name` (x); SELECT 2',
    expected: ['CREATE TABLE `odd;name` (x)', 'SELECT 2'],
  },
  {
    name: 'reads a doubled `` inside a backtick identifier',
    text: 'CREATE TABLE `a``;b` (x); SELECT 2',
    expected: ['CREATE TABLE `a``;b` (x)', 'SELECT 2'],
  },
  {
    name: 'keeps a semicolon inside a [bracket identifier]',
    text: 'CREATE TABLE [odd;name] (x); SELECT 2',
    expected: ['CREATE TABLE [odd;name] (x)', 'SELECT 2'],
  },
  {
    name: 'does not nest /* */ comments',
    text: '/* a /* b */ SELECT 1; SELECT 2',
    expected: ['SELECT 1', 'SELECT 2'],
  },
  {
    name: 'has no backslash escapes, not even after E',
    text: "SELECT E'\\'; SELECT 2",
    expected: ["SELECT E'\\'", 'SELECT 2'],
  },
  {
    name: 'keeps a CREATE TRIGGER ... BEGIN ... END body whole',
    text: `CREATE TRIGGER log_insert AFTER INSERT ON users
BEGIN
  INSERT INTO log (what) VALUES ('insert; ' || new.id);
  UPDATE counters SET n = n + 1;
END;
SELECT 2`,
    expected: [
      "CREATE TRIGGER log_insert AFTER INSERT ON users\nBEGIN\n  INSERT INTO log (what) VALUES ('insert; ' || new.id);\n  UPDATE counters SET n = n + 1;\nEND",
      'SELECT 2',
    ],
  },
  {
    name: 'keeps CASE ... END inside a trigger body',
    text: "CREATE TRIGGER t AFTER UPDATE ON a BEGIN UPDATE a SET s = CASE WHEN new.x > 0 THEN 'pos' ELSE 'neg' END WHERE id = new.id; DELETE FROM b; END; SELECT 2",
    expected: [
      "CREATE TRIGGER t AFTER UPDATE ON a BEGIN UPDATE a SET s = CASE WHEN new.x > 0 THEN 'pos' ELSE 'neg' END WHERE id = new.id; DELETE FROM b; END",
      'SELECT 2',
    ],
  },
  {
    name: 'keeps a CREATE TEMP TRIGGER body whole',
    text: 'CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END; SELECT 2',
    expected: ['CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END', 'SELECT 2'],
  },
  {
    name: 'keeps a lower-case create temporary trigger if not exists body whole',
    text: 'create temporary trigger if not exists t after insert on a begin delete from b; end; select 2',
    expected: [
      'create temporary trigger if not exists t after insert on a begin delete from b; end',
      'select 2',
    ],
  },
  {
    name: 'handles CASE ... END in a WHEN clause before BEGIN',
    text: 'CREATE TRIGGER t BEFORE INSERT ON a WHEN CASE WHEN new.x THEN 1 END BEGIN SELECT 1; SELECT 2; END; SELECT 3',
    expected: [
      'CREATE TRIGGER t BEFORE INSERT ON a WHEN CASE WHEN new.x THEN 1 END BEGIN SELECT 1; SELECT 2; END',
      'SELECT 3',
    ],
  },
  {
    name: 'splits BEGIN ... END used as a transaction, not a trigger',
    text: 'BEGIN; INSERT INTO t VALUES (1); END;',
    expected: ['BEGIN', 'INSERT INTO t VALUES (1)', 'END'],
  },
];

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
