/** The help of lockstep's own commands: `lockstep --help` and `lockstep <command> --help`. */
import {
  DEFAULT_ASYNC_TABLE,
  DEFAULT_DDL_LOCK_RETRIES,
  DEFAULT_DDL_LOCK_TIMEOUT_MS,
  DEFAULT_DIR,
  DEFAULT_DOWN_STEPS,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_MIGRATION_TIMEOUT_MS,
  DEFAULT_TABLE,
  DEFAULT_URL,
} from '../defaults.js';
import { asWritten } from '../util/duration.js';
import { COMMAND_OPTIONS, type CORE_COMMANDS, type OptionName } from './options.js';

/** Each command's entry in the help: its usage and what it does, as `lockstep --help` lists it. */
const COMMAND_HELP: Record<(typeof CORE_COMMANDS)[number], string> = {
  up: `  up                     Apply every pending migration (the default command), creating the
                         database first if it does not exist (as dbmate's up). Safe to run from
                         many processes at once: one applies, the others wait, then exit 0 and
                         say who applied what.`,
  migrate: `  migrate                dbmate's: up without creating the database.`,
  down: `  down [--steps N]       Roll back the newest N applied migrations (default ${DEFAULT_DOWN_STEPS}).
                         Also dbmate's name: rollback.`,
  status: `  status [--exit-code] [--quiet]
                         List every migration with its state, when and by whom it was applied,
                         and the current lock holder. Takes no lock. --exit-code: exit 1 when a
                         migration is not applied (pending, running or failed), for readiness
                         probes and CI gates; --quiet prints nothing and implies --exit-code.`,
  new: `  new <name> [--ts]      Create <dir>/<UTC timestamp>_<name>.sql (or .ts with --ts). Also: n.`,
  resolve: `  resolve <version> --applied | --rolled-back [--force]
                         Record how an interrupted (running) or failed non-transactional migration
                         ended, after you checked the database: --applied if its changes are in
                         place, --rolled-back if they are not (the ledger row is removed). Any
                         other state is refused, saying what to do instead.`,
  adopt: `  adopt --from <tool> [--from-table <name>] [--dry-run]
                         Take another tool's history into the ledger, under the lock: what
                         golang-migrate, goose, knex, node-pg-migrate, prisma or drizzle applied
                         is recorded as applied (never run), what it left half-done as failed
                         (lockstep resolve decides it). Runs no migration; again, it adds only
                         what is missing. up refuses while such a history is not adopted.`,
  create: `  create                 Create the database (PostgreSQL: through the postgres database; MySQL;
                         SQLite: the file). One that exists is refused (exit 6), as dbmate.`,
  drop: `  drop                   Drop the database if it exists.`,
  wait: `  wait                   Wait until the database server accepts connections (--wait-timeout,
                         default 1m), for init containers; exit 5 if it never does.`,
  dump: `  dump [-- <tool args>]  Write the schema file (--schema-file) as dbmate does: pg_dump,
                         mariadb-dump/mysqldump or sqlite3 .schema, normalised, with dbmate's
                         applied versions. lockstep's own tables are left out.
  load                   Run the schema file against the database (psql, mariadb/mysql, sqlite3).`,
  load: '',
};

/** Each option's entry in the help, in the order shown. */
const OPTION_HELP: Partial<Record<OptionName, string>> = {
  url: `  -u, --url <url>            Database URL. Default: $DATABASE_URL (also read from ./.env),
                             else ${DEFAULT_URL} (none with dbmate's conventions).
                             Schemes: postgres://, postgresql://, mysql://, mariadb://,
                             clickhouse://user:password@host:8123/db
                             (with --coordinator-url), sqlite:relative/path.db, sqlite:///absolute/path.db`,
  'coordinator-url': `      --coordinator-url <url>
                             ClickHouse only: the PostgreSQL (or SQLite) database that holds the
                             migration lock and the ledger, which ClickHouse cannot. Every runner
                             must give the same one. Default: $LOCKSTEP_COORDINATOR_URL (also ./.env)`,
  'cancel-orphans': `      --cancel-orphans       ClickHouse: cancel (KILL QUERY) a statement that a dead runner left
                             running on the server, instead of waiting for it to end, before deciding`,
  pooler: `      --pooler <mode>        What is between lockstep and PostgreSQL (or ?pooler= in the URL):
                             transaction (PgBouncer pool_mode=transaction, a managed "pooled"
                             URL: each migration commits under a transaction lock; migrations
                             outside a transaction need --direct-url), session (pool_mode=
                             session), none (PostgreSQL itself; a pooler found is refused).
                             Default: none`,
  'direct-url': `      --direct-url <url>     With --pooler transaction: a URL to the same database that reaches
                             PostgreSQL itself (or a session-mode pooler); a run with a
                             migration to run outside a transaction goes through it instead`,
  env: `  -e, --env <name>           The variable that holds the URL when --url is not given. Default: DATABASE_URL`,
  'env-file': `      --env-file <file>      Read variables from this file (repeatable; the first that sets one wins,
                             the environment before all). Default: .env. Read as dbmate reads it:
                             quotes, # comments after a space, \${VAR} from the same file`,
  dir: `  -d, --dir <dir>            Migrations directory (also --migrations-dir, $DBMATE_MIGRATIONS_DIR).
                             Default: ${DEFAULT_DIR}`,
  'migrations-table': `      --migrations-table <name>
                             dbmate's ledger table to adopt and keep updated ($DBMATE_MIGRATIONS_TABLE).
                             Default: schema_migrations`,
  table: `  -t, --table <name>         Ledger table. Default: ${DEFAULT_TABLE} (schema.table on Postgres;
                             unqualified means public; on MySQL it lives in the URL's database)`,
  'lock-timeout': `      --lock-timeout <dur>   How long to wait for another runner's lock, e.g. 30s, 15m. Default: ${asWritten(DEFAULT_LOCK_TIMEOUT_MS)}`,
  'ddl-lock-timeout': `      --ddl-lock-timeout <dur|off>
                             Table-lock wait limit for statements of transactional migrations
                             (Postgres lock_timeout, MySQL lock_wait_timeout), so DDL never
                             queues production traffic behind it. Default: ${asWritten(DEFAULT_DDL_LOCK_TIMEOUT_MS)}`,
  'ddl-lock-retries': `      --ddl-lock-retries <n> Retries (with backoff) after a DDL lock timeout. Default: ${DEFAULT_DDL_LOCK_RETRIES}`,
  'migration-timeout': `      --migration-timeout <dur|off>
                             How long one migration may run before its statement is cancelled,
                             the migration rolled back (or recorded failed) and the lock
                             released. A migration's timeout:<dur> overrides it. Default: ${asWritten(DEFAULT_MIGRATION_TIMEOUT_MS)}`,
  'run-timeout': `      --run-timeout <dur|off>
                             How long a run may hold the lock applying migrations. Default: off`,
  'async-table': `      --async-table <name>   Where up reads the state of long-running migrations, when a
                             migration says requires:<name>. Default: ${DEFAULT_ASYNC_TABLE}`,
  dbmate: `      --dbmate <mode>        dbmate's ledger (schema_migrations) beside lockstep's: auto (where dbmate's
                             table is there at the first run, what dbmate applied is adopted, never
                             run again, and the table is kept up to date from then on), keep (the
                             same, creating it if missing), off. Default: auto`,
  'allow-out-of-order': `      --allow-out-of-order   Apply pending migrations older than the newest applied one`,
  strict: `      --strict               With up, migrate: refuse a pending migration older than the newest
                             applied one ($DBMATE_STRICT). dbmate's conventions otherwise allow it`,
  verbose: `  -v, --verbose              With up, migrate, down: print each statement as it runs ($DBMATE_VERBOSE)`,
  'exit-code': `      --exit-code            With status: exit 1 when a migration is not applied`,
  wait: `      --wait                 Wait for the database (as \`wait\`) before the command ($DBMATE_WAIT)`,
  'wait-timeout': `      --wait-timeout <dur>   How long --wait and \`wait\` wait: a Go duration, e.g. 30s, 1m30s
                             ($DBMATE_WAIT_TIMEOUT). Default: 1m`,
  'wait-interval': `      --wait-interval <dur>  Between two tries ($DBMATE_WAIT_INTERVAL). Default: 1s`,
  'schema-file': `  -s, --schema-file <file>   The schema file of dump and load, rewritten after an up or down that
                             changed something where the project keeps one (it exists, -s or
                             $DBMATE_SCHEMA_FILE names it, or dbmate's conventions are in use).
                             Default: $DBMATE_SCHEMA_FILE, else db/schema.sql`,
  'no-dump-schema': `      --no-dump-schema       Do not rewrite the schema file after up or down ($DBMATE_NO_DUMP_SCHEMA)`,
  driver: `      --driver <name>        Accepted when it agrees with the URL's scheme ($DBMATE_DRIVER)`,
  'allow-changed': `      --allow-changed        Accept applied migrations whose file changed since`,
  'allow-missing': `      --allow-missing        Accept applied migrations whose file is gone`,
  steps: `      --steps <n>            With down: how many migrations to roll back. Default: ${DEFAULT_DOWN_STEPS}`,
  applied: `      --applied              With resolve: its changes are in place (the row becomes applied)`,
  'rolled-back': `      --rolled-back          With resolve: its changes are not in place (the row is removed)`,
  force: `      --force                With resolve: write the record whatever the state: --applied marks a
                             pending, rolled-back or edited migration applied without running it
                             (changes made by hand); --rolled-back deletes the row of an applied
                             one without running its down section. Check the database first.`,
  from: `      --from <tool>          With adopt: golang-migrate, goose, knex, node-pg-migrate, prisma, drizzle`,
  'from-table': `      --from-table <name>    With adopt: the tool's table when it was told another one (schema.table
                             on PostgreSQL). Default: the tool's own (knex_migrations, pgmigrations,
                             schema_migrations, goose_db_version, _prisma_migrations,
                             drizzle.__drizzle_migrations)`,
  'dry-run': `      --dry-run              With adopt: print what it would record, write nothing, take no lock`,
  ts: `      --ts                   With new: create a TypeScript migration module`,
  json: `      --json                 Print the result, or the error, as one JSON object on stdout`,
  quiet: `  -q, --quiet                Print only errors (with status: nothing, and implies --exit-code)`,
  help: `  -h, --help                 Show this help (after a command: that command's; also: help <command>)`,
  version: `  -v, --version              Show the version (alone; after up, migrate, down -v is --verbose)`,
};

const EXIT_CODES = `Exit codes:
  0  success, including a runner that waited and found everything applied
  1  a migration failed (its error says where and what state it left)
  2  bad input: usage, URL, migration files, or history checks; nothing was changed
  3  timed out waiting for the migration lock; the error names the holder
  4  dirty state: an interrupted non-transactional migration needs \`lockstep resolve\`
  5  the database could not be reached, or the session was lost during the run
  6  refused, nothing changed: a migration requires a long-running migration that is not
     completed; resolve was asked about a migration that is not interrupted or failed; a
     connection pooler is in the way (undeclared, or a transaction-mode pooler and a migration
     outside a transaction, or long-running migrations); another tool's history that up would
     run again (lockstep adopt --from <tool> first), or one adopt cannot take as it stands
`;

export const HELP = `lockstep — database migrations applied exactly once, in order, by exactly one process,
however many processes start at the same moment.

Usage: lockstep <command> [options]   (options go before or after the command)

Commands:
${Object.values(COMMAND_HELP).filter(Boolean).join('\n')}
  async <command>        Long-running migrations (backfills, table rewrites) run in the
                         background with progress, stop, resume and rollback, one at a time.
                         See \`lockstep async --help\`.
  serve                  The status page and JSON API of the database, with live progress of
                         long-running migrations and, with a token, buttons to drive them.
                         See \`lockstep serve --help\`.

Options:
${Object.values(OPTION_HELP).join('\n')}

dbmate projects: every dbmate command, option and DBMATE_* variable works. A dbmate command (migrate, rollback, create, drop, wait),
option or DBMATE_* variable puts lockstep in dbmate's conventions: a URL is required (no default
SQLite file), and a pending migration older than the newest applied one, an applied one whose
file changed or is gone are warnings, not errors (--strict refuses the first, as dbmate).

Migration files (dbmate's format):
  -- migrate:up [transaction:false] [lock_timeout:2s|off] [lock_retries:N] [timeout:30m|off]
                [requires:<name>,...]
  CREATE TABLE ...;
  -- migrate:down
  DROP TABLE ...;
  TypeScript/JavaScript modules export up(ctx), down(ctx) and optionally transaction = false,
  timeout = '30m'. A transactional migration must not BEGIN, COMMIT or ROLLBACK itself.

${EXIT_CODES}`;

/** The "where" options (taken by every command) a command does not use. */
const IGNORED: Record<(typeof CORE_COMMANDS)[number], readonly OptionName[]> = {
  up: ['async-dir'],
  migrate: ['async-dir'],
  down: ['async-dir', 'async-table'],
  status: ['async-dir', 'async-table'],
  resolve: ['async-dir', 'async-table'],
  adopt: ['async-dir', 'async-table'],
  new: ['url', 'table', 'async-dir', 'async-table'],
  create: ['dir', 'table', 'migrations-table', 'async-dir', 'async-table'],
  drop: ['dir', 'table', 'migrations-table', 'async-dir', 'async-table'],
  wait: ['dir', 'table', 'migrations-table', 'async-dir', 'async-table'],
  dump: [],
  load: [],
};

/** `lockstep <command> --help`: what the command does and the options it takes. */
export function commandHelp(command: (typeof CORE_COMMANDS)[number]): string {
  const takes = (name: OptionName) =>
    COMMAND_OPTIONS[command]?.includes(name) && !IGNORED[command].includes(name);
  const options = (Object.entries(OPTION_HELP) as [OptionName, string][])
    .filter(([name]) => takes(name))
    .map(([, text]) => text);
  const ignored = IGNORED[command].map((name) => `--${name}`).join(', ');
  return (
    `Usage: lockstep ${command} [options]\n\n${COMMAND_HELP[command] || COMMAND_HELP.dump}\n\nOptions:\n${options.join('\n')}\n` +
    `  (${ignored}: taken and ignored, so one wrapper script serves every command)\n\n` +
    `${EXIT_CODES}\nEverything else: lockstep --help\n`
  );
}
