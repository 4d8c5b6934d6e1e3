import { createHash } from 'node:crypto';
import { ConnectionError, type LockHolder } from '../../errors.js';
import type { MigrationLock } from '../driver.js';
import type { MysqlLink } from './link.js';

/** GET_LOCK names are server-wide and at most 64 characters. */
const MAX_LOCK_NAME = 64;

/**
 * The GET_LOCK name of a ledger (or, with prefix `lockstep-x`, of its exclusive transactions):
 * readable when it fits in 64 characters, else hashed.
 */
export function mysqlLockName(database: string, table: string, prefix = 'lockstep'): string {
  const plain = `${prefix}:${database}.${table}`;
  if (plain.length <= MAX_LOCK_NAME) return plain;
  const hash = createHash('sha256').update(plain).digest('hex');
  return `${prefix}:${hash.slice(0, MAX_LOCK_NAME - prefix.length - 1)}`;
}

/** A GET_LOCK on the work connection: it lives and dies with the work (SPEC guarantee 3). */
export class MysqlLock implements MigrationLock {
  readonly heldUntil = 'release';
  readonly #link: MysqlLink;
  readonly #lockName: string;
  #held = false;

  constructor(link: MysqlLink, lockName: string) {
    this.#link = link;
    this.#lockName = lockName;
  }

  async tryLock(): Promise<boolean> {
    return this.#getLock(0);
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    // The server wakes a blocked GET_LOCK the moment the holder releases: handoff is immediate.
    // The wait holds no transaction and no snapshot. MySQL takes whole seconds.
    return this.#getLock(Math.max(1, Math.round(maxMs / 1000)));
  }

  async #getLock(seconds: number): Promise<boolean> {
    // GET_LOCK is re-entrant on MariaDB: never take it twice, or one release would not free it.
    if (this.#held) return true;
    const [row] = await this.#link.query('SELECT GET_LOCK(?, ?) AS got', [this.#lockName, seconds]);
    const got = row?.got;
    if (got === null || got === undefined) {
      throw new ConnectionError(
        `GET_LOCK('${this.#lockName}') returned NULL: the session was killed or the server failed while waiting`,
      );
    }
    this.#held = Number(got) === 1;
    return this.#held;
  }

  async holder(): Promise<LockHolder | null> {
    const [row] = await this.#link.query(
      `SELECT l.id, p.USER AS user, p.HOST AS host, p.TIME AS time, p.COMMAND AS command, LEFT(p.INFO, 120) AS info
         FROM (SELECT IS_USED_LOCK(?) AS id) l
         LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id`,
      [this.#lockName],
    );
    if (!row || row.id === null) return null;
    if (!row.host)
      return {
        who: `connection ${row.id}`,
        detail: 'not visible in the processlist (needs PROCESS privilege)',
      };
    const doing = row.info ? `running ${String(row.info).replace(/\s+/g, ' ')}` : `${row.command}`;
    return { who: `connection ${row.id} (${row.user}@${row.host})`, detail: `${doing} for ${row.time}s` };
  }

  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#link.query('SELECT RELEASE_LOCK(?)', [this.#lockName]);
  }
}
