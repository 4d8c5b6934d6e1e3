import { poolerOption } from '../core/config.js';
import {
  DEFAULT_ASYNC_DIR,
  DEFAULT_ASYNC_TABLE,
  DEFAULT_DIR,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_TABLE,
  DEFAULT_URL,
} from '../defaults.js';
import { ConfigError, ExitCode } from '../errors.js';
import { serve } from '../server/serve.js';
import { AsyncEventPrinter } from './async-output.js';
import {
  coordinatorUrl,
  databaseUrl,
  expectArgs,
  fail,
  intOption,
  writeStderr,
  writeStdout,
} from './common.js';
import type { Values } from './options.js';

export const SERVE_HELP = `lockstep serve — the status page and JSON API of one database, for a browser or a script.

Usage: lockstep serve [options]

Shows the migrations (state, when and by whom applied, changed files), the migration lock's
holder, and the long-running migrations with live progress; with a token, it also triggers,
stops, resumes and rolls them back — through the same atomic transitions as \`lockstep async\`.

Options:
      --host <address>      Address to listen on. Default: ${DEFAULT_HOST} (this machine only)
      --port <n>            Default: ${DEFAULT_PORT} (0: any free port)
      --token <token>       Bearer token that actions require. Better: the LOCKSTEP_TOKEN
                            environment variable (a flag shows in the process list). Without a
                            token the server only shows.
      --worker              Also run a long-running migrations worker in this process
      --allow-host <name>   Another Host header to answer to: the public name when listening on
                            0.0.0.0, a name behind a proxy; name (any port) or name:port (repeatable)
      --allow-any-host      Answer whatever the Host header says (turns off DNS rebinding
                            protection; only behind a proxy that checks Host itself)
  -u, --url <url>           Database URL. Default: $DATABASE_URL, ./.env, else ${DEFAULT_URL}
  -d, --dir <dir>           Migrations directory. Default: ${DEFAULT_DIR}
  -t, --table <name>        Migration ledger. Default: ${DEFAULT_TABLE}
      --async-dir <dir>     Long-running migrations. Default: ${DEFAULT_ASYNC_DIR}
      --async-table <name>  Their state table. Default: ${DEFAULT_ASYNC_TABLE}
  -q, --quiet               Print only errors
  -h, --help                Show this help

API (JSON): GET api/status · GET api/migrations · GET api/async · GET api/async/<name>
            POST api/async/<name>/trigger {"parameters": {...}, "queue": false}
            POST api/async/<name>/stop {"force": false} · POST api/async/<name>/resume
            POST api/async/<name>/rollback — with Authorization: Bearer <token>
Host: it answers to the listening host, localhost, 127.0.0.1, [::1] and --allow-host names — on
      every interface too; any other Host header gets 421 (against DNS rebinding).
Status codes: 400 bad input · 401 no or wrong token · 403 no token configured · 404 unknown ·
              409 refused (another runs, or not in this state) · 421 Host not answered to ·
              503 database unreachable
`;

/** `lockstep serve`, its options parsed and checked by parseCommandLine. */
export async function serveMain(positionals: string[], values: Values): Promise<number> {
  try {
    expectArgs('serve', positionals, 0);
    const token = values.token ?? process.env.LOCKSTEP_TOKEN;
    checkToken(token, values.token !== undefined ? '--token' : 'LOCKSTEP_TOKEN');
    const events = new AsyncEventPrinter((line) => writeStderr(`${line}\n`), values.quiet ?? false);
    const running = await serve({
      url: databaseUrl(values.url),
      pooler: poolerOption(values.pooler),
      coordinatorUrl: coordinatorUrl(values['coordinator-url']),
      dir: values.dir,
      table: values.table,
      asyncDir: values['async-dir'],
      asyncTable: values['async-table'],
      host: values.host,
      port: intOption('--port', values.port, DEFAULT_PORT, 0),
      token,
      worker: values.worker,
      allowHosts: values['allow-host'],
      allowAnyHost: values['allow-any-host'],
      on: (event) => events.print(event),
    });
    if (!values.quiet) {
      writeStdout(
        `lockstep status page: ${running.url}\n${running.mutations ? 'actions need the token (Authorization: Bearer …)' : 'read-only: no token (set LOCKSTEP_TOKEN to allow actions)'}${values.worker ? '; a worker runs in this process' : ''}\n`,
      );
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await running.close();
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof Error && /EADDRINUSE/.test((error as NodeJS.ErrnoException).code ?? '')) {
      return fail(
        new ConfigError(`cannot listen: ${error.message} (another server uses that port; try --port)`),
        false,
      );
    }
    return fail(error, false);
  }
}

/**
 * A token that no client could send as it is (a space, a newline from `$(cat file)`, a character
 * outside visible ASCII) would lock every client out; refused at start, without printing it.
 */
function checkToken(token: string | undefined, from: string): void {
  if (token === undefined) return;
  if (/\s/.test(token)) {
    throw new ConfigError(
      `the token from ${from} contains whitespace (a space, tab or newline), which an Authorization header cannot carry as typed: remove it`,
    );
  }
  if (!/^[\x21-\x7e]*$/.test(token)) {
    throw new ConfigError(
      `the token from ${from} must be visible ASCII characters only (e.g. \`openssl rand -hex 24\`)`,
    );
  }
  if (token.length < 16) {
    throw new ConfigError(
      `the token must be at least 16 characters (it comes from ${from}; e.g. \`openssl rand -hex 24\`)`,
    );
  }
}
