/** Statement splitting for MySQL/MariaDB: the constructs its scripts really use. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createMysqlDriver, mysqlLockName } from '../../src/drivers/mysql/index.js';
import { splitStatements } from '../../src/sql/split.js';
import { MYSQL } from './split-cases.js';

const mysql = createMysqlDriver('mysql://root@localhost/unused', {
  table: 'lockstep_migrations',
  runnerId: 't:1',
}).dialect.syntax;
const split = (text: string) => splitStatements(text, mysql).map((s) => s.sql);

describe('split: mysql', () => {
  for (const { name, text, expected } of MYSQL) {
    it(name, () => {
      assert.deepEqual(split(text), expected);
      for (const s of splitStatements(text, mysql))
        assert.equal(text.slice(s.offset, s.offset + s.sql.length), s.sql);
    });
  }

  it("splits MariaDB's own sys schema script into its statements", () => {
    const text = readFileSync('/usr/share/mysql/mysql_sys_schema.sql', 'utf8');
    const statements = split(text);
    const routines = statements.filter((s) => /^CREATE DEFINER=.*\b(PROCEDURE|FUNCTION)\b/s.test(s));
    assert.equal(
      routines.length,
      (text.match(/^CREATE DEFINER=.*\n?\s*(PROCEDURE|FUNCTION)\b/gm) ?? []).length,
    );
    assert.ok(
      routines.every((r) => /END$/.test(r)),
      'every routine ends at its END',
    );
    assert.ok(statements.every((s) => !/^DELIMITER/i.test(s)));
  });
});

describe('mysql lock names', () => {
  it('name the database and ledger when they fit in 64 characters', () => {
    assert.equal(mysqlLockName('shop', 'lockstep_migrations'), 'lockstep:shop.lockstep_migrations');
  });
  it('are hashed to exactly 64 characters when longer, distinct per ledger', () => {
    const a = mysqlLockName('a'.repeat(64), 'lockstep_migrations');
    const b = mysqlLockName('a'.repeat(64), 'other_ledger');
    assert.equal(a.length, 64);
    assert.match(a, /^lockstep:[0-9a-f]{55}$/);
    assert.notEqual(a, b);
    assert.equal(a, mysqlLockName('a'.repeat(64), 'lockstep_migrations'), 'stable across runs');
  });
});
