/**
 * The driver contract: every driver passes this suite unchanged, against its real server.
 * The runner relies on nothing a driver does beyond what is asserted here. Grouped by the part a
 * driver implements: the ledger store (generic, over its connection and dialect), the lock, the
 * connection, the dialect, and the optional long-running extension.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Driver, LedgerRow, LongRunning, Session } from '../../src/drivers/driver.js';
import { openDriver } from '../../src/drivers/registry.js';
import { LedgerConflictError } from '../../src/errors.js';
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
/** A session's long-running extension: every built-in driver implements it. */
function extension(session: Session): LongRunning {
  assert.ok(session.longRunning, 'the driver implements the long-running extension');
  return session.longRunning;
}

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
      for (const s of open) await s.connection.close().catch(() => {});
      await db.cleanup();
    });

    describe('ledger store', () => {
      it('reads no ledger before it is created, then round-trips rows', async () => {
        const s = await connect('ledger_rt');
        assert.equal(await s.ledger.read(), null);
        await s.ledger.create();
        assert.deepEqual(await s.ledger.read(), []);
        const applied = row('20260101000000');
        const running = row('20260101000001', {
          state: 'running',
          statementsDone: 1,
          statementCount: null,
          finishedAt: null,
          durationMs: null,
          error: 'boom: "quoted" \'text\'',
        });
        await s.ledger.write(applied, null);
        await s.ledger.write(running, null);
        const rows = (await s.ledger.read())?.sort((a, b) => a.version.localeCompare(b.version));
        assert.deepEqual(rows, [applied, running]);
        await s.ledger.write({ ...running, state: 'applied', statementsDone: 2 }, running);
        await s.ledger.delete(applied);
        assert.deepEqual(await s.ledger.read(), [{ ...running, state: 'applied', statementsDone: 2 }]);
      });

      it('writes the ledger only over the row it expects, and never overwrites another runner', async () => {
        const s = await connect('ledger_cas');
        await s.ledger.create();
        const mine = row('20260101000000', { state: 'running', appliedBy: 'me:1', finishedAt: null });
        await s.ledger.write(mine, null);
        await s.ledger.write({ ...mine, statementsDone: 1 }, mine);
        // Another runner (the lock was lost) replaced the row with its own `applied` one.
        const theirs = row(mine.version, { appliedBy: 'other:2', startedAt: '2026-01-02T03:04:09.000Z' });
        await s.ledger.delete({ ...mine, statementsDone: 1 });
        await s.ledger.write(theirs, null);
        const lost = [
          () => s.ledger.write({ ...mine, state: 'failed', error: 'mine failed' }, mine),
          () => s.ledger.write({ ...mine, state: 'rolled_back' }, null),
          () => s.ledger.write({ ...mine, state: 'rolled_back' }, { ...theirs, state: 'rolled_back' }),
          () => s.ledger.delete(mine),
        ];
        for (const write of lost) {
          await assert.rejects(write(), (error) => {
            assert.ok(error instanceof LedgerConflictError, String(error));
            assert.match(error.message, /other:2/);
            return true;
          });
        }
        assert.deepEqual(await s.ledger.read(), [theirs]);
      });

      it('matches a row written by another tool, with microseconds, as it reads it', async () => {
        const s = await connect('ledger_micro');
        await s.ledger.create();
        const p = (i: number) => (db.kind === 'postgres' ? `$${i}` : '?');
        await db.query(
          `INSERT INTO ledger_micro (version, name, checksum, state, started_at, applied_by)
           VALUES (${p(1)}, 'x', 'y', 'running', ${p(2)}, 'tool')`,
          [
            '1',
            db.kind === 'sqlite'
              ? '2026-01-02 03:04:05.678901'
              : '2026-01-02 03:04:05.678901+00'.slice(0, db.kind === 'mysql' ? 26 : 29),
          ],
        );
        const [found] = (await s.ledger.read()) ?? [];
        assert.ok(found);
        await s.ledger.write({ ...found, state: 'applied' }, found);
        assert.equal((await s.ledger.read())?.[0]?.state, 'applied');
      });

      it('stores error text whatever it holds: NUL bytes, more than the column holds', async () => {
        const s = await connect('ledger_text');
        await s.ledger.create();
        const big = `start ${'é€😀'.repeat(40_000)} end`;
        const failed = row('20260101000000', { state: 'failed', error: big });
        await s.ledger.write(failed, null);
        const [stored] = (await s.ledger.read()) ?? [];
        const error = String(stored?.error);
        if (db.kind === 'mysql') {
          assert.ok(Buffer.byteLength(error) <= 65_535);
          assert.match(error, /^start é€😀/);
          assert.match(error, /… \[cut: \d+ bytes more\]$/);
          const cut = Number(/cut: (\d+) bytes/.exec(error)?.[1]);
          assert.equal(
            Buffer.byteLength(error.replace(/ … \[cut: \d+ bytes more\]$/, '')) + cut,
            Buffer.byteLength(big),
          );
        } else assert.equal(error, big);
        await s.ledger.write({ ...failed, error: 'a\u0000b' }, failed);
        assert.equal((await s.ledger.read())?.[0]?.error, 'a\\0b');
      });
    });

    describe('lock', () => {
      it('gives the lock to one session at a time and names the holder to the others', async () => {
        const a = await connect('lock_one', 'host-a:11');
        const b = await connect('lock_one', 'host-b:22');
        assert.equal(await a.lock.tryLock(), true);
        assert.equal(await b.lock.tryLock(), false);
        assertHolder(target.kind, (await b.lock.holder())?.who, 'host-a:11');
        await a.lock.release();
        assert.equal(await b.lock.tryLock(), true);
        assert.equal(await a.lock.tryLock(), false);
        await b.lock.release();
        assert.equal(await a.lock.holder(), null);
      });

      it('never lets two ledgers block each other', async () => {
        const a = await connect('ledger_x');
        const b = await connect('ledger_y');
        assert.equal(await a.lock.tryLock(), true);
        assert.equal(await b.lock.tryLock(), true);
        await a.lock.release();
        await b.lock.release();
      });

      it('releases the lock when the session closes', async () => {
        const a = await connect('lock_close');
        const b = await connect('lock_close');
        assert.equal(await a.lock.tryLock(), true);
        await a.connection.close();
        assert.equal(await b.lock.tryLock(), true);
        await b.lock.release();
      });

      it('wakes a waiter after the holder releases', async () => {
        const a = await connect('lock_wake');
        const b = await connect('lock_wake');
        assert.equal(await a.lock.tryLock(), true);
        assert.equal(await b.lock.tryLock(), false);
        assert.equal(await b.lock.waitForLock(50), false);
        setTimeout(() => void a.lock.release(), 100);
        let got = false;
        for (let i = 0; i < 100 && !got; i++) got = await b.lock.waitForLock(1_000);
        assert.equal(got, true);
        await b.lock.release();
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
        assert.equal(await b.lock.tryLock(), false);
        assertHolder(target.kind, (await b.lock.holder())?.who, `holder:${child.pid}`);
        child.kill('SIGKILL');
        let got = false;
        for (let i = 0; i < 200 && !got; i++) got = await b.lock.waitForLock(100);
        assert.equal(got, true, 'the lock was released by the database / the OS, with no cleanup step');
        await b.lock.release();
      });
    });

    describe('connection', () => {
      it('rolls back statements (and DDL where the database can) in a transaction', async () => {
        const driver = await driverFor();
        const s = await connect();
        if (driver.dialect.transactionalDdl) {
          await s.connection.begin({});
          await s.connection.execute('CREATE TABLE rolled (id integer)');
          await s.connection.execute('INSERT INTO rolled (id) VALUES (1)');
          await s.connection.rollback();
          await assert.rejects(s.connection.execute('SELECT * FROM rolled'));
        } else {
          assert.equal(driver.dialect.isTransactionalStatement?.('CREATE TABLE t (id integer)'), false);
          assert.equal(driver.dialect.isTransactionalStatement?.('  insert into t values (1)'), true);
          await s.connection.execute('CREATE TABLE rolled (id integer)');
          await s.connection.begin({});
          await s.connection.execute('INSERT INTO rolled (id) VALUES (1)');
          await s.connection.rollback();
          assert.equal((await s.connection.execute('SELECT * FROM rolled')).rows.length, 0);
        }
        await s.connection.begin({ lockTimeoutMs: 1000 });
        await s.connection.execute('CREATE TABLE kept (id integer)');
        await s.connection.execute('INSERT INTO kept (id) VALUES (7)');
        await s.connection.commit();
        const result = await s.connection.execute('SELECT id FROM kept');
        assert.deepEqual(
          result.rows.map((r) => Number(r.id)),
          [7],
        );
      });

      it('describes database errors, with the position where the database reports one', async () => {
        const s = await connect();
        const error = await s.connection.execute('SELECT * FROM no_such_table').then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
        const info = s.connection.describeError(error);
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
        const driver = await driverFor();
        const result = await s.connection.execute(`SELECT ${driver.dialect.param(1)} AS answer`, [42]);
        assert.equal(Number(result.rows[0]?.answer), 42);
      });

      it('runs transactions of many sessions of one process concurrently without deadlock', async () => {
        const setup = await connect();
        await setup.connection.execute('CREATE TABLE concurrent (n integer)');
        const sessions = await Promise.all(Array.from({ length: 8 }, () => connect()));
        const param = (await driverFor()).dialect.param(1);
        await Promise.all(
          sessions.map(async (s, i) => {
            await s.connection.begin({ exclusive: i % 2 === 0 });
            await s.connection.execute(`INSERT INTO concurrent (n) VALUES (${param})`, [i]);
            await new Promise((r) => setTimeout(r, 20)); // a transaction that spans awaits
            await s.connection.commit();
            await s.connection.execute(`INSERT INTO concurrent (n) VALUES (${param})`, [100 + i]); // and autocommit writes
          }),
        );
        const { rows } = await setup.connection.execute('SELECT COUNT(*) AS n FROM concurrent');
        assert.equal(Number(rows[0]?.n), 16);
      });

      it('serializes exclusive transactions across processes', async () => {
        const run = () =>
          new Promise<{ entered: number; left: number }>((resolve, reject) => {
            const child = spawn(
              process.execPath,
              [path.join(ROOT, 'test/fixtures/exclusive.mjs'), db.url, 'excl'],
              {
                stdio: ['ignore', 'pipe', 'inherit'],
              },
            );
            let out = '';
            child.stdout.on('data', (d) => {
              out += d;
            });
            child.on('close', (code) =>
              code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`)),
            );
          });
        const spans = (await Promise.all([run(), run(), run()])).sort((a, b) => a.entered - b.entered);
        for (let i = 1; i < spans.length; i++) {
          assert.ok(
            (spans[i]?.entered as number) >= (spans[i - 1]?.left as number) - 5,
            `no overlap: ${JSON.stringify(spans)}`,
          );
        }
      });
    });

    describe('dialect', () => {
      it('spells generic SQL: quoted names beside the ledger, column types, a missing table', async () => {
        const driver = await driverFor();
        const s = await connect();
        const table = driver.dialect.table('generic "odd" name');
        const t = driver.dialect.types;
        await s.connection.execute(
          `CREATE TABLE ${table} (id ${t.autoId}, k ${t.key} NOT NULL, big ${t.bigint}, at ${t.timestamp} NULL, r ${t.real})${t.tableOptions ?? ''}`,
        );
        const at = '2026-01-02T03:04:05.678Z';
        await s.connection.execute(
          `INSERT INTO ${table} (k, big, at, r) VALUES (${[1, 2, 3, 4].map((i) => driver.dialect.param(i)).join(', ')})`,
          ['x', '9007199254740993', driver.dialect.timestamp(at), 0.5],
        );
        const [row] = (
          await s.connection.execute(
            `SELECT id, k, ${driver.dialect.asText('big')} AS big, at, r FROM ${table}`,
          )
        ).rows;
        assert.equal(row?.big, '9007199254740993', 'a bigint survives whole, read as text');
        assert.equal(Number(row?.r), 0.5);
        assert.ok(Number(row?.id) >= 1);
        const error = await s.connection.execute(`SELECT * FROM ${driver.dialect.table('absent')}`).then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
        assert.equal(s.connection.describeError(error).undefinedTable, true);
      });
    });

    describe('long-running extension', () => {
      it('applies statement limits and settings, and restores them', async () => {
        const driver = await driverFor();
        const s = await connect();
        const setting = {
          postgres: ['work_mem', '7MB'],
          mysql: ['sort_buffer_size', 1048576],
          sqlite: ['cache_size', -4321],
        }[target.kind] as [string, string | number];
        const read = {
          postgres: 'SELECT current_setting($1) AS v',
          mysql: 'SELECT @@SESSION.sort_buffer_size AS v',
          sqlite: 'SELECT cache_size AS v FROM pragma_cache_size()',
        }[target.kind];
        const value = async () =>
          String(
            (await s.connection.execute(read, target.kind === 'postgres' ? [setting[0]] : [])).rows[0]?.v,
          );
        const before = await value();
        const restore = await extension(s).applyLimits({
          statementTimeoutMs: 200,
          settings: { [setting[0]]: setting[1] },
        });
        assert.equal(await value(), String(setting[1]));
        if (driver.dialect.cancellable) {
          const sleep = target.kind === 'postgres' ? 'SELECT pg_sleep(3)' : 'SELECT SLEEP(3)';
          const started = Date.now();
          const outcome = await s.connection.execute(sleep).then(
            (r) => r,
            (e: unknown) => e,
          );
          assert.ok(Date.now() - started < 2_000, 'the statement was cut short');
          // MariaDB ends a SLEEP at its max_statement_time with a result of 1 instead of an error.
          if (target.kind === 'postgres')
            assert.match(s.connection.describeError(outcome).message, /statement timeout/);
        }
        await restore();
        assert.equal(await value(), before);
        await assert.rejects(
          extension(s).applyLimits({ settings: { 'bad name; DROP': 1 } }),
          /invalid database setting name/,
        );
      });

      it('finds a statement by its marker comment from another session, and cancels it', async () => {
        const driver = await driverFor();
        const a = await connect();
        const b = await connect();
        if (!driver.dialect.cancellable) {
          assert.deepEqual(
            await extension(b).findRunning('lockstep-async:x:'),
            [],
            'no server: nothing outlives its process',
          );
          return;
        }
        const sleep = target.kind === 'postgres' ? 'SELECT pg_sleep(30)' : 'SELECT SLEEP(30)';
        const running = a.connection.execute(`/* lockstep-async:xz1:op1:a1:s1 */ ${sleep}`).then(
          (r) => r,
          (e: unknown) => e,
        );
        let found: Awaited<ReturnType<LongRunning['findRunning']>> = [];
        for (let i = 0; i < 100 && found.length === 0; i++) {
          found = await extension(b).findRunning('lockstep-async:xz1:');
          if (found.length === 0) await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(found.length, 1);
        assert.match(found[0]?.query ?? '', /lockstep-async:xz1:op1/);
        assert.deepEqual(
          await extension(b).findRunning('lockstep-async:xz:'),
          [],
          'markers match whole names',
        );
        assert.deepEqual(await extension(b).findRunning('lockstep-async:x_1:'), [], '_ is not a wildcard');
        const started = Date.now();
        await extension(b).cancelRunning(found[0]?.id as string);
        await running;
        assert.ok(Date.now() - started < 5_000, 'cancelled, not finished');
      });
    });
  });
}
