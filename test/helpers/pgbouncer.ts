/**
 * Real PgBouncer instances for the tests: each one in its own temp directory, on a free loopback
 * port, in front of the test PostgreSQL. `npm test` (scripts/test-env.sh) installs the binary.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPostgresDatabase, PG_ADMIN_URL, type Target, type TestDatabase } from './targets.js';

export const PGBOUNCER_BINARY = process.env.LOCKSTEP_TEST_PGBOUNCER ?? '/usr/sbin/pgbouncer';

export type PoolMode = 'transaction' | 'session';

export interface PgBouncer {
  readonly mode: PoolMode;
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string;
  stop(): Promise<void>;
  /** What it logged so far (kept after stop()). */
  log(): string;
  /** Lets the test process end while it runs (it is killed when the process exits). */
  unref(): void;
}

const READY_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 5;
const STOP_GRACE_MS = 2_000;

export async function startPgBouncer(
  mode: PoolMode,
  options: { poolSize?: number } = {},
): Promise<PgBouncer> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const started = await startOnce(mode, await freeLoopbackPort(), options.poolSize ?? 10);
    if (!('portTaken' in started)) return started;
    lastError = started.portTaken;
  }
  throw lastError ?? new Error('pgbouncer: no free port');
}

/** A fresh database made directly on PostgreSQL whose `url` goes through `bouncer` (plus `urlSuffix`). */
export function createPooledPostgresDatabase(bouncer: PgBouncer, urlSuffix = ''): Promise<TestDatabase> {
  return createPostgresDatabase((database) => bouncer.url(database) + urlSuffix);
}

let sessionBouncer: Promise<PgBouncer> | undefined;

/**
 * PostgreSQL through a session-mode PgBouncer (started on first use, stopped when the test
 * process exits): the race and crash suites run against it as against PostgreSQL itself.
 */
export const SESSION_POOLED_TARGET: Target = {
  kind: 'postgres',
  label: 'postgres through PgBouncer (session mode)',
  async create() {
    sessionBouncer ??= startPgBouncer('session', { poolSize: 40 }).then((bouncer) => {
      bouncer.unref();
      return bouncer;
    });
    return createPooledPostgresDatabase(await sessionBouncer, '?pooler=session');
  },
};

/** The targets, with PostgreSQL through a session-mode pooler beside PostgreSQL itself. */
export function withSessionPooler(targets: readonly Target[]): readonly Target[] {
  return targets.some((t) => t.kind === 'postgres') ? [...targets, SESSION_POOLED_TARGET] : targets;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function writeConfig(dir: string, mode: PoolMode, port: number, poolSize: number): string {
  const upstream = new URL(PG_ADMIN_URL);
  const authFile = path.join(dir, 'users.txt');
  writeFileSync(authFile, '"postgres" ""\n"root" ""\n');
  const ini = path.join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || '5432'}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${authFile}`,
      `pool_mode = ${mode}`,
      'max_client_conn = 1000',
      `default_pool_size = ${poolSize}`,
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  return ini;
}

/** PgBouncer refuses to run as root, so a root test process runs it as `postgres`. */
function spawnBouncer(dir: string, ini: string): ChildProcess {
  const stdio = ['ignore', 'pipe', 'pipe'] as const;
  if (process.getuid?.() !== 0) return spawn(PGBOUNCER_BINARY, [ini], { stdio: [...stdio] });
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  // setpriv execs the binary itself, so the child's pid is pgbouncer's and a signal reaches it.
  return spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', PGBOUNCER_BINARY, ini], {
    stdio: [...stdio],
  });
}

async function startOnce(
  mode: PoolMode,
  port: number,
  poolSize: number,
): Promise<PgBouncer | { portTaken: Error }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lockstep-pgbouncer-'));
  const ini = writeConfig(dir, mode, port, poolSize);
  const child = spawnBouncer(dir, ini);
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let savedLog = '';
  const log = () => {
    try {
      savedLog = readFileSync(path.join(dir, 'pgbouncer.log'), 'utf8');
    } catch {
      // The directory is gone after stop(); the copy taken then stays.
    }
    return savedLog || output;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exit && !spawnError) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', killOnExit);
    log();
    rmSync(dir, { recursive: true, force: true });
  };
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;

  const attempt = await waitUntilServing(
    url('postgres'),
    () => exit !== undefined || spawnError !== undefined,
  );
  // A bouncer kept for the whole test process must not keep that process alive at its end.
  const unref = () => {
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as { unref?(): void } | null)?.unref?.();
  };
  if (attempt.ready) return { mode, port, url, stop, log, unref };

  const endedByItself = exit !== undefined;
  await stop();
  const text = log();
  const status = spawnError
    ? `could not be started (${spawnError.message})`
    : endedByItself
      ? `exited with code ${exit?.code}${exit?.signal ? ` (signal ${exit.signal})` : ''}`
      : `did not answer SELECT 1 within ${READY_TIMEOUT_MS} ms (last error: ${attempt.lastError}); ` +
        `stopped, exit code ${exit?.code ?? 'none'}${exit?.signal ? ` (signal ${exit.signal})` : ''}`;
  const error = new Error(
    `pgbouncer (${PGBOUNCER_BINARY}, ${mode} mode, port ${port}) ${status}; log tail:\n${tail(text)}`,
  );
  return endedByItself && /address already in use/i.test(text) ? { portTaken: error } : Promise.reject(error);
}

/** Ready once a real query goes through `url`; not if the process ends or time runs out first. */
async function waitUntilServing(
  url: string,
  hasEnded: () => boolean,
): Promise<{ ready: true } | { ready: false; lastError: string }> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'none';
  while (Date.now() < deadline && !hasEnded()) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { ready: true };
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { ready: false, lastError };
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(empty)';
}
