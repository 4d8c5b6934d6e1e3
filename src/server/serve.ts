import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AsyncEventHandler } from '../async/events.js';
import { AsyncMigrator } from '../async/migrator.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../defaults.js';
import { ConfigError } from '../errors.js';
import { createStatusHandler, type StatusServerOptions } from './handler.js';
import { LOOPBACK_NAMES, parseHost } from './request.js';

export interface ServeOptions extends Omit<StatusServerOptions, 'allowedHosts' | 'basePath'> {
  /** Address to listen on. Default is 127.0.0.1: only this machine. */
  readonly host?: string | undefined;
  /** Default is 4600; 0 picks a free port. */
  readonly port?: number | undefined;
  /**
   * More Host header values to answer to (e.g. the public name, or a name behind a reverse proxy):
   * `name` at any port or `name:port`. It always answers to the listening host and the loopback
   * names (localhost, 127.0.0.1, [::1]), also when listening on every interface.
   */
  readonly allowHosts?: readonly string[] | undefined;
  /** Answer whatever the Host header says: no DNS rebinding protection. Default is false. */
  readonly allowAnyHost?: boolean | undefined;
  /** Also run a long-running migrations worker in this process. Default is false. */
  readonly worker?: boolean | undefined;
  readonly on?: AsyncEventHandler | undefined;
}

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  /** Whether actions are accepted (a token was given). */
  readonly mutations: boolean;
  /** Stops listening (and the worker, after its current batch or operation). */
  close(): Promise<void>;
}

/** `lockstep serve`: the status page and JSON API for one database. */
export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  const shown = host.includes(':') ? `[${host}]` : host;
  for (const name of options.allowHosts ?? []) {
    if (!parseHost(name)) {
      throw new ConfigError(
        `--allow-host "${name}" is not a host name: give a name or name:port, e.g. status.example.com`,
      );
    }
  }
  // The names it answers to, against DNS rebinding — on every interface too.
  const allowedHosts = options.allowAnyHost
    ? undefined
    : [...new Set([shown, ...LOOPBACK_NAMES, ...(options.allowHosts ?? [])])];
  const handler = createStatusHandler({ ...options, allowedHosts });
  const server = createServer(
    // Timeouts are checked every second, so a client that trickles its headers is cut off in time.
    { requestTimeout: 30_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 },
    (req, res) => handler(req, res),
  );
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_PORT, host, () => resolve());
  });
  // After listening, an error (e.g. out of file descriptors on accept) is one failed connection.
  server.removeAllListeners('error');
  server.on('error', (error) =>
    options.on?.({ type: 'async-log', name: '-', message: `server: ${error.message}` }),
  );
  const { port } = server.address() as AddressInfo;
  const controller = new AbortController();
  const worker = options.worker
    ? new AsyncMigrator({
        url: options.url,
        pooler: options.pooler,
        coordinatorUrl: options.coordinatorUrl,
        dir: options.asyncDir,
        table: options.asyncTable,
        ledgerTable: options.table,
        cwd: options.cwd,
        on: options.on,
      })
        .work({ signal: controller.signal })
        .catch((error: Error) =>
          options.on?.({ type: 'async-log', name: '-', message: `worker stopped: ${error.message}` }),
        )
    : Promise.resolve();
  return {
    url: `http://${shown}:${port}/`,
    server,
    mutations: handler.mutations,
    async close() {
      controller.abort();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await worker;
    },
  };
}
