import { DEFAULT_ASYNC_DIR, DEFAULT_ASYNC_TABLE } from '../async/config.js';
import { ConfigError, ExitCode } from '../core/errors.js';
import { serve } from '../server/serve.js';
import { AsyncEventPrinter } from './async-output.js';
import {
  databaseUrl,
  expectArgs,
  fail,
  intOption,
  parseCommandLine,
  writeStderr,
  writeStdout,
} from './common.js';

const HELP = `lockstep serve — the status page and JSON API of one database, for a browser or a script.

Usage: lockstep serve [options]

Shows the migrations (state, when and by whom applied, changed files), the migration lock's
holder, and the long-running migrations with live progress; with a token, it also triggers,
stops, resumes and rolls them back — through the same atomic transitions as \`lockstep async\`.

Options:
      --host <address>      Address to listen on. Default: 127.0.0.1 (this machine only)
      --port <n>            Default: 4600 (0: any free port)
      --token <token>       Bearer token that actions require. Better: the LOCKSTEP_TOKEN
                            environment variable (a flag shows in the process list). Without a
                            token the server only shows.
      --worker              Also run a long-running migrations worker in this process
      --allow-host <name>   Another Host header to answer to: the public name when listening on
                            0.0.0.0, a name behind a proxy; name (any port) or name:port (repeatable)
      --allow-any-host      Answer whatever the Host header says (turns off DNS rebinding
                            protection; only behind a proxy that checks Host itself)
  -u, --url <url>           Database URL. Default: $DATABASE_URL, ./.env, else sqlite:db/lockstep.sqlite3
  -d, --dir <dir>           Migrations directory. Default: db/migrations
  -t, --table <name>        Migration ledger. Default: lockstep_migrations
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

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  token: { type: 'string' },
  worker: { type: 'boolean' },
  'allow-host': { type: 'string', multiple: true },
  'allow-any-host': { type: 'boolean' },
  url: { type: 'string', short: 'u' },
  dir: { type: 'string', short: 'd' },
  table: { type: 'string', short: 't' },
  'async-dir': { type: 'string' },
  'async-table': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function serveMain(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommandLine(argv, OPTIONS, 'serve');
    if (values.help) {
      process.stdout.write(HELP);
      return ExitCode.ok;
    }
    expectArgs('serve', positionals, 0);
    const token = values.token ?? process.env.LOCKSTEP_TOKEN;
    if (token !== undefined && token.length < 16) {
      throw new ConfigError('the token must be at least 16 characters (e.g. `openssl rand -hex 24`)');
    }
    const events = new AsyncEventPrinter((line) => writeStderr(`${line}\n`), values.quiet ?? false);
    const running = await serve({
      url: databaseUrl(values.url),
      dir: values.dir,
      table: values.table,
      asyncDir: values['async-dir'],
      asyncTable: values['async-table'],
      host: values.host,
      port: intOption('--port', values.port, 4600, 0),
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
