#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LockstepOptions } from '../core/config.js';
import { ConfigError, ExitCode } from '../core/errors.js';
import { Migrator } from '../core/runner.js';
import { databaseUrl, expectArgs, fail, intOption, parseCommandLine } from './common.js';
import { createMigrationFile } from './new.js';
import { formatEvent, formatResult } from './output.js';

const HELP = `lockstep — database migrations applied exactly once, in order, by exactly one process,
however many processes start at the same moment.

Usage: lockstep <command> [options]

Commands:
  up                     Apply every pending migration (the default command). Safe to run from
                         many processes at once: one applies, the others wait, then exit 0 and
                         say who applied what.
  down [--steps N]       Roll back the newest N applied migrations (default 1).
  status                 List every migration with its state, when and by whom it was applied,
                         and the current lock holder. Takes no lock.
  new <name> [--ts]      Create <dir>/<UTC timestamp>_<name>.sql (or .ts with --ts).
  resolve <version> --applied | --rolled-back
                         Record how an interrupted or failed non-transactional migration ended,
                         after you checked the database: --applied if its changes are in place,
                         --rolled-back if they are not (the ledger row is removed).
  async <command>        Long-running migrations (backfills, table rewrites) run in the
                         background with progress, stop, resume and rollback, one at a time.
                         See \`lockstep async --help\`.
  serve                  The status page and JSON API of the database, with live progress of
                         long-running migrations and, with a token, buttons to drive them.
                         See \`lockstep serve --help\`.

Options:
  -u, --url <url>            Database URL. Default: $DATABASE_URL (also read from ./.env),
                             else sqlite:db/lockstep.sqlite3. Schemes: postgres://, postgresql://,
                             mysql://, mariadb://, sqlite:relative/path.db, sqlite:///absolute/path.db
  -d, --dir <dir>            Migrations directory. Default: db/migrations
  -t, --table <name>         Ledger table. Default: lockstep_migrations (schema.table on Postgres;
                             unqualified means public; on MySQL it lives in the URL's database)
      --lock-timeout <dur>   How long to wait for another runner's lock, e.g. 30s, 15m. Default: 15m
      --ddl-lock-timeout <dur|off>
                             Table-lock wait limit for statements of transactional migrations
                             (Postgres lock_timeout, MySQL lock_wait_timeout), so DDL never
                             queues production traffic behind it. Default: 5s
      --ddl-lock-retries <n> Retries (with backoff) after a DDL lock timeout. Default: 5
      --migration-timeout <dur|off>
                             How long one migration may run before its statement is cancelled,
                             the migration rolled back (or recorded failed) and the lock
                             released. A migration's timeout:<dur> overrides it. Default: 1h
      --run-timeout <dur|off>
                             How long a run may hold the lock applying migrations. Default: off
      --async-table <name>   Where up reads the state of long-running migrations, when a
                             migration says requires:<name>. Default: lockstep_async
      --allow-out-of-order   Apply pending migrations older than the newest applied one
      --allow-changed        Accept applied migrations whose file changed since
      --allow-missing        Accept applied migrations whose file is gone
      --steps <n>            With down: how many migrations to roll back. Default: 1
      --applied, --rolled-back
                             With resolve: how the migration ended
      --ts                   With new: create a TypeScript migration module
      --json                 Print the result, or the error, as one JSON object on stdout
  -q, --quiet                Print only errors
  -h, --help                 Show this help
  -v, --version              Show the version

Migration files (dbmate's format):
  -- migrate:up [transaction:false] [lock_timeout:2s|off] [lock_retries:N] [timeout:30m|off]
                [requires:<name>,...]
  CREATE TABLE ...;
  -- migrate:down
  DROP TABLE ...;
  TypeScript/JavaScript modules export up(ctx), down(ctx) and optionally transaction = false,
  timeout = '30m'. A transactional migration must not BEGIN, COMMIT or ROLLBACK itself.

Exit codes:
  0  success, including a runner that waited and found everything applied
  1  a migration failed (its error says where and what state it left)
  2  bad input: usage, URL, migration files, or history checks; nothing was changed
  3  timed out waiting for the migration lock; the error names the holder
  4  dirty state: an interrupted non-transactional migration needs \`lockstep resolve\`
  5  the database could not be reached, or the session was lost during the run
  6  refused: a migration requires a long-running migration that is not completed
`;

const OPTIONS = {
  url: { type: 'string', short: 'u' },
  dir: { type: 'string', short: 'd' },
  table: { type: 'string', short: 't' },
  'lock-timeout': { type: 'string' },
  'ddl-lock-timeout': { type: 'string' },
  'ddl-lock-retries': { type: 'string' },
  'migration-timeout': { type: 'string' },
  'run-timeout': { type: 'string' },
  'async-table': { type: 'string' },
  'allow-out-of-order': { type: 'boolean' },
  'allow-changed': { type: 'boolean' },
  'allow-missing': { type: 'boolean' },
  steps: { type: 'string' },
  applied: { type: 'boolean' },
  'rolled-back': { type: 'boolean' },
  ts: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

async function main(argv: string[]): Promise<number> {
  // `lockstep [options] async <command> [options]`: its own commands and flags, loaded only then.
  const first = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  }).tokens.find((t) => t.kind === 'positional');
  if (first?.value === 'async') {
    const { asyncMain } = await import('./async.js');
    return asyncMain(argv.filter((_, i) => i !== first.index));
  }
  if (first?.value === 'serve') {
    const { serveMain } = await import('./serve.js');
    return serveMain(argv.filter((_, i) => i !== first.index));
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseCommandLine(argv, OPTIONS, ''));
  } catch (error) {
    return fail(error, argv.includes('--json'));
  }
  const json = values.json ?? false;
  if (values.help) {
    process.stdout.write(HELP);
    return ExitCode.ok;
  }
  if (values.version) {
    process.stdout.write(`${readVersion()}\n`);
    return ExitCode.ok;
  }
  const [command = 'up', ...args] = positionals;
  const print = (text: string) => {
    // --quiet silences the human summary; a --json result is always printed.
    if (!values.quiet || json) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  try {
    const migrator = () => new Migrator(toOptions(values));
    switch (command) {
      case 'up':
        expectArgs(command, args, 0);
        return report(await untilFinished(migrator().up()), 'up', json, print);
      case 'down':
        expectArgs(command, args, 0);
        return report(
          await untilFinished(migrator().down({ steps: intOption('--steps', values.steps, 1) })),
          'down',
          json,
          print,
        );
      case 'status':
        expectArgs(command, args, 0);
        return report(await migrator().status(), 'status', json, print);
      case 'resolve': {
        expectArgs(command, args, 1, '<version>');
        if (values.applied === values['rolled-back']) {
          throw new ConfigError('resolve needs exactly one of --applied or --rolled-back');
        }
        const result = await migrator().resolve(
          args[0] as string,
          values.applied ? 'applied' : 'rolled-back',
        );
        return report(result, 'resolve', json, print);
      }
      case 'new': {
        expectArgs(command, args, 1, '<name>');
        const file = await createMigrationFile(
          values.dir ?? 'db/migrations',
          args[0] as string,
          values.ts ?? false,
        );
        return report({ created: file }, 'new', json, print);
      }
      default:
        throw new ConfigError(
          `unknown command "${command}". Commands: up, down, status, new, resolve. See --help.`,
        );
    }
  } catch (error) {
    return fail(error, json);
  }
}

/** Progress goes to stderr; stdout carries only the result (text, or JSON with --json). */
function toOptions(values: Values): LockstepOptions {
  const quiet = values.quiet ?? false;
  const ddlLockTimeout = values['ddl-lock-timeout'];
  return {
    url: databaseUrl(values.url),
    dir: values.dir,
    table: values.table,
    lockTimeout: values['lock-timeout'],
    ddlLockTimeout: ddlLockTimeout === 'off' ? null : ddlLockTimeout,
    ddlLockRetries: intOption('--ddl-lock-retries', values['ddl-lock-retries'], 5, 0),
    migrationTimeout: values['migration-timeout'],
    runTimeout: values['run-timeout'],
    asyncTable: values['async-table'],
    allowOutOfOrder: values['allow-out-of-order'],
    allowChanged: values['allow-changed'],
    allowMissing: values['allow-missing'],
    on: (event) => {
      if (quiet && event.type !== 'lock-waiting') return;
      const line = formatEvent(event);
      if (line) process.stderr.write(`${line}\n`);
    },
  };
}

/**
 * Should the process end while migrations run (migration code called process.exit() from a timer
 * it left behind, or awaits something that can never settle), it ends with exit 1 and says so:
 * never a silent exit 0.
 */
async function untilFinished<T>(run: Promise<T>): Promise<T> {
  const ended = () => {
    process.stderr.write(
      'lockstep: the process ended before the run finished (migration code ended the process, or ' +
        'awaited something that can never complete). Run `lockstep status` to see what the ledger holds.\n',
    );
    process.exitCode = ExitCode.migrationFailed;
  };
  process.once('exit', ended);
  try {
    return await run;
  } finally {
    process.off('exit', ended);
  }
}

function report(result: object, command: string, json: boolean, print: (text: string) => void): number {
  print(json ? JSON.stringify(result, null, 2) : formatResult(command, result));
  return ExitCode.ok;
}

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.exitCode = fail(error, false);
  },
);
