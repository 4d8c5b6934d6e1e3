import { ConfigError } from '../errors.js';
import { redactUrl, type Scrub, secretScrubber, urlParts } from '../util/secrets.js';
import type { CallerHandle } from './caller.js';
import type { Driver, DriverOptions, LedgerRow, Session } from './driver.js';

// Scrubbing lives in util/secrets.ts; these names stay importable from here.
export { redactUrl, redactUrlsIn, scrubSecrets, withoutSecrets } from '../util/secrets.js';

type DriverFactory = (url: string, options: DriverOptions, caller?: CallerHandle) => Driver;

/** URL scheme → driver module, imported only when a URL asks for it (start-up stays lean). */
const drivers: Record<string, () => Promise<DriverFactory>> = {
  postgres: async () => (await import('./postgres.js')).createPostgresDriver,
  postgresql: async () => (await import('./postgres.js')).createPostgresDriver,
  sqlite: async () => (await import('./sqlite.js')).createSqliteDriver,
  sqlite3: async () => (await import('./sqlite.js')).createSqliteDriver,
  mysql: async () => (await import('./mysql.js')).createMysqlDriver,
  mariadb: async () => (await import('./mysql.js')).createMysqlDriver,
};

/**
 * The driver for a URL, or for the caller's own client (`caller`; `url` is then its settings as
 * a URL, describeCaller's): its sessions run on the caller's connection.
 */
export async function openDriver(
  url: string,
  options: DriverOptions,
  caller?: CallerHandle,
): Promise<Driver> {
  const scheme = caller?.kind ?? /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const load = scheme ? drivers[scheme] : undefined;
  if (!load) {
    throw new ConfigError(
      `unsupported database URL "${redactUrl(url)}": expected postgres://, postgresql://, mysql://, mariadb://, sqlite:path or sqlite:///absolute/path`,
    );
  }
  checkPercentEncoding(url);
  return scrubbingDriver((await load())(url, options, caller), url);
}

/**
 * A percent-escape that does not decode (`p%ZZ`) is bad input, said without echoing the part:
 * otherwise a driver fails later with "URI malformed", or shows the password it could not decode.
 */
function checkPercentEncoding(url: string): void {
  const parts = urlParts(url);
  if (!parts) return;
  for (const [what, text] of [
    ['user name', parts.user],
    ['password', parts.password],
    ['database name', parts.path],
  ] as const) {
    if (text === undefined) continue;
    try {
      decodeURIComponent(text);
    } catch {
      throw new ConfigError(
        `the database URL's ${what} is not valid percent-encoding: "%" must start an escape such as %40 ` +
          `(write "%" itself as %25, "@" as %40, "#" as %23, "/" as %2F): ${redactUrl(url)}`,
      );
    }
  }
}

/** Every session of the driver scrubs the URL's secrets from database messages and ledger errors. */
function scrubbingDriver(driver: Driver, url: string): Driver {
  const scrub = secretScrubber(url);
  const connect = driver.connect.bind(driver);
  return { ...driver, connect: async () => scrubbingSession(await connect(), scrub) };
}

function scrubbingSession(session: Session, scrub: Scrub): Session {
  const describeError = session.describeError.bind(session);
  const writeLedger = session.writeLedger.bind(session);
  // A proxy, so the session keeps every method (and its private state) but these two.
  return new Proxy(session, {
    get(target, key) {
      if (key === 'describeError')
        return (error: unknown) => {
          const info = describeError(error);
          return { ...info, message: scrub(info.message) };
        };
      if (key === 'writeLedger')
        return (row: LedgerRow, expected: LedgerRow | null) =>
          writeLedger({ ...row, error: row.error === null ? null : scrub(row.error) }, expected);
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
