import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  trimAutoIncrementValues,
  trimLeadingSqlComments,
  withoutStatements,
} from '../../src/schema/normalise.js';
import { connection, supportsRestrictKey } from '../../src/schema/postgres.js';

test('leading comments and blank lines go, trailing white space goes, every line ends in a newline', () => {
  assert.equal(
    trimLeadingSqlComments('-- dumped by x\n\n--\nSET a = 1;  \n\n-- kept\nB;'),
    'SET a = 1;\n\n-- kept\nB;\n',
  );
  assert.equal(
    trimLeadingSqlComments('\\restrict dbmate\n\n-- Dumped from 15\n'),
    '\\restrict dbmate\n\n-- Dumped from 15\n',
  );
  assert.equal(trimLeadingSqlComments('a\r\nb\t\r\n'), 'a\nb\n');
  assert.equal(trimLeadingSqlComments('-- only comments\n\n'), '');
});

test('normalising twice changes nothing more', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('', '--', '-- x', 'SET a;', '  ', 'x  ', '\t', '\r', 'y')),
      (parts) => {
        const once = trimLeadingSqlComments(parts.join('\n'));
        // A first statement line of only spaces becomes blank, which a second pass drops (as dbmate's does).
        fc.pre(!once.startsWith('\n'));
        assert.equal(trimLeadingSqlComments(once), once);
      },
    ),
  );
});

test("AUTO_INCREMENT counters go, as dbmate's trimAutoincrementValues does", () => {
  assert.equal(
    trimAutoIncrementValues(') ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT'),
    ') ENGINE=InnoDB DEFAULT',
  );
});

test('whole statements only are taken out', () => {
  const dump = 'CREATE TABLE a (x);\nCREATE TABLE ab (x);\nCREATE TABLE a (x);\nCREATE TABLE b (x);\n';
  assert.equal(
    withoutStatements(dump, ['CREATE TABLE a (x)']),
    'CREATE TABLE ab (x);\nCREATE TABLE b (x);\n',
  );
});

test('pg_dump takes --restrict-key from 15.14, 16.10, 17.6', () => {
  const v = (s: string) => supportsRestrictKey(`pg_dump (PostgreSQL) ${s} (Debian)`);
  assert.deepEqual(['14.99', '15.13', '15.14', '16.9', '16.10', '17.5', '17.6', '18.0'].map(v), [
    false,
    false,
    true,
    false,
    true,
    false,
    true,
    true,
  ]);
  assert.equal(supportsRestrictKey('garbage'), false);
});

test("the tools' PostgreSQL URL is dbmate's, without the password", () => {
  assert.deepEqual(connection('postgres://u:p%40ss@h/db?search_path=a, b&pooler=session'), {
    url: 'postgres://u@h:5432/db',
    env: { PGPASSWORD: 'p@ss' },
    schemas: ['a', 'b'],
  });
  assert.equal(connection('postgres://u@/db?socket=/run/pg').url, 'postgres://u@:5432/db?host=%2Frun%2Fpg');
  assert.equal(connection('postgresql:///db').url, 'postgres://:5432/db?host=%2Fvar%2Frun%2Fpostgresql');
  assert.equal(connection('postgres://h:1/db?port=7').url, 'postgres://h:7/db');
});
