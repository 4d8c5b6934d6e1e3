/**
 * Running statements, for migrations and long-running migrations alike: whether a list of them
 * runs in one transaction, the transaction itself with its DDL lock retries, and where in its
 * file a statement the database refused went wrong.
 */
import type { Connection, DbErrorInfo, Dialect } from '../drivers/driver.js';
import { lineAt } from '../sql/split.js';
import { sleep } from '../util/duration.js';

/** What a database says about which statements can share a transaction. */
export type TransactionTraits = Pick<Dialect, 'transactionalDdl' | 'isTransactionalStatement'>;

/**
 * Statements run in one transaction when they ask to (the default) and the database can: where
 * DDL commits implicitly (MySQL), only a list of DML statements can. `statements` is undefined
 * when they are not known before they run (a module's).
 */
export function runsInTransaction(
  database: TransactionTraits,
  wanted: boolean,
  statements: readonly { readonly sql: string }[] | undefined,
): boolean {
  if (!wanted) return false;
  if (database.transactionalDdl) return true;
  const isTransactional = database.isTransactionalStatement;
  return (
    statements !== undefined &&
    isTransactional !== undefined &&
    statements.every((s) => isTransactional(s.sql))
  );
}

/**
 * What the database said about a statement it refused, and the file line that points at: the
 * statement's own line, moved down to the line of the error's position within it.
 */
export function refusal(
  connection: Connection,
  error: unknown,
  sql: string,
  line: number | undefined,
): { readonly info: DbErrorInfo; readonly line: number | undefined } {
  const info = connection.describeError(error);
  const inStatement = info.position !== undefined ? lineAt(sql, info.position) : info.line;
  return { info, line: line !== undefined && inStatement !== undefined ? line + inStatement - 1 : line };
}

/** A statement (or code around it) failed: what the database (or the code) said, and where in its file. */
export class StatementFailed extends Error {
  constructor(
    readonly info: DbErrorInfo,
    readonly line: number | undefined,
  ) {
    super(info.message);
  }
}

export interface TransactionOptions {
  /** How long a statement may wait for a DDL lock (Postgres `lock_timeout`); undefined: the database's own. */
  readonly lockTimeoutMs?: number | undefined;
  /** How often to try again after a DDL lock timeout, with backoff. Default is 0. */
  readonly lockRetries?: number | undefined;
  /** Told before each retry: its number (from 1), the pause before it, and the timeout's message. */
  readonly onRetry?: ((attempt: number, delayMs: number, message: string) => void) | undefined;
}

/**
 * Runs `work` in one transaction on `connection`: committed when it returns, rolled back when it
 * throws (but on a lost session: the database rolled it back). After a DDL lock timeout it
 * starts over, up to `lockRetries` times, letting the queries queued behind it through first
 * (GitLab's with_lock_retries); any other failure, or the last timeout, is thrown as it was.
 */
export async function inTransaction<T>(
  connection: Connection,
  work: () => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const retries = options.lockRetries ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await connection.begin(
        options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs },
      );
      const result = await work();
      await connection.commit();
      return result;
    } catch (error) {
      const info = error instanceof StatementFailed ? error.info : connection.describeError(error);
      if (!info.connectionLost) await connection.rollback().catch(() => {});
      if (info.connectionLost || !info.lockTimeout || attempt >= retries) throw error;
      const delayMs = Math.min(100 * 2 ** attempt, 5_000) * (0.5 + Math.random());
      options.onRetry?.(attempt + 1, delayMs, info.message);
      await sleep(delayMs);
    }
  }
}
