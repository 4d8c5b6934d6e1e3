/**
 * The HTTP API and status page: a thin layer over the runner's `status()` and the long-running
 * migrations' library API. Mutations go through the same atomic transitions as the CLI, so the
 * API cannot break the one-at-a-time rule. A plain `(req, res)` listener: mount it in any Node
 * server, or let `lockstep serve` run it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AsyncEventHandler } from '../async/events.js';
import { AsyncMigrator } from '../async/migrator.js';
import { ASYNC_NAME } from '../async/sources.js';
import { ASYNC_ACTIONS, type AsyncAction } from '../async/transitions.js';
import { urlInUse } from '../defaults.js';
import type { PoolerMode } from '../drivers/driver.js';
import { ConfigError, ConnectionError, HttpStatus, LockstepError } from '../errors.js';
import { Migrator } from '../index.js';
import { redactUrlsIn, type Scrub, secretScrubber } from '../util/secrets.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import {
  bodyProblem,
  clip,
  type FieldKind,
  type HostName,
  hostAllowed,
  isUnder,
  parseHost,
  quote,
  requestHost,
  requestPath,
} from './request.js';

export interface StatusServerOptions {
  /** Database URL. Default is `DATABASE_URL`, else `sqlite:db/lockstep.sqlite3`. */
  readonly url?: string | undefined;
  /** What sits between lockstep and PostgreSQL, as for `migrate()`. */
  readonly pooler?: PoolerMode | undefined;
  /** Where the lock and the ledger live for ClickHouse, as for `migrate()`. */
  readonly coordinatorUrl?: string | undefined;
  /** Migrations directory. Default is `db/migrations`. */
  readonly dir?: string | undefined;
  /** Migration ledger table. Default is `lockstep_migrations`. */
  readonly table?: string | undefined;
  /** Long-running migrations directory. Default is `db/async-migrations`. */
  readonly asyncDir?: string | undefined;
  /** Long-running migrations state table. Default is `lockstep_async`. */
  readonly asyncTable?: string | undefined;
  /**
   * Bearer token that trigger, stop, resume and rollback require. Without one the server is
   * read-only: those requests get 403 and say why.
   */
  readonly token?: string | undefined;
  /** Where the handler lives in the server's URL space, e.g. `/lockstep`. Default is `/`. */
  readonly basePath?: string | undefined;
  /**
   * Host header values accepted, against DNS rebinding: a web page must not read the status
   * through a name that resolves to this machine. A name (`status.example.com`, `[::1]`) matches
   * at any port, `name:port` at that port only; names are case-insensitive. Others get 421.
   * Default is any Host (the server this is mounted in decides).
   */
  readonly allowedHosts?: readonly string[] | undefined;
  /** Largest request body accepted, in bytes. Default is 16 KiB. */
  readonly maxBodyBytes?: number | undefined;
  /** Base for relative paths. Default is `process.cwd()`. */
  readonly cwd?: string | undefined;
  readonly on?: AsyncEventHandler | undefined;
}

export type StatusHandler = ((req: IncomingMessage, res: ServerResponse, next?: () => void) => void) & {
  /** Whether the handler accepts mutations (it was given a token). */
  readonly mutations: boolean;
};

/** The routes: a person's actions, as the transition table names them; force-stop is stop with force. */
const ACTIONS = ASYNC_ACTIONS.filter((a): a is Exclude<AsyncAction, 'force-stop'> => a !== 'force-stop');
type Action = (typeof ACTIONS)[number];

/** What each action's JSON body may hold; anything else is a 400. */
const BODY_FIELDS: Record<Action, Record<string, FieldKind>> = {
  trigger: { parameters: 'parameters', queue: 'boolean' },
  stop: { force: 'boolean' },
  resume: {},
  rollback: {},
};

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** An HTTP answer with a status code; thrown by the routes, written by the handler. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

export function createStatusHandler(options: StatusServerOptions = {}): StatusHandler {
  const url = options.url;
  const { pooler, coordinatorUrl } = options;
  const migrator = new Migrator({
    url,
    pooler,
    coordinatorUrl,
    dir: options.dir,
    table: options.table,
    cwd: options.cwd,
  });
  const lrm = new AsyncMigrator({
    url,
    pooler,
    coordinatorUrl,
    dir: options.asyncDir,
    table: options.asyncTable,
    ledgerTable: options.table,
    cwd: options.cwd,
    on: options.on,
    // A request never hangs for the 15 minutes a deploy may wait for the migration lock.
    lockTimeout: '10s',
  });
  const tokenDigest = options.token ? digest(options.token) : undefined;
  const base = (options.basePath ?? '/').replace(/\/+$/, '');
  const maxBody = options.maxBodyBytes ?? 16 * 1024;
  const allowedHosts = options.allowedHosts?.map(allowedHost);
  const scrubUrl = secretScrubber(urlInUse(options.url));
  const scrubCoordinator = secretScrubber(coordinatorUrl);
  const scrub = (text: string) => scrubCoordinator(scrubUrl(text));

  // Never throws, whatever the request: anything that goes wrong is an answer (see `fail`).
  const handler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => {
    scrubbers.set(res, scrub);
    const path = requestPath(req.url ?? '/');
    if (path === undefined || !isUnder(path, base)) {
      if (next) return next();
      return fail(res, path === undefined ? badTarget() : notFound(path));
    }
    route(req, res, path.slice(base.length)).catch((error: unknown) => fail(res, error));
  };

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if ((req.headersDistinct.host?.length ?? 0) > 1) throw badRequest('more than one Host header');
    const host = requestHost(req.url ?? '/', req.headers.host);
    if (allowedHosts && !hostAllowed(host, allowedHosts)) {
      throw new HttpError(421, {
        error: 'MISDIRECTED',
        message: `this server answers to ${options.allowedHosts?.join(', ')}, not ${quote(host ?? '')} (if that name is this server's, allow it: lockstep serve --allow-host, or allowedHosts)`,
      });
    }
    if (path === '') {
      // Relative URLs in the page need the trailing slash.
      res.writeHead(308, { ...SECURITY_HEADERS, location: `${base}/` }).end();
      return;
    }
    const method = req.method ?? 'GET';
    if (path === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const asset = ASSETS[path];
    if (asset) {
      allow(method, ['GET', 'HEAD']);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type });
      res.end(method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (path === '/api/status') {
      allow(method, ['GET']);
      return send(res, 200, await snapshot());
    }
    if (path === '/api/migrations') {
      allow(method, ['GET']);
      return send(res, 200, await migrator.status());
    }
    if (path === '/api/async') {
      allow(method, ['GET']);
      return send(res, 200, await lrm.status());
    }
    const match = /^\/api\/async\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (match) {
      const name = safeDecode(match[1] as string);
      if (name === undefined || !ASYNC_NAME.test(name)) {
        throw new HttpError(400, {
          error: 'BAD_REQUEST',
          message: `${quote(name ?? (match[1] as string))} is not a long-running migration name (letters, digits, _ and -)`,
        });
      }
      if (match[2] === undefined) {
        allow(method, ['GET']);
        return send(res, 200, await lrm.status(name));
      }
      const action = match[2] as Action;
      if (!ACTIONS.includes(action)) {
        throw new HttpError(404, {
          error: 'NOT_FOUND',
          message: `no action ${quote(action)}: use ${ACTIONS.join(', ')}`,
        });
      }
      allow(method, ['POST']);
      authorize(req);
      const body = await readBody(req, action);
      return send(res, 200, await act(name, action, body));
    }
    throw notFound(path);
  }

  /** Everything the status page shows, in one response; each half reports its own problem. */
  async function snapshot() {
    const [migrations, long] = await Promise.allSettled([migrator.status(), lrm.status()]);
    if (migrations.status === 'rejected' && long.status === 'rejected') {
      // Both failed: the database is likely the cause, and the more useful answer.
      throw long.reason instanceof ConnectionError ? long.reason : migrations.reason;
    }
    const problem = (r: PromiseSettledResult<unknown>) =>
      r.status === 'rejected' ? describe(r.reason) : null;
    return {
      target: migrator.target,
      mutations: tokenDigest !== undefined,
      lockHolder: migrations.status === 'fulfilled' ? migrations.value.lockHolder : null,
      migrations: migrations.status === 'fulfilled' ? migrations.value.migrations : null,
      migrationsError: problem(migrations),
      async: long.status === 'fulfilled' ? long.value : null,
      asyncError: problem(long),
    };
  }

  function act(name: string, action: Action, body: Record<string, unknown>) {
    switch (action) {
      case 'trigger':
        return lrm.trigger(name, {
          parameters: body.parameters as Record<string, unknown> | undefined,
          queue: body.queue as boolean | undefined,
        });
      case 'stop':
        return lrm.stop(name, { force: body.force as boolean | undefined });
      case 'resume':
        return lrm.resume(name);
      case 'rollback':
        return lrm.rollback(name);
    }
  }

  function authorize(req: IncomingMessage): void {
    if (!tokenDigest) {
      throw new HttpError(403, {
        error: 'READ_ONLY',
        message:
          'this server was started without a token, so it only shows: start lockstep serve with LOCKSTEP_TOKEN (or --token) to allow actions',
      });
    }
    const given = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    // Compared as digests: equal length, constant time, whatever was sent.
    if (!given || !timingSafeEqual(digest(given), tokenDigest)) {
      throw new HttpError(
        401,
        {
          error: 'UNAUTHORIZED',
          message: given ? 'wrong token' : 'this action needs the token: Authorization: Bearer <token>',
        },
        { 'www-authenticate': 'Bearer realm="lockstep"' },
      );
    }
  }

  async function readBody(req: IncomingMessage, action: Action): Promise<Record<string, unknown>> {
    const text = (await readAll(req, maxBody)).toString('utf8');
    if (text.trim() === '') return {};
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, {
        error: 'UNSUPPORTED_MEDIA_TYPE',
        message: 'send the body as application/json',
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw badRequest(`the body is not JSON: ${(error as Error).message}`);
    }
    const problem = bodyProblem(action, BODY_FIELDS[action], body);
    if (problem !== undefined) throw badRequest(problem);
    return body as Record<string, unknown>;
  }

  return Object.assign(handler, { mutations: tokenDigest !== undefined });
}

const ASSETS: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
  '/app.js': { type: 'text/javascript; charset=utf-8', body: PAGE_JS },
  '/app.css': { type: 'text/css; charset=utf-8', body: PAGE_CSS },
};

/** The request's body, up to `max` bytes; a larger one is a 413 (the rest is not read). */
function readAll(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > max) return reject(tooLarge(max));
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (error: unknown) => {
      req.off('data', collect);
      req.off('end', done);
      reject(error);
    };
    const collect = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) stop(tooLarge(max));
      else chunks.push(chunk);
    };
    const done = () => resolve(Buffer.concat(chunks));
    req.on('data', collect);
    req.once('end', done);
    // Aborted or closed before the end (after it, this is a no-op): there is no one left to answer.
    const gone = () => stop(badRequest('the client closed the connection during the body'));
    req.once('error', gone);
    req.once('close', gone);
  });
}

/** A host the handler answers to, from `allowedHosts`: a bad one is the caller's mistake. */
function allowedHost(value: string): HostName {
  const host = parseHost(value);
  if (!host)
    throw new ConfigError(`"${value}" is not a host name (name or name:port, e.g. status.example.com)`);
  return host;
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) {
    throw new HttpError(
      405,
      { error: 'METHOD_NOT_ALLOWED', message: `use ${methods.join(' or ')} here` },
      { allow: methods.join(', ') },
    );
  }
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined; // a malformed %-escape
  }
}

function badRequest(message: string): HttpError {
  return new HttpError(400, { error: 'BAD_REQUEST', message });
}

function tooLarge(max: number): HttpError {
  // The rest of the body is not read: the connection closes after the answer.
  return new HttpError(
    413,
    { error: 'TOO_LARGE', message: `the body is larger than ${max} bytes` },
    { connection: 'close' },
  );
}

function notFound(path: string): HttpError {
  return new HttpError(404, { error: 'NOT_FOUND', message: `no such page: ${clip(path)}` });
}

function badTarget(): HttpError {
  return badRequest('the request target must be a path (/…) or an http:// URL');
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * The server's one place where secrets are scrubbed: the scrubber of the handler that answers a
 * response, which every body and every log line about it passes through.
 */
const scrubbers = new WeakMap<ServerResponse, Scrub>();

function scrubberOf(res: ServerResponse): Scrub {
  return scrubbers.get(res) ?? redactUrlsIn;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  // The JSON text is scrubbed as a whole: the scrubber knows each secret's JSON-escaped spellings.
  const text = scrubberOf(res)(JSON.stringify(body));
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
  });
  res.end(text);
}

/** lockstep's errors keep their facts; anything else is an internal error, logged, never shown. */
function describe(error: unknown): Record<string, unknown> {
  if (error instanceof LockstepError) return error.toJSON();
  return { error: 'INTERNAL', message: 'internal error; the server log has the details' };
}

/** Answers with the error; never throws (it is the last resort of every request). */
function fail(res: ServerResponse, error: unknown): void {
  try {
    if (res.headersSent) res.end();
    else if (error instanceof HttpError) send(res, error.status, error.body, error.headers);
    else {
      const status = statusOf(error);
      if (status === HttpStatus.internal) log(error, res);
      send(res, status, describe(error));
    }
  } catch (secondary) {
    log(secondary, res);
    res.destroy();
  }
}

function statusOf(error: unknown): number {
  return error instanceof LockstepError ? error.httpStatus : HttpStatus.internal;
}

function log(error: unknown, res: ServerResponse): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`lockstep serve: ${scrubberOf(res)(text)}\n`);
}
