/**
 * The ClickHouse harness itself, through @clickhouse/client: the shared node answers, a test
 * database is made and dropped, a node of its own survives SIGKILL and restart with its data and
 * leaves nothing behind, a server that cannot start says why, and the two-node cluster runs
 * ON CLUSTER DDL and ReplicatedMergeTree on both replicas, a stopped node rejoining.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import {
  CLICKHOUSE_PASSWORD_USER,
  CLUSTER_NAME,
  type ClickHouseCluster,
  type ClickHouseNode,
  createClickHouseDatabase,
  DDL_QUEUE_PATH,
  sharedClickHouse,
  startClickHouse,
  startClickHouseCluster,
} from '../helpers/clickhouse.js';
import { eventually, isRunning } from '../helpers/process.js';

const clients: ClickHouseClient[] = [];

function clientFor(
  node: ClickHouseNode,
  options: { database?: string; username?: string; password?: string } = {},
): ClickHouseClient {
  const client = createClient({
    url: `http://127.0.0.1:${node.httpPort}`,
    ...options,
    log: { level: ClickHouseLogLevel.OFF },
    // An idle keep-alive socket holds up the server's graceful shutdown by a second or two.
    keep_alive: { enabled: false },
  });
  clients.push(client);
  return client;
}

async function rows<T = Record<string, unknown>>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

describe('ClickHouse test harness: single node', () => {
  it('the shared node answers @clickhouse/client at its URL', async () => {
    const node = await sharedClickHouse();
    assert.equal(node.url, `clickhouse://default@127.0.0.1:${node.httpPort}/default`);
    assert.equal(await sharedClickHouse(), node, 'one shared node per test process');
    const [version] = await rows<{ v: string }>(clientFor(node), 'SELECT version() AS v');
    assert.match(version?.v ?? '', /^\d+\.\d+\./);
    console.log(`clickhouse ${version?.v} on http ${node.httpPort}`);
  });

  it('the user with a password gets in with it, and only with it', async () => {
    const node = await sharedClickHouse();
    const { user, password } = CLICKHOUSE_PASSWORD_USER;
    const url = new URL(node.urlWithPassword('default'));
    assert.equal(decodeURIComponent(url.username), user);
    assert.equal(decodeURIComponent(url.password), password);
    const [row] = await rows(clientFor(node, { username: user, password }), 'SELECT 1 AS one');
    assert.deepEqual(row, { one: 1 });
    const wrong = clientFor(node, { username: user, password: `${password}x` });
    await assert.rejects(wrong.command({ query: 'SELECT 1' }), /^Error: Code: 193, .*Wrong password/);
  });

  it('a test database is created empty and dropped by cleanup()', async () => {
    const db = await createClickHouseDatabase();
    const client = clientFor(db.server);
    const listed = `SELECT name FROM system.databases WHERE name = '${db.name}'`;
    assert.deepEqual(await rows(client, listed), [{ name: db.name }]);
    assert.equal(new URL(db.url).pathname, `/${db.name}`);
    assert.equal(existsSync(db.dir), true);
    const inDb = clientFor(db.server, { database: db.name });
    await inDb.command({ query: 'CREATE TABLE t (id UInt32) ENGINE = MergeTree ORDER BY id' });
    await inDb.command({ query: 'INSERT INTO t VALUES (1), (2)' });
    assert.deepEqual(await db.query('SELECT count() AS n FROM t'), [{ n: '2' }]);
    await db.cleanup();
    assert.deepEqual(await rows(client, listed), []);
    assert.equal(existsSync(db.dir), false);
  });

  it('a node of its own survives SIGKILL and restart with its data, and stop() leaves nothing', async () => {
    const shared = await sharedClickHouse();
    const node = await startClickHouse();
    try {
      assert.notEqual(node.httpPort, shared.httpPort);
      await node.query('CREATE TABLE kept (id UInt32) ENGINE = MergeTree ORDER BY id');
      await node.query('INSERT INTO kept VALUES (7)');
      const firstPid = node.pid() ?? 0;
      await node.kill('SIGKILL');
      assert.equal(isRunning(firstPid), false);
      assert.equal(node.pid(), undefined);
      await node.restart();
      assert.notEqual(node.pid(), firstPid);
      assert.deepEqual(await rows(clientFor(node), 'SELECT id FROM kept'), [{ id: 7 }]);
      const pid = node.pid() ?? 0;
      await node.stop();
      assert.equal(isRunning(pid), false);
      assert.equal(existsSync(node.dir), false);
      assert.match(node.logs(), /Logging warning to/);
    } finally {
      await node.stop();
    }
  });

  it('a server that cannot start fails with its exit and its log tail', async () => {
    await assert.rejects(
      startClickHouse({ extraConfig: '<listen_host>256.0.0.1</listen_host>' }),
      /exited by itself, exit code \d+; log tail:\n[\s\S]*Host not found: 256\.0\.0\.1/,
    );
  });
});

describe('ClickHouse test harness: cluster', () => {
  let cluster: ClickHouseCluster;
  let node1: ClickHouseNode;
  let node2: ClickHouseNode;
  let client1: ClickHouseClient;
  let client2: ClickHouseClient;

  before(async () => {
    const started = performance.now();
    cluster = await startClickHouseCluster();
    console.log(`cluster (zookeeper + 2 nodes) up in ${Math.round(performance.now() - started)} ms`);
    [node1, node2] = cluster.nodes as [ClickHouseNode, ClickHouseNode];
    client1 = clientFor(node1);
    client2 = clientFor(node2);
  });

  after(async () => {
    await cluster?.stop();
  });

  it(`both nodes define ${CLUSTER_NAME} as one shard of both, with their own macros`, async () => {
    const clusterRows = `SELECT shard_num, replica_num, port FROM system.clusters WHERE cluster = '${CLUSTER_NAME}' ORDER BY replica_num`;
    const expected = [
      { shard_num: 1, replica_num: 1, port: node1.tcpPort },
      { shard_num: 1, replica_num: 2, port: node2.tcpPort },
    ];
    assert.deepEqual(await rows(client1, clusterRows), expected);
    assert.deepEqual(await rows(client2, clusterRows), expected);
    const macros = 'SELECT macro, substitution FROM system.macros ORDER BY macro';
    assert.deepEqual(await rows(client2, macros), [
      { macro: 'cluster', substitution: CLUSTER_NAME },
      { macro: 'replica', substitution: 'node2' },
      { macro: 'shard', substitution: '01' },
    ]);
  });

  it('ON CLUSTER creates a ReplicatedMergeTree table on both nodes, and rows replicate', async () => {
    await client1.command({
      query: `CREATE TABLE default.replicated ON CLUSTER ${CLUSTER_NAME} (id UInt32) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/replicated', '{replica}') ORDER BY id`,
    });
    const engine = "SELECT engine FROM system.tables WHERE database = 'default' AND name = 'replicated'";
    assert.deepEqual(await rows(client1, engine), [{ engine: 'ReplicatedMergeTree' }]);
    assert.deepEqual(await rows(client2, engine), [{ engine: 'ReplicatedMergeTree' }]);
    await client1.command({ query: 'INSERT INTO default.replicated VALUES (1), (2)' });
    await client2.command({ query: 'SYSTEM SYNC REPLICA default.replicated' });
    assert.deepEqual(await rows(client2, 'SELECT id FROM default.replicated ORDER BY id'), [
      { id: 1 },
      { id: 2 },
    ]);
    const queue = await rows(client1, `SELECT name FROM system.zookeeper WHERE path = '${DDL_QUEUE_PATH}'`);
    assert.ok(queue.length >= 1, 'the DDL went through the ZooKeeper queue');
  });

  it('a node stopped and started again rejoins: it catches up on rows and on DDL it missed', async () => {
    const pid = node2.pid() ?? 0;
    await node2.stop();
    assert.equal(isRunning(pid), false);
    await client1.command({ query: 'INSERT INTO default.replicated VALUES (3)' });
    // Its replica is down, so the initiator stops waiting after 1 s; the task stays queued.
    await assert.rejects(
      client1.command({
        query: `CREATE TABLE default.missed ON CLUSTER ${CLUSTER_NAME} (id UInt32) ENGINE = Memory`,
        clickhouse_settings: { distributed_ddl_task_timeout: '1' },
      }),
      /^Error: Code: 159, .*There are 1 unfinished hosts/,
    );
    await node2.start();
    await client2.command({ query: 'SYSTEM SYNC REPLICA default.replicated' });
    assert.deepEqual(await rows(client2, 'SELECT count() AS n FROM default.replicated'), [{ n: '3' }]);
    await eventually(
      async () => (await rows(client2, 'EXISTS TABLE default.missed'))[0]?.result === 1,
      'node2 ran the ON CLUSTER DDL queued while it was down',
      10_000,
    );
  });

  it('stop() ends ZooKeeper and both nodes', async () => {
    const pids = [...cluster.nodes.map((n) => n.pid() ?? 0), cluster.zookeeper.pid() ?? 0];
    assert.equal(pids.every(isRunning), true);
    await cluster.stop();
    for (const pid of pids) assert.equal(isRunning(pid), false, `process ${pid} still running`);
    for (const node of cluster.nodes) assert.equal(existsSync(node.dir), false);
    await assert.rejects(node1.query('SELECT 1'), /ECONNREFUSED/);
  });
});
