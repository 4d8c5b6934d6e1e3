/**
 * Found by the soak campaign (soak/, backend termination): the runner's session killed by the
 * server (pg_terminate_backend, KILL CONNECTION) just as one of lockstep's own queries was sent —
 * a non-transactional migration's progress write, the ledger read under the lock. Each failed
 * with the driver's raw error (exit 1); it must be a ConnectionError (exit 5, the session was
 * lost) saying what stays applied, and the next runner must go on per the guarantees.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ConnectionError, DirtyStateError, migrate } from '../../src/index.js';
import {
  createMysqlDatabase,
  createPostgresDatabase,
  ROOT,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

/** Ends the session holding the migration lock, from another process, before this one goes on. */
const KILL_HOLDER: Record<'postgres' | 'mysql', string> = {
  postgres: `const pg = require('pg');
const c = new pg.Client({ connectionString: process.argv[1] });
c.connect().then(async () => {
  await c.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
  await c.end();
});`,
  mysql: `const mysql = require('mysql2/promise');
mysql.createConnection({ uri: process.argv[1] }).then(async (c) => {
  const [[row]] = await c.query('SELECT DATABASE() AS d');
  const [[held]] = await c.query('SELECT IS_USED_LOCK(?) AS id', ['lockstep:' + row.d + '.lockstep_migrations']);
  await c.query('KILL CONNECTION ' + Number(held.id));
  await c.end();
});`,
};

const TARGETS: { kind: 'postgres' | 'mysql'; create: () => Promise<TestDatabase> }[] = [
  { kind: 'postgres', create: () => createPostgresDatabase() },
  { kind: 'mysql', create: () => createMysqlDatabase() },
];

for (const target of TARGETS) {
  describe(`a session lost at a ledger write: ${target.kind}`, () => {
    it('a progress write of a non-transactional migration: ConnectionError (exit 5), then the next runner refuses', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_two.sql': `-- migrate:up transaction:false
CREATE TABLE one (id integer);
CREATE TABLE two (id integer);
`,
        });
        let killed = false;
        const error = await migrate({
          url: db.url,
          dir,
          on: (event) => {
            // The progress write after statement 1: the session ends before it is sent.
            if (killed || event.type !== 'query' || !/^UPDATE .*lockstep_migrations/s.test(event.sql)) return;
            killed = true;
            execFileSync(process.execPath, ['-e', KILL_HOLDER[target.kind], db.url], { cwd: ROOT });
          },
        }).then(
          () => assert.fail('the run went on after its session was killed'),
          (e: unknown) => e,
        );
        assert.ok(killed, 'the progress write was reached');
        assert.ok(error instanceof ConnectionError, `a ConnectionError, not ${String(error)}`);
        assert.equal(error.exitCode, 5);
        assert.match(
          error.message,
          /lost the database session while recording migration 001 \(\S*001_two\.sql\) in the ledger/,
        );
        assert.match(error.message, /lockstep resolve 001 --applied\|--rolled-back/);

        const next = await migrate({ url: db.url, dir }).then(
          () => assert.fail('the next runner ran it again'),
          (e: unknown) => e,
        );
        assert.ok(next instanceof DirtyStateError, String(next));
        assert.equal(next.exitCode, 4);
      } finally {
        await db.cleanup();
      }
    });

    it('the ledger read under the lock: ConnectionError (exit 5), then the next runner applies everything', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_one.sql': `-- migrate:up
CREATE TABLE one (id integer);
`,
        });
        let locked = false;
        let killed = false;
        const error = await migrate({
          url: db.url,
          dir,
          on: (event) => {
            if (event.type === 'lock-acquired') locked = true;
            // The first query under the lock (the ledger read): the session ends before it is sent.
            if (!locked || killed || event.type !== 'query') return;
            killed = true;
            execFileSync(process.execPath, ['-e', KILL_HOLDER[target.kind], db.url], { cwd: ROOT });
          },
        }).then(
          () => assert.fail('the run went on after its session was killed'),
          (e: unknown) => e,
        );
        assert.ok(killed, 'a query under the lock was reached');
        assert.ok(error instanceof ConnectionError, `a ConnectionError, not ${String(error)}`);
        assert.equal(error.exitCode, 5);
        assert.match(error.message, /^lost the database session: /);

        const next = await migrate({ url: db.url, dir });
        assert.deepEqual(
          next.applied.map((m) => m.version),
          ['001'],
        );
      } finally {
        await db.cleanup();
      }
    });
  });
}
