/**
 * The driver contract: every driver passes this suite unchanged, against its real server.
 * The runner relies on nothing a driver does beyond what is asserted here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Driver, LedgerRow, Session } from '../../src/drivers/driver.js';
import { openDriver } from '../../src/drivers/registry.js';
import { ROOT, TARGETS, type TestDatabase } from '../helpers/targets.js';

const row = (version: string, overrides: Partial<LedgerRow> = {}): LedgerRow => ({
  version,
  name: `m${version}`,
  checksum: 'abc',
  state: 'applied',
  direction: 'up',
  statementsDone: 2,
  statementCount: 2,
  startedAt: '2026-01-02T03:04:05.678Z',
  finishedAt: '2026-01-02T03:04:06.000Z',
  durationMs: 322,
  appliedBy: 'host:1',
  error: null,
  ...overrides,
});

/**
 * Postgres and SQLite name the holder by the `host:pid` it registered; MySQL has no place for it
 * (no application_name, performance_schema often off) and names the connection from the processlist.
 */
function assertHolder(kind: string, who: string | undefined, runnerId: string) {
  if (kind === 'mysql') assert.match(who ?? '', /^connection \d+ \(\S+@\S+\)$/);
  else assert.equal(who, runnerId);
}

for (const target of TARGETS) {
  describe(`driver contract: ${target.kind}`, () => {
    let db: TestDatabase;
    const open: Session[] = [];
    const driverFor = (table = 'lockstep_migrations', runnerId = 'test:1'): Promise<Driver> =>
      openDriver(db.url, { table, runnerId });
    const connect = async (table?: string, runnerId?: string) => {
      const session = await (await driverFor(table, runnerId)).connect();
      open.push(session);
      return session;
    };

    before(async () => {
      db = await target.create();
    });
    after(async () => {
      for (const s of open) await s.close().catch(() => {});
      await db.cleanup();
    });

    it('reads no ledger before it is created, then round-trips rows', async () => {
      const s = await connect('ledger_rt');
      assert.equal(await s.readLedger(), null);
      await s.createLedger();
      assert.deepEqual(await s.readLedger(), []);
      const applied = row('20260101000000');
      const running = row('20260101000001', {
        state: 'running',
        statementsDone: 1,
        statementCount: null,
        finishedAt: null,
        durationMs: null,
        error: 'boom: "quoted" \'text\'',
      });
      await s.writeLedger(applied);
      await s.writeLedger(running);
      const rows = (await s.readLedger())?.sort((a, b) => a.version.localeCompare(b.version));
      assert.deepEqual(rows, [applied, running]);
      await s.writeLedger({ ...running, state: 'applied', statementsDone: 2 });
      await s.deleteLedger(applied.version);
      assert.deepEqual(await s.readLedger(), [{ ...running, state: 'applied', statementsDone: 2 }]);
    });

    it('gives the lock to one session at a time and names the holder to the others', async () => {
      const a = await connect('lock_one', 'host-a:11');
      const b = await connect('lock_one', 'host-b:22');
      assert.equal(await a.tryLock(), true);
      assert.equal(await b.tryLock(), false);
      assertHolder(target.kind, (await b.lockHolder())?.who, 'host-a:11');
      await a.unlock();
      assert.equal(await b.tryLock(), true);
      assert.equal(await a.tryLock(), false);
      await b.unlock();
      assert.equal(await a.lockHolder(), null);
    });

    it('never lets two ledgers block each other', async () => {
      const a = await connect('ledger_x');
      const b = await connect('ledger_y');
      assert.equal(await a.tryLock(), true);
      assert.equal(await b.tryLock(), true);
      await a.unlock();
      await b.unlock();
    });

    it('releases the lock when the session closes', async () => {
      const a = await connect('lock_close');
      const b = await connect('lock_close');
      assert.equal(await a.tryLock(), true);
      await a.close();
      assert.equal(await b.tryLock(), true);
      await b.unlock();
    });

    it('wakes a waiter after the holder releases', async () => {
      const a = await connect('lock_wake');
      const b = await connect('lock_wake');
      assert.equal(await a.tryLock(), true);
      assert.equal(await b.tryLock(), false);
      assert.equal(await b.waitForLock(50), false);
      setTimeout(() => void a.unlock(), 100);
      let got = false;
      for (let i = 0; i < 100 && !got; i++) got = await b.waitForLock(1_000);
      assert.equal(got, true);
      await b.unlock();
    });

    it('loses the lock when the holding process is SIGKILLed', async () => {
      const child = spawn(
        process.execPath,
        [path.join(ROOT, 'test/fixtures/hold-lock.mjs'), db.url, 'lock_kill'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const said = await new Promise<string>((resolve) =>
        child.stdout.once('data', (d) => resolve(String(d).trim())),
      );
      assert.equal(said, 'locked');
      const b = await connect('lock_kill');
      assert.equal(await b.tryLock(), false);
      assertHolder(target.kind, (await b.lockHolder())?.who, `holder:${child.pid}`);
      child.kill('SIGKILL');
      let got = false;
      for (let i = 0; i < 200 && !got; i++) got = await b.waitForLock(100);
      assert.equal(got, true, 'the lock was released by the database / the OS, with no cleanup step');
      await b.unlock();
    });

    it('rolls back statements (and DDL where the database can) in a transaction', async () => {
      const driver = await driverFor();
      const s = await connect();
      if (driver.transactionalDdl) {
        await s.begin({});
        await s.execute('CREATE TABLE rolled (id integer)');
        await s.execute('INSERT INTO rolled (id) VALUES (1)');
        await s.rollback();
        await assert.rejects(s.execute('SELECT * FROM rolled'));
      } else {
        assert.equal(driver.isTransactionalStatement?.('CREATE TABLE t (id integer)'), false);
        assert.equal(driver.isTransactionalStatement?.('  insert into t values (1)'), true);
        await s.execute('CREATE TABLE rolled (id integer)');
        await s.begin({});
        await s.execute('INSERT INTO rolled (id) VALUES (1)');
        await s.rollback();
        assert.equal((await s.execute('SELECT * FROM rolled')).rows.length, 0);
      }
      await s.begin({ lockTimeoutMs: 1000 });
      await s.execute('CREATE TABLE kept (id integer)');
      await s.execute('INSERT INTO kept (id) VALUES (7)');
      await s.commit();
      const result = await s.execute('SELECT id FROM kept');
      assert.deepEqual(
        result.rows.map((r) => Number(r.id)),
        [7],
      );
    });

    it('describes database errors, with the position where the database reports one', async () => {
      const s = await connect();
      const error = await s.execute('SELECT * FROM no_such_table').then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      const info = s.describeError(error);
      assert.match(info.message, /no_such_table/);
      assert.equal(info.connectionLost, false);
      assert.equal(info.lockTimeout, false);
      if (target.kind === 'postgres') {
        assert.equal(info.code, '42P01');
        assert.equal(info.position, 'SELECT * FROM '.length);
      }
    });

    it('runs parameterised queries and returns rows', async () => {
      const s = await connect();
      const placeholder = target.kind === 'postgres' ? '$1' : '?';
      const result = await s.execute(`SELECT ${placeholder} AS answer`, [42]);
      assert.equal(Number(result.rows[0]?.answer), 42);
    });
  });
}
