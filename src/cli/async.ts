import type { AsyncOptions } from '../async/config.js';
import { type AsyncActionResult, AsyncMigrator } from '../async/migrator.js';
import { createDefinitionFile } from '../async/new.js';
import { poolerOption } from '../core/config.js';
import {
  DEFAULT_ASYNC_DIR,
  DEFAULT_ASYNC_TABLE,
  DEFAULT_POLL_MS,
  DEFAULT_TABLE,
  DEFAULT_URL,
} from '../defaults.js';
import { ConfigError, ExitCode } from '../errors.js';
import { asWritten } from '../util/duration.js';
import { AsyncEventPrinter, formatAction, formatFinal, formatList, formatOne } from './async-output.js';
import { coordinatorUrl, databaseUrl, expectArgs, fail, writeResult, writeStderr } from './common.js';
import type { Values } from './options.js';
import { formatCreated } from './output.js';

export const ASYNC_HELP = `lockstep async — long-running migrations: backfills, table rewrites, index builds that cannot
run inside a deploy. They run in the background with progress, stop, resume and rollback, and at
most one runs at a time per database: that rule is checked and enforced in one transaction.

Usage: lockstep async <command> [options]

Commands:
  list                      Every long-running migration: state, progress, worker.
  status [name]             State, progress, the operation in flight, its worker (alive or dead),
                            parameters and every error. Changes nothing.
  trigger <name>            Start it: its operations are frozen into its state row, then a worker
                            (or --wait) executes them. Refused, naming the running one, while
                            another long-running migration is active; --queue queues it instead.
      --param name=value    Set a parameter (repeatable): a value of its declared type
                            (text, integer, number, boolean, duration), else exit 2.
      --queue               Queue it behind the active one instead of refusing.
  stop <name> [--force]     Graceful: the worker finishes the operation or batch in flight, then
                            the run is errored (resume goes on from there). --force also cancels
                            the running statement on the server. Takes a queued run off the queue.
  resume <name>             Continue an errored run where it stopped; the operation that was in
                            flight runs again (operations must be safe to repeat).
  rollback <name>           Undo a run (errored or completed): the rollback SQL of each operation
                            done or in flight, newest first.
  worker                    Execute triggered runs in the background, one at a time; run several
                            for availability: exactly one executes each run. A lost database
                            session (a restart) is reconnected with backoff; the run it was
                            executing is then a dead worker's (--on-dead).
      --once                Execute what is waiting, then exit.
      --poll <dur>          How often an idle worker looks for work. Default: ${asWritten(DEFAULT_POLL_MS)}
      --on-dead <error|resume>
                            A run whose worker died (its lock is free): mark it errored (default),
                            or resume it here.
      --cancel-orphans      A statement a dead worker left running: cancel it instead of waiting
                            for it to finish.
  new <name> [--ts]         Create <async-dir>/<name>.sql (or .ts) from a template.

  --wait                    With trigger, resume, rollback: execute it here, in the foreground,
                            printing progress, until it completes or stops; exit 1 if it errors.
                            --cancel-orphans goes with it, as with worker.

Options:
  -u, --url <url>           Database URL (as for \`lockstep up\`). Default: $DATABASE_URL, ./.env,
                            else ${DEFAULT_URL}
      --coordinator-url <url>
                            ClickHouse: the PostgreSQL (or SQLite) database that holds the
                            ledger, the state tables and the locks (as for \`lockstep up\`).
                            Default: $LOCKSTEP_COORDINATOR_URL (also ./.env)
      --async-dir <dir>     Definitions directory. Default: ${DEFAULT_ASYNC_DIR}
      --async-table <name>  State table (errors in <name>_errors). Default: ${DEFAULT_ASYNC_TABLE}
  -t, --table <name>        The migration ledger, whose lock guards creating the state tables.
                            Default: ${DEFAULT_TABLE}
      --json                Print the result, or the error, as one JSON object on stdout
  -q, --quiet               Print only errors
  -h, --help                Show this help

Definitions (<async-dir>/<name>.sql; TS/JS modules export defineAsyncMigration({...})):
  -- async:description Backfill users.email_lower
  -- async:depends_on 0001_add_email_lower
  -- async:parameter batch_size type:integer default:10000 rows per batch
  -- async:operation batched table:users key:id batch_size:{{batch_size}} pause:50ms
  UPDATE users SET email_lower = lower(email) WHERE id >= :start AND id < :end;
  -- async:rollback
  UPDATE users SET email_lower = NULL WHERE id >= :start AND id < :end;

States: not_started → starting → running → completed; running → stopping → errored;
errored → running (resume) | rolling_back → rolled_back; completed → rolling_back;
starting → failed_at_startup (a dependency, precheck or healthcheck failed); queued (--queue).

Exit codes: 0 done; 1 the run errored (with --wait); 2 bad input; 5 database unreachable;
6 refused: another long-running migration is active, or the action does not apply to the state.
`;

/** `lockstep async <command>`, its arguments and options, parsed and checked by parseCommandLine. */
export async function asyncMain(command: string, args: string[], values: Values): Promise<number> {
  const json = values.json ?? false;
  if (command === '') {
    process.stdout.write(ASYNC_HELP);
    return ExitCode.badInput;
  }
  const print = (text: string) => writeResult(text, { json, quiet: values.quiet ?? false });
  const events = new AsyncEventPrinter((line) => writeStderr(`${line}\n`), values.quiet ?? false);
  try {
    const migrator = () => new AsyncMigrator(toOptions(values, events));
    const report = <R>(result: R, format: (result: R) => string) => {
      print(json ? JSON.stringify(result, null, 2) : format(result));
      return ExitCode.ok;
    };
    // With --wait: the transition's result, then how the run ended (with --json: one object of both).
    const thenWait = async (m: AsyncMigrator, result: AsyncActionResult, name: string) => {
      if (!values.wait) return report(result, formatAction);
      if (!json) print(formatAction(result));
      const final = await m.wait(name);
      return report({ ...result, final }, (waited) => formatFinal(waited.final));
    };
    switch (command) {
      case 'list':
        expectArgs('async list', args, 0);
        return report(await migrator().status(), formatList);
      case 'status':
        if (args.length > 1) throw new ConfigError('usage: lockstep async status [name]');
        return report(await migrator().status(args[0]), args[0] ? formatOne : formatList);
      case 'trigger': {
        expectArgs('async trigger', args, 1, '<name> [--param name=value ...] [--queue] [--wait]');
        const m = migrator();
        const name = args[0] as string;
        return await thenWait(
          m,
          await m.trigger(name, { parameters: parseParams(values.param), queue: values.queue }),
          name,
        );
      }
      case 'stop':
        expectArgs('async stop', args, 1, '<name> [--force]');
        return report(await migrator().stop(args[0] as string, { force: values.force }), formatAction);
      case 'resume':
      case 'rollback': {
        expectArgs(`async ${command}`, args, 1, '<name> [--wait]');
        const m = migrator();
        const name = args[0] as string;
        return await thenWait(m, command === 'resume' ? await m.resume(name) : await m.rollback(name), name);
      }
      case 'worker': {
        expectArgs('async worker', args, 0);
        return await runWorker(migrator(), values.once ?? false, print);
      }
      case 'new': {
        expectArgs('async new', args, 1, '<name> [--ts]');
        const file = await createDefinitionFile(
          values['async-dir'] ?? DEFAULT_ASYNC_DIR,
          args[0] as string,
          values.ts ?? false,
        );
        return report({ created: file }, formatCreated);
      }
      default:
        throw new ConfigError(
          `unknown command "async ${command}". Commands: list, status, trigger, stop, resume, rollback, worker, new. See lockstep async --help.`,
        );
    }
  } catch (error) {
    return fail(error, json);
  }
}

function toOptions(values: Values, events: AsyncEventPrinter): AsyncOptions {
  const onDead = values['on-dead'];
  if (onDead !== undefined && onDead !== 'error' && onDead !== 'resume') {
    throw new ConfigError(`--on-dead takes error or resume, got "${onDead}"`);
  }
  return {
    url: databaseUrl(values.url),
    pooler: poolerOption(values.pooler),
    coordinatorUrl: coordinatorUrl(values['coordinator-url']),
    dir: values['async-dir'],
    table: values['async-table'],
    ledgerTable: values.table,
    onDeadWorker: onDead,
    orphans: values['cancel-orphans'] ? 'cancel' : 'wait',
    pollInterval: values.poll,
    on: (event) => events.print(event),
  };
}

function parseParams(list: string[] | undefined): Record<string, string> {
  const params: [string, string][] = [];
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--param takes name=value, got "${item}"`);
    params.push([item.slice(0, eq), item.slice(eq + 1)]);
  }
  // Own properties whatever the name: `--param __proto__=x` is refused as unknown, not lost.
  return Object.fromEntries(params);
}

/** Until SIGINT/SIGTERM: the first lets the run in hand reach its next batch and hands it over. */
async function runWorker(
  migrator: AsyncMigrator,
  once: boolean,
  print: (text: string) => void,
): Promise<number> {
  const controller = new AbortController();
  const stop = () => {
    if (controller.signal.aborted) process.exit(130);
    writeStderr('worker: stopping after the current batch or operation (again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const result = await migrator.work({ signal: controller.signal, once });
  print(`worker: executed ${result.runs} run${result.runs === 1 ? '' : 's'}`);
  return ExitCode.ok;
}
