/**
 * ClickHouse errors as @clickhouse/client reports them. The server's code is a field on newer
 * servers; ClickHouse 18.16 only says it in the message ("Code: 57, e.displayText() = …").
 */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return code;
  if (typeof code === 'number') return String(code);
  return /\bCode: (\d+)/.exec(messageOf(error))?.[1];
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The server's own words, without the C++ exception's wrapping (nested too: a host's error in a cluster's). */
export function serverMessage(error: unknown): string {
  return messageOf(error)
    .replace(/Code: \d+, e\.displayText\(\) = /g, '')
    .replace(/DB::Exception: /g, '')
    .replace(/,? e\.what\(\) = [\w:]+/g, '')
    .trim();
}

/**
 * Errors after which the statement did not start, so it is sent again after a pause: the server
 * was busy (too many queries), a replicated table could not take the ALTER yet (it waits for
 * another, or its replica lost ZooKeeper), a table lock could not be had in time.
 */
const RETRYABLE = new Set([
  '202', // TOO_MANY_SIMULTANEOUS_QUERIES
  '225', // NO_ZOOKEEPER
  '242', // TABLE_IS_READ_ONLY (a replica without ZooKeeper)
  '473', // DEADLOCK_AVOIDED: a table lock not acquired within lock_acquire_timeout
  '517', // CANNOT_ASSIGN_ALTER
]);

export function isRetryable(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && RETRYABLE.has(code);
}

/** `distributed_ddl_task_timeout` expired: the DDL goes on in the cluster's queue. */
export const DDL_TIMEOUT = '159';

/**
 * The request failed without an answer from the server (connection refused or reset, a socket
 * that hung up): whether the statement ran is not known from here.
 */
export function isTransportFailure(error: unknown): boolean {
  if (codeOf(error) !== undefined) return false;
  const code = (error as { code?: unknown } | null)?.code;
  return (
    (typeof code === 'string' && /^E[A-Z]+$/.test(code)) ||
    /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE|Timeout error|other side closed|fetch failed/i.test(
      messageOf(error),
    )
  );
}
