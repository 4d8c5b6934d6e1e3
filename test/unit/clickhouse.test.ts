/**
 * The ClickHouse driver's pure parts: its URL, the errors as @clickhouse/client reports them,
 * the statement tags, and the driver's refusals before anything is sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { statementTag } from '../../src/core/ledger-rows.js';
import { literal, quote } from '../../src/drivers/clickhouse/dialect.js';
import {
  codeOf,
  isRetryable,
  isTransportFailure,
  serverMessage,
} from '../../src/drivers/clickhouse/errors.js';
import { coordinatorTable } from '../../src/drivers/clickhouse/index.js';
import { parseClickHouseUrl } from '../../src/drivers/clickhouse/url.js';
import { openDriver } from '../../src/drivers/registry.js';
import { ConfigError, DirtyStateError, type InFlightStatement } from '../../src/errors.js';

const options = { table: 'lockstep_migrations', runnerId: 'test:1' };

describe('ClickHouse URL', () => {
  it('clickhouse:// is HTTP on 8123; clickhouse+https:// and secure=true are HTTPS on 8443', () => {
    const plain = parseClickHouseUrl('clickhouse://u:p%40ss@ch.example/analytics');
    assert.equal(plain.endpoint, 'http://ch.example:8123');
    assert.equal(plain.username, 'u');
    assert.equal(plain.password, 'p@ss');
    assert.equal(plain.database, 'analytics');
    assert.equal(parseClickHouseUrl('clickhouse+http://h:18123/db').endpoint, 'http://h:18123');
    assert.equal(parseClickHouseUrl('clickhouse+https://h/db').endpoint, 'https://h:8443');
    assert.equal(parseClickHouseUrl('clickhouse://h/db?secure=true').endpoint, 'https://h:8443');
    const bare = parseClickHouseUrl('clickhouse://h');
    assert.equal(bare.database, 'default');
    assert.equal(bare.username, 'default');
  });

  it("dbmate's cluster options are read, and the other parameters become ClickHouse settings", () => {
    const t = parseClickHouseUrl(
      'clickhouse://h:8123/db?on_cluster&cluster_macro=%7Bmycluster%7D&replica_macro=%7Br%7D&max_execution_time=60',
    );
    assert.deepEqual(t.cluster, {
      onCluster: true,
      clusterMacro: '{mycluster}',
      replicaMacro: '{r}',
      zooPath: '/clickhouse/tables/{mycluster}/{table}',
    });
    assert.deepEqual(t.settings, { max_execution_time: '60' });
    assert.equal(parseClickHouseUrl('clickhouse://h/db?on_cluster=false').cluster.onCluster, false);
    assert.equal(parseClickHouseUrl('clickhouse://h/db?zoo_path=/z/{table}').cluster.zooPath, '/z/{table}');
  });

  it("refuses the native protocol's ports and a path that is not one database, without the password", () => {
    for (const url of ['clickhouse://u:s3cret@h:9000/db', 'clickhouse://u:s3cret@h:9440/db']) {
      assert.throws(
        () => parseClickHouseUrl(url),
        (e: Error) =>
          e instanceof ConfigError &&
          /native protocol: lockstep speaks HTTP/.test(e.message) &&
          !/s3cret/.test(e.message),
      );
    }
    assert.throws(() => parseClickHouseUrl('clickhouse://h/a/b'), /the path is one database name/);
  });

  it('any password survives the URL whole, and no message shows it (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6, maxLength: 30, unit: 'grapheme' }), (password) => {
        fc.pre(password.trim().length >= 6);
        const url = `clickhouse://u:${encodeURIComponent(password)}@h:9000/db`;
        assert.equal(parseClickHouseUrl(url.replace(':9000', ':8123')).password, password);
        try {
          parseClickHouseUrl(url);
          return false;
        } catch (error) {
          return !(error as Error).message.includes(encodeURIComponent(password));
        }
      }),
    );
  });
});

describe('ClickHouse errors', () => {
  const old = new Error(
    'Code: 57, e.displayText() = DB::Exception: Table t1.b already exists., e.what() = DB::Exception',
  );
  it("the server's code from a field, else from 18.16's message; its words without the wrapping", () => {
    assert.equal(codeOf(old), '57');
    assert.equal(codeOf(Object.assign(new Error('x'), { code: '517' })), '517');
    assert.equal(codeOf(new Error('connect ECONNREFUSED 127.0.0.1:1')), undefined);
    assert.equal(serverMessage(old), 'Table t1.b already exists.');
    assert.equal(serverMessage(new Error('plain words')), 'plain words');
  });

  it('retries only what the server did not start; a lost answer is not a server error', () => {
    assert.equal(
      isRetryable(new Error('Code: 517, e.displayText() = DB::Exception: Cannot assign ALTER')),
      true,
    );
    assert.equal(
      isRetryable(new Error('Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries')),
      true,
    );
    assert.equal(isRetryable(old), false);
    assert.equal(
      isRetryable(new Error('Code: 159, e.displayText() = DB::Exception: Watching task is executing longer')),
      false,
    );
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.equal(isTransportFailure(refused), true);
    assert.equal(isTransportFailure(new Error('socket hang up')), true);
    assert.equal(isTransportFailure(old), false);
  });
});

describe('ClickHouse literals and names', () => {
  it('a literal or a name holds any text (property: no quote or backslash escapes it)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const l = literal(text);
        const inner = l.slice(1, -1);
        // Every quote and backslash inside is escaped: removing escape pairs leaves neither.
        return !/['\\]/.test(inner.replace(/\\[\\']/g, ''));
      }),
    );
    assert.equal(quote('a`b'), '`a\\`b`');
  });
});

describe('statement tags', () => {
  const row = { version: '20261201120000', direction: 'up' as const, startedAt: '2026-12-01T12:00:00.123Z' };
  it('are the same for the same attempt and statement, and differ in ledger, statement, direction, attempt', () => {
    const tag = statementTag('"public"."clickhouse_db_lockstep_migrations"', row, 2).id;
    assert.equal(tag, statementTag('"public"."clickhouse_db_lockstep_migrations"', { ...row }, 2).id);
    assert.match(tag, /^lockstep-[0-9a-f]{8}-20261201120000-up-2-1796126400123$/);
    const others = [
      statementTag('"public"."other"', row, 2).id,
      statementTag('"public"."clickhouse_db_lockstep_migrations"', row, 3).id,
      statementTag('"public"."clickhouse_db_lockstep_migrations"', { ...row, direction: 'down' }, 2).id,
      statementTag(
        '"public"."clickhouse_db_lockstep_migrations"',
        { ...row, startedAt: '2026-12-01T12:00:01.123Z' },
        2,
      ).id,
    ];
    assert.equal(new Set([tag, ...others]).size, 5);
    // One statement's tag never starts another's (retries add -rN and are found by prefix).
    assert.ok(!statementTag('x', row, 10).id.startsWith(statementTag('x', row, 1).id));
  });

  it('keep only characters safe in a query id', () => {
    assert.match(statementTag('t', { ...row, version: "1'; DROP" }, 1).id, /^[A-Za-z0-9_.-]+$/);
  });
});

describe('ClickHouse driver refusals', () => {
  it('without a coordinator: refused, saying why and what to give, the database untouched', async () => {
    await assert.rejects(
      openDriver('clickhouse://u:s3cret@127.0.0.1:1/db', options),
      (e: Error) =>
        e instanceof ConfigError &&
        /no locks and no transactions/.test(e.message) &&
        /--coordinator-url/.test(e.message) &&
        !/s3cret/.test(e.message),
    );
  });

  it('a coordinator must have a lock and transactions: PostgreSQL or SQLite', async () => {
    await assert.rejects(
      openDriver('clickhouse://h:8123/db', { ...options, coordinatorUrl: 'mysql://root:pw@h/db' }),
      (e: Error) => /must be a PostgreSQL or SQLite URL/.test(e.message) && !/:pw@/.test(e.message),
    );
    await assert.rejects(
      openDriver('clickhouse://h:8123/db', { ...options, coordinatorUrl: 'clickhouse://h:8123/x' }),
      /must be a PostgreSQL or SQLite URL/,
    );
  });

  it('a coordinator URL for a database that has its own lock is refused', async () => {
    await assert.rejects(
      openDriver('postgres://h/db', { ...options, coordinatorUrl: 'postgres://h/c' }),
      /--coordinator-url is for ClickHouse/,
    );
  });

  it("the coordinator's tables are prefixed with the ClickHouse database, the schema kept", () => {
    assert.equal(
      coordinatorTable('analytics', 'lockstep_migrations'),
      'clickhouse_analytics_lockstep_migrations',
    );
    assert.equal(coordinatorTable('my-db', 'lockstep_migrations'), 'clickhouse_my_db_lockstep_migrations');
    assert.equal(coordinatorTable('analytics', 'ops.ledger'), 'ops.clickhouse_analytics_ledger');
  });
});

describe('the dirty state, as the server told it', () => {
  const facts = {
    version: '004',
    file: 'db/migrations/004_slow.sql',
    state: 'running' as const,
    direction: 'up' as const,
    statementsDone: 1,
    statementCount: 3,
    reachedLine: 7,
    by: 'host:1',
    since: '2026-12-01T12:00:00.000Z',
  };
  const at = (outcome: InFlightStatement['outcome'], error?: string) =>
    new DirtyStateError({
      ...facts,
      inFlight: { statement: 2, queryId: 'q-2', outcome, waitedMs: 2500, error },
    }).message;

  it('says what the server did with the statement reached, never "may or may not" when it knows', () => {
    assert.match(at('finished'), /statement 2 at db\/migrations\/004_slow\.sql:7 was not started/);
    assert.match(
      at('finished'),
      /statement 2 \(query id q-2\) finished on the server after its runner was gone, after waiting 2\.5 s/,
    );
    assert.match(
      at('failed', 'Memory limit exceeded'),
      /did not complete[\s\S]*failed on the server, after waiting 2\.5 s for it: Memory limit exceeded/,
    );
    assert.match(at('killed'), /cancelled on the server, as asked \(--cancel-orphans\)/);
    assert.match(
      at('still-running'),
      /is still running[\s\S]*Wait for it and run lockstep again, or cancel it/,
    );
    assert.match(at('not-found'), /was not started[\s\S]*never ran on the server/);
    assert.match(
      at('unknown', 'system.query_log cannot be read'),
      /may or may not have completed[\s\S]*cannot be read/,
    );
    for (const outcome of [
      'finished',
      'failed',
      'killed',
      'still-running',
      'not-found',
      'unknown',
    ] as const) {
      assert.match(at(outcome), /lockstep resolve 004 --applied/);
    }
  });

  it('all statements done: only the record of its end is missing', () => {
    const message = new DirtyStateError({ ...facts, statementsDone: 3 }).message;
    assert.match(
      message,
      /reached: all 3 statements completed in db\/migrations\/004_slow\.sql; only the record of its end is missing/,
    );
  });
});
