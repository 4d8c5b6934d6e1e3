import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AsyncEventHandler } from '../async/events.js';
import { AsyncMigrator } from '../async/migrator.js';
import { createStatusHandler, type StatusHandler, type StatusServerOptions } from './handler.js';

export interface ServeOptions extends Omit<StatusServerOptions, 'allowedHosts' | 'basePath'> {
  /** Address to listen on. Default is 127.0.0.1: only this machine. */
  readonly host?: string | undefined;
  /** Default is 4600; 0 picks a free port. */
  readonly port?: number | undefined;
  /** More Host header values to answer to (e.g. a name behind a reverse proxy). */
  readonly allowHosts?: readonly string[] | undefined;
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
  const host = options.host ?? '127.0.0.1';
  let handler: StatusHandler | undefined;
  // The handler is made once the port is known: it checks the Host header against it.
  const server = createServer((req, res) => handler?.(req, res));
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4600, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
  const everywhere = host === '0.0.0.0' || host === '::';
  // The names it answers to (against DNS rebinding), unless it listens on every interface.
  const allowedHosts = everywhere
    ? undefined
    : [
        `${shown}:${port}`,
        ...(loopback ? [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`] : []),
        ...(options.allowHosts ?? []),
      ];
  handler = createStatusHandler({ ...options, allowedHosts });
  const controller = new AbortController();
  const worker = options.worker
    ? new AsyncMigrator({
        url: options.url,
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
