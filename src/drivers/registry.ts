import { ConfigError } from '../core/errors.js';
import type { Driver, DriverOptions } from './driver.js';

type DriverFactory = (url: string, options: DriverOptions) => Driver;

/** URL scheme → driver module, imported only when a URL asks for it (start-up stays lean). */
const drivers: Record<string, () => Promise<DriverFactory>> = {
  postgres: async () => (await import('./postgres.js')).createPostgresDriver,
  postgresql: async () => (await import('./postgres.js')).createPostgresDriver,
  sqlite: async () => (await import('./sqlite.js')).createSqliteDriver,
  sqlite3: async () => (await import('./sqlite.js')).createSqliteDriver,
  mysql: async () => (await import('./mysql.js')).createMysqlDriver,
  mariadb: async () => (await import('./mysql.js')).createMysqlDriver,
};

export async function openDriver(url: string, options: DriverOptions): Promise<Driver> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const load = scheme ? drivers[scheme] : undefined;
  if (!load) {
    throw new ConfigError(
      `unsupported database URL "${redactUrl(url)}": expected postgres://, postgresql://, mysql://, mariadb://, sqlite:path or sqlite:///absolute/path`,
    );
  }
  return (await load())(url, options);
}

/**
 * `scheme://user:password@` — the password is taken to run to the last `@`, so a password with an
 * unencoded `@`, `/`, `?` or `#` (a malformed URL, echoed in its error) is still hidden whole.
 */
const USERINFO_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):(.*)@/i;

/** The URL with its password replaced, safe for logs, errors and --json output. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO_PASSWORD, '$1:***@').replace(/([?&](?:password|pass|pwd)=)[^&#]*/gi, '$1***');
}

/**
 * Hides the password of every URL found in a text. The runner scrubs the URL it was given, but a
 * URL typed where it does not belong (`lockstep up postgres://u:pw@h/db`) is echoed by usage errors.
 */
export function redactUrlsIn(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s"'`]*):([^/?#\s"'`]*)@/gi, '$1:***@')
    .replace(/([?&](?:password|pass|pwd)=)[^&#\s"'`]*/gi, '$1***');
}

/** Removes a secret from any text (e.g. a driver's error message that echoes the URL). */
export function scrubSecrets(text: string, url: string): string {
  const secrets: string[] = [];
  const encoded = [USERINFO_PASSWORD.exec(url)?.[2]];
  for (const m of url.matchAll(/[?&](?:password|pass|pwd)=([^&#]*)/gi)) encoded.push(m[1]);
  for (const password of encoded) {
    if (!password) continue;
    secrets.push(password);
    try {
      secrets.push(decodeURIComponent(password));
    } catch {}
  }
  let result = text.split(url).join(redactUrl(url));
  for (const secret of secrets.filter((s) => s.length > 0)) result = result.split(secret).join('***');
  return result;
}

/** Runs `work`; no error leaves it with a secret from `url` in its message or stack. */
export async function withoutSecrets<T>(url: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Error) {
      error.message = scrubSecrets(error.message, url);
      if (error.stack) error.stack = scrubSecrets(error.stack, url);
    }
    throw error;
  }
}
