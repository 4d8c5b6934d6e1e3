/** dbmate-format SQL files: sections, marker options and the problems reported with their lines. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MigrationSettings } from '../../src/core/migration.js';
import { parseSqlFile, type SqlSection } from '../../src/core/sql-file.js';

const FILE = 'migrations/001_test.sql';
const DEFAULTS: MigrationSettings = { transaction: true, lockTimeoutMs: undefined, lockRetries: undefined };

/** A section's `offset` is where its `text` sits in the file. */
function assertInFile(text: string, section: SqlSection | undefined) {
  assert.ok(section, 'section expected');
  assert.equal(text.slice(section.offset, section.offset + section.text.length), section.text);
}

describe('parseSqlFile: sections', () => {
  it('reads up and down sections', () => {
    const text = `-- migrate:up
CREATE TABLE users (id int);

-- migrate:down
DROP TABLE users;
`;
    const parsed = parseSqlFile(text, FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.text, 'CREATE TABLE users (id int);\n\n');
    assert.equal(parsed.up?.markerLine, 1);
    assert.deepEqual(parsed.up?.settings, DEFAULTS);
    assert.equal(parsed.up?.optionsText, '');
    assert.equal(parsed.down?.text, 'DROP TABLE users;\n');
    assert.equal(parsed.down?.markerLine, 4);
    assert.deepEqual(parsed.down?.settings, DEFAULTS);
    assertInFile(text, parsed.up);
    assertInFile(text, parsed.down);
    assert.equal(parsed.up?.offset, text.indexOf('CREATE'));
    assert.equal(parsed.down?.offset, text.indexOf('DROP'));
  });

  it('accepts an up section alone, and comments and blank lines before it', () => {
    const text = '-- Adds users.\n\n-- migrate:up\nCREATE TABLE users (id int);\n';
    const parsed = parseSqlFile(text, FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.markerLine, 3);
    assert.equal(parsed.down, undefined);
    assertInFile(text, parsed.up);
  });

  it('accepts the marker without a space after --', () => {
    const parsed = parseSqlFile('--migrate:up\nSELECT 1;\n', FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.text, 'SELECT 1;\n');
  });

  it('gives an empty section at the end of a file without a final newline', () => {
    const text = '-- migrate:up\nSELECT 1;\n-- migrate:down';
    const parsed = parseSqlFile(text, FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.down?.text, '');
    assert.equal(parsed.down?.offset, text.length);
  });

  it('reads CRLF line endings', () => {
    const text =
      '-- header\r\n-- migrate:up transaction:false\r\nCREATE TABLE a (id int);\r\n-- migrate:down\r\nDROP TABLE a;\r\n';
    const parsed = parseSqlFile(text, FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.optionsText, 'transaction:false');
    assert.equal(parsed.up?.settings.transaction, false);
    assert.equal(parsed.up?.markerLine, 2);
    assert.equal(parsed.up?.text, 'CREATE TABLE a (id int);\r\n');
    assert.equal(parsed.down?.markerLine, 4);
    assert.equal(parsed.down?.text, 'DROP TABLE a;\r\n');
    assert.equal(parsed.up?.offset, text.indexOf('CREATE'));
    assert.equal(parsed.down?.offset, text.indexOf('DROP'));
    assertInFile(text, parsed.up);
    assertInFile(text, parsed.down);
  });
});

describe('parseSqlFile: marker options', () => {
  const cases: readonly { options: string; settings: MigrationSettings }[] = [
    { options: '', settings: DEFAULTS },
    { options: 'transaction:false', settings: { ...DEFAULTS, transaction: false } },
    { options: 'transaction:true', settings: DEFAULTS },
    { options: 'lock_timeout:2s', settings: { ...DEFAULTS, lockTimeoutMs: 2000 } },
    { options: 'lock_timeout:500ms', settings: { ...DEFAULTS, lockTimeoutMs: 500 } },
    { options: 'lock_timeout:off', settings: { ...DEFAULTS, lockTimeoutMs: null } },
    { options: 'lock_retries:3', settings: { ...DEFAULTS, lockRetries: 3 } },
    { options: 'lock_retries:0', settings: { ...DEFAULTS, lockRetries: 0 } },
    {
      options: 'transaction:false   lock_timeout:5s lock_retries:10',
      settings: { transaction: false, lockTimeoutMs: 5000, lockRetries: 10 },
    },
    { options: 'requires:0001_backfill', settings: { ...DEFAULTS, requires: ['0001_backfill'] } },
    { options: 'requires:a,b-2', settings: { ...DEFAULTS, requires: ['a', 'b-2'] } },
  ];
  for (const { options, settings } of cases) {
    it(`"-- migrate:up ${options}"`, () => {
      const parsed = parseSqlFile(`-- migrate:up ${options}\nSELECT 1;\n`, FILE);
      assert.deepEqual(parsed.problems, []);
      assert.deepEqual(parsed.up?.settings, settings);
      assert.equal(parsed.up?.optionsText, options.trim());
    });
  }

  it('reads options on the down marker for the down section only', () => {
    const parsed = parseSqlFile(
      '-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nSELECT 2;\n',
      FILE,
    );
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.settings.transaction, true);
    assert.equal(parsed.down?.settings.transaction, false);
  });

  const bad: readonly { options: string; problem: RegExp }[] = [
    { options: 'lock_timeout:soon', problem: /lock_timeout takes a duration/ },
    { options: 'lock_timeout:', problem: /lock_timeout takes a duration/ },
    { options: 'lock_retries:-1', problem: /lock_retries takes a whole number/ },
    { options: 'lock_retries:many', problem: /lock_retries takes a whole number/ },
    { options: 'lock_retries:1.5', problem: /lock_retries takes a whole number/ },
    { options: 'requires:', problem: /requires takes long-running migration names, comma-separated/ },
    { options: 'requires:a,,b', problem: /requires takes long-running migration names/ },
  ];
  for (const { options, problem } of bad) {
    it(`reports "${options}" with the marker's line`, () => {
      const parsed = parseSqlFile(`-- 001: a migration\n\n-- migrate:up ${options}\nSELECT 1;\n`, FILE);
      assert.equal(parsed.problems.length, 1);
      assert.deepEqual(parsed.warnings, []);
      const [reported] = parsed.problems;
      assert.equal(reported?.file, FILE);
      assert.equal(reported?.line, 3);
      assert.match(reported?.problem ?? '', problem);
    });
  }
});

describe('parseSqlFile: what dbmate ignores loads, with a warning on the marker line', () => {
  const cases: readonly { options: string; transaction: boolean; warning: RegExp }[] = [
    { options: 'transactions:false', transaction: true, warning: /ignored "transactions:false"/ },
    { options: 'foo', transaction: true, warning: /ignored "foo"/ },
    { options: 'foo:bar transaction:false', transaction: false, warning: /ignored "foo:bar"/ },
    { options: 'transaction:no', transaction: true, warning: /"transaction:no" is read as transaction:true/ },
    { options: 'transaction', transaction: true, warning: /ignored "transaction"/ },
    { options: 'transaction:false:x', transaction: true, warning: /ignored "transaction:false:x"/ },
  ];
  for (const { options, transaction, warning } of cases) {
    it(`"${options}"`, () => {
      const parsed = parseSqlFile(`-- 001: a migration\n\n-- migrate:up ${options}\nSELECT 1;\n`, FILE);
      assert.deepEqual(parsed.problems, []);
      assert.equal(parsed.up?.settings.transaction, transaction);
      assert.equal(parsed.warnings.length, 1, JSON.stringify(parsed.warnings));
      assert.equal(parsed.warnings[0]?.file, FILE);
      assert.equal(parsed.warnings[0]?.line, 3);
      assert.match(parsed.warnings[0]?.problem ?? '', warning);
    });
  }
});

describe('parseSqlFile: problems', () => {
  const cases: readonly {
    name: string;
    text: string;
    problems: readonly { line?: number; problem: RegExp }[];
  }[] = [
    { name: 'an empty file', text: '', problems: [{ problem: /no "-- migrate:up" section/ }] },
    {
      name: 'a file with only a down section',
      text: '-- migrate:down\nDROP TABLE a;\n',
      problems: [{ problem: /no "-- migrate:up" section/ }, { line: 2, problem: /SQL before the first/ }],
    },
    {
      name: 'a file with no marker at all',
      text: 'CREATE TABLE a (id int);\n',
      problems: [{ problem: /no "-- migrate:up" section/ }, { line: 1, problem: /SQL before the first/ }],
    },
    {
      name: 'a second up section',
      text: '-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n',
      problems: [{ line: 3, problem: /a second "-- migrate:up" section: one migration per file/ }],
    },
    {
      name: 'a second down section',
      text: '-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n-- migrate:down\nSELECT 3;\n',
      problems: [{ line: 5, problem: /a second "-- migrate:down" section/ }],
    },
    {
      name: 'a line like a marker, in a file without a down marker',
      text: '-- migrate:up\nSELECT 1;\n\n-- migrate:sideways\nSELECT 2;\n',
      problems: [{ line: 4, problem: /not a marker, read as a comment.*no real "-- migrate:down"/ }],
    },
    {
      name: 'a down marker in a case dbmate does not read, and no real one',
      text: '-- migrate:up\nCREATE TABLE a (id int);\n-- Migrate:Down\nDROP TABLE a;\n',
      problems: [{ line: 3, problem: /not a marker/ }],
    },
    {
      name: 'SQL before the first marker',
      text: '-- a comment\n\nCREATE TABLE a (id int);\n-- migrate:up\nSELECT 1;\n',
      problems: [{ line: 3, problem: /SQL before the first "-- migrate:up" marker would never run/ }],
    },
    {
      name: 'SQL before the first marker, with CRLF',
      text: '-- a comment\r\nSELECT 0;\r\n-- migrate:up\r\nSELECT 1;\r\n',
      problems: [{ line: 2, problem: /SQL before the first/ }],
    },
  ];
  for (const { name, text, problems } of cases) {
    it(`reports ${name}`, () => {
      const parsed = parseSqlFile(text, FILE);
      assert.equal(parsed.problems.length, problems.length, JSON.stringify(parsed.problems));
      problems.forEach((expected, index) => {
        const reported = parsed.problems[index];
        assert.equal(reported?.file, FILE);
        assert.equal(reported?.line, expected.line);
        assert.match(reported?.problem ?? '', expected.problem);
      });
    });
  }

  it('keeps the first of two up sections', () => {
    const parsed = parseSqlFile('-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n', FILE);
    assert.equal(parsed.up?.text, 'SELECT 1;\n');
  });

  it('keeps a line like a marker in its section, with a warning, when the file has a down marker', () => {
    const text = '-- migrate:up\nSELECT 1;\n-- migrate:upgrade\nSELECT 2;\n-- migrate:down\n';
    const parsed = parseSqlFile(text, FILE);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.up?.text, 'SELECT 1;\n-- migrate:upgrade\nSELECT 2;\n');
    assert.deepEqual(
      parsed.warnings.map((w) => w.line),
      [3],
    );
  });
});
