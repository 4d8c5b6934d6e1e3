/**
 * Every ledger row the runner writes is built here: the row of an attempt it starts, the row that
 * attempt ends with, and the row `resolve --applied` records.
 */
import { createHash } from 'node:crypto';
import type { LedgerRow, LedgerState, StatementTag } from '../drivers/driver.js';
import type { Migration } from './migration.js';

/** What names a migration in the ledger. */
export type LedgerIdentity = Pick<Migration, 'version' | 'name' | 'checksum'>;

/** An attempt this runner starts: `running`, no statement done yet. */
export function startedRow(
  migration: LedgerIdentity,
  start: {
    readonly direction: 'up' | 'down';
    readonly statementCount: number | null;
    readonly startedAt: string;
    /** `host:pid` of this runner. */
    readonly by: string;
  },
): LedgerRow {
  return {
    version: migration.version,
    name: migration.name,
    checksum: migration.checksum,
    state: 'running',
    direction: start.direction,
    statementsDone: 0,
    statementCount: start.statementCount,
    startedAt: start.startedAt,
    finishedAt: null,
    durationMs: null,
    appliedBy: start.by,
    error: null,
  };
}

/** A rollback this runner starts: the applied row keeps its record until the row is removed. */
export function rollingBackRow(applied: LedgerRow): LedgerRow {
  return { ...applied, state: 'running', direction: 'down' };
}

/** When an attempt ended, and how long it took. */
export interface AttemptEnd {
  readonly finishedAt: string;
  readonly durationMs: number | null;
}

/** How an attempt ended: its state, the statements done, when and how long; an error replaces the row's. */
export function finishedRow(
  row: LedgerRow,
  end: AttemptEnd & {
    readonly state: Exclude<LedgerState, 'running'>;
    readonly statementsDone: number;
    readonly error?: string | undefined;
  },
): LedgerRow {
  return {
    ...row,
    state: end.state,
    statementsDone: end.statementsDone,
    finishedAt: end.finishedAt,
    durationMs: end.durationMs,
    error: end.error ?? row.error,
  };
}

/**
 * What `resolve --applied` records: the migration as applied by a person, keeping what the
 * ledger knew of its attempt; the file (when there is one) names it.
 */
export function resolvedRow(
  version: string,
  row: LedgerRow | undefined,
  source: LedgerIdentity | undefined,
  by: string,
  now: string,
): LedgerRow {
  return {
    version: row?.version ?? source?.version ?? version,
    name: source?.name ?? row?.name ?? '',
    checksum: source?.checksum ?? row?.checksum ?? '',
    state: 'applied',
    direction: 'up',
    statementsDone: row?.statementsDone ?? 0,
    statementCount: row?.statementCount ?? null,
    startedAt: row?.startedAt ?? now,
    finishedAt: now,
    durationMs: row?.durationMs ?? null,
    appliedBy: by,
    error: row?.error ?? null,
  };
}

/** What an adopted migration's checksum is: none to compare (its file was never read when it ran). */
const ADOPTED_CHECKSUM = '';

/**
 * A migration another tool applied (dbmate, knex, ...), taken into the ledger as applied: never
 * run again. `at`: when that tool says it applied it, if it says.
 */
export function adoptedRow(
  version: string,
  source: LedgerIdentity | undefined,
  from: string,
  now: string,
  at: string | null = null,
): LedgerRow {
  return {
    version,
    name: source?.name ?? '',
    checksum: ADOPTED_CHECKSUM,
    state: 'applied',
    direction: 'up',
    statementsDone: 0,
    statementCount: null,
    // started: when the tool applied it, where it says; finished: when the ledger adopted it.
    startedAt: at ?? now,
    finishedAt: now,
    durationMs: null,
    appliedBy: from,
    error: null,
  };
}

/**
 * A migration another tool left half-done (golang-migrate's dirty flag, a failed Prisma
 * migration), taken into the ledger as failed: lockstep's dirty state, which a person resolves.
 */
export function adoptedFailedRow(
  version: string,
  source: LedgerIdentity | undefined,
  from: string,
  detail: string,
  now: string,
): LedgerRow {
  return { ...adoptedRow(version, source, from, now), state: 'failed', finishedAt: null, error: detail };
}

/** Whether the ledger took this row from another tool: its file's checksum is not compared. */
export function isAdopted(row: Pick<LedgerRow, 'state' | 'checksum'>): boolean {
  return row.state === 'applied' && row.checksum === ADOPTED_CHECKSUM;
}

/** The tool the ledger took this row from (in any state), or undefined for lockstep's own. */
export function adoptedFrom(row: Pick<LedgerRow, 'checksum' | 'appliedBy'>): string | undefined {
  return row.checksum === ADOPTED_CHECKSUM ? row.appliedBy : undefined;
}

/**
 * The tool that left this migration half-done, when the row is the failed one `adoptedFailedRow`
 * wrote (an up lockstep never ran: every up lockstep starts carries its file's checksum); not a
 * rollback of an adopted migration that lockstep itself left dirty.
 */
export function leftHalfDoneBy(row: LedgerRow): string | undefined {
  return row.state === 'failed' && row.direction === 'up' ? adoptedFrom(row) : undefined;
}

/**
 * The tag of statement `index` (1-based) of the attempt `row` records, in the ledger `table`:
 * the runner that finds the row after its runner died derives the same one, and with it finds
 * what that runner left running (ClickHouse query ids).
 */
export function statementTag(
  table: string,
  row: Pick<LedgerRow, 'version' | 'direction' | 'startedAt'>,
  index: number,
): StatementTag {
  const ledger = createHash('sha256').update(table).digest('hex').slice(0, 8);
  const version = row.version.replace(/[^A-Za-z0-9_.]/g, '_');
  return { id: `lockstep-${ledger}-${version}-${row.direction}-${index}-${Date.parse(row.startedAt)}` };
}
