/**
 * Real ClickHouse servers for the tests, each a process of the test's own with its own config and
 * data directory on free loopback ports: a single node shared by the test process, fresh nodes on
 * demand, and a cluster of two nodes with a standalone ZooKeeper. `npm test` (scripts/test-env.sh)
 * installs Debian's clickhouse-server and zookeeper; the system services are never used.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const CLICKHOUSE_BINARY = process.env.LOCKSTEP_TEST_CLICKHOUSE ?? '/usr/sbin/clickhouse-server';
/** ZooKeeper's own launcher, run as `zkServer.sh start-foreground <zoo.cfg>`. */
export const ZOOKEEPER_LAUNCHER =
  process.env.LOCKSTEP_TEST_ZOOKEEPER ?? '/usr/share/zookeeper/bin/zkServer.sh';

/** A user besides `default` whose password has every character a URL must escape. */
export const CLICKHOUSE_PASSWORD_USER = { user: 'lockstep', password: 'p@ss:w/rd?#&%=+ word' } as const;

/** The cluster every `startClickHouseCluster()` defines: one shard of two replicas. */
export const CLUSTER_NAME = 'lockstep_test';
export const DDL_QUEUE_PATH = '/clickhouse/task_queue/ddl';

const READY_TIMEOUT_MS = 20_000;
const PORT_ATTEMPTS = 5;
const STOP_GRACE_MS = 10_000;

export interface ClickHouseNode {
  readonly httpPort: number;
  readonly tcpPort: number;
  /** Its config, data and logs. */
  readonly dir: string;
  /** clickhouse://default@127.0.0.1:<httpPort>/default */
  readonly url: string;
  /** The URL of `database` as CLICKHOUSE_PASSWORD_USER, the password percent-encoded. */
  urlWithPassword(database?: string): string;
  /** The server's pid while it runs. */
  pid(): number | undefined;
  /** Runs `sql` over HTTP as `default` (in `database`); rows of JSONEachRow, [] for statements. */
  query(sql: string, database?: string): Promise<Record<string, unknown>[]>;
  /** SIGTERM (SIGKILL after 10 s) and wait for the exit; config and data stay. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once it answers. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Sends `signal`; waits for the exit unless the signal is SIGSTOP or SIGCONT. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What it logged (warnings and errors) and printed, kept after its directory is gone. */
  logs(): string;
}

export interface ClickHouseServer extends ClickHouseNode {
  /** Stops the server for good and removes its directory. */
  stop(): Promise<void>;
  /** Lets the test process end while it runs (it is killed when the process exits). */
  unref(): void;
}

export interface ClickHouseOptions {
  /** XML put inside the server's `<yandex>` element. */
  readonly extraConfig?: string;
}

export async function startClickHouse(options: ClickHouseOptions = {}): Promise<ClickHouseServer> {
  const node = await startNode('clickhouse', () => options.extraConfig ?? '');
  return {
    ...node,
    async stop() {
      await node.stop();
      node.remove();
    },
    unref: node.unref,
  };
}

let shared: Promise<ClickHouseServer> | undefined;

/** The test process's single node (started on first use, killed when the process exits). */
export function sharedClickHouse(): Promise<ClickHouseServer> {
  shared ??= startClickHouse().then((server) => {
    server.unref();
    return server;
  });
  return shared;
}

/** A fresh, empty database, shaped like targets.ts's TestDatabase; dropped by `cleanup()`. */
export interface ClickHouseTestDatabase {
  readonly kind: 'clickhouse';
  readonly name: string;
  /** clickhouse://default@127.0.0.1:<port>/<name> */
  readonly url: string;
  /** The same database as CLICKHOUSE_PASSWORD_USER. */
  readonly urlWithPassword: string;
  /** A scratch directory for migration files and output. */
  readonly dir: string;
  readonly server: ClickHouseNode;
  query(sql: string): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

/** A fresh database on `server` (the shared single node by default). */
export async function createClickHouseDatabase(server?: ClickHouseNode): Promise<ClickHouseTestDatabase> {
  const node = server ?? (await sharedClickHouse());
  const name = `lockstep_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await node.query(`CREATE DATABASE ${name}`);
  const dir = makeDirectory('test');
  const url = new URL(node.url);
  url.pathname = `/${name}`;
  return {
    kind: 'clickhouse',
    name,
    url: url.href,
    urlWithPassword: node.urlWithPassword(name),
    dir,
    server: node,
    query: (sql) => node.query(sql, name),
    async cleanup() {
      await node.query(`DROP DATABASE IF EXISTS ${name}`);
      removeDirectory(dir);
    },
  };
}

export interface ZooKeeper {
  readonly port: number;
  /** Its pid while it runs. */
  pid(): number | undefined;
  stop(): Promise<void>;
  logs(): string;
}

export interface ClickHouseCluster {
  /** Replica `node1` and `node2` of shard `01` of cluster CLUSTER_NAME. */
  readonly nodes: readonly ClickHouseNode[];
  readonly zookeeper: ZooKeeper;
  /** Stops every process and removes every directory. */
  stop(): Promise<void>;
}

/**
 * A standalone ZooKeeper and two ClickHouse nodes using it: cluster CLUSTER_NAME is one shard with
 * both nodes as its replicas, so ReplicatedMergeTree replicates between them and ON CLUSTER DDL
 * runs on both. Macros: {cluster}, {shard} (01), {replica} (node1, node2); the distributed DDL
 * queue is DDL_QUEUE_PATH.
 */
export async function startClickHouseCluster(): Promise<ClickHouseCluster> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const zookeeper = await startZooKeeper();
    const nodes: StartedNode[] = [];
    const stop = async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      for (const node of nodes) node.remove();
      await zookeeper.stop();
    };
    try {
      // Both nodes' ports are taken before either starts: each one's config names the other's.
      const ports = splitPorts(await freeLoopbackPorts(6));
      for (const [index, own] of ports.entries()) {
        const replica = `node${index + 1}`;
        const config = () => clusterConfig(zookeeper.port, ports, replica);
        nodes.push(await startNode(`clickhouse-${replica}`, config, own));
      }
      return { nodes, zookeeper, stop };
    } catch (error) {
      await stop();
      lastError = error as Error;
      if (!isPortTaken(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('clickhouse cluster: no free ports');
}

interface NodePorts {
  readonly http: number;
  readonly tcp: number;
  readonly interserver: number;
}

async function nodePorts(): Promise<NodePorts> {
  return splitPorts(await freeLoopbackPorts(3))[0] as NodePorts;
}

/** Consecutive threes of `ports`, one per node. */
function splitPorts(ports: readonly number[]): NodePorts[] {
  const nodes: NodePorts[] = [];
  for (let i = 0; i + 2 < ports.length; i += 3) {
    nodes.push({ http: ports[i] ?? 0, tcp: ports[i + 1] ?? 0, interserver: ports[i + 2] ?? 0 });
  }
  return nodes;
}

function clusterConfig(zookeeperPort: number, ports: readonly NodePorts[], replica: string): string {
  const replicas = ports
    .map((p) => `<replica><host>127.0.0.1</host><port>${p.tcp}</port></replica>`)
    .join('');
  return [
    `<zookeeper><node><host>127.0.0.1</host><port>${zookeeperPort}</port></node>`,
    // A killed node's ephemeral znodes (its replica's is_active) last this long after it died.
    '<session_timeout_ms>3000</session_timeout_ms></zookeeper>',
    `<remote_servers><${CLUSTER_NAME}><shard><internal_replication>true</internal_replication>`,
    `${replicas}</shard></${CLUSTER_NAME}></remote_servers>`,
    `<macros><cluster>${CLUSTER_NAME}</cluster><shard>01</shard><replica>${replica}</replica></macros>`,
    `<distributed_ddl><path>${DDL_QUEUE_PATH}</path></distributed_ddl>`,
    '<interserver_http_host>127.0.0.1</interserver_http_host>',
  ].join('\n');
}

interface StartedNode extends ClickHouseNode {
  remove(): void;
  unref(): void;
}

/** Ready once a query answers; one that reads ZooKeeper too when the node uses it. */
const READY_QUERY = {
  alone: 'SELECT 1 AS one',
  withZooKeeper: "SELECT toUInt8(count() > 0) AS one FROM system.zookeeper WHERE path = '/'",
} as const;

/** Starts a node on `fixedPorts`, or on free ports picked afresh after each collision. */
async function startNode(
  label: string,
  extraConfig: () => string,
  fixedPorts?: NodePorts,
): Promise<StartedNode> {
  const readyQuery = fixedPorts ? READY_QUERY.withZooKeeper : READY_QUERY.alone;
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (fixedPorts ? 1 : PORT_ATTEMPTS); attempt++) {
    const ports = fixedPorts ?? (await nodePorts());
    const dir = makeDirectory(label);
    mkdirSync(path.join(dir, 'log'));
    writeFileSync(path.join(dir, 'config.xml'), serverConfig(dir, ports, extraConfig()));
    const node = clickHouseNode(label, dir, ports, readyQuery);
    try {
      await node.start();
      return node;
    } catch (error) {
      node.remove();
      lastError = error as Error;
      if (!isPortTaken(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error(`${label}: no free ports`);
}

function serverConfig(dir: string, ports: NodePorts, extra: string): string {
  const { user, password } = CLICKHOUSE_PASSWORD_USER;
  const local = '<networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>';
  return `<yandex>
<logger><level>warning</level><log>${dir}/log/server.log</log><errorlog>${dir}/log/err.log</errorlog><console>0</console></logger>
<http_port>${ports.http}</http_port><tcp_port>${ports.tcp}</tcp_port><interserver_http_port>${ports.interserver}</interserver_http_port>
<listen_host>127.0.0.1</listen_host>
<path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path><user_files_path>${dir}/data/user_files/</user_files_path><format_schema_path>${dir}/data/format_schemas/</format_schema_path>
<mark_cache_size>67108864</mark_cache_size><max_concurrent_queries>100</max_concurrent_queries>
<default_profile>default</default_profile><default_database>default</default_database>
<query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></query_log>
<users>
<default><password></password>${local}</default>
<${user}><password>${escapeXml(password)}</password>${local}</${user}>
</users>
<profiles><default><log_queries>1</log_queries></default></profiles><quotas><default></default></quotas>
${extra}
</yandex>
`;
}

function clickHouseNode(label: string, dir: string, ports: NodePorts, readyQuery: string): StartedNode {
  let server: ManagedProcess | undefined;
  let unrefed = false;
  let savedLogs = '';
  const logs = () => {
    try {
      savedLogs = readFileSync(path.join(dir, 'log', 'server.log'), 'utf8');
    } catch {
      // The directory is gone after remove(); the copy taken then stays.
    }
    return [savedLogs, server?.output() ?? ''].filter(Boolean).join('\n');
  };
  const base = `127.0.0.1:${ports.http}`;
  const node: StartedNode = {
    httpPort: ports.http,
    tcpPort: ports.tcp,
    dir,
    url: `clickhouse://default@${base}/default`,
    urlWithPassword(database = 'default') {
      const { user, password } = CLICKHOUSE_PASSWORD_USER;
      return `clickhouse://${user}:${encodeURIComponent(password)}@${base}/${database}`;
    },
    pid: () => (server?.ended() ? undefined : server?.child.pid),
    query: (sql, database) => httpQuery(ports.http, sql, database),
    async start() {
      if (server && !server.ended()) throw new Error(`${label} is already running`);
      server = launch(CLICKHOUSE_BINARY, [`--config-file=${path.join(dir, 'config.xml')}`], { cwd: dir });
      if (unrefed) server.unref();
      const current = server;
      const ready = await waitUntil(() => answersOne(ports.http, readyQuery), current.ended);
      if (ready.ready) return;
      await current.stop(STOP_GRACE_MS);
      throw new Error(
        `${label} (${CLICKHOUSE_BINARY}, http ${ports.http}, tcp ${ports.tcp}) ${current.status(ready.lastError)}; ` +
          `log tail:\n${tail(logs())}`,
      );
    },
    async stop() {
      await server?.stop(STOP_GRACE_MS);
    },
    async restart() {
      await node.stop();
      await node.start();
    },
    async kill(signal = 'SIGKILL') {
      await server?.kill(signal);
    },
    logs,
    remove() {
      logs();
      removeDirectory(dir);
    },
    unref() {
      unrefed = true;
      server?.unref();
    },
  };
  return node;
}

/** A standalone ZooKeeper on a free loopback port, in its own directory. */
export async function startZooKeeper(): Promise<ZooKeeper> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const [port = 0] = await freeLoopbackPorts(1);
    const dir = makeDirectory('zookeeper');
    const config = path.join(dir, 'zoo.cfg');
    writeFileSync(
      config,
      [
        'tickTime=200',
        `dataDir=${dir}/data`,
        `clientPort=${port}`,
        'clientPortAddress=127.0.0.1',
        'maxClientCnxns=0',
        'admin.enableServer=false',
        '4lw.commands.whitelist=srvr',
        '',
      ].join('\n'),
    );
    const zookeeper = launch(ZOOKEEPER_LAUNCHER, ['start-foreground', config], {
      cwd: dir,
      env: { ...process.env, JMXDISABLE: 'true', ZOO_LOG_DIR: dir, SERVER_JVMFLAGS: zooKeeperJvmFlags() },
    });
    const ready = await waitUntil(() => servesRequests(port), zookeeper.ended);
    if (ready.ready) {
      return {
        port,
        pid: () => (zookeeper.ended() ? undefined : zookeeper.child.pid),
        async stop() {
          await zookeeper.stop(STOP_GRACE_MS);
          removeDirectory(dir);
        },
        logs: zookeeper.output,
      };
    }
    await zookeeper.stop(STOP_GRACE_MS);
    removeDirectory(dir);
    lastError = new Error(
      `zookeeper (${ZOOKEEPER_LAUNCHER}, port ${port}) ${zookeeper.status(ready.lastError)}; ` +
        `output tail:\n${tail(zookeeper.output())}`,
    );
    if (!isPortTaken(zookeeper.output())) throw lastError;
  }
  throw lastError ?? new Error('zookeeper: no free port');
}

/**
 * Small and quick to start. Debian's ZooKeeper ships no SLF4J binding, so it would log nothing at
 * all; slf4j-simple on the boot class path (with the API, which must sit beside it) makes it print
 * its warnings and errors.
 */
function zooKeeperJvmFlags(): string {
  const flags = ['-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'];
  const logging = ['/usr/share/java/slf4j-api.jar', '/usr/share/java/slf4j-simple.jar'];
  if (logging.every((jar) => existsSync(jar))) {
    flags.push(`-Xbootclasspath/a:${logging.join(':')}`, '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn');
  }
  return flags.join(' ');
}

interface ManagedProcess {
  readonly child: ChildProcess;
  ended(): boolean;
  /** How it ended, or that it was stopped while still not ready. */
  status(lastProbeError: string): string;
  output(): string;
  stop(graceMs: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  unref(): void;
}

const running = new Set<ChildProcess>();
const directories = new Set<string>();
let exitHookInstalled = false;

/**
 * Whatever is still running or on disk when the test process exits goes with it (a process that
 * dies by a signal takes its servers along by their parent-death signal).
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  });
}

/** A fresh directory of ours, removed at exit unless `removeDirectory` came first. */
function makeDirectory(label: string): string {
  installExitHook();
  const dir = mkdtempSync(path.join(tmpdir(), `lockstep-${label}-`));
  directories.add(dir);
  return dir;
}

function removeDirectory(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  directories.delete(dir);
}

/**
 * Spawns `command` through setpriv, which execs it with a parent-death signal: even a test process
 * that is SIGKILLed takes its servers with it. The child's pid is the server's own.
 */
function launch(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): ManagedProcess {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', command, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const collect = (data: Buffer) => {
    output += data;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      running.delete(child);
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve();
    });
  });
  const ended = () => exit !== undefined || spawnError !== undefined;
  const describeExit = () =>
    `exit code ${exit?.code ?? 'none'}${exit?.signal ? ` (signal ${exit.signal})` : ''}`;
  return {
    child,
    ended,
    status(lastProbeError) {
      if (spawnError) return `could not be started (${spawnError.message})`;
      if (exit) return `exited by itself, ${describeExit()}`;
      return `did not answer within ${READY_TIMEOUT_MS} ms (last error: ${lastProbeError}); stopped`;
    },
    output: () => output,
    async stop(graceMs) {
      if (ended()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill(signal) {
      if (ended()) return;
      child.kill(signal);
      if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await exited;
    },
    unref() {
      child.unref();
      for (const stream of [child.stdout, child.stderr]) (stream as { unref?(): void } | null)?.unref?.();
    },
  };
}

/** `count` distinct free loopback ports: all bound at once (so no two are equal), then released. */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            resolve(typeof address === 'object' && address ? address.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

async function waitUntil(
  probe: () => Promise<void>,
  hasEnded: () => boolean,
): Promise<{ ready: true } | { ready: false; lastError: string }> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'none';
  while (Date.now() < deadline && !hasEnded()) {
    try {
      await probe();
      return { ready: true };
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { ready: false, lastError };
}

async function answersOne(port: number, sql: string): Promise<void> {
  const rows = await httpQuery(port, sql);
  if (rows[0]?.one !== 1) throw new Error(`${sql} answered ${JSON.stringify(rows)}`);
}

/** `ruok` says imok while the server is still starting; `srvr` names a mode only once it serves. */
function servesRequests(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(1_000, () => socket.destroy(new Error('no answer to srvr within 1 s')));
    socket.on('connect', () => socket.end('srvr'));
    socket.on('data', (data) => {
      answer += data;
    });
    socket.on('error', reject);
    socket.on('close', () =>
      /^Mode: /m.test(answer) ? resolve() : reject(new Error(`srvr answered '${answer.trim()}'`)),
    );
  });
}

/**
 * One statement over the HTTP interface, on a connection of its own; SELECTs answer in
 * JSONEachRow (64-bit integers as strings). A server error rejects with the server's text.
 */
function httpQuery(port: number, sql: string, database?: string): Promise<Record<string, unknown>[]> {
  const params = new URLSearchParams({ default_format: 'JSONEachRow' });
  if (database) params.set('database', database);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: `/?${params}`, agent: false, timeout: 30_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`ClickHouse (HTTP ${res.statusCode}): ${body.trim()}`));
            return;
          }
          try {
            resolve(
              body
                .split('\n')
                .filter((line) => line.trim() !== '')
                .map((line) => JSON.parse(line) as Record<string, unknown>),
            );
          } catch {
            reject(new Error(`ClickHouse answered something other than JSONEachRow: ${body.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(sql);
  });
}

function isPortTaken(text: string): boolean {
  return /address already in use/i.test(text);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The last lines of a log, without the stack frames ClickHouse prints under each error. */
function tail(text: string, lines = 30): string {
  const kept = text
    .trimEnd()
    .split('\n')
    .filter((line) => !/^\d+\. /.test(line));
  return kept.slice(-lines).join('\n') || '(empty)';
}
