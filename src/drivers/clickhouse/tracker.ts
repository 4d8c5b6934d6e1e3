import type { ClickHouseClient } from '@clickhouse/client';
import type { InFlight, StatementFate } from '../driver.js';
import { literal, quote } from './dialect.js';
import { serverMessage } from './errors.js';

const POLL_MS = 250;

/** system.query_log's type: QueryStart, QueryFinish (then ExceptionBeforeStart, ExceptionWhileProcessing). */
const QUERY_START = 1;
const QUERY_FINISH = 2;

/** `ALTER TABLE [db.]table …`: the table whose mutations a statement may have started. */
const ALTER_TABLE =
  /^\s*(?:\/\*[\s\S]*?\*\/\s*|--[^\n]*\n\s*)*ALTER\s+TABLE\s+((?:`(?:[^`\\]|\\.)+`|"[^"]+"|[\w$]+)(?:\s*\.\s*(?:`(?:[^`\\]|\\.)+`|"[^"]+"|[\w$]+))?)/i;

/**
 * What the server does with statements after their request: ClickHouse finishes a statement whose
 * client died, and runs mutations (`ALTER … UPDATE/DELETE`) in the background after the ALTER
 * returned. A statement counts as done only when the server says so.
 */
export class StatementTracker implements InFlight {
  readonly #client: ClickHouseClient;
  readonly #database: string;
  /** Whether system.mutations has latest_fail_reason (newer servers; not 18.16). */
  #failReason: boolean | undefined;

  constructor(client: ClickHouseClient, database: string) {
    this.#client = client;
    this.#database = database;
  }

  async settle(
    id: string,
    options: {
      readonly cancel: boolean;
      readonly maxMs: number;
      readonly onWait?: (runningMs: number) => void;
    },
  ): Promise<StatementFate> {
    const started = performance.now();
    // The statement or a retry of it (`<id>-r2`), never another whose id merely starts the same.
    const retry = `${id}-r`;
    const sameStatement = `(query_id = ${literal(id)} OR substring(query_id, 1, ${Buffer.byteLength(retry)}) = ${literal(retry)})`;
    let killed = false;
    for (;;) {
      const running = await this.#rows(
        `SELECT query_id, elapsed FROM system.processes WHERE ${sameStatement}`,
      );
      if (running.length === 0) break;
      const waitedMs = performance.now() - started;
      if (options.cancel && !killed) {
        await this.#client.command({ query: `KILL QUERY WHERE ${sameStatement} SYNC` });
        killed = true;
        continue;
      }
      if (waitedMs >= options.maxMs) return { outcome: 'still-running', waitedMs };
      options.onWait?.(Math.round(Number(running[0]?.elapsed ?? 0) * 1000));
      await sleep(POLL_MS);
    }
    const waitedMs = performance.now() - started;
    // The log is written every few seconds: flushed first, or its newest rows may be missing.
    const unflushed = await this.#client
      .command({ query: 'SYSTEM FLUSH LOGS' })
      .then(() => undefined)
      .catch((error: unknown) => serverMessage(error));
    let logged: Record<string, unknown>[];
    try {
      // type: a number on 18.16, an Enum8 on newer servers; the codes are the same.
      logged = await this.#rows(
        `SELECT CAST(type AS Int8) AS type, exception, query FROM system.query_log WHERE ${sameStatement} ` +
          'ORDER BY event_time DESC, query_start_time DESC',
      );
    } catch (error) {
      return {
        outcome: 'unknown',
        waitedMs,
        error: `system.query_log cannot be read: ${serverMessage(error)}`,
      };
    }
    const last = logged.find((r) => Number(r.type) !== QUERY_START);
    if (last && Number(last.type) === QUERY_FINISH) {
      await this.afterStatement(String(last.query));
      return { outcome: 'finished', waitedMs };
    }
    if (last)
      return {
        outcome: killed ? 'killed' : 'failed',
        waitedMs,
        error: serverMessage(String(last.exception)),
      };
    if (unflushed !== undefined) {
      return {
        outcome: 'unknown',
        waitedMs,
        error: `the query log could not be flushed (${unflushed}), so its newest rows may be missing`,
      };
    }
    if (logged.length > 0) {
      return {
        outcome: 'unknown',
        waitedMs,
        error:
          'it started (system.query_log) but no end is recorded: the server may have restarted while it ran',
      };
    }
    return { outcome: killed ? 'killed' : 'not-found', waitedMs };
  }

  /**
   * After an `ALTER TABLE`: its mutations (if it started any) are waited for until
   * system.mutations says they are done. A mutation the server reports failing is an error.
   */
  async afterStatement(sql: string): Promise<void> {
    const table = ALTER_TABLE.exec(sql)?.[1];
    if (!table) return;
    const [database, name] = qualified(table, this.#database);
    const where = `database = ${literal(database)} AND table = ${literal(name)} AND is_done = 0`;
    for (;;) {
      const reason = await this.#hasFailReason();
      const pending = await this.#rows(
        `SELECT mutation_id, command${reason ? ', latest_fail_reason' : ''} FROM system.mutations WHERE ${where}`,
      );
      if (pending.length === 0) return;
      const failing = pending.find((m) => String(m.latest_fail_reason ?? '') !== '');
      if (failing) {
        throw new Error(
          `the mutation ${String(failing.mutation_id)} (${String(failing.command)}) on ${quote(database)}.${quote(name)} ` +
            `fails on the server: ${String(failing.latest_fail_reason)}`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  async #hasFailReason(): Promise<boolean> {
    if (this.#failReason === undefined) {
      const columns = await this.#rows(
        "SELECT name FROM system.columns WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'",
      );
      this.#failReason = columns.length > 0;
    }
    return this.#failReason;
  }

  async #rows(query: string): Promise<Record<string, unknown>[]> {
    const result = await this.#client.query({ query, format: 'JSONEachRow' });
    return (await result.json()) as Record<string, unknown>[];
  }
}

/** `db.table`, `` `db`.`table` `` or `table` → [database, table], unquoted. */
function qualified(text: string, database: string): [string, string] {
  const parts = text.match(/`(?:[^`\\]|\\.)+`|"[^"]+"|[\w$]+/g) ?? [];
  const unquote = (part: string) =>
    part.startsWith('`') || part.startsWith('"') ? part.slice(1, -1).replace(/\\(.)/g, '$1') : part;
  return parts.length === 2
    ? [unquote(parts[0] as string), unquote(parts[1] as string)]
    : [database, unquote(parts[0] as string)];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
