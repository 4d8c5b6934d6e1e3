/** The splitter's table-driven cases, shared by its unit tests and the fuzz tests' seed corpus. */

export interface Case {
  readonly name: string;
  readonly text: string;
  readonly expected: readonly string[];
}

/** Constructs both dialects read the same way. */
export const COMMON: readonly Case[] = [
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

export const POSTGRES: readonly Case[] = [
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

export const SQLITE: readonly Case[] = [
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
    name: 'ends a /*/ comment at the first */, even right after another /*',
    text: 'SELECT 1 /*/*/; SELECT 2',
    expected: ['SELECT 1 /*/*/', 'SELECT 2'],
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

/** MySQL/MariaDB: the constructs its scripts really use. */
export const MYSQL: readonly Case[] = [
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
    name: 'a /*/ comment ends at the first */',
    text: 'SELECT 1 /*/*/; SELECT 2',
    expected: ['SELECT 1 /*/*/', 'SELECT 2'],
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
