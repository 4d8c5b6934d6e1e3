/**
 * The ClickHouse driver against a real ClickHouse server (18.16, started by the tests), with the
 * lock and the ledger in a real coordinator: PostgreSQL, and SQLite.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDriver } from '../../src/drivers/registry.js';
import { serve } from '../../src/server/serve.js';
import { type ClickHouseTestDatabase, createClickHouseDatabase } from '../helpers/clickhouse.js';
import { eventually, startCli } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  runCli,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

const SLOW =
  'CREATE TABLE slow ENGINE = MergeTree ORDER BY k AS SELECT number % 7 AS k, count() AS c FROM numbers(400000000) GROUP BY k';

for (const coordinatorKind of ['postgres', 'sqlite'] as const) {
  describe(`ClickHouse, coordinator ${coordinatorKind}`, () => {
    let ch: ClickHouseTestDatabase;
    let coordinator: TestDatabase | undefined;
    let coordinatorUrl: string;
    /** How this ledger's statement tags start (core/ledger-rows.ts statementTag). */
    let tags: string;
    const ledgerTable = () => `clickhouse_${ch.name}_lockstep_migrations`;
    const ledger = async () =>
      coordinatorKind === 'postgres'
        ? ((await coordinator?.query(
            `SELECT version, state, statements_done FROM ${ledgerTable()} ORDER BY version`,
          )) ?? [])
        : [];
    /** Where a command works: the ClickHouse URL, the coordinator, the migrations. */
    const where = (url = ch.url, coordinator = coordinatorUrl) => [
      ...['--url', url, '--coordinator-url', coordinator],
      ...['--dir', path.join(ch.dir, 'migrations')],
    ];
    const lockstep = (args: string[], url = ch.url, coordinator = coordinatorUrl) =>
      runCli([...args, ...where(url, coordinator)], { cwd: ch.dir, env: CLEAN_ENV });

    /**
     * Starts `up`, waits until statement 1 of `version` runs on the server, SIGKILLs the runner;
     * returns the probe of that statement's copies in system.processes.
     */
    const killMidStatement = async (version: string) => {
      const first = startCli(['up', ...where()], { cwd: ch.dir, env: CLEAN_ENV });
      const running = async () =>
        ch.query(`SELECT query_id FROM system.processes WHERE query_id LIKE '${tags}-${version}-up-1-%'`);
      await eventually(async () => (await running()).length === 1, 'the slow statement runs on the server');
      first.child.kill('SIGKILL');
      await first.done;
      return running;
    };

    before(async () => {
      ch = await createClickHouseDatabase();
      if (coordinatorKind === 'postgres') {
        coordinator = await createPostgresDatabase();
        coordinatorUrl = coordinator.url;
      } else {
        coordinatorUrl = `sqlite:${path.join(ch.dir, 'coordinator.db')}`;
      }
      const driver = await openDriver(ch.url, {
        table: 'lockstep_migrations',
        runnerId: 't',
        coordinatorUrl,
      });
      tags = `lockstep-${createHash('sha256').update(driver.dialect.ledger.table).digest('hex').slice(0, 8)}`;
    });
    after(async () => {
      await ch?.cleanup();
      await coordinator?.cleanup();
    });

    it('up applies statement by statement, records in the coordinator, mirrors into schema_migrations', async () => {
      writeMigrations(ch.dir, {
        '001_events.sql':
          '-- migrate:up\nCREATE TABLE events (id UInt64, kind String) ENGINE = MergeTree ORDER BY id;\n' +
          "INSERT INTO events SELECT number, 'a' FROM numbers(1000);\n-- migrate:down\nDROP TABLE events;\n",
        '002_rewrite.sql':
          "-- migrate:up\nALTER TABLE events UPDATE kind = 'b' WHERE id < 10;\nALTER TABLE events DELETE WHERE id >= 990;\n" +
          '-- migrate:down\nSELECT 1;\n',
      });
      const up = await lockstep(['up', '--json']);
      assert.equal(up.code, 0, up.stderr);
      assert.deepEqual(
        JSON.parse(up.stdout).applied.map((m: { version: string }) => m.version),
        ['001', '002'],
      );
      // The mutations were waited for: done when up returned.
      assert.deepEqual(await ch.query('SELECT kind, count() AS n FROM events GROUP BY kind ORDER BY kind'), [
        { kind: 'a', n: '980' },
        { kind: 'b', n: '10' },
      ]);
      assert.deepEqual(
        await ch.query(
          `SELECT count() AS n FROM system.mutations WHERE database = '${ch.name}' AND is_done = 0`,
        ),
        [{ n: '0' }],
      );
      assert.deepEqual(
        await ch.query('SELECT version FROM schema_migrations FINAL WHERE applied ORDER BY version'),
        [{ version: '001' }, { version: '002' }],
      );
      if (coordinatorKind === 'postgres') {
        assert.deepEqual(
          (await ledger()).map((r) => [r.version, r.state, Number(r.statements_done)]),
          [
            ['001', 'applied', 2],
            ['002', 'applied', 2],
          ],
        );
      }
      // Every statement went with its tag, and each ran once.
      await ch.query('SYSTEM FLUSH LOGS');
      for (const [version, statement] of [
        ['001', 1],
        ['001', 2],
        ['002', 1],
        ['002', 2],
      ]) {
        assert.deepEqual(
          await ch.query(
            `SELECT count() AS n FROM system.query_log WHERE query_id LIKE '${tags}-${version}-up-${statement}-%' AND type = 2`,
          ),
          [{ n: '1' }],
          `${version} statement ${statement}: one finished query with its tag`,
        );
      }
      const status = await lockstep(['status']);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /ledger clickhouse_\w+_lockstep_migrations in the coordinator/);
      assert.match(status.stdout, /002\s+rewrite\s+applied/);
      const again = await lockstep(['up']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /up to date/);
    });

    it('down rolls back, and the mirror follows', async () => {
      const down = await lockstep(['down']);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(
        await ch.query('SELECT version FROM schema_migrations FINAL WHERE applied ORDER BY version'),
        [{ version: '001' }],
      );
      const up = await lockstep(['up']);
      assert.equal(up.code, 0, up.stderr);
    });

    it('a failing statement: file and line, what stays applied, state failed, resolve', async () => {
      writeMigrations(ch.dir, {
        '003_bad.sql':
          '-- migrate:up\nCREATE TABLE t3 (x UInt8) ENGINE = Memory;\nINSERT INTO missing_table VALUES (1);\nSELECT 1;\n',
      });
      const up = await lockstep(['up']);
      assert.equal(up.code, 1, up.stderr);
      assert.match(up.stderr, /003_bad\.sql:3/);
      assert.match(up.stderr, /statements 1\.\.1 were applied and stay applied/);
      assert.match(up.stderr, /missing_table/);
      const again = await lockstep(['up']);
      assert.equal(again.code, 4, again.stderr);
      assert.match(again.stderr, /resolve 003 --applied/);
      const resolved = await lockstep(['resolve', '003', '--rolled-back']);
      assert.equal(resolved.code, 0, resolved.stderr);
      await ch.query('DROP TABLE t3');
      writeMigrations(ch.dir, {
        '003_bad.sql': '-- migrate:up\nCREATE TABLE t3 (x UInt8) ENGINE = Memory;\n',
      });
      assert.equal((await lockstep(['up'])).code, 0);
    });

    it('a runner SIGKILLed mid-statement: the next waits for the statement by its query id, never sends a second copy, and says how it ended', async () => {
      writeMigrations(ch.dir, {
        '004_slow.sql': `-- migrate:up\n${SLOW};\nSELECT 2;\n-- migrate:down\nDROP TABLE slow;\n`,
      });
      const running = await killMidStatement('004');
      assert.equal((await running()).length, 1, 'it goes on running after its client died');
      let most = 0;
      const watching = (async () => {
        for (;;) {
          const n = (await running()).length;
          most = Math.max(most, n);
          if (n === 0) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const next = await lockstep(['up']);
      await watching;
      assert.equal(most, 1, 'never a second copy on the server');
      assert.equal(next.code, 4, next.stderr);
      assert.match(next.stderr, /still runs on the server \(query id lockstep-\w+-004-up-1-\d+/);
      assert.match(next.stderr, /finished on the server after its runner was gone/);
      assert.match(
        next.stderr,
        /statements 1\.\.1 of 2 completed; statement 2 at \S*004_slow\.sql:3 was not started/,
      );
      assert.deepEqual(await ch.query('SELECT count() AS n FROM slow'), [{ n: '7' }]);
      const starts = await ch.query(
        `SELECT count() AS n FROM system.query_log WHERE query_id LIKE '${tags}-004-up-1-%' AND type = 1`,
      );
      assert.deepEqual(starts, [{ n: '1' }], 'sent once');
      assert.equal((await lockstep(['resolve', '004', '--applied'])).code, 0);
    });

    it('--cancel-orphans cancels what a dead runner left running, and says so', async () => {
      writeMigrations(ch.dir, { '005_slow.sql': `-- migrate:up\n${SLOW.replace('slow', 'slow5')};\n` });
      const running = await killMidStatement('005');
      const next = await lockstep(['up', '--cancel-orphans']);
      assert.equal(next.code, 4, next.stderr);
      assert.match(next.stderr, /cancelled on the server, as asked \(--cancel-orphans\)/);
      assert.deepEqual(await running(), []);
      assert.equal((await lockstep(['resolve', '005', '--rolled-back'])).code, 0);
      rmSync(path.join(ch.dir, 'migrations', '005_slow.sql'));
      await ch.query('DROP TABLE IF EXISTS slow5');
    });

    it('a statement that runs past the migration timeout is cancelled on the server', async () => {
      writeMigrations(ch.dir, { '006_slow.sql': `-- migrate:up\n${SLOW.replace('slow', 'slow6')};\n` });
      const up = await lockstep(['up', '--migration-timeout', '1s']);
      assert.equal(up.code, 1, up.stderr);
      assert.match(up.stderr, /ran longer than/);
      assert.deepEqual(
        await ch.query(`SELECT query_id FROM system.processes WHERE query_id LIKE '${tags}-006-up-1-%'`),
        [],
      );
      assert.equal((await lockstep(['resolve', '006', '--rolled-back'])).code, 0);
      rmSync(path.join(ch.dir, 'migrations', '006_slow.sql'));
      await ch.query('DROP TABLE IF EXISTS slow6');
    });

    it('long-running migrations keep their state in the coordinator: none of their tables in ClickHouse', async () => {
      const result = await runCli(
        ['async', 'list', '--url', ch.url, '--coordinator-url', coordinatorUrl, '--async-dir', ch.dir],
        { cwd: ch.dir, env: CLEAN_ENV },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(
        await ch.query(
          `SELECT name FROM system.tables WHERE database = '${ch.name}' AND name LIKE 'lockstep%'`,
        ),
        [],
      );
    });

    it('the status page shows the ClickHouse migrations, from the coordinator', async () => {
      const server = await serve({
        url: ch.url,
        coordinatorUrl,
        dir: path.join(ch.dir, 'migrations'),
        port: 0,
        cwd: ch.dir,
      });
      try {
        const response = await fetch(new URL('api/migrations', server.url));
        const text = await response.text();
        assert.equal(response.status, 200, text);
        assert.match(text, /"version":"001"/);
        assert.match(text, /"state":"applied"/);
      } finally {
        await server.close();
      }
    });

    it('a password in the URL is in no output, also when a statement fails', async () => {
      writeMigrations(ch.dir, { '007_bad.sql': '-- migrate:up\nSELECT * FROM nowhere_at_all;\n' });
      const secretCoordinator =
        coordinatorKind === 'postgres'
          ? coordinatorUrl.replace('postgres@', 'postgres:Coord1nat0rPw@')
          : coordinatorUrl;
      const up = await lockstep(['up', '--json'], ch.urlWithPassword, secretCoordinator);
      const password = new URL(ch.urlWithPassword).password;
      assert.doesNotMatch(up.stdout + up.stderr, /Coord1nat0rPw/);
      assert.equal(up.code, 1, up.stderr);
      for (const text of [up.stdout, up.stderr]) {
        assert.ok(!text.includes(password) && !text.includes(decodeURIComponent(password)), text);
      }
      assert.equal((await lockstep(['resolve', '007', '--rolled-back'])).code, 0);
      rmSync(path.join(ch.dir, 'migrations', '007_bad.sql'));
    });

    it('a statement the server could not start yet is sent again, with backoff, and runs once', async () => {
      writeMigrations(ch.dir, {
        '008_busy.sql': '-- migrate:up\nCREATE TABLE busy (x UInt8) ENGINE = Memory;\n',
      });
      // Another query of the same user keeps the server "too busy" (max_concurrent_queries_for_user=1).
      const blocker = ch.query('SELECT count() FROM numbers(2000000000)');
      await eventually(
        async () =>
          (
            await ch.query(
              "SELECT 1 FROM system.processes WHERE query LIKE '%numbers(2000000000)%' AND query NOT LIKE '%system.processes%'",
            )
          ).length > 0,
        'the blocker runs',
      );
      const up = await lockstep(['up'], `${ch.url}?max_concurrent_queries_for_user=1`);
      await blocker;
      assert.equal(up.code, 0, up.stderr);
      await ch.query('SYSTEM FLUSH LOGS');
      const attempts = await ch.query(
        `SELECT type, substring(exception, 1, 9) AS code FROM system.query_log WHERE query_id LIKE '${tags}-008-up-1-%' AND type != 1 ORDER BY event_time`,
      );
      assert.ok(
        attempts.some((a) => a.code === 'Code: 202'),
        JSON.stringify(attempts),
      );
      assert.equal(attempts.filter((a) => Number(a.type) === 2).length, 1, 'it ran once');
    });

    it('a statement whose request is cut before it reaches the server is sent again, once', async () => {
      writeMigrations(ch.dir, {
        '009_cut.sql': '-- migrate:up\nCREATE TABLE cut (x UInt8) ENGINE = Memory;\n',
      });
      // A proxy in front of the server that resets the first connection as its request arrives.
      let cut = false;
      const proxy = createServer((client) => {
        const server = connect(ch.server.httpPort, '127.0.0.1');
        client.once('data', (first) => {
          if (!cut) {
            cut = true;
            client.resetAndDestroy();
            server.destroy();
            return;
          }
          server.write(first);
          client.pipe(server).pipe(client);
        });
        for (const end of [client, server]) end.on('error', () => {});
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      try {
        const through = new URL(ch.url);
        through.port = String((proxy.address() as AddressInfo).port);
        const up = await lockstep(['up'], through.href);
        assert.equal(up.code, 0, up.stderr);
        assert.ok(cut, 'the first request was cut');
      } finally {
        proxy.close();
      }
      await ch.query('SYSTEM FLUSH LOGS');
      const sent = await ch.query(
        `SELECT query_id, type FROM system.query_log WHERE query_id LIKE '${tags}-009-up-1-%' ORDER BY event_time, type`,
      );
      assert.deepEqual(
        sent.map((r) => [String(r.query_id).replace(/^.*-1-\d+/, ''), Number(r.type)]),
        [
          ['-r1', 1],
          ['-r1', 2],
        ],
        'the cut request never reached the server; its retry ran once',
      );
      assert.deepEqual(
        await ch.query(`SELECT name FROM system.tables WHERE database = '${ch.name}' AND name = 'cut'`),
        [{ name: 'cut' }],
      );
    });
  });
}
