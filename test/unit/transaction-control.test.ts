/** Transaction-control statements in migrations: which statements begin or end a transaction. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSqlFile } from '../../src/core/sql-file.js';
import { createMysqlDriver } from '../../src/drivers/mysql/index.js';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { splitStatements } from '../../src/sql/split.js';
import { transactionControl } from '../../src/sql/transaction-control.js';

const options = { table: 'lockstep_migrations', runnerId: 'test:1' };
const DIALECTS = {
  postgres: createPostgresDriver('postgres://localhost/unused', options).dialect.syntax,
  mysql: createMysqlDriver('mysql://localhost/unused', options).dialect.syntax,
  sqlite: createSqliteDriver('sqlite:unused.db', options).dialect.syntax,
};

/** [statement, the verb it is reported as (undefined: not transaction control)] */
const STATEMENTS: readonly (readonly [string, string | undefined])[] = [
  ['BEGIN', 'BEGIN'],
  ['begin', 'BEGIN'],
  ['BEGIN TRANSACTION', 'BEGIN'],
  ['BEGIN WORK', 'BEGIN'],
  ['BEGIN IMMEDIATE', 'BEGIN'],
  ['BEGIN DEFERRED TRANSACTION', 'BEGIN'],
  ['BEGIN EXCLUSIVE', 'BEGIN'],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'BEGIN'],
  ['START TRANSACTION', 'START TRANSACTION'],
  ['START TRANSACTION READ ONLY', 'START TRANSACTION'],
  ['COMMIT', 'COMMIT'],
  ['COMMIT WORK', 'COMMIT'],
  ['COMMIT AND CHAIN', 'COMMIT'],
  ["COMMIT PREPARED 'tx1'", 'COMMIT'],
  ['END', 'END'],
  ['END TRANSACTION', 'END'],
  ['END WORK', 'END'],
  ['ROLLBACK', 'ROLLBACK'],
  ['ROLLBACK WORK', 'ROLLBACK'],
  ['ROLLBACK AND CHAIN', 'ROLLBACK'],
  ["ROLLBACK PREPARED 'tx1'", 'ROLLBACK'],
  ['ABORT', 'ABORT'],
  ["PREPARE TRANSACTION 'tx1'", 'PREPARE TRANSACTION'],
  ["XA START 'x'", 'XA'],
  ['SET autocommit = 1', 'SET autocommit'],
  ['SET SESSION autocommit=0', 'SET autocommit'],
  ['SET @@autocommit = 1', 'SET autocommit'],
  ['-- open one\nBEGIN', 'BEGIN'],
  ['/* done */ COMMIT', 'COMMIT'],
  // Savepoints nest inside lockstep's transaction and keep it open.
  ['SAVEPOINT before_backfill', undefined],
  ['RELEASE SAVEPOINT before_backfill', undefined],
  ['ROLLBACK TO SAVEPOINT before_backfill', undefined],
  ['ROLLBACK TO before_backfill', undefined],
  ['ROLLBACK WORK TO SAVEPOINT s', undefined],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', undefined],
  ['SET search_path = app', undefined],
  // Bodies, not transaction control.
  ['BEGIN ATOMIC SELECT 1; END', undefined],
  ['BEGIN NOT ATOMIC SELECT 1; END', undefined],
  ['START REPLICA', undefined],
  ['PREPARE stmt FROM "SELECT 1"', undefined],
  ['CREATE TABLE begin_log (id int)', undefined],
  ["INSERT INTO audit (note) VALUES ('COMMIT')", undefined],
  ['UPDATE t SET committed = true', undefined],
  ['END IF', undefined],
  ['', undefined],
];

describe('transactionControl', () => {
  for (const [sql, expected] of STATEMENTS) {
    it(`${JSON.stringify(sql)} → ${expected ?? 'not transaction control'}`, () => {
      assert.equal(transactionControl(sql), expected);
    });
  }
});

/** Scripts as files hold them: only statements the splitter finds at the top level count. */
const SCRIPTS: readonly { name: string; dialect: keyof typeof DIALECTS; text: string; found: string[] }[] = [
  {
    name: 'a BEGIN … COMMIT pair around statements',
    dialect: 'postgres',
    text: 'BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nINSERT INTO missing VALUES (1);\n',
    found: ['BEGIN', 'COMMIT'],
  },
  {
    name: 'PL/pgSQL BEGIN … END inside a $$ body',
    dialect: 'postgres',
    text: `CREATE FUNCTION f() RETURNS trigger AS $$
BEGIN
  COMMIT;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DO $$ BEGIN PERFORM 1; END $$;`,
    found: [],
  },
  {
    name: 'a BEGIN ATOMIC function body',
    dialect: 'postgres',
    text: 'CREATE FUNCTION one() RETURNS int LANGUAGE SQL BEGIN ATOMIC SELECT 1; END;\nSELECT one();',
    found: [],
  },
  {
    name: 'a SQLite trigger body',
    dialect: 'sqlite',
    text: 'CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END;\nBEGIN IMMEDIATE;\nEND TRANSACTION;',
    found: ['BEGIN', 'END'],
  },
  {
    name: 'a MySQL routine body and a MariaDB anonymous block',
    dialect: 'mysql',
    text: `CREATE PROCEDURE p() BEGIN START TRANSACTION; COMMIT; END;
DELIMITER $$
BEGIN NOT ATOMIC SELECT 1; END$$
DELIMITER ;
START TRANSACTION;
SET autocommit = 1;`,
    found: ['START TRANSACTION', 'SET autocommit'],
  },
];

describe('transactionControl over split scripts', () => {
  for (const script of SCRIPTS) {
    it(script.name, () => {
      const found = splitStatements(script.text, DIALECTS[script.dialect])
        .map((s) => transactionControl(s.sql))
        .filter((v) => v !== undefined);
      assert.deepEqual(found, script.found);
    });
  }
});

describe('timeout option', () => {
  const settings = (marker: string) => parseSqlFile(`${marker}\nSELECT 1;\n`, 'f.sql');
  it('takes a duration or off', () => {
    assert.equal(settings('-- migrate:up timeout:30m').up?.settings.timeoutMs, 30 * 60_000);
    assert.equal(settings('-- migrate:up timeout:500ms').up?.settings.timeoutMs, 500);
    assert.equal(settings('-- migrate:up timeout:off').up?.settings.timeoutMs, null);
    assert.equal(settings('-- migrate:up').up?.settings.timeoutMs, undefined);
  });
  it('refuses anything else, with the line', () => {
    for (const bad of ['timeout:', 'timeout:soon', 'timeout:0', 'timeout:-1s']) {
      const parsed = settings(`-- migrate:up ${bad}`);
      assert.equal(parsed.problems.length, 1, bad);
      assert.equal(parsed.problems[0]?.line, 1);
      assert.match(parsed.problems[0]?.problem ?? '', /timeout takes a duration/);
    }
  });
});
