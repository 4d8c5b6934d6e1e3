import type BetterSqlite3 from 'better-sqlite3';
import { CallerSlot, type Lease } from '../caller.js';

/** lockstep's own connection, closed with the session. */
export function ownConnection(db: BetterSqlite3.Database): Lease<BetterSqlite3.Database> {
  return {
    connection: db,
    async release() {
      db.close();
    },
  };
}

/**
 * The pragma lockstep itself sets on the caller's Database, put back afterwards. The pragmas a
 * migration changes (foreign_keys…) the session already puts back at its next ledger write.
 */
const CALLER_PRAGMAS = ['busy_timeout'] as const;

/**
 * The caller's better-sqlite3 Database, lent to one session at a time (see CallerSlot); another
 * session at the same time opens the file itself (`open`). While lent it waits `busyTimeoutMs`
 * for the application's other connections, as lockstep's own do.
 */
export function callerConnections(
  caller: object,
  busyTimeoutMs: number,
): (open: () => BetterSqlite3.Database) => Lease<BetterSqlite3.Database> {
  const db = caller as BetterSqlite3.Database;
  const slot = new CallerSlot(db, false);
  return (open) => {
    const giveBack = slot.take();
    if (!giveBack) return ownConnection(open());
    const before = CALLER_PRAGMAS.map((name) => [name, db.pragma(name, { simple: true })] as const);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    return {
      connection: db,
      async release() {
        try {
          if (db.inTransaction) db.exec('ROLLBACK');
          for (const [name, value] of before) db.pragma(`${name} = ${Number(value)}`);
        } finally {
          giveBack();
        }
      },
    };
  };
}
