/**
 * Guarantees 1, 2 and 4 on ClickHouse, which has no locks or transactions: 20 OS processes run
 * `lockstep up` at the same instant, round after round, with the lock and the ledger in a
 * coordinator (PostgreSQL, SQLite) — on a single node, and on a two-replica cluster with the
 * processes spread over both hosts. Each statement runs once (counter rows, and its tag in the
 * server's query log), the ledger has one row per version, the mirror agrees.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDriver } from '../../src/drivers/registry.js';
import {
  CLUSTER_NAME,
  type ClickHouseCluster,
  type ClickHouseNode,
  createClickHouseDatabase,
  startClickHouseCluster,
} from '../helpers/clickhouse.js';
import { eventually } from '../helpers/process.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  type ProcessResult,
  ROOT,
  runCli,
  writeMigrations,
} from '../helpers/targets.js';

const ROUNDS = Number(process.env.LOCKSTEP_RACE_ROUNDS ?? 10);
const PROCESSES = Number(process.env.LOCKSTEP_RACE_PROCESSES ?? 20);
const VERSIONS = ['001', '002', '003', '004'];

/** Each migration writes its version into applied_log: a count above 1 is a double application. */
function migrations(onCluster: string, engine: (table: string) => string): Record<string, string> {
  return {
    '001_log.sql': `-- migrate:up
CREATE TABLE applied_log${onCluster} (version String) ENGINE = ${engine('applied_log')};
INSERT INTO applied_log (version) VALUES ('001');
`,
    '002_events.sql': `-- migrate:up
CREATE TABLE events${onCluster} (id UInt64, kind String) ENGINE = ${engine('events')};
INSERT INTO events SELECT number, 'a' FROM numbers(1000);
INSERT INTO applied_log (version) VALUES ('002');
`,
    '003_rewrite.sql': `-- migrate:up
ALTER TABLE events${onCluster} UPDATE kind = 'b' WHERE id < 10;
INSERT INTO applied_log (version) VALUES ('003');
`,
    '004_slow.ts': `import type { MigrationContext } from '${path.join(ROOT, 'src/index.js')}';

export async function up(ctx: MigrationContext): Promise<void> {
  await ctx.query('SELECT count() FROM numbers(20000000)');
  await ctx.query("INSERT INTO applied_log (version) VALUES ('004')");
}
`,
  };
}

interface Place {
  readonly name: string;
  /** The URL of process `i`. */
  url(i: number): string;
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Until what the runs wrote has arrived where `query` reads (replication is asynchronous). */
  settled?(): Promise<void>;
  cleanup(): Promise<void>;
}

async function check(place: Place, coordinatorUrl: string, results: ProcessResult[], round: number) {
  const failed = results.filter((r) => r.code !== 0);
  assert.equal(failed.length, 0, `round ${round}: ${failed.length} processes failed:\n${failed[0]?.stderr}`);
  await place.settled?.();
  const counts = await place.query(
    'SELECT version, count() AS n FROM applied_log GROUP BY version ORDER BY version',
  );
  assert.deepEqual(
    counts.map((r) => [r.version, Number(r.n)]),
    VERSIONS.map((v) => [v, 1]),
    `round ${round}: every migration ran exactly once`,
  );
  assert.deepEqual(await place.query("SELECT count() AS n FROM events WHERE kind = 'b'"), [{ n: '10' }]);
  const applied = results.reduce(
    (sum, r) => sum + (JSON.parse(r.stdout) as { applied: unknown[] }).applied.length,
    0,
  );
  assert.equal(
    applied,
    VERSIONS.length,
    `round ${round}: the processes report ${VERSIONS.length} applications in all`,
  );
  const driver = await openDriver(place.url(0), {
    table: 'lockstep_migrations',
    runnerId: 't',
    coordinatorUrl,
  });
  const tags = `lockstep-${createHash('sha256').update(driver.dialect.ledger.table).digest('hex').slice(0, 8)}`;
  await place.query('SYSTEM FLUSH LOGS');
  const sent = await place.query(
    `SELECT query_id, count() AS n FROM system.query_log WHERE query_id LIKE '${tags}-%' AND type = 1 GROUP BY query_id HAVING n > 1`,
  );
  assert.deepEqual(sent, [], `round ${round}: no statement was sent twice`);
  const mirrored = await place.query(
    'SELECT version FROM schema_migrations FINAL WHERE applied ORDER BY version',
  );
  assert.deepEqual(
    mirrored.map((r) => r.version),
    VERSIONS,
    `round ${round}: the mirror agrees`,
  );
}

type Coordinator = (work: string) => Promise<{ url: string; cleanup(): Promise<void> }>;

async function race(place: () => Promise<Place>, coordinator: Coordinator) {
  for (let round = 1; round <= ROUNDS; round++) {
    const p = await place();
    const work = mkdtempSync(path.join(tmpdir(), 'lockstep-ch-'));
    const c = await coordinator(work);
    try {
      const files = p.name.startsWith('cluster') ? clusterFiles(p.name) : singleFiles();
      const dir = writeMigrations(work, files);
      const runs = Array.from({ length: PROCESSES }, (_, i) =>
        runCli(['up', '--json', '--url', p.url(i), '--coordinator-url', c.url, '--dir', dir], {
          cwd: work,
          env: CLEAN_ENV,
        }),
      );
      await check(p, c.url, await Promise.all(runs), round);
    } finally {
      await p.cleanup();
      await c.cleanup();
      rmSync(work, { recursive: true, force: true });
    }
  }
}

const singleFiles = () => migrations('', () => 'MergeTree ORDER BY tuple()');
const clusterFiles = (database: string) =>
  migrations(
    ` ON CLUSTER ${CLUSTER_NAME}`,
    (table) =>
      `ReplicatedMergeTree('/clickhouse/tables/{shard}/${database}_${table}', '{replica}') ORDER BY tuple()`,
  );

const postgresCoordinator = async () => {
  const db = await createPostgresDatabase();
  return { url: db.url, cleanup: () => db.cleanup() };
};

describe(`ClickHouse boot race: ${PROCESSES} processes × ${ROUNDS} rounds`, () => {
  let cluster: ClickHouseCluster;
  before(async () => {
    cluster = await startClickHouseCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  const single = async (): Promise<Place> => {
    const db = await createClickHouseDatabase();
    return { name: db.name, url: () => db.url, query: (sql) => db.query(sql), cleanup: () => db.cleanup() };
  };

  it('single node, PostgreSQL coordinator: every process exits 0, every statement runs once', async () => {
    await race(single, postgresCoordinator);
  });

  it('single node, SQLite coordinator: every process exits 0, every statement runs once', async () => {
    await race(single, async (work) => ({
      url: `sqlite:${path.join(work, 'coordinator.db')}`,
      cleanup: async () => {},
    }));
  });

  it('cluster, processes spread over both hosts: every process exits 0, every statement runs once', async () => {
    let n = 0;
    await race(async () => {
      const name = `cluster_race_${process.pid}_${++n}`;
      const [first] = cluster.nodes as [ClickHouseNode, ClickHouseNode];
      await first.query(`CREATE DATABASE ${name} ON CLUSTER ${CLUSTER_NAME}`);
      const urlOf = (node: ClickHouseNode) => {
        const u = new URL(node.url);
        u.pathname = `/${name}`;
        u.search = `?on_cluster&cluster_macro=${CLUSTER_NAME}`;
        return u.href;
      };
      return {
        name,
        url: (i) => urlOf(cluster.nodes[i % 2] as ClickHouseNode),
        query: (sql) => first.query(sql, name),
        // Every replication task and mutation done on the host read from: nothing more to arrive.
        settled: () =>
          eventually(async () => {
            const [busy] = await first.query(
              `SELECT (SELECT sum(queue_size) FROM system.replicas WHERE database = '${name}') + ` +
                `(SELECT count() FROM system.mutations WHERE database = '${name}' AND is_done = 0) AS n, ` +
                `(SELECT uniqExact(version) FROM ${name}.applied_log) AS versions`,
            );
            return Number(busy?.n) === 0 && Number(busy?.versions) === VERSIONS.length;
          }, 'replication settled'),
        cleanup: async () =>
          void (await first.query(`DROP DATABASE IF EXISTS ${name} ON CLUSTER ${CLUSTER_NAME}`)),
      };
    }, postgresCoordinator);
  });
});
