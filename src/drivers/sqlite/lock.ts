import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import type { LockHolder } from '../../errors.js';
import { sleep } from '../../util/duration.js';
import type { DriverOptions, MigrationLock } from '../driver.js';

const MAX_BACKOFF_MS = 40;

interface HolderRecord {
  readonly who: string;
  readonly host: string;
  readonly pid: number;
  readonly since: string;
}

/**
 * The SQLite write lock of a file beside the target: the OS drops it when the holder dies, so
 * there is never a stale lock to clean up. Closed with the session's connection.
 */
export class SqliteLock implements MigrationLock {
  readonly heldUntil = 'release';
  readonly #Database: typeof BetterSqlite3;
  readonly #lockFile: string;
  readonly #holderFile: string;
  readonly #options: DriverOptions;
  #lockDb: BetterSqlite3.Database | undefined;
  #holding = false;
  #backoff = 2;

  constructor(Database: typeof BetterSqlite3, lockFile: string, options: DriverOptions) {
    this.#Database = Database;
    this.#lockFile = lockFile;
    this.#holderFile = `${lockFile}.holder`;
    this.#options = options;
  }

  #openLockDb(): BetterSqlite3.Database {
    // Busy timeout 0: the lock is tried, never waited for inside SQLite (that would block the
    // event loop of an application calling migrate()); waitForLock backs off asynchronously.
    this.#lockDb ??= new this.#Database(this.#lockFile, { timeout: 0 });
    return this.#lockDb;
  }

  async tryLock(): Promise<boolean> {
    if (!this.#tryBegin()) return false;
    this.#holding = true;
    this.#backoff = 2;
    const record: HolderRecord = {
      who: this.#options.runnerId,
      host: hostname(),
      pid: process.pid,
      since: new Date().toISOString(),
    };
    const temporary = `${this.#holderFile}.${process.pid}`;
    writeFileSync(temporary, JSON.stringify(record));
    renameSync(temporary, this.#holderFile);
    return true;
  }

  #tryBegin(): boolean {
    try {
      this.#options.onQuery?.('BEGIN IMMEDIATE (lock)');
      this.#openLockDb().exec('BEGIN IMMEDIATE');
      return true;
    } catch (error) {
      if (/^SQLITE_(BUSY|LOCKED)/.test((error as { code?: string }).code ?? '')) return false;
      throw error;
    }
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    await sleep(Math.min(maxMs, this.#backoff * (0.5 + Math.random())));
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    return this.tryLock();
  }

  async holder(): Promise<LockHolder | null> {
    if (this.#holding) return { who: this.#options.runnerId };
    if (this.#tryBegin()) {
      this.#openLockDb().exec('ROLLBACK');
      return null;
    }
    let record: HolderRecord;
    try {
      record = JSON.parse(readFileSync(this.#holderFile, 'utf8')) as HolderRecord;
    } catch {
      return { who: 'another process (not yet named)' };
    }
    return { who: record.who, since: record.since, detail: `lock file ${this.#lockFile}` };
  }

  async release(): Promise<void> {
    if (!this.#holding) return;
    try {
      unlinkSync(this.#holderFile);
    } catch {}
    this.#lockDb?.exec('ROLLBACK');
    this.#holding = false;
  }

  /** Closes the lock file's connection (after `release`): the session's connection is closing. */
  closeFile(): void {
    this.#lockDb?.close();
  }
}
