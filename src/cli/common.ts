import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError, ExitCode, LockstepError } from '../core/errors.js';
import { redactUrlsIn } from '../drivers/registry.js';
import { printable, printableJson } from '../util/text.js';

/** `--url`, else $DATABASE_URL, else DATABASE_URL in ./.env; undefined leaves the default to the library. */
export function databaseUrl(url: string | undefined): string | undefined {
  if (url !== undefined && url.trim() === '') {
    // `--url "$UNSET_VARIABLE"` must not fall back to the default SQLite file and migrate that.
    throw new ConfigError('--url is empty: pass a database URL, or leave --url out to use $DATABASE_URL');
  }
  return url ?? process.env.DATABASE_URL ?? readDotEnvUrl();
}

function readDotEnvUrl(): string | undefined {
  try {
    return parseEnv(readFileSync('.env', 'utf8')).DATABASE_URL;
  } catch {
    return undefined;
  }
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
    if (json)
      process.stdout.write(`${printableJson(redactUrlsIn(JSON.stringify(error.toJSON(), null, 2)))}\n`);
    process.stderr.write(`lockstep: ${printable(redactUrlsIn(error.message))}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (json)
    process.stdout.write(
      `${printableJson(redactUrlsIn(JSON.stringify({ error: 'INTERNAL', message: String(error) }, null, 2)))}\n`,
    );
  process.stderr.write(
    `lockstep: unexpected error (please report it): ${printable(redactUrlsIn(message))}\n`,
  );
  return ExitCode.migrationFailed;
}
