/**
 * A real-world MySQL script as a migration: the sys schema that MariaDB itself ships (13,000+
 * lines of views, procedures and functions in DELIMITER blocks, with versioned comments),
 * applied to a fresh database.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { migrate } from '../../src/index.js';
import { createMysqlDatabase, writeMigrations } from '../helpers/targets.js';

const SYS_SCHEMA = '/usr/share/mysql/mysql_sys_schema.sql';

describe('mysql: real-world script', () => {
  it("applies MariaDB's sys schema as a migration, every statement once", async () => {
    const db = await createMysqlDatabase();
    try {
      const name = new URL(db.url).pathname.slice(1);
      // The script installs into `sys`; point it at this test's own database instead.
      const script = readFileSync(SYS_SCHEMA, 'utf8')
        .replace(/CREATE DATABASE IF NOT EXISTS sys\b/g, `CREATE DATABASE IF NOT EXISTS ${name}`)
        .replace(/^USE sys;/gm, `USE ${name};`)
        .replace(/\bsys\./g, `${name}.`);
      const dir = writeMigrations(db.dir, { '001_sys_schema.sql': `-- migrate:up\n${script}` });
      const result = await migrate({ url: db.url, dir });
      assert.deepEqual(
        result.applied.map((m) => m.version),
        ['001'],
      );

      const routines = (script.match(/^CREATE DEFINER=\S+\s+(PROCEDURE|FUNCTION)\b/gm) ?? []).length;
      const [created] = await db.query(
        'SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?',
        [name],
      );
      assert.ok(routines > 40, `the script defines ${routines} routines`);
      assert.equal(Number(created?.n), routines);
      const [views] = await db.query(
        'SELECT COUNT(*) AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?',
        [name],
      );
      assert.ok(Number(views?.n) > 50, `${views?.n} views`);
      const [row] = await db.query('SELECT state, statements_done, statement_count FROM lockstep_migrations');
      assert.equal(row?.state, 'applied');
      assert.equal(row?.statements_done, row?.statement_count);
    } finally {
      await db.cleanup();
    }
  });
});
