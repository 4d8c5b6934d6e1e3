import type { LedgerRow } from '../drivers/driver.js';
import type { HistoryProblem } from '../errors.js';
import { isAdopted } from './ledger-rows.js';
import { compareVersions, type Migration } from './migration.js';

export interface HistoryPolicy {
  /** Apply a pending migration older than the newest applied one. Default is false. */
  readonly allowOutOfOrder?: boolean | undefined;
  /** Accept an applied migration whose file changed since. Default is false. */
  readonly allowChanged?: boolean | undefined;
  /** Accept an applied migration whose file is gone. Default is false. */
  readonly allowMissing?: boolean | undefined;
}

export interface UpPlan {
  /** Migrations to apply, in order. */
  readonly pending: readonly Migration[];
  /** A non-transactional migration left `running` or `failed`: a person must resolve it. */
  readonly dirty: LedgerRow | undefined;
  /** Guarantee-7 violations the policy does not allow. */
  readonly problems: readonly HistoryProblem[];
}

/** Ledger × sources → what `up` must do. Pure. */
export function planUp(
  migrations: readonly Migration[],
  rows: readonly LedgerRow[],
  policy: HistoryPolicy,
): UpPlan {
  const byVersion = new Map(rows.map((r) => [r.version, r]));
  const sources = new Map(migrations.map((m) => [m.version, m]));
  const problems: HistoryProblem[] = [];

  const applied = rows.filter((r) => r.state === 'applied');
  for (const row of applied) {
    const source = sources.get(row.version);
    // Adopted from another tool: no checksum to compare, and that tool did not check its files.
    if (isAdopted(row)) continue;
    if (!source) {
      if (!policy.allowMissing) {
        problems.push({
          kind: 'missing',
          version: row.version,
          name: row.name,
          detail: `migration ${row.version}_${row.name} was applied (by ${row.appliedBy}) but its file is missing`,
        });
      }
    } else if (source.checksum !== row.checksum && !policy.allowChanged) {
      problems.push({
        kind: 'changed',
        version: row.version,
        name: row.name,
        file: source.file,
        detail: `changed after it was applied (by ${row.appliedBy} at ${row.finishedAt ?? row.startedAt}); write a new migration instead of editing an applied one`,
      });
    }
  }

  const newestApplied = applied.reduce<string | undefined>(
    (max, r) => (max === undefined || compareVersions(r.version, max) > 0 ? r.version : max),
    undefined,
  );
  const pending = migrations.filter((m) => {
    const state = byVersion.get(m.version)?.state;
    return state === undefined || state === 'rolled_back';
  });
  if (newestApplied !== undefined && !policy.allowOutOfOrder) {
    for (const m of pending) {
      if (compareVersions(m.version, newestApplied) < 0) {
        problems.push({
          kind: 'out-of-order',
          version: m.version,
          name: m.name,
          file: m.file,
          detail: `is pending but older than the newest applied migration ${newestApplied}`,
        });
      }
    }
  }

  const dirty = rows
    .filter((r) => r.state === 'running' || r.state === 'failed')
    .sort((a, b) => compareVersions(a.version, b.version))[0];
  return { pending, dirty, problems };
}

/** The newest `steps` applied migrations, newest first: what `down` rolls back. Pure. */
export function planDown(rows: readonly LedgerRow[], steps: number): LedgerRow[] {
  return rows
    .filter((r) => r.state === 'applied')
    .sort((a, b) => compareVersions(b.version, a.version))
    .slice(0, steps);
}

export type MigrationStatus = 'applied' | 'pending' | 'running' | 'failed' | 'missing' | 'changed';

export interface StatusEntry {
  readonly version: string;
  readonly name: string;
  readonly file: string | null;
  readonly status: MigrationStatus;
  readonly row: LedgerRow | null;
}

/** Every migration known to the files or the ledger, with its status, oldest first. Pure. */
export function describeStatus(migrations: readonly Migration[], rows: readonly LedgerRow[]): StatusEntry[] {
  const byVersion = new Map(rows.map((r) => [r.version, r]));
  const entries: StatusEntry[] = migrations.map((m) => {
    const row = byVersion.get(m.version) ?? null;
    let status: MigrationStatus = 'pending';
    if (row?.state === 'applied')
      status = row.checksum === m.checksum || isAdopted(row) ? 'applied' : 'changed';
    else if (row?.state === 'running' || row?.state === 'failed') status = row.state;
    return { version: m.version, name: m.name, file: m.file, status, row };
  });
  const known = new Set(migrations.map((m) => m.version));
  for (const row of rows) {
    if (!known.has(row.version)) {
      const status: MigrationStatus =
        row.state === 'applied' ? 'missing' : row.state === 'rolled_back' ? 'missing' : row.state;
      entries.push({ version: row.version, name: row.name, file: null, status, row });
    }
  }
  return entries.sort((a, b) => compareVersions(a.version, b.version));
}

/** A failure this recent belongs to the current wave of runners (workers booting together). */
export const WAVE_WINDOW_MS = 10_000;

/**
 * Whether a rolled-back migration failed in the wave of runners this one belongs to, so that it
 * must not be run again: it failed after this runner first read the ledger, or within
 * WAVE_WINDOW_MS before (workers of one boot do not start at the same instant). A changed file is
 * a fix and is always tried. Pure.
 */
export function failedInThisWave(
  row: LedgerRow | undefined,
  seenAtStart: LedgerRow | undefined,
  checksum: string,
  nowMs: number,
): boolean {
  if (row?.state !== 'rolled_back' || row.checksum !== checksum) return false;
  const failedSinceStart = seenAtStart?.state !== 'rolled_back' || seenAtStart.finishedAt !== row.finishedAt;
  const failedAt = Date.parse(row.finishedAt ?? row.startedAt);
  return failedSinceStart || nowMs - failedAt < WAVE_WINDOW_MS;
}
