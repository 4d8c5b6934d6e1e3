/** Statement splitting for MySQL/MariaDB: the constructs its scripts really use. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createMysqlDriver, mysqlLockName } from '../../src/drivers/mysql.js';
import { splitStatements } from '../../src/sql/split.js';

const mysql = createMysqlDriver('mysql://root@localhost/unused', {
  table: 'lockstep_migrations',
  runnerId: 't:1',
}).syntax;
const split = (text: string) => splitStatements(text, mysql).map((s) => s.sql);

const cases: readonly { name: string; text: string; expected: string[] }[] = [
  {
    name: 'backslash escapes in single and double quoted strings',
    text: 'INSERT INTO t VALUES (\'it\\\'s; fine\', "a\\";b");\nSELECT 1;',
    expected: ['INSERT INTO t VALUES (\'it\\\'s; fine\', "a\\";b")', 'SELECT 1'],
  },
  {
    name: 'backticks with semicolons',
    text: 'CREATE TABLE `a;b` (`c;d` int);SELECT 2',
    expected: ['CREATE TABLE `a;b` (`c;d` int)', 'SELECT 2'],
  },
  {
    name: '# comments and -- comments',
    text: '# first; comment\nSELECT 1; -- second; comment\nSELECT 2;',
    expected: ['SELECT 1', 'SELECT 2'],
  },
  {
    name: '-- without a space is an operator, not a comment',
    text: 'SELECT 1--1;\nSELECT 2;',
    expected: ['SELECT 1--1', 'SELECT 2'],
  },
  {
    name: '/*! versioned */ and /*M! MariaDB */ comments are statements',
    text: '/*!40101 SET NAMES utf8mb4 */;\n/*M!100101 SET @x = 1 */;\n/* plain; comment */ SELECT 3;',
    expected: ['/*!40101 SET NAMES utf8mb4 */', '/*M!100101 SET @x = 1 */', 'SELECT 3'],
  },
  {
    name: 'DELIMITER blocks for procedures',
    text: [
      'DELIMITER $$',
      'CREATE PROCEDURE p()',
      'BEGIN',
      '  SELECT 1;',
      '  SELECT 2;',
      'END$$',
      'DELIMITER ;',
      'CALL p();',
    ].join('\n'),
    expected: ['CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND', 'CALL p()'],
  },
  {
    name: 'DELIMITER // with a trigger and a lower-case command',
    text: 'delimiter //\nCREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END//\ndelimiter ;\nSELECT 1;',
    expected: ['CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END', 'SELECT 1'],
  },
  {
    name: 'a routine body without DELIMITER, with IF ... END IF, loops and CASE',
    text: [
      'CREATE DEFINER=`root`@`localhost` PROCEDURE p(n int)',
      'BEGIN',
      '  DECLARE i int DEFAULT 0;',
      '  CREATE TABLE IF NOT EXISTS log (v int);',
      '  IF n > IF(n > 10, 10, 0) THEN',
      '    SET i = 1;',
      '  END IF;',
      '  IF NOT EXISTS (SELECT 1 FROM log) THEN INSERT INTO log VALUES (0); END IF;',
      '  lbl: WHILE i < n DO',
      '    SET i = i + 1;',
      '  END WHILE lbl;',
      '  SELECT CASE WHEN i > 1 THEN 2 ELSE 1 END;',
      'END;',
      'SELECT 9;',
    ].join('\n'),
    expected: [
      [
        'CREATE DEFINER=`root`@`localhost` PROCEDURE p(n int)',
        'BEGIN',
        '  DECLARE i int DEFAULT 0;',
        '  CREATE TABLE IF NOT EXISTS log (v int);',
        '  IF n > IF(n > 10, 10, 0) THEN',
        '    SET i = 1;',
        '  END IF;',
        '  IF NOT EXISTS (SELECT 1 FROM log) THEN INSERT INTO log VALUES (0); END IF;',
        '  lbl: WHILE i < n DO',
        '    SET i = i + 1;',
        '  END WHILE lbl;',
        '  SELECT CASE WHEN i > 1 THEN 2 ELSE 1 END;',
        'END',
      ].join('\n'),
      'SELECT 9',
    ],
  },
  {
    name: 'a function without a body block',
    text: 'CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1;\nSELECT f();',
    expected: ['CREATE FUNCTION f() RETURNS int DETERMINISTIC RETURN 1', 'SELECT f()'],
  },
  {
    name: "MariaDB's BEGIN NOT ATOMIC ... END outside a routine, with labelled blocks and loops inside",
    text: [
      'BEGIN NOT ATOMIC',
      '  DECLARE x INT DEFAULT IF(1, 2, 3);',
      '  outer_blk: BEGIN',
      '    lp: LOOP INSERT INTO t VALUES (2); LEAVE lp; END LOOP lp;',
      '    fl: FOR i IN 1..2 DO INSERT INTO t VALUES (i + 2); END FOR fl;',
      '    IF (x > 1) THEN INSERT INTO t VALUES (5); ELSEIF x THEN SET x = 0; ELSE BEGIN END; END IF;',
      '    rp: REPEAT SET x = x - 1; UNTIL x <= 0 END REPEAT rp;',
      '    CASE x WHEN 0 THEN INSERT INTO t VALUES (CASE WHEN x THEN IF(x, 6, 7) ELSE 6 END); END CASE;',
      '    LEAVE outer_blk;',
      '  END outer_blk;',
      'END;',
      'SELECT 9;',
    ].join('\n'),
    expected: [
      [
        'BEGIN NOT ATOMIC',
        '  DECLARE x INT DEFAULT IF(1, 2, 3);',
        '  outer_blk: BEGIN',
        '    lp: LOOP INSERT INTO t VALUES (2); LEAVE lp; END LOOP lp;',
        '    fl: FOR i IN 1..2 DO INSERT INTO t VALUES (i + 2); END FOR fl;',
        '    IF (x > 1) THEN INSERT INTO t VALUES (5); ELSEIF x THEN SET x = 0; ELSE BEGIN END; END IF;',
        '    rp: REPEAT SET x = x - 1; UNTIL x <= 0 END REPEAT rp;',
        '    CASE x WHEN 0 THEN INSERT INTO t VALUES (CASE WHEN x THEN IF(x, 6, 7) ELSE 6 END); END CASE;',
        '    LEAVE outer_blk;',
        '  END outer_blk;',
        'END',
      ].join('\n'),
      'SELECT 9',
    ],
  },
  {
    name: 'lower-case begin not atomic, on one line',
    text: 'begin not atomic insert into t values (1); insert into t values (2); end; select 1',
    expected: ['begin not atomic insert into t values (1); insert into t values (2); end', 'select 1'],
  },
  {
    name: "MariaDB's IF, CASE, FOR, WHILE, REPEAT and LOOP statements outside a routine",
    text: [
      'IF (SELECT COUNT(*) FROM t) = 0 THEN INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END IF;',
      'CASE WHEN @a THEN SELECT 1; ELSE SELECT 2; END CASE;',
      'FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR;',
      'WHILE @i < 2 DO SET @i = @i + 1; INSERT INTO t VALUES (@i); END WHILE;',
      'REPEAT SET @i = @i - 1; UNTIL @i <= 0 END REPEAT;',
      'LOOP SELECT 1; END LOOP;',
    ].join('\n'),
    expected: [
      'IF (SELECT COUNT(*) FROM t) = 0 THEN INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); END IF',
      'CASE WHEN @a THEN SELECT 1; ELSE SELECT 2; END CASE',
      'FOR i IN 1..3 DO INSERT INTO t VALUES (i); END FOR',
      'WHILE @i < 2 DO SET @i = @i + 1; INSERT INTO t VALUES (@i); END WHILE',
      'REPEAT SET @i = @i - 1; UNTIL @i <= 0 END REPEAT',
      'LOOP SELECT 1; END LOOP',
    ],
  },
  {
    name: 'BEGIN as a transaction still splits',
    text: 'BEGIN; INSERT INTO t VALUES (1); COMMIT; BEGIN WORK; SELECT 1; END',
    expected: ['BEGIN', 'INSERT INTO t VALUES (1)', 'COMMIT', 'BEGIN WORK', 'SELECT 1', 'END'],
  },
  {
    name: 'a routine body with IF (condition) and FOR ... END FOR, without DELIMITER',
    text: [
      'CREATE PROCEDURE p(n int)',
      'BEGIN',
      '  DECLARE c CURSOR FOR SELECT id FROM t FOR UPDATE;',
      '  IF (n > 0) THEN SET @x = 1; END IF;',
      '  FOR i IN 1..n DO SET @x = @x + i; END FOR;',
      "  SET @y = IF(n > 0, REPEAT('x', n), '');",
      'END;',
      'SELECT 1;',
    ].join('\n'),
    expected: [
      [
        'CREATE PROCEDURE p(n int)',
        'BEGIN',
        '  DECLARE c CURSOR FOR SELECT id FROM t FOR UPDATE;',
        '  IF (n > 0) THEN SET @x = 1; END IF;',
        '  FOR i IN 1..n DO SET @x = @x + i; END FOR;',
        "  SET @y = IF(n > 0, REPEAT('x', n), '');",
        'END',
      ].join('\n'),
      'SELECT 1',
    ],
  },
  {
    name: 'a trigger whose body is an IF statement',
    text: 'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW IF NEW.a < 0 THEN SET NEW.a = 0; END IF;\nSELECT 1;',
    expected: [
      'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW IF NEW.a < 0 THEN SET NEW.a = 0; END IF',
      'SELECT 1',
    ],
  },
  {
    name: 'a DELIMITER command after a statement on the same line',
    text: 'SELECT 1; DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END$$\nDELIMITER ;\nSELECT 2;',
    expected: ['SELECT 1', 'CREATE PROCEDURE p() BEGIN SELECT 1; END', 'SELECT 2'],
  },
];

describe('split: mysql', () => {
  for (const { name, text, expected } of cases) {
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
