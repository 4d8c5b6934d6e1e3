#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { type LockstepOptions, poolerOption } from '../core/config.js';
import { compareVersions } from '../core/migration.js';
import type { StatusResult, UpResult } from '../core/runner.js';
import { isToolName, TOOL_NAMES } from '../core/tools/tool.js';
import { DEFAULT_DDL_LOCK_RETRIES, DEFAULT_DIR, DEFAULT_DOWN_STEPS, urlInUse } from '../defaults.js';
import { type DatabaseAdmin, openAdmin } from '../drivers/admin.js';
import { ConfigError, ConnectFailedError, ConnectionError, ExitCode } from '../errors.js';
import { Migrator } from '../index.js';
import { formatDuration, sleep } from '../util/duration.js';
import {
  coordinatorUrl,
  databaseUrl,
  envVar,
  expectArgs,
  fail,
  intOption,
  scrubAlso,
  useEnvFiles,
  writeResult,
  writeStderr,
} from './common.js';
import { type DbmateSettings, dbmateSettings } from './dbmate.js';
import { commandHelp, HELP } from './help.js';
import { createMigrationFile } from './new.js';
import { CORE_COMMANDS, type CommandLine, parseCommandLine, type Values } from './options.js';
import {
  formatAdopt,
  formatCreated,
  formatDown,
  formatEvent,
  formatResolve,
  formatStatus,
  formatUp,
} from './output.js';

async function main(argv: string[]): Promise<number> {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv);
  } catch (error) {
    return fail(error, argv.includes('--json'));
  }
  if (line.kind === 'version') {
    process.stdout.write(`${readVersion()}\n`);
    return ExitCode.ok;
  }
  if (line.command === 'async' || line.command.startsWith('async ')) {
    // Loaded only then: `lockstep up` never pays for the long-running migrations' code.
    const { asyncMain, ASYNC_HELP } = await import('./async.js');
    if (line.kind === 'help') return printHelp(ASYNC_HELP);
    return asyncMain(line.command.slice('async '.length), line.args, line.values);
  }
  if (line.command === 'serve') {
    const { serveMain, SERVE_HELP } = await import('./serve.js');
    if (line.kind === 'help') return printHelp(SERVE_HELP);
    return serveMain(line.args, line.values);
  }
  if (line.kind === 'help') {
    const command = CORE_COMMANDS.find((c) => c === line.command);
    return printHelp(command ? commandHelp(command) : HELP);
  }
  const { command, args, values, typed } = line;
  const json = values.json ?? false;
  const print = (text: string) => writeResult(text, { json, quiet: values.quiet ?? false });
  try {
    useEnvFiles(values['env-file']);
    const dbmate = dbmateSettings(typed, values);
    const url = () => {
      if (dbmate.url === undefined && dbmate.conventions) {
        throw new ConfigError(
          `no database URL: set ${dbmate.urlVariable} (in the environment or .env) or pass --url. ` +
            "(With dbmate's conventions in use there is no default database.)",
        );
      }
      return databaseUrl(dbmate.url);
    };
    const migrator = () => new Migrator(toOptions(values, dbmate, url()));
    const admin = () => openAdmin(urlInUse(url()), command);
    if (dbmate.wait && command !== 'new' && command !== 'wait') await waitForDatabase(await admin(), dbmate);
    switch (command) {
      case 'up':
      case 'migrate': {
        expectArgs(command, args, 0);
        const run = async () => {
          const m = migrator();
          if (dbmate.conventions) await warnHistory(m, dbmate);
          return untilFinished(m.up());
        };
        let result: UpResult;
        try {
          result = await run();
        } catch (error) {
          // dbmate's up creates a missing database: asked only when it could not be reached.
          // Only a connection that could not be opened: a session lost during the run is its
          // outcome (exit 5), never a reason to run again.
          const notOpened = error instanceof ConnectFailedError;
          if (command !== 'up' || !notOpened || !(await createIfMissing(url()))) throw error;
          result = await run();
        }
        const code = report(result, formatUp, json, print);
        if (result.applied.length > 0) await dumpSchemaAfterChange(values, dbmate, url());
        return code;
      }
      case 'down': {
        expectArgs(command, args, 0);
        const result = await untilFinished(
          migrator().down({ steps: intOption('--steps', values.steps, DEFAULT_DOWN_STEPS) }),
        );
        const code = report(result, formatDown, json, print);
        if (result.rolledBack.length > 0) await dumpSchemaAfterChange(values, dbmate, url());
        return code;
      }
      case 'status': {
        expectArgs(command, args, 0);
        const status = await migrator().status();
        report(status, formatStatus, json, print);
        const exitCode = values['exit-code'] || values.quiet;
        const notApplied = status.migrations.some((m) => ['pending', 'running', 'failed'].includes(m.status));
        return exitCode && notApplied ? ExitCode.migrationFailed : ExitCode.ok;
      }
      case 'resolve': {
        expectArgs(command, args, 1, '<version> --applied | --rolled-back [--force]');
        if (values.applied === values['rolled-back']) {
          throw new ConfigError('resolve needs exactly one of --applied or --rolled-back');
        }
        const result = await migrator().resolve(
          args[0] as string,
          values.applied ? 'applied' : 'rolled-back',
          { force: values.force },
        );
        return report(result, formatResolve, json, print);
      }
      case 'adopt': {
        expectArgs(command, args, 0);
        const from = values.from;
        if (from === undefined || !isToolName(from)) {
          throw new ConfigError(
            `adopt needs --from <tool>, one of: ${TOOL_NAMES.join(', ')}${from === undefined ? '' : ` (got "${from}")`}` +
              (from === 'dbmate'
                ? "; dbmate's history needs no adopt: lockstep follows it by itself (--dbmate)"
                : ''),
          );
        }
        const result = await migrator().adopt(from, {
          table: values['from-table'],
          dryRun: values['dry-run'],
        });
        return report(result, formatAdopt, json, print);
      }
      case 'new': {
        expectArgs(command, args, 1, '<name>');
        const file = await createMigrationFile(
          dbmate.dir ?? DEFAULT_DIR,
          args[0] as string,
          values.ts ?? false,
        );
        return report({ created: file }, formatCreated, json, print);
      }
      case 'create': {
        expectArgs(command, args, 0);
        const target = await admin();
        writeStderr(`creating ${target.name}\n`);
        await target.create({ ifMissing: false });
        return report({ created: target.name }, (r) => `created ${r.created}`, json, print);
      }
      case 'drop': {
        expectArgs(command, args, 0);
        const target = await admin();
        const dropped = await target.drop();
        return report(
          { database: target.name, dropped },
          (r) => (r.dropped ? `dropped ${r.database}` : `${r.database} does not exist: nothing to drop`),
          json,
          print,
        );
      }
      case 'wait': {
        expectArgs(command, args, 0);
        const target = await admin();
        const waitedMs = await waitForDatabase(target, dbmate);
        return report(
          { database: target.name, waitedMs },
          (r) =>
            `the server of ${r.database} accepts connections${r.waitedMs > 0 ? ` (waited ${formatDuration(r.waitedMs)})` : ''}`,
          json,
          print,
        );
      }
      case 'dump': {
        const { dumpCommand } = await import('./schema.js');
        return await dumpCommand({ ...values, url: url() }, args);
      }
      case 'load': {
        expectArgs(command, args, 0);
        const { loadCommand } = await import('./schema.js');
        return await loadCommand({ ...values, url: url() });
      }
      default:
        throw new ConfigError(`unknown command "${command}". See --help.`);
    }
  } catch (error) {
    return fail(error, json);
  }
}

/**
 * dbmate's up: creates the database when it is missing; whether to try again (it exists now). Skipped (false) when that
 * cannot be told (no access to the server's list of databases; ClickHouse), as dbmate skips it.
 */
async function createIfMissing(url: string | undefined): Promise<boolean> {
  // A SQLite file is created by connecting: one that could not be opened cannot be made here.
  if (/^sqlite3?:/i.test(urlInUse(url))) return false;
  let target: DatabaseAdmin;
  try {
    target = await openAdmin(urlInUse(url), 'up');
  } catch {
    return false;
  }
  const exists = await target.exists().catch(() => undefined);
  if (exists === undefined) return false;
  // It exists now: another runner created it since (try again); else create it.
  if (exists) return true;
  writeStderr(`creating database ${target.name}\n`);
  await target.create({ ifMissing: true });
  return true;
}

/** dbmate's wait: try, then once an interval until the timeout; the time waited. */
async function waitForDatabase(target: DatabaseAdmin, settings: DbmateSettings): Promise<number> {
  const started = Date.now();
  let said = false;
  for (;;) {
    try {
      await target.ping();
      return Date.now() - started;
    } catch (error) {
      const waited = Date.now() - started;
      if (waited + settings.waitIntervalMs > settings.waitTimeoutMs) {
        throw new ConnectionError(
          `the server of ${target.name} did not accept a connection within ${formatDuration(settings.waitTimeoutMs)} ` +
            `(--wait-timeout): ${(error as Error).message}`,
        );
      }
      if (!said) writeStderr(`waiting for the database server of ${target.name}...\n`);
      said = true;
      await sleep(settings.waitIntervalMs);
    }
  }
}

/**
 * dbmate rewrites its schema file after every up and rollback; lockstep after one that changed
 * something (never on the no-op path every worker takes at boot), where the project keeps the
 * file: it exists, -s or $DBMATE_SCHEMA_FILE names it, or dbmate's conventions are in use.
 */
async function dumpSchemaAfterChange(values: Values, dbmate: DbmateSettings, url: string | undefined) {
  const { dumpAfterChange, schemaFile } = await import('./schema.js');
  const named = values['schema-file'] !== undefined || envVar('DBMATE_SCHEMA_FILE') !== undefined;
  if (dbmate.noDumpSchema || !(named || dbmate.conventions || existsSync(schemaFile(values)))) return;
  await dumpAfterChange({ ...values, url });
}

/**
 * With dbmate's conventions, what lockstep's history checks would refuse and dbmate does not
 * check is a warning (lock-free read first; the run itself then allows it).
 */
async function warnHistory(migrator: Migrator, settings: DbmateSettings): Promise<void> {
  let status: StatusResult;
  try {
    status = await migrator.status();
  } catch {
    return; // up says why
  }
  const applied = status.migrations.filter((m) => m.status === 'applied' || m.status === 'changed');
  const newest = applied.at(-1)?.version;
  for (const m of status.migrations) {
    const name = `${m.version}${m.name ? `_${m.name}` : ''}`;
    if (m.status === 'changed')
      writeStderr(`warning: ${name} changed after it was applied (dbmate does not check)\n`);
    if (m.status === 'missing')
      writeStderr(`warning: ${name} is applied but its file is gone (dbmate ignores it)\n`);
    if (
      m.status === 'pending' &&
      newest !== undefined &&
      !settings.strict &&
      compareVersions(m.version, newest) < 0
    ) {
      writeStderr(
        `warning: ${name} is older than the newest applied ${newest}: applied out of order, as dbmate (--strict refuses)\n`,
      );
    }
  }
}

function printHelp(text: string): number {
  process.stdout.write(text);
  return ExitCode.ok;
}

/** Progress goes to stderr; stdout carries only the result (text, or JSON with --json). */
function toOptions(values: Values, dbmate: DbmateSettings, url: string | undefined): LockstepOptions {
  const warned = new Set<string>();
  const quiet = values.quiet ?? false;
  const ddlLockTimeout = values['ddl-lock-timeout'];
  const directUrl = values['direct-url'];
  if (directUrl !== undefined && directUrl.trim() === '')
    throw new ConfigError('--direct-url is empty: pass a URL, or leave it out');
  scrubAlso(directUrl);
  const lenient = dbmate.conventions;
  let migrating = false;
  return {
    url,
    pooler: poolerOption(values.pooler),
    directUrl,
    coordinatorUrl: coordinatorUrl(values['coordinator-url']),
    cancelOrphans: values['cancel-orphans'],
    dir: dbmate.dir,
    table: values.table,
    dbmateTable: dbmate.dbmateTable,
    lockTimeout: values['lock-timeout'],
    ddlLockTimeout: ddlLockTimeout === 'off' ? null : ddlLockTimeout,
    ddlLockRetries: intOption('--ddl-lock-retries', values['ddl-lock-retries'], DEFAULT_DDL_LOCK_RETRIES, 0),
    migrationTimeout: values['migration-timeout'],
    runTimeout: values['run-timeout'],
    asyncTable: values['async-table'],
    dbmate: values.dbmate as LockstepOptions['dbmate'],
    allowOutOfOrder: values['allow-out-of-order'] || (lenient && !dbmate.strict) || undefined,
    allowChanged: values['allow-changed'] || lenient || undefined,
    allowMissing: values['allow-missing'] || lenient || undefined,
    on: (event) => {
      if (event.type === 'query') {
        // --verbose: the statements of the migrations (not lockstep's own reads of the ledger).
        if (dbmate.verbose && migrating) writeStderr(`  ${event.sql.trim()}\n`);
        return;
      }
      if (event.type === 'migrating' || event.type === 'migrated') migrating = event.type === 'migrating';
      if (quiet && event.type !== 'lock-waiting') return;
      const line = formatEvent(event);
      // The files are read once per command: a second read (dbmate's conventions check the
      // history before up) says nothing new.
      if (event.type === 'notice' && line?.startsWith('warning: ')) {
        if (warned.has(line)) return;
        warned.add(line);
      }
      if (line) writeStderr(`${line}\n`);
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

/** Prints a command's result: as JSON with --json, else as its `format` says. */
function report<R>(
  result: R,
  format: (result: R) => string,
  json: boolean,
  print: (text: string) => void,
): number {
  print(json ? JSON.stringify(result, null, 2) : format(result));
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
