/**
 * goose's SQL format, read as goose's own parser (pressly/goose internal/sqlparser) reads it: each
 * case of its parser tests (semicolons, annotations, statement splitting, parsing errors, invalid
 * up sections, transactions, environment substitution), written here in our own SQL, and goose's
 * Go migrations, which lockstep lists and refuses to run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  gooseAnnotation,
  gooseEndsWithSemicolon,
  hasGooseAnnotation,
  parseGoose,
} from '../../src/core/formats/goose.js';
import { POSTGRES, problemsOf, read, statementsOf } from '../helpers/format-dirs.js';

const FILE = 'db/00001_x.sql';
const units = (text: string) => {
  const parsed = parseGoose(text, FILE);
  assert.deepEqual(parsed.problems, [], 'accepted');
  return { up: parsed.up.map((u) => u.sql), down: parsed.down.map((u) => u.sql), parsed };
};
const refused = (text: string) => {
  const parsed = parseGoose(text, FILE);
  assert.ok(parsed.problems.length > 0, `refused: ${text}`);
  return parsed.problems;
};

describe('goose: a statement ends at a line whose last word before "--" ends with ";"', () => {
  for (const [line, ends] of [
    ['COMMIT;', true],
    ['COMMIT; -- done', true],
    ['COMMIT    ; -- done', true],
    ['COMMIT -- done', false],
    ['COMMIT -- done ;', false],
    ['COMMIT " ; " -- done', false],
    ['  SELECT 1;\t', true],
    ['', false],
  ] as const) {
    it(JSON.stringify(line), () => assert.equal(gooseEndsWithSemicolon(line), ends));
  }
});

describe('goose: annotations', () => {
  for (const [line, expected] of [
    ['-- +goose Up', 'Up'],
    ['-- +goose Down', 'Down'],
    ['-- +goose StatementBegin', 'StatementBegin'],
    ['-- +goose StatementEnd', 'StatementEnd'],
    ['-- +goose NO TRANSACTION', 'NO TRANSACTION'],
    ['-- +goose ENVSUB ON', 'ENVSUB ON'],
    ['-- +goose envsub off', 'ENVSUB OFF'],
    ['-- +goose   UP \t', 'Up'],
    ['--+goose down', 'Down'],
  ] as const) {
    it(`${JSON.stringify(line)} is ${expected}`, () => assert.equal(gooseAnnotation(line), expected));
  }
  for (const [line, why] of [
    ['-- +goose unsupported', /not a goose annotation/],
    ['-- +goose', /empty/],
    [' -- +goose   UP \t', /beginning of the line/],
    ['\t-- +goose   UP \t', /beginning of the line/],
    ['-- +goose +goose Up', /more than one/],
  ] as const) {
    it(`${JSON.stringify(line)} is refused`, () => {
      const result = gooseAnnotation(line);
      assert.ok(typeof result !== 'string');
      assert.match(result.problem, why);
    });
  }

  it('a comment that mentions +goose is an annotation to goose: refused, with its line', () => {
    const [problem] = refused('-- +goose Up\n-- see the +goose docs\nSELECT 1;\n');
    assert.equal(problem?.line, 2);
  });

  it('a file is goose\'s when a comment line holds "+goose"', () => {
    assert.equal(hasGooseAnnotation('-- +goose Up\nSELECT 1;\n'), true);
    assert.equal(hasGooseAnnotation('  -- +goose Up\r\nSELECT 1;\r\n'), true);
    assert.equal(hasGooseAnnotation("SELECT '+goose';\n"), false);
  });
});

describe('goose: statements, as goose splits them', () => {
  it('multi-line statements, comments between and after them, two on one line', () => {
    const { up, down } = units(`-- +goose Up
CREATE TABLE book (
    id int NOT NULL,
    title text,
    PRIMARY KEY(id)
);                  -- first

-- a comment
SELECT 2;           -- second
SELECT 3; SELECT 3; -- third: goose runs both at once
SELECT 4;           -- fourth

-- +goose Down
-- a comment
DROP TABLE book;    -- first
`);
    assert.equal(up.length, 4);
    assert.equal(
      up[0],
      'CREATE TABLE book (\n    id int NOT NULL,\n    title text,\n    PRIMARY KEY(id)\n);                  -- first',
    );
    assert.equal(up[2], 'SELECT 3; SELECT 3; -- third: goose runs both at once');
    assert.deepEqual(down, ['DROP TABLE book;    -- first']);
  });

  it('nothing but comments: no statements', () => {
    assert.deepEqual(units('-- +goose Up\n-- only a comment').up, []);
    const { up, down } = units('\n\n-- comment\n-- +goose Up\n\n-- comment\n-- +goose Down\n\n');
    assert.deepEqual([up, down], [[], []]);
  });

  it('a plpgsql function between StatementBegin and StatementEnd is one statement', () => {
    const { up, down } = units(`-- +goose Up
CREATE TABLE IF NOT EXISTS ledger (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ledger_month(d date)
RETURNS void AS $$
DECLARE
    q text;
BEGIN
    q := 'CREATE TABLE IF NOT EXISTS ledger_' || to_char(d, 'YYYY_MM') || ' ();';
    EXECUTE q;  -- runs it
END;          -- end of body
$$
LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_month(date);
DROP TABLE ledger;
`);
    assert.equal(up.length, 2);
    assert.match(up[1] ?? '', /^CREATE OR REPLACE FUNCTION[\s\S]*LANGUAGE plpgsql;$/);
    assert.equal(down.length, 2);
  });

  it("MySQL's DELIMITER in blocks: four up statements, no down", () => {
    const { up, down } = units(`
-- +goose Up
-- +goose StatementBegin
DELIMITER //
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION shout(s CHAR(50)) RETURNS CHAR(50) DETERMINISTIC
BEGIN
  RETURN UPPER(s);
END //
-- +goose StatementEnd

-- +goose StatementBegin
DELIMITER ;
-- +goose StatementEnd

SELECT shout('x');
-- +goose Down
`);
    assert.deepEqual([up.length, down.length], [4, 0]);
  });

  it('COPY ... FROM stdin with its data in a block: one statement', () => {
    const { up } = units(
      '\n-- +goose Up\n-- +goose StatementBegin\nCOPY t (a, b) FROM stdin;\n1\tone\n2\ttwo\n\\.\n-- +goose StatementEnd\n',
    );
    assert.deepEqual(up, ['COPY t (a, b) FROM stdin;\n1\tone\n2\ttwo\n\\.']);
  });

  it('blocks in both directions, a down block without ";"', () => {
    const { up, down } = units(`
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION touch() RETURNS trigger AS $$
BEGIN
    NEW.at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER touch_t BEFORE UPDATE ON t FOR EACH ROW EXECUTE PROCEDURE touch();
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER touch_t ON t
-- +goose StatementEnd
-- +goose StatementBegin
DROP FUNCTION touch()
-- +goose StatementEnd
`);
    assert.deepEqual([up.length, down.length], [2, 2]);
    assert.deepEqual(down, ['DROP TRIGGER touch_t ON t', 'DROP FUNCTION touch()']);
  });

  it('a block, then plain statements', () => {
    const { up, down } = units(`
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION touch() RETURNS trigger AS $$
BEGIN
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER touch_t
BEFORE UPDATE
ON t
FOR EACH ROW EXECUTE PROCEDURE touch();

-- +goose Down
DROP TRIGGER touch_t ON t;
DROP FUNCTION touch();
`);
    assert.deepEqual([up.length, down.length], [2, 2]);
    assert.equal(
      up[1],
      'CREATE TRIGGER touch_t\nBEFORE UPDATE\nON t\nFOR EACH ROW EXECUTE PROCEDURE touch();',
    );
  });

  it('"-->" inside a string ends no statement early (goose reads words, not strings)', () => {
    const { up } = units(
      "-- +goose Up\nCREATE TABLE a (c int)\nCOMMENT='an arrow -->';\n\nCREATE TABLE b (c int);\n",
    );
    assert.equal(up.length, 1, 'goose reads "-->\';" as a comment: one statement up to the next ";"');
  });

  it('CRLF lines: the same statements, without the \\r', () => {
    const { up, down } = units(
      '-- +goose Up\r\nSELECT 1;\r\nSELECT\r\n  2;\r\n-- +goose Down\r\nSELECT 3;\r\n',
    );
    assert.deepEqual(up, ['SELECT 1;', 'SELECT\n  2;']);
    assert.deepEqual(down, ['SELECT 3;']);
  });
});

describe('goose: files goose refuses are refused, with the line', () => {
  for (const [what, text, line, why] of [
    [
      'StatementBegin without StatementEnd',
      '-- +goose Up\nCREATE TABLE a (b int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\n-- +goose Down\nDROP FUNCTION f();\n',
      6,
      /inside a StatementBegin block/,
    ],
    [
      'an unfinished statement before Down',
      '\n-- +goose Up\nALTER TABLE post\n\n-- +goose Down\n',
      5,
      /missing semicolon/,
    ],
    ['no annotations', '\nCREATE TABLE post (\n    id int\n);\n', 2, /SQL before "-- \+goose Up"/],
    [
      'a second Up',
      '-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n-- +goose Up\nSELECT 3;\n',
      5,
      /second "-- \+goose Up"/,
    ],
    ['Down first', '-- +goose Down\nDROP TABLE t;\n', 1, /before "-- \+goose Up"/],
    ['the last statement without ";"', '-- +goose Up\nSELECT 1;\nSELECT 2\n', 3, /missing semicolon/],
    [
      'an unfinished up statement, then down',
      '-- +goose Up\nSELECT 1;\nSELECT 2\n-- +goose Down\nSELECT 3;\n',
      4,
      /missing semicolon/,
    ],
    [
      'an unfinished up statement, an empty down',
      '-- +goose Up\nSELECT 2\n-- +goose Down\n',
      3,
      /missing semicolon/,
    ],
    [
      'an unfinished down statement',
      '-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2\n',
      4,
      /last down statement/,
    ],
    [
      'StatementEnd without StatementBegin',
      '-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n',
      3,
      /without a/,
    ],
    [
      'a block never closed at the end',
      '-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n',
      3,
      /without its/,
    ],
    ['only blank lines', '\n\n', 1, /no "-- \+goose Up"/],
    [
      'an empty block (goose would drop the next line)',
      '-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\nSELECT 1;\n',
      3,
      /empty StatementBegin/,
    ],
  ] as const) {
    it(what, () => {
      const [problem] = refused(text);
      assert.equal(problem?.file, FILE);
      assert.equal(problem?.line, line, problem?.problem);
      assert.match(problem?.problem ?? '', why);
    });
  }
});

describe('goose: NO TRANSACTION and ENVSUB', () => {
  it('NO TRANSACTION, anywhere in the file, runs both directions outside a transaction', async () => {
    assert.equal(units('-- +goose Up\nCREATE TABLE a (b int);\n').parsed.transaction, true);
    assert.equal(units('-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;\n').parsed.transaction, false);
    assert.equal(
      units('-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose NO TRANSACTION\nSELECT 2;\n').parsed
        .transaction,
      false,
    );
    const { migrations } = await read({
      '00001_index.sql':
        '-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\n',
    });
    for (const direction of ['up', 'down'] as const) {
      const step = await migrations[0]?.load(direction, POSTGRES);
      assert.equal(step?.settings.transaction, false);
    }
  });

  it('ENVSUB ON over a line with "$": refused at that line (lockstep does not substitute: it would run other SQL)', () => {
    const problems = refused(
      `-- +goose ENVSUB ON\n-- +goose Up\nCREATE TABLE \${TABLE} (id int);\n-- +goose ENVSUB OFF\nSELECT $$x$$;\n`,
    );
    assert.deepEqual(
      problems.map((p) => p.line),
      [3],
    );
    assert.match(problems[0]?.problem ?? '', /ENVSUB ON" \(line 1\)[\s\S]*does not substitute/);
  });

  it('ENVSUB ON over lines without "$": read, with a warning at the annotation', async () => {
    const parsed = parseGoose('-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n', FILE);
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(
      parsed.warnings.map((w) => w.line),
      [2],
    );
    const { warnings } = await read({ '00001_a.sql': '-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n' });
    assert.match(warnings[0]?.problem ?? '', /does not substitute/);
  });

  it('"$" without ENVSUB ON is left alone, as goose leaves it', () => {
    assert.deepEqual(units(`-- +goose Up\nSELECT '\${NAME}', $1;\n`).up, [`SELECT '\${NAME}', $1;`]);
  });
});

describe('goose: through the migrations directory', () => {
  it('statements as lockstep runs them: a block whole, a plain goose statement split, lines of the file', async () => {
    const { migrations, warnings } = await read({
      '00001_init.sql': `-- +goose Up
CREATE TABLE a (id int);
SELECT 1; SELECT 2;
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$
BEGIN
  RETURN 1;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION f();
DROP TABLE a;
`,
    });
    assert.deepEqual(warnings, []);
    const [migration] = migrations;
    assert.equal(migration?.format, 'goose');
    assert.equal(migration?.version, '00001');
    assert.equal(migration?.name, 'init');
    const step = await migration?.load('up', POSTGRES);
    assert.ok(step?.kind === 'sql');
    assert.deepEqual(
      step.statements.map((s) => [s.line, s.sql.split('\n')[0]]),
      [
        [2, 'CREATE TABLE a (id int)'],
        [3, 'SELECT 1'],
        [3, 'SELECT 2'],
        [5, 'CREATE FUNCTION f() RETURNS int AS $$'],
      ],
    );
    assert.match(step.statements[3]?.sql ?? '', /END;\n\$\$ LANGUAGE plpgsql;$/);
    assert.deepEqual(await statementsOf(migration, 'down', POSTGRES), ['DROP FUNCTION f()', 'DROP TABLE a']);
  });

  it('the checksum follows the up statements and NO TRANSACTION, not the down section', async () => {
    const sum = async (text: string) => (await read({ '00001_a.sql': text })).migrations[0]?.checksum;
    const base = await sum('-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n');
    assert.equal(await sum('-- +goose Up\n\n-- a comment\nSELECT 1;\n-- +goose Down\nSELECT 3;\n'), base);
    assert.notEqual(await sum('-- +goose Up\nSELECT 9;\n'), base);
    assert.notEqual(await sum('-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;\n'), base);
  });

  it('a refused goose file stops the read, naming file and line', async () => {
    const problems = await problemsOf(read({ '00001_a.sql': '-- +goose Up\nSELECT 1\n' }));
    assert.deepEqual(
      problems.map((p) => [p.file, p.line]),
      [['00001_a.sql', 2]],
    );
  });

  it('a dbmate file that mentions +goose in a comment stays a dbmate file', async () => {
    const { migrations } = await read({
      '001_a.sql': '-- migrate:up\n-- ported from -- +goose Up\nSELECT 1;\n',
    });
    assert.equal(migrations[0]?.format, 'lockstep');
  });

  it("goose's Go migrations: listed with a warning, and refused when loaded (never skipped)", async () => {
    const { migrations, warnings } = await read({
      '00001_a.sql': '-- +goose Up\nSELECT 1;\n',
      '00002_backfill.go': 'package migrations\n\nfunc init() { goose.AddMigrationContext(up, down) }\n',
      '00003_b_test.go': 'package migrations\n',
      'main.go': 'package main\n',
    });
    assert.deepEqual(
      migrations.map((m) => [m.version, m.format]),
      [
        ['00001', 'goose'],
        ['00002', 'goose'],
      ],
    );
    assert.deepEqual(
      warnings.map((w) => w.file),
      ['00002_backfill.go'],
    );
    assert.match(warnings[0]?.problem ?? '', /goose Go migration: lockstep cannot run it/);
    for (const direction of ['up', 'down'] as const) {
      const problems = await problemsOf(migrations[1]?.load(direction, POSTGRES) ?? Promise.resolve());
      assert.equal(problems[0]?.file, '00002_backfill.go');
      assert.equal(problems[0]?.line, 3, 'the line that registers it with goose');
      assert.match(
        problems[0]?.problem ?? '',
        /goose Go migration: lockstep cannot run it[\s\S]*lockstep adopt --from goose/,
      );
    }
  });
});
