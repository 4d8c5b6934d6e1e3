/**
 * A throwaway PostgreSQL cluster of the tests' own: its data directory and Unix socket in a temp
 * directory, on a free loopback port, run as the postgres user when the tests run as root (initdb
 * refuses root). A test may stop, restart or kill it: the shared server is never touched.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const PG_BIN = process.env.LOCKSTEP_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  readonly port: number;
  /** The temp directory: the socket, and whatever `prepare` put there. */
  readonly dir: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** A fast shutdown (SIGINT), waited for. */
  stop(): Promise<void>;
  /** Starts it again after stop(), waiting until it accepts connections. */
  start(): Promise<void>;
  /** stop() and the temp directory removed. */
  destroy(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /** Server settings (`-c name=value`). */
  readonly settings?: Record<string, string>;
  /**
   * Runs in the temp directory before initdb (certificates, say), and may give more settings;
   * the files it makes are handed to postgres.
   */
  readonly prepare?: (dir: string) => Record<string, string> | undefined;
  /** Name in the temp directory's prefix and in errors. */
  readonly label?: string;
}

export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const label = options.label ?? 'private';
  const dir = mkdtempSync(path.join(tmpdir(), `lockstep-${label}-pg-`));
  const ids =
    process.getuid?.() === 0
      ? {
          uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
          gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
        }
      : undefined;
  const asPostgres = (file: string, args: string[]): [string, string[]] =>
    ids
      ? ['setpriv', [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--init-groups', file, ...args]]
      : [file, args];
  const prepared = options.prepare?.(dir);
  if (ids) execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
  const data = path.join(dir, 'data');
  execFileSync(
    ...asPostgres(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']),
    {
      stdio: 'pipe',
    },
  );
  if (ids) chownSync(data, ids.uid, ids.gid);
  const port = await freePort();
  const settings = { listen_addresses: '127.0.0.1', fsync: 'off', ...options.settings, ...prepared };
  let server: ChildProcess | undefined;

  const start = async () => {
    const args = ['-D', data, '-p', String(port), '-k', dir];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    server = spawn(...asPostgres(path.join(PG_BIN, 'postgres'), args), { stdio: 'ignore' });
    const deadline = Date.now() + 15_000;
    for (;;) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`the ${label} PostgreSQL cluster did not start: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGINT');
    });
  };
  await start();
  return {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
