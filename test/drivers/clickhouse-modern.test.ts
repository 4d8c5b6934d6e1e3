/**
 * The ClickHouse driver's SQL on a current engine. The driver is tested against ClickHouse 18.16
 * (clickhouse.test.ts); here chdb, ClickHouse 26 embedded in this process, runs what the driver
 * generates (the mirror, the statement tracker, findRunning, literals and names) and what the
 * splitter makes of typical ClickHouse migrations, and the results are checked against what the
 * driver assumes. The driver's classes run unchanged over `ChdbClient`, which answers the two
 * methods of @clickhouse/client's client they use.
 *
 * chdb is clickhouse-local: it has system.processes, system.mutations and system.columns, but
 * creates no system logs (no system.query_log, whatever the config), takes no query id from the
 * caller, and has no cluster. What needs those is checked as far as the engine allows, and says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { Session } from 'chdb';
import fc from 'fast-check';
import { clickhouseDialect, literal, quote } from '../../src/drivers/clickhouse/dialect.js';
import { ClickHouseLongRunning } from '../../src/drivers/clickhouse/long-running.js';
import { MIRROR_TABLE, MirroredLedger } from '../../src/drivers/clickhouse/mirror.js';
import { StatementTracker } from '../../src/drivers/clickhouse/tracker.js';
import type { ClusterOptions } from '../../src/drivers/clickhouse/url.js';
import type { LedgerRow, Session as LockstepSession } from '../../src/drivers/driver.js';
import { openDriver } from '../../src/drivers/registry.js';
import { splitStatements } from '../../src/sql/split.js';
import { fuzzParameters } from '../helpers/fuzz.js';

type Row = Record<string, unknown>;

/** No lone surrogate: text that UTF-8 holds. */
const wellFormed = (text: string) => !/\p{Cs}/u.test(text);

/** @clickhouse/client's `query` and `command`, as the driver calls them, on a chdb session; every statement kept. */
class ChdbClient {
  readonly sent: string[] = [];
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  /** `query_id` is taken and dropped: chdb names its queries itself (a UUID). */
  async query(params: { query: string; format: 'JSONEachRow'; query_id?: string }) {
    const { query, format, query_id: _ignored, ...rest } = params;
    assert.deepEqual(rest, {}, 'the driver passes nothing else to query()');
    this.sent.push(query);
    const text = (await this.#session.queryAsync(query, { format })).text();
    return { json: async () => text.split('\n').flatMap((line) => (line === '' ? [] : [JSON.parse(line)])) };
  }

  async command(params: { query: string }) {
    const { query, ...rest } = params;
    assert.deepEqual(rest, {}, 'the driver passes nothing else to command()');
    this.sent.push(query);
    await this.#session.queryAsync(query);
  }

  get client(): ClickHouseClient {
    return this as unknown as ClickHouseClient;
  }
}

const NO_CLUSTER: ClusterOptions = {
  onCluster: false,
  clusterMacro: '{cluster}',
  replicaMacro: '{replica}',
  zooPath: '/clickhouse/tables/{cluster}/{table}',
};

let dir: string;
/** One data directory per process (chdb's rule); sessions on it are independent connections. */
const sessions: Session[] = [];
const session = () => {
  const s = new Session(dir);
  sessions.push(s);
  return s;
};
let main: Session;

async function rows(s: Session, sql: string): Promise<Row[]> {
  const text = (await s.queryAsync(sql, { format: 'JSONEachRow' })).text();
  return text.split('\n').flatMap((line) => (line === '' ? [] : [JSON.parse(line) as Row]));
}

async function freshDatabase(name: string): Promise<string> {
  await main.queryAsync(`CREATE DATABASE ${quote(name)}`);
  return name;
}

/** Until `check` holds (polling every 20 ms), at most `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A statement running on its own session, like a runner's. chdb keeps a cancelled query in
 * system.processes until its connection runs the next one (a server drops it when it ends), so
 * the session does, as the runner would: otherwise `KILL QUERY … SYNC` waits for ever.
 */
function runningOn(s: Session, sql: string): Promise<unknown> {
  return s.queryAsync(sql).then(
    () => undefined,
    async (error: unknown) => {
      await s.queryAsync('SELECT 1');
      return error;
    },
  );
}

async function queryIdOf(s: Session, marker: string): Promise<string> {
  let id = '';
  await until(
    async () => {
      const found = await rows(
        s,
        `SELECT query_id FROM system.processes WHERE position(query, ${literal(marker)}) > 0 AND query NOT LIKE '%system.processes%'`,
      );
      id = String(found[0]?.query_id ?? '');
      return id !== '';
    },
    5000,
    `${marker} running`,
  );
  return id;
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lockstep-chdb-'));
  // chdb must load: no skipping on a machine without it.
  main = session();
});
after(() => {
  for (const s of sessions) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ClickHouse driver SQL on a current engine (chdb)', () => {
  it('chdb runs a current ClickHouse in this process', async (t) => {
    const [v] = await rows(main, 'SELECT version() AS v');
    t.diagnostic(`ClickHouse ${String(v?.v)}`);
    assert.ok(Number(String(v?.v).split('.')[0]) >= 24, `a current engine, not ${String(v?.v)}`);
  });

  describe('the mirror (MirroredLedger)', () => {
    let coordinator: LockstepSession;
    let coordinatorDir: string;

    before(async () => {
      coordinatorDir = mkdtempSync(path.join(tmpdir(), 'lockstep-chdb-coordinator-'));
      const driver = await openDriver(`sqlite:${path.join(coordinatorDir, 'coordinator.db')}`, {
        table: 'lockstep_clickhouse_modern',
        runnerId: 'test:1',
      });
      coordinator = await driver.connect();
      await coordinator.ledger.create();
    });
    after(async () => {
      await coordinator?.connection.close();
      rmSync(coordinatorDir, { recursive: true, force: true });
    });

    const row = (version: string, state: LedgerRow['state']): LedgerRow => ({
      version,
      name: `m${version}`,
      checksum: 'abc',
      state,
      direction: 'up',
      statementsDone: 1,
      statementCount: 1,
      startedAt: '2026-01-02T03:04:05.678Z',
      finishedAt: state === 'running' ? null : '2026-01-02T03:04:06.000Z',
      durationMs: state === 'running' ? null : 322,
      appliedBy: 'host:1',
      error: null,
    });

    it("keeps schema_migrations in dbmate's shape, holding the ledger's applied versions", async () => {
      const database = await freshDatabase("mirror `db' \\ ;");
      const table = `${quote(database)}.${quote(MIRROR_TABLE)}`;
      const ch = new ChdbClient(main);
      const notices: string[] = [];
      const mirror = new MirroredLedger(coordinator.ledger, ch.client, database, NO_CLUSTER, (m) =>
        notices.push(m),
      );
      // What dbmate reads.
      const mirrored = async () =>
        (await rows(main, `SELECT version FROM ${table} FINAL WHERE applied ORDER BY version`)).map(
          (r) => r.version,
        );

      await mirror.write(row('001', 'applied'), null);
      assert.deepEqual(notices, []);
      assert.deepEqual(await mirrored(), ['001']);
      const [shape] = await rows(
        main,
        `SELECT engine, sorting_key, primary_key FROM system.tables WHERE database = ${literal(database)} AND name = ${literal(MIRROR_TABLE)}`,
      );
      assert.deepEqual(shape, {
        engine: 'ReplacingMergeTree',
        sorting_key: 'version',
        primary_key: 'version',
      });
      assert.deepEqual(
        await rows(
          main,
          `SELECT name, type, default_expression FROM system.columns WHERE database = ${literal(database)} AND table = ${literal(MIRROR_TABLE)} ORDER BY position`,
        ),
        [
          { name: 'version', type: 'String', default_expression: '' },
          { name: 'ts', type: 'DateTime', default_expression: 'now()' },
          { name: 'applied', type: 'UInt8', default_expression: '1' },
        ],
      );

      const sentBefore = ch.sent.length;
      const running = row('002', 'running');
      await mirror.write(running, null);
      assert.equal(ch.sent.length, sentBefore, 'a running row is not mirrored');
      await mirror.write(row('002', 'applied'), running);
      assert.deepEqual(await mirrored(), ['001', '002']);

      // Down, then up again, within the same second (ts has seconds): the later row wins under FINAL.
      await mirror.delete(row('001', 'applied'));
      assert.deepEqual(await mirrored(), ['002']);
      await mirror.write(row('001', 'applied'), null);
      assert.deepEqual(await mirrored(), ['001', '002']);
      assert.deepEqual(
        ch.sent.filter((sql) => sql.startsWith('INSERT')),
        ["('001', 1)", "('002', 1)", "('001', 0)", "('001', 1)"].map(
          (values) => `INSERT INTO ${table} (version, applied) VALUES ${values}`,
        ),
        'only changes are inserted',
      );
      assert.deepEqual(notices, [], 'every mirror statement ran');
    });

    it('on a cluster: its CREATE … ON CLUSTER … Replicated… parses (chdb has no cluster to run it on)', async () => {
      const database = await freshDatabase('mirror_cluster');
      const ch = new ChdbClient(main);
      const notices: string[] = [];
      const clustered = new MirroredLedger(
        coordinator.ledger,
        ch.client,
        database,
        { ...NO_CLUSTER, onCluster: true },
        (m) => notices.push(m),
      );
      await clustered.write(row('003', 'applied'), null);
      const create = ch.sent.find((sql) => sql.startsWith('CREATE TABLE'));
      assert.ok(create);
      assert.match(
        create,
        / ON CLUSTER '\{cluster\}' .*ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{cluster\}\/\{table\}', '\{replica\}', ts\)/,
      );
      const ast = (await rows(main, `EXPLAIN AST ${create}`)).map((r) => String(r.explain)).join('\n');
      assert.match(ast, /Function ReplicatedReplacingMergeTree/);
      // Refused for want of the cluster (its macro), not for its syntax.
      assert.equal(notices.length, 1);
      assert.match(notices[0] as string, /No macro 'cluster' in config/);
    });
  });

  describe('the statement tracker (system.mutations, system.processes, system.query_log)', () => {
    it('an ALTER … UPDATE counts as done when system.mutations says its mutation is', async () => {
      const database = await freshDatabase('track `db`');
      const runner = session();
      await runner.queryAsync('SET mutations_sync = 0'); // chdb's default waits; a server's does not
      await runner.queryAsync(
        `CREATE TABLE ${quote(database)}.${quote('t-1')} (x UInt32, s String) ENGINE = MergeTree ORDER BY x`,
      );
      await runner.queryAsync(
        `INSERT INTO ${quote(database)}.${quote('t-1')} SELECT number, 'a' FROM numbers(5)`,
      );
      const tracker = new StatementTracker(new ChdbClient(main).client, 'elsewhere');
      const alter = `/* lockstep-async:m:op1:a1:x */\n-- a comment\nALTER TABLE ${quote(database)} . ${quote('t-1')} UPDATE s = concat(s, toString(sleepEachRow(0.1))) WHERE 1`;
      await runner.queryAsync(alter);
      const pending = `SELECT toUInt8(count()) AS n FROM system.mutations WHERE database = ${literal(database)} AND is_done = 0`;
      assert.deepEqual(await rows(main, pending), [{ n: 1 }], 'the ALTER returned before its mutation ended');
      await tracker.afterStatement(alter);
      assert.deepEqual(await rows(main, pending), [{ n: 0 }]);
      assert.deepEqual(await rows(runner, `SELECT DISTINCT s FROM ${quote(database)}.${quote('t-1')}`), [
        { s: 'a0' },
      ]);
    });

    it("a failing mutation is an error with the server's reason (latest_fail_reason)", async () => {
      const database = await freshDatabase('track_fail');
      const runner = session();
      await runner.queryAsync('SET mutations_sync = 0');
      await runner.queryAsync(
        `CREATE TABLE ${quote(database)}.t (x UInt32, s String) ENGINE = MergeTree ORDER BY x`,
      );
      await runner.queryAsync(`INSERT INTO ${quote(database)}.t SELECT number, 'a' FROM numbers(5)`);
      const ch = new ChdbClient(main);
      const tracker = new StatementTracker(ch.client, database);
      const alter = 'ALTER TABLE t UPDATE s = toString(throwIf(x = 2)) WHERE 1';
      await runner.queryAsync(`USE ${quote(database)}`);
      await runner.queryAsync(alter);
      await assert.rejects(
        tracker.afterStatement(alter),
        /^Error: the mutation mutation_\d+\.txt \(\(UPDATE s = toString\(throwIf\(x = 2\)\) WHERE 1\)\) on `track_fail`\.`t` fails on the server: Code: 395\. DB::Exception: Value passed to 'throwIf' function is non-zero/,
      );
      assert.ok(ch.sent.some((sql) => sql.includes(', latest_fail_reason FROM system.mutations')));
      await main.queryAsync(`KILL MUTATION WHERE database = ${literal(database)} SYNC`);
    });

    it('a running statement is found by a prefix of its query id, waited for, and killed', async () => {
      const runner = session();
      const ch = new ChdbClient(main);
      const tracker = new StatementTracker(ch.client, 'default');
      const ended = runningOn(
        runner,
        "SELECT sleepEachRow(0.1), 'tracked' FROM numbers(100) SETTINGS max_block_size = 1",
      );
      const id = await queryIdOf(main, "'tracked'");
      const waits: number[] = [];
      const waited = await tracker.settle(id, { cancel: false, maxMs: 400, onWait: (ms) => waits.push(ms) });
      assert.equal(waited.outcome, 'still-running');
      assert.ok(waits.length > 0 && waits.every((ms) => ms > 0), `elapsed read: ${waits}`);
      const fate = await tracker.settle(id, { cancel: true, maxMs: 5000 });
      assert.match(String(await ended), /Code: 394\. DB::Exception: Query was cancelled/);
      // A server would now read system.query_log; chdb has none.
      assert.equal(fate.outcome, 'unknown');
      assert.match(
        fate.error ?? '',
        /^system\.query_log cannot be read: .*Unknown table expression identifier 'system\.query_log'/,
      );
      assert.ok(ch.sent.includes('SYSTEM FLUSH LOGS'));
      assert.ok(
        ch.sent.some((sql) =>
          sql.startsWith(
            `KILL QUERY WHERE (query_id = ${literal(id)} OR substring(query_id, 1, ${id.length + 2}) = ${literal(`${id}-r`)}) SYNC`,
          ),
        ),
      );
    });

    it("its query_log reading parses, and on a table of query_log's columns picks how the last try ended", async () => {
      const ch = new ChdbClient(main);
      const id = 'lockstep-0123abcd-001-up-0-1767323045678';
      await new StatementTracker(ch.client, 'default').settle(id, { cancel: false, maxMs: 0 });
      const read = ch.sent.find((sql) => sql.includes('FROM system.query_log'));
      assert.ok(read);
      await main.queryAsync(`EXPLAIN AST ${read}`);
      // system.query_log's columns as the tracker uses them (type: Enum8 on current servers).
      const database = await freshDatabase('query_log_shape');
      const stand = `${quote(database)}.query_log`;
      await main.queryAsync(
        `CREATE TABLE ${stand} (type Enum8('QueryStart' = 1, 'QueryFinish' = 2, 'ExceptionBeforeStart' = 3, ` +
          "'ExceptionWhileProcessing' = 4), query_id String, query String, exception String, event_time DateTime, " +
          'query_start_time DateTime) ENGINE = Memory',
      );
      await main.queryAsync(
        `INSERT INTO ${stand} VALUES ('QueryStart', ${literal(id)}, 'ALTER 1', '', '2026-01-02 00:00:00', '2026-01-02 00:00:00'), ` +
          `('ExceptionWhileProcessing', ${literal(id)}, 'ALTER 1', 'Code: 517. busy', '2026-01-02 00:00:01', '2026-01-02 00:00:00'), ` +
          `('QueryStart', ${literal(`${id}-r1`)}, 'ALTER 2', '', '2026-01-02 00:00:05', '2026-01-02 00:00:05'), ` +
          `('QueryFinish', ${literal(`${id}-r1`)}, 'ALTER 2', '', '2026-01-02 00:00:09', '2026-01-02 00:00:05'), ` +
          `('QueryFinish', 'lockstep-other', 'SELECT', '', '2026-01-02 00:00:10', '2026-01-02 00:00:10'), ` +
          `('QueryFinish', ${literal(`${id}1`)}, 'ANOTHER', '', '2026-01-02 00:00:11', '2026-01-02 00:00:11')`,
      );
      // Every row of the statement and its retries, newest first: the tracker takes the first end.
      // Statement 1's id is the start of statement 10's: that one is not among them.
      assert.deepEqual(await rows(main, read.replace('system.query_log', stand)), [
        { type: 2, exception: '', query: 'ALTER 2' },
        { type: 1, exception: '', query: 'ALTER 2' },
        { type: 4, exception: 'Code: 517. busy', query: 'ALTER 1' },
        { type: 1, exception: '', query: 'ALTER 1' },
      ]);
    });
  });

  it('findRunning finds the statements whose query id starts with the marker, and cancelRunning kills one', async () => {
    const tagged = session();
    const mentioning = session();
    const longRunning = new ClickHouseLongRunning(new ChdbClient(main).client, { useSettings: () => ({}) });
    // chdb names its queries itself: a prefix of the name it gave stands for a run's marker.
    const sql = `/* lockstep-async:backfill:op1:a1:b1 */ SELECT sleepEachRow(0.1) FROM numbers(100) SETTINGS max_block_size = 1`;
    const killed = runningOn(tagged, sql);
    const marker = (await queryIdOf(main, 'op1:a1:b1')).slice(0, 13);
    const other = runningOn(
      mentioning,
      `SELECT sleepEachRow(0.1), '${marker}' FROM numbers(100) SETTINGS max_block_size = 1`,
    );
    const otherId = await queryIdOf(main, `, '${marker}'`);
    assert.ok(!otherId.startsWith(marker), 'two queries named alike by chance: run again');
    const found = await longRunning.findRunning(marker);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0]?.query, sql);
    assert.ok((found[0]?.runningMs ?? 0) > 0);
    await longRunning.cancelRunning(found[0]?.id as string);
    assert.match(String(await killed), /Query was cancelled/);
    assert.deepEqual(await longRunning.findRunning(marker), []);
    await longRunning.cancelRunning(otherId);
    assert.match(String(await other), /Query was cancelled/);
  });

  describe('literals and names (dialect.ts)', () => {
    const tricky = fc.string({
      unit: fc.constantFrom(
        "'",
        '\\',
        '\n',
        '\r',
        '\t',
        '\0',
        '`',
        '"',
        ';',
        '$$',
        '/*',
        '--',
        'a',
        'é',
        '😀',
        '\u2028',
      ),
    });
    const anyText = fc.oneof(tricky, fc.string({ unit: 'binary' }).filter(wellFormed));

    it('SELECT literal(s) returns s exactly (property)', async () => {
      await fc.assert(
        fc.asyncProperty(anyText, async (text) => {
          const [answer] = await rows(main, `SELECT ${literal(text)} AS v`);
          assert.equal(answer?.v, text);
        }),
        fuzzParameters(200),
      );
    });

    it('a table named quote(name) is created, and found in system.tables by that name (property)', async () => {
      const database = await freshDatabase('names');
      // Table names become file names (escaped, up to 3 bytes each): kept under the 255-byte limit.
      const name = fc
        .oneof(tricky, fc.string({ unit: 'binary' }))
        .filter((s) => s.length > 0 && wellFormed(s) && Buffer.byteLength(s) <= 60);
      await fc.assert(
        fc.asyncProperty(name, async (table) => {
          const qualified = `${quote(database)}.${quote(table)}`;
          await main.queryAsync(`CREATE TABLE ${qualified} (x UInt8) ENGINE = MergeTree ORDER BY tuple()`);
          const found = await rows(
            main,
            `SELECT name FROM system.tables WHERE database = ${literal(database)} AND name = ${literal(table)}`,
          );
          await main.queryAsync(`DROP TABLE ${qualified} SYNC`);
          assert.deepEqual(found, [{ name: table }]);
        }),
        fuzzParameters(60),
      );
    });
  });

  describe('the splitter with the ClickHouse dialect', () => {
    const syntax = clickhouseDialect('db', { table: '"ledger"', name: 'ledger' }).syntax;
    const split = (text: string) => splitStatements(text, syntax).map((s) => s.sql);

    const MIGRATION = `-- Events; partitioned by month
CREATE TABLE events
(
    \`id\` UInt64,
    \`kind\` LowCardinality(String) DEFAULT 'unknown; really',
    \`at\` DateTime64(3, 'UTC') DEFAULT now64(3),
    \`payload\` String CODEC(ZSTD(3)),
    \`note\` String DEFAULT 'it\\'s; ''quoted'' \\\\',
    INDEX kind_idx kind TYPE bloom_filter GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (kind, id)
TTL toDateTime(at) + INTERVAL 90 DAY DELETE
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

/* A daily rollup; the view
   below fills it; */
CREATE TABLE daily (day Date, kind String, n UInt64) ENGINE = SummingMergeTree ORDER BY (day, kind);

CREATE MATERIALIZED VIEW daily_mv TO daily AS
SELECT toDate(at) AS day, kind, count() AS n FROM events WHERE kind != ';' GROUP BY day, kind;

INSERT INTO events (id, kind, at, payload) VALUES
  (1, 'a;b', '2030-01-01 00:00:00', 'x'),
  (2, 'c\\';d', now64(3), '-- not a comment;'),
  (3, 'e', now64(3), '/* nor this; */');
ALTER TABLE events UPDATE payload = 'updated; twice' WHERE id = 1;
ALTER TABLE events DELETE WHERE kind = 'e';
ALTER TABLE events ADD COLUMN IF NOT EXISTS \`weird; name\` String DEFAULT '' AFTER payload; -- after; it
ALTER TABLE events MODIFY TTL toDateTime(at) + INTERVAL 1 YEAR;
CREATE TABLE \`odd\`\`name;\` (x UInt8) ENGINE = Memory;
CREATE TABLE "dq;\\"name" (x UInt8) ENGINE = Memory;
CREATE VIEW recent AS SELECT id, kind FROM events -- a comment; with a semicolon
WHERE kind LIKE '%;%';
CREATE FUNCTION lockstep_plus_one AS (x) -> x + 1;
CREATE TABLE settings_kv (k String, v String) ENGINE = ReplacingMergeTree ORDER BY k
  COMMENT 'key; value';
OPTIMIZE TABLE events FINAL;
RENAME TABLE recent TO recent_events;
DROP TABLE IF EXISTS \`odd\`\`name;\`;
`;

    it('splits a typical migration into the statements it holds, each of which the engine runs', async () => {
      const statements = split(MIGRATION);
      assert.deepEqual(
        statements.map((s) => s.split('\n')[0]),
        [
          'CREATE TABLE events',
          'CREATE TABLE daily (day Date, kind String, n UInt64) ENGINE = SummingMergeTree ORDER BY (day, kind)',
          'CREATE MATERIALIZED VIEW daily_mv TO daily AS',
          'INSERT INTO events (id, kind, at, payload) VALUES',
          "ALTER TABLE events UPDATE payload = 'updated; twice' WHERE id = 1",
          "ALTER TABLE events DELETE WHERE kind = 'e'",
          "ALTER TABLE events ADD COLUMN IF NOT EXISTS `weird; name` String DEFAULT '' AFTER payload",
          'ALTER TABLE events MODIFY TTL toDateTime(at) + INTERVAL 1 YEAR',
          'CREATE TABLE `odd``name;` (x UInt8) ENGINE = Memory',
          'CREATE TABLE "dq;\\"name" (x UInt8) ENGINE = Memory',
          'CREATE VIEW recent AS SELECT id, kind FROM events -- a comment; with a semicolon',
          'CREATE FUNCTION lockstep_plus_one AS (x) -> x + 1',
          'CREATE TABLE settings_kv (k String, v String) ENGINE = ReplacingMergeTree ORDER BY k',
          'OPTIMIZE TABLE events FINAL',
          'RENAME TABLE recent TO recent_events',
          'DROP TABLE IF EXISTS `odd``name;`',
        ],
      );
      const database = await freshDatabase('split_typical');
      const runner = session();
      await runner.queryAsync(`USE ${quote(database)}`);
      for (const sql of statements) await runner.queryAsync(sql);
      assert.deepEqual(
        await rows(runner, 'SELECT toUInt8(id) AS id, kind, payload FROM events ORDER BY id'),
        [
          { id: 1, kind: 'a;b', payload: 'updated; twice' },
          { id: 2, kind: "c';d", payload: '-- not a comment;' },
        ],
      );
      assert.deepEqual(await rows(runner, 'SELECT note FROM events WHERE id = 1'), [
        { note: "it's; 'quoted' \\" },
      ]);
      assert.deepEqual(await rows(runner, 'SELECT toUInt8(sum(n)) AS n FROM daily'), [{ n: 3 }]);
      assert.deepEqual(
        (
          await rows(
            runner,
            `SELECT name FROM system.tables WHERE database = ${literal(database)} ORDER BY name`,
          )
        ).map((r) => r.name),
        ['daily', 'daily_mv', 'dq;"name', 'events', 'recent_events', 'settings_kv'],
      );
      assert.deepEqual(await rows(runner, 'SELECT lockstep_plus_one(1) AS v'), [{ v: 2 }]);
    });

    it('ON CLUSTER statements split whole and parse (chdb has no cluster to run them on)', async () => {
      const statements = split(`CREATE TABLE events_local ON CLUSTER '{cluster}'
(id UInt64, at DateTime)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/events_local', '{replica}')
PARTITION BY toYYYYMM(at) ORDER BY id;
CREATE TABLE events_all ON CLUSTER main (id UInt64, at DateTime) ENGINE = Distributed(main, currentDatabase(), events_local, rand());
ALTER TABLE events_local ON CLUSTER '{cluster}' DELETE WHERE at < '2020-01-01; old';
DROP TABLE IF EXISTS events_all ON CLUSTER main SYNC;`);
      assert.equal(statements.length, 4);
      for (const sql of statements) {
        await main.queryAsync(`EXPLAIN AST ${sql}`);
        // Refused for want of a cluster (or of its macros, or of distributed DDL), not for its syntax.
        await assert.rejects(
          main.queryAsync(sql),
          /CLUSTER_DOESNT_EXIST|No macro 'cluster'|Replicated DDL queries are disabled/,
        );
      }
    });

    /**
     * Lexical forms a current engine reads as one statement though they hold a `;` inside a
     * string, name or comment: the ClickHouse dialect must not split them there.
     */
    const GAPS: [string, string, string][] = [
      [
        'heredoc strings ($$…$$, $tag$…$tag$)',
        'SELECT $$a;b$$ AS v, $x$c;d$x$ AS w',
        "{'v':'a;b','w':'c;d'}",
      ],
      ['nested block comments', 'SELECT 1 AS v /* outer /* inner */ still; a comment */', "{'v':1}"],
      ['a backslash-escaped backtick in a name', 'SELECT 1 AS `a\\`;b`', "{'a`;b':1}"],
      ["'# ' comments", 'SELECT 1 AS v # a comment; to the end of the line\n', "{'v':1}"],
    ];
    for (const [what, sql, answer] of GAPS) {
      it(`${what}: one statement`, async () => {
        const [one] = (await rows(main, sql)).map((r) => JSON.stringify(r).replaceAll('"', "'"));
        assert.equal(one, answer, 'the engine reads it as one statement');
        assert.deepEqual(split(`${sql};\nSELECT 2`), [sql.trimEnd(), 'SELECT 2']);
      });
    }
  });
});
