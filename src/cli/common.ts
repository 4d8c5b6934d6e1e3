import { ConfigError, ExitCode, LockstepError } from '../errors.js';
import { redactUrlsIn, type Scrub, secretScrubber } from '../util/secrets.js';
import { printable, printableJson } from '../util/text.js';
import { loadEnvironment } from './dotenv.js';

/**
 * The CLI's one place where secrets are scrubbed: everything it prints (but help and version)
 * goes through writeStdout / writeStderr, which scrub it, then make it printable (a control
 * character is shown, never obeyed). Once the database URL is known, its secrets are hidden;
 * before, the credentials of any URL in the text (`lockstep up postgres://u:pw@h/db` is echoed).
 */
let scrub: Scrub = redactUrlsIn;

/** Text, or (`json`) JSON text, on stdout. */
export function writeStdout(text: string, json = false): void {
  const scrubbed = scrub(text);
  process.stdout.write(json ? printableJson(scrubbed) : printable(scrubbed));
}

export function writeStderr(text: string): void {
  process.stderr.write(printable(scrub(text)));
}

/** A command's result: --quiet silences the human summary; a --json result is always printed. */
export function writeResult(
  text: string,
  options: { readonly json: boolean; readonly quiet: boolean },
): void {
  if (options.quiet && !options.json) return;
  writeStdout(text.endsWith('\n') ? text : `${text}\n`, options.json);
}
/** `--url`, else $DATABASE_URL (the environment and the env files); undefined leaves the default to the library. */
export function databaseUrl(url: string | undefined): string | undefined {
  if (url !== undefined && url.trim() === '') {
    // `--url "$UNSET_VARIABLE"` must not fall back to the default SQLite file and migrate that.
    throw new ConfigError('--url is empty: pass a database URL, or leave --url out to use $DATABASE_URL');
  }
  const found = url ?? (envVar('DATABASE_URL') || undefined);
  scrubAlso(found);
  return found;
}

/** `--coordinator-url`, else $LOCKSTEP_COORDINATOR_URL (the environment and the env files). */
export function coordinatorUrl(url: string | undefined): string | undefined {
  if (url !== undefined && url.trim() === '')
    throw new ConfigError('--coordinator-url is empty: pass a PostgreSQL or SQLite URL, or leave it out');
  const found = url ?? (envVar('LOCKSTEP_COORDINATOR_URL') || undefined);
  scrubAlso(found);
  return found;
}

/** The process's variables and those of the env files (./.env unless --env-file), read once. */
let environment: Map<string, string> | undefined;

/** Reads the env files (`--env-file`, repeatable; default ./.env) as dbmate does: see dotenv.ts. */
export function useEnvFiles(files: readonly string[] | undefined): void {
  environment = loadEnvironment(files ?? ['.env']);
}

/** A variable of the environment, else of the first env file that sets it. */
export function envVar(name: string): string | undefined {
  environment ??= loadEnvironment(['.env']);
  return environment.get(name);
}

/** Adds a URL whose secrets nothing the CLI prints may show (the database URL, --direct-url). */
export function scrubAlso(url: string | undefined): void {
  const before = scrub;
  const secrets = secretScrubber(url);
  scrub = before === redactUrlsIn ? secrets : (text) => secrets(before(text));
}

export function intOption(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new ConfigError(`${flag} takes a whole number ≥ ${min}, got "${value}"`);
  return Number(value);
}

export function expectArgs(command: string, args: string[], count: number, usage = '') {
  if (args.length !== count) {
    throw new ConfigError(
      count === 0
        ? `\`lockstep ${command}\` takes no arguments, got "${args.join(' ')}"`
        : `usage: lockstep ${command} ${usage}`,
    );
  }
}

/** Prints an error (and its JSON with --json); returns the exit code. */
export function fail(error: unknown, json: boolean): number {
  if (error instanceof LockstepError) {
    if (json) writeStdout(`${JSON.stringify(error.toJSON(), null, 2)}\n`, true);
    writeStderr(`lockstep: ${error.message}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (json) writeStdout(`${JSON.stringify({ error: 'INTERNAL', message: String(error) }, null, 2)}\n`, true);
  writeStderr(`lockstep: unexpected error (please report it): ${message}\n`);
  return ExitCode.migrationFailed;
}
