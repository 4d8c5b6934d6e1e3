/**
 * The splitter's hard cases against the real servers: each block reaches the server whole, as one
 * statement, and does what it says.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createPostgresDriver } from '../../src/drivers/postgres/index.js';
import { migrate } from '../../src/index.js';
import { splitStatements } from '../../src/sql/split.js';
import { POSTGRES_INFORMATION_SCHEMA } from '../helpers/sql-corpus.js';
import { createMysqlDatabase, createPostgresDatabase, writeMigrations } from '../helpers/targets.js';

describe('splitter on real servers', () => {
  it('postgres: CREATE RULE ... DO ALSO (a; b) is created whole and runs both actions', async () => {
    const db = await createPostgresDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_rule.sql': `-- migrate:up
CREATE TABLE orders (id int);
CREATE TABLE audit (what text, id int);
CREATE RULE orders_audit AS ON INSERT TO orders DO ALSO (
  INSERT INTO audit VALUES ('first; action', new.id);
  INSERT INTO audit VALUES ('second', new.id * 10)
);
INSERT INTO orders VALUES (1);
`,
      });
      const result = await migrate({ url: db.url, dir });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001'],
      );
      const rows = await db.query('SELECT what, id FROM audit ORDER BY id');
      assert.deepEqual(rows, [
        { what: 'first; action', id: 1 },
        { what: 'second', id: 10 },
      ]);
      const [ledger] = await db.query('SELECT statement_count FROM lockstep_migrations');
      assert.equal(Number(ledger?.statement_count), 4);
    } finally {
      await db.cleanup();
    }
  });

  it('mysql: BEGIN NOT ATOMIC ... END and IF/FOR outside routines run whole, once', async () => {
    const db = await createMysqlDatabase();
    try {
      const dir = writeMigrations(db.dir, {
        '001_blocks.sql': `-- migrate:up
CREATE TABLE t (v int);
BEGIN NOT ATOMIC
  DECLARE x INT DEFAULT IF(1, 2, 3);
  outer_blk: BEGIN
    lp: LOOP INSERT INTO t VALUES (1); LEAVE lp; END LOOP lp;
    fl: FOR i IN 1..2 DO INSERT INTO t VALUES (i + 1); END FOR fl;
    IF (x > 1) THEN INSERT INTO t VALUES (4); ELSE INSERT INTO t VALUES (-1); END IF;
    LEAVE outer_blk;
  END outer_blk;
  INSERT INTO t VALUES (-2);
END;
IF (SELECT COUNT(*) FROM t) = 5 THEN INSERT INTO t VALUES (5); INSERT INTO t VALUES (6); END IF;
FOR i IN 7..8 DO INSERT INTO t VALUES (i); END FOR;
`,
      });
      const result = await migrate({ url: db.url, dir });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001'],
      );
      const rows = await db.query('SELECT v FROM t ORDER BY v');
      assert.deepEqual(
        rows.map((r) => r.v),
        [-2, 1, 2, 3, 4, 5, 6, 7, 8],
      );
      const [ledger] = await db.query(
        'SELECT state, statements_done, statement_count FROM lockstep_migrations',
      );
      assert.deepEqual(
        [ledger?.state, Number(ledger?.statements_done), Number(ledger?.statement_count)],
        ['applied', 4, 4],
      );
    } finally {
      await db.cleanup();
    }
  });

  it('postgres: every statement of its own information_schema.sql is accepted, one by one', async () => {
    const db = await createPostgresDatabase();
    try {
      // The script builds information_schema at initdb; build it under another name here.
      const text = readFileSync(POSTGRES_INFORMATION_SCHEMA, 'utf8').replace(
        /\binformation_schema\b/g,
        'lockstep_is',
      );
      const syntax = createPostgresDriver(db.url, { table: 'lockstep_migrations', runnerId: 't:1' }).dialect
        .syntax;
      const statements = splitStatements(text, syntax);
      assert.ok(statements.length > 150, `${statements.length} statements`);
      for (const { sql } of statements) {
        await db.query(sql).catch((error: Error) => {
          throw new Error(`${error.message} in: ${sql.slice(0, 200)}`);
        });
      }
      const views = (text.match(/^CREATE VIEW /gm) ?? []).length;
      const [created] = await db.query("SELECT COUNT(*) AS n FROM pg_views WHERE schemaname = 'lockstep_is'");
      assert.equal(Number(created?.n), views);
    } finally {
      await db.cleanup();
    }
  });
});
