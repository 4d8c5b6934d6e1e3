/**
 * ON CLUSTER on a real two-replica ClickHouse 18.16 cluster with ZooKeeper (started by the
 * tests): every host's result checked, a partial failure reported per host and never recorded
 * applied, a host that is down waited for through the DDL queue, the mirror replicated.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLUSTER_NAME, type ClickHouseCluster, startClickHouseCluster } from '../helpers/clickhouse.js';
import { eventually } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  type ProcessResult,
  runCli,
  type TestDatabase,
  writeMigrations,
} from '../helpers/targets.js';

describe('ClickHouse cluster: ON CLUSTER', () => {
  let cluster: ClickHouseCluster;
  let coordinator: TestDatabase;
  const database = 'lockstep_cluster_t';
  let dir: string;

  const url = (node: number, settings = '') => {
    const u = new URL(cluster.nodes[node]?.url as string);
    u.pathname = `/${database}`;
    u.search = `?on_cluster&cluster_macro=${CLUSTER_NAME}${settings}`;
    return u.href;
  };
  const up = (node: number, settings = ''): Promise<ProcessResult> =>
    runCli(
      [
        'up',
        '--url',
        url(node, settings),
        '--coordinator-url',
        coordinator.url,
        '--dir',
        path.join(dir, 'migrations'),
      ],
      {
        cwd: dir,
        env: CLEAN_ENV,
      },
    );
  const ledger = () =>
    coordinator.query(
      `SELECT version, state FROM clickhouse_${database}_lockstep_migrations ORDER BY version`,
    );
  const tables = async (node: number) =>
    (
      await cluster.nodes[node]?.query(
        `SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`,
      )
    )?.map((r) => r.name);

  before(async () => {
    cluster = await startClickHouseCluster();
    coordinator = await createPostgresDatabase();
    await cluster.nodes[0]?.query(`CREATE DATABASE ${database} ON CLUSTER ${CLUSTER_NAME}`);
    dir = coordinator.dir;
  });
  after(async () => {
    await coordinator?.cleanup();
    await cluster?.stop();
  });

  it('distributed DDL and replicated tables: applied on both hosts, the mirror replicated', async () => {
    writeMigrations(dir, {
      '001_events.sql':
        `-- migrate:up\nCREATE TABLE events ON CLUSTER ${CLUSTER_NAME} (id UInt64) ` +
        `ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/${database}_events', '{replica}') ORDER BY id;\n` +
        'INSERT INTO events VALUES (1), (2);\n',
    });
    const result = await up(0);
    assert.equal(result.code, 0, result.stderr);
    for (const node of [0, 1]) {
      assert.deepEqual(await tables(node), ['events', 'schema_migrations'], `node ${node + 1}`);
    }
    // Replication is asynchronous: the rows reach the other replica soon after.
    const onNode2 = async (sql: string) => JSON.stringify(await cluster.nodes[1]?.query(sql));
    await eventually(
      async () => (await onNode2(`SELECT count() AS n FROM ${database}.events`)) === '[{"n":"2"}]',
      'the rows reached the other replica',
    );
    await eventually(
      async () =>
        (await onNode2(`SELECT version FROM ${database}.schema_migrations FINAL WHERE applied`)) ===
        '[{"version":"001"}]',
      'the mirror reached the other host: it is replicated',
    );
  });

  it('a host that refuses: reported per host, recorded failed, never applied', async () => {
    await cluster.nodes[1]?.query(`CREATE TABLE ${database}.only2 (x UInt8) ENGINE = Memory`);
    writeMigrations(dir, {
      '002_only.sql': `-- migrate:up\nCREATE TABLE only2 ON CLUSTER ${CLUSTER_NAME} (x UInt8) ENGINE = Memory;\n`,
    });
    const result = await up(0);
    assert.equal(result.code, 1, result.stderr);
    const ports = cluster.nodes.map((n) => n.tcpPort);
    assert.match(
      result.stderr,
      new RegExp(
        `Per host: 127\\.0\\.0\\.1:${ports[0]} done; 127\\.0\\.0\\.1:${ports[1]} failed: Table ${database}\\.only2 already exists`,
      ),
    );
    assert.doesNotMatch(result.stderr, /e\.what\(\)|DB::Exception/);
    assert.deepEqual(
      (await ledger()).map((r) => [r.version, r.state]),
      [
        ['001', 'applied'],
        ['002', 'failed'],
      ],
    );
    assert.deepEqual(
      await cluster.nodes[0]?.query(
        `SELECT version FROM ${database}.schema_migrations FINAL WHERE applied ORDER BY version`,
      ),
      [{ version: '001' }],
      'the mirror does not call it applied',
    );
    const resolved = await runCli(
      [
        'resolve',
        '002',
        '--applied',
        '--url',
        url(0),
        '--coordinator-url',
        coordinator.url,
        '--dir',
        path.join(dir, 'migrations'),
      ],
      { cwd: dir, env: CLEAN_ENV },
    );
    assert.equal(resolved.code, 0, resolved.stderr);
  });

  it('a host that is down: the DDL timeout is not a failure; the queue is followed until the host has run it', async () => {
    writeMigrations(dir, {
      '003_late.sql': `-- migrate:up\nCREATE TABLE late ON CLUSTER ${CLUSTER_NAME} (x UInt8) ENGINE = Memory;\n`,
    });
    await cluster.nodes[1]?.stop();
    const running = up(0, '&distributed_ddl_task_timeout=2');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    assert.deepEqual(
      (await ledger()).map((r) => [r.version, r.state]).at(-1),
      ['003', 'running'],
      'still waiting',
    );
    await cluster.nodes[1]?.start();
    const result = await running;
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await tables(1))?.includes('late'), 'the host that was down ran it');
    assert.match(
      result.stderr,
      /distributed_ddl_task_timeout \(=2\) seconds.*not a failure; following \/clickhouse\/task_queue\/ddl\/query-\d+ until every host has run it/,
    );
    assert.deepEqual((await ledger()).map((r) => [r.version, r.state]).at(-1), ['003', 'applied']);
  });

  it('a long-running migration on the cluster: ON CLUSTER DDL checked per host, a batched mutation of a replicated table, seen on both replicas', async () => {
    const folder = writeMigrations(
      dir,
      {
        '0001_jobs.sql':
          '-- async:description Mark every job done, 500 at a time\n' +
          `-- async:operation\nALTER TABLE jobs ON CLUSTER ${CLUSTER_NAME} ADD COLUMN done UInt8 DEFAULT 0\n` +
          `-- async:rollback\nALTER TABLE jobs ON CLUSTER ${CLUSTER_NAME} DROP COLUMN done\n` +
          '-- async:operation batched table:jobs key:id batch_size:500\n' +
          'ALTER TABLE jobs UPDATE done = 1 WHERE id >= :start AND id < :end\n' +
          '-- async:rollback\nALTER TABLE jobs UPDATE done = 0 WHERE id >= :start AND id < :end\n',
      },
      'async',
    );
    await cluster.nodes[0]?.query(
      `CREATE TABLE ${database}.jobs ON CLUSTER ${CLUSTER_NAME} (id UInt64) ` +
        `ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/${database}_jobs', '{replica}') ORDER BY id`,
    );
    await cluster.nodes[0]?.query(`INSERT INTO ${database}.jobs SELECT number FROM numbers(2000)`);
    const result = await runCli(
      [
        ...['async', 'trigger', '0001_jobs', '--wait'],
        ...['--url', url(1), '--coordinator-url', coordinator.url, '--async-dir', folder],
      ],
      { cwd: dir, env: CLEAN_ENV },
    );
    assert.equal(result.code, 0, result.stderr);
    for (const node of [0, 1]) {
      await eventually(
        async () =>
          JSON.stringify(await cluster.nodes[node]?.query(`SELECT sum(done) AS n FROM ${database}.jobs`)) ===
          '[{"n":"2000"}]',
        `every job done on node ${node + 1}`,
      );
    }
    assert.deepEqual(
      await coordinator.query(`SELECT state, progress FROM clickhouse_${database}_lockstep_async`),
      [{ state: 'completed', progress: 100 }],
    );
  });
});
