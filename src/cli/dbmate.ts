import { ConfigError } from '../errors.js';
import { envVar } from './common.js';
import { DBMATE_COMMANDS, DBMATE_OPTIONS, type OptionName, type Values } from './options.js';

/** The options only dbmate has: one of them given says that dbmate's conventions are in use. */
const ONLY_DBMATE: readonly OptionName[] = [...DBMATE_OPTIONS, 'strict', 'verbose', 'exit-code'];

/** dbmate's defaults (its `--help`). */
export const DBMATE_WAIT_TIMEOUT_MS = 60_000;
export const DBMATE_WAIT_INTERVAL_MS = 1_000;

/** What dbmate's options and DBMATE_* variables ask for, read and checked. */
export interface DbmateSettings {
  /**
   * dbmate's conventions are in use (a dbmate command, option or DBMATE_* variable): no URL is an
   * error rather than the default SQLite file, and the history checks dbmate does not make warn.
   */
  readonly conventions: boolean;
  /** The database URL: --url, else the variable --env names (DATABASE_URL); undefined: none. */
  readonly url: string | undefined;
  /** The variable the URL was looked up in, for the error when it is unset. */
  readonly urlVariable: string;
  readonly dir: string | undefined;
  readonly dbmateTable: string | undefined;
  readonly wait: boolean;
  readonly waitTimeoutMs: number;
  readonly waitIntervalMs: number;
  readonly strict: boolean;
  readonly verbose: boolean;
  /** --no-dump-schema or DBMATE_NO_DUMP_SCHEMA. */
  readonly noDumpSchema: boolean;
}

/** dbmate's options and variables → settings; `typed` is the command as typed. */
export function dbmateSettings(typed: string, values: Values): DbmateSettings {
  const given = ONLY_DBMATE.some((name) => values[name] !== undefined && values[name] !== false);
  const variables = [
    'DBMATE_DRIVER',
    'DBMATE_MIGRATIONS_DIR',
    'DBMATE_MIGRATIONS_TABLE',
    'DBMATE_SCHEMA_FILE',
  ]
    .concat(['DBMATE_NO_DUMP_SCHEMA', 'DBMATE_WAIT', 'DBMATE_WAIT_TIMEOUT', 'DBMATE_WAIT_INTERVAL'])
    .concat(['DBMATE_STRICT', 'DBMATE_VERBOSE'])
    .some((name) => envVar(name) !== undefined);
  const conventions = DBMATE_COMMANDS.includes(typed) || given || variables;

  const urlVariable = values.env ?? 'DATABASE_URL';
  if (urlVariable.trim() === '')
    throw new ConfigError('--env is empty: name the variable that holds the URL');
  const url = values.url !== undefined && values.url !== '' ? values.url : envVar(urlVariable) || undefined;
  if (values.url !== undefined && url === undefined) {
    // `--url "$UNSET"`: dbmate falls back to the variable; with none, never to a default database.
    throw new ConfigError(`--url is empty and ${urlVariable} is not set: pass a database URL`);
  }
  if (values.url === undefined && values.env !== undefined && url === undefined) {
    throw new ConfigError(
      `--env ${urlVariable}: the variable ${urlVariable} is not set (nor in the env files)`,
    );
  }
  checkDriver(values.driver ?? envVar('DBMATE_DRIVER'), url);

  const dirs = [...(values.dir === undefined ? [] : [values.dir]), ...(values['migrations-dir'] ?? [])];
  const fromEnv = envVar('DBMATE_MIGRATIONS_DIR');
  if (dirs.length === 0 && fromEnv) dirs.push(...fromEnv.split(','));
  const distinct = [...new Set(dirs.map((d) => d.replace(/\/+$/, '').replace(/^\.\//, '')))];
  if (distinct.length > 1) {
    throw new ConfigError(
      `several migrations directories given (${dirs.join(', ')}): lockstep reads one directory. ` +
        'Move the files into one (dbmate runs them in file-name order, which one directory keeps)',
    );
  }
  const commandFlag = (name: 'strict' | 'verbose', variable: string, commands: readonly string[]) =>
    values[name] === true || (commands.includes(typed) && goBool(variable));
  return {
    conventions,
    url,
    urlVariable,
    dir: dirs[0],
    dbmateTable: values['migrations-table'] ?? (envVar('DBMATE_MIGRATIONS_TABLE') || undefined),
    wait: values.wait === true || goBool('DBMATE_WAIT'),
    waitTimeoutMs: goDuration(
      '--wait-timeout',
      'DBMATE_WAIT_TIMEOUT',
      values['wait-timeout'],
      DBMATE_WAIT_TIMEOUT_MS,
    ),
    waitIntervalMs: goDuration(
      '--wait-interval',
      'DBMATE_WAIT_INTERVAL',
      values['wait-interval'],
      DBMATE_WAIT_INTERVAL_MS,
    ),
    strict: commandFlag('strict', 'DBMATE_STRICT', ['up', 'migrate']),
    verbose: commandFlag('verbose', 'DBMATE_VERBOSE', ['up', 'migrate', 'rollback', 'down']),
    noDumpSchema: values['no-dump-schema'] === true || goBool('DBMATE_NO_DUMP_SCHEMA'),
  };
}

/** dbmate's --driver overrides the URL's scheme; lockstep's driver is the scheme's, so they must agree. */
function checkDriver(driver: string | undefined, url: string | undefined): void {
  if (driver === undefined || driver === '') return;
  const family = (scheme: string) =>
    ({ postgresql: 'postgres', mariadb: 'mysql', sqlite3: 'sqlite' })[scheme] ?? scheme;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url ?? '')?.[1]?.toLowerCase();
  if (scheme !== undefined && family(scheme) === family(driver.toLowerCase())) return;
  throw new ConfigError(
    `--driver ${driver} (or DBMATE_DRIVER): lockstep chooses the driver from the URL's scheme` +
      `${scheme ? `, here ${scheme}:` : ''}; give a URL that starts with ${driver}:// (or ${driver}: for SQLite) and leave --driver out`,
  );
}

/** A boolean variable as dbmate (Go's strconv.ParseBool) reads it; unset or empty: false. */
function goBool(name: string): boolean {
  const value = envVar(name);
  if (value === undefined || value === '') return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new ConfigError(`${name}="${value}" is not a boolean: use true or false (or 1 or 0)`);
}

const GO_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`90s`, `1m30s`, `1.5h`, `500ms`) in ms, Pure; undefined when it is not one. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gu)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * (GO_UNITS[p[2] as string] as number), 0);
}

function goDuration(flag: string, variable: string, given: string | undefined, fallback: number): number {
  const text = given ?? (envVar(variable) || undefined);
  if (text === undefined) return fallback;
  const ms = parseGoDuration(text);
  if (ms === undefined) {
    throw new ConfigError(
      `${given === undefined ? `${variable}=` : `${flag} `}"${text}" is not a duration: use e.g. 30s, 2m or 1m30s`,
    );
  }
  // dbmate: a zero timeout means its default.
  return ms === 0 && flag === '--wait-timeout' ? fallback : ms;
}
