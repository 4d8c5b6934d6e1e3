/**
 * Statements that begin or end a transaction. Inside a migration that lockstep runs in its own
 * transaction they would commit part of it behind lockstep's back, so that a later failure rolls
 * back less than lockstep would report. Pure: looks at the leading words of one statement as the
 * splitter produced it, so `BEGIN` inside a `$$` body, a trigger or a routine never counts.
 */

/** The transaction-control verb a statement starts with (`BEGIN`, `COMMIT`, ...), or undefined. */
export function transactionControl(sql: string): string | undefined {
  const words = leadingWords(sql, 4);
  const [first, second, third] = words;
  switch (first) {
    case 'BEGIN':
      // `BEGIN ATOMIC` (a Postgres function body) and MariaDB's `BEGIN NOT ATOMIC` block are not.
      return second === 'ATOMIC' || second === 'NOT' ? undefined : 'BEGIN';
    case 'START':
      return second === 'TRANSACTION' ? 'START TRANSACTION' : undefined;
    case 'COMMIT':
    case 'ABORT':
    case 'XA':
      return first;
    case 'END':
      // Postgres and SQLite: END [TRANSACTION | WORK] commits.
      return second === undefined || second === 'TRANSACTION' || second === 'WORK' || second === 'AND'
        ? 'END'
        : undefined;
    case 'ROLLBACK': {
      // `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] x` undoes part of the transaction and keeps it.
      const next = second === 'WORK' || second === 'TRANSACTION' ? third : second;
      return next === 'TO' ? undefined : 'ROLLBACK';
    }
    case 'PREPARE':
      return second === 'TRANSACTION' ? 'PREPARE TRANSACTION' : undefined;
    case 'SET':
      // MySQL: turning autocommit on commits at once.
      return /\bautocommit\b/i.test(sql) ? 'SET autocommit' : undefined;
    default:
      return undefined;
  }
}

/** Up to `count` upper-cased words at the start of `sql`, after comments and white space. */
function leadingWords(sql: string, count: number): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < sql.length && words.length < count) {
    const rest = sql.slice(i);
    const skip = /^(?:\s+|--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)/.exec(rest);
    if (skip) {
      i += skip[0].length;
      continue;
    }
    const word = /^[A-Za-z_]+/.exec(rest);
    if (!word) break;
    words.push(word[0].toUpperCase());
    i += word[0].length;
  }
  return words;
}
