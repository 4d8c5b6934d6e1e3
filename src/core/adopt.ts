/**
 * Another tool's history taken into the ledger (`lockstep adopt --from <tool>`): what it applied
 * becomes applied, adopted (never run again); what it left half-done becomes failed, lockstep's
 * dirty state. Planned here, pure; written under the lock by the runner.
 */
import type { Ledger, LedgerRow } from '../drivers/driver.js';
import { adoptedFailedRow, adoptedFrom, adoptedRow } from './ledger-rows.js';
import { compareVersions, type Migration } from './migration.js';
import { TOOL_NAMES, type ToolName, type ToolState } from './tools/tool.js';

export interface AdoptionReport {
  readonly from: ToolName;
  /** The tool's table, as messages name it. */
  readonly table: string;
  /** Newly recorded as applied. */
  readonly adopted: readonly string[];
  /** Newly recorded as failed (dirty): `lockstep resolve` decides them. */
  readonly failed: readonly { readonly version: string; readonly detail: string }[];
  /** The ledger has them as the tool says already (adopted before, or applied by lockstep). */
  readonly already: readonly string[];
  /** Where the ledger says something else: left as the ledger says, and why. */
  readonly conflicts: readonly { readonly version: string; readonly detail: string }[];
  /** Adopted (or failed) versions with no file in the migrations folder. */
  readonly withoutFile: readonly string[];
  /** What the tool recorded that maps to no migration. */
  readonly unmapped: ToolState['unmapped'];
}

export interface AdoptionPlan {
  readonly report: AdoptionReport;
  /** Each row to write, with the row it replaces (SPEC guarantee 1: every write says what it expects). */
  readonly writes: readonly { readonly row: LedgerRow; readonly expected: LedgerRow | null }[];
}

/** What adopting `state` into a ledger holding `rows` writes and reports. Pure. */
export function planAdoption(
  from: ToolName,
  table: string,
  state: ToolState,
  rows: readonly LedgerRow[] | null,
  migrations: readonly Migration[],
  now: string,
): AdoptionPlan {
  const ledger = new Map((rows ?? []).map((r) => [r.version, r]));
  const sources = new Map(migrations.map((m) => [m.version, m]));
  const rowOf = (version: string) =>
    ledger.get(version) ?? [...ledger.values()].find((r) => compareVersions(r.version, version) === 0);
  const writes: { row: LedgerRow; expected: LedgerRow | null }[] = [];
  const adopted: string[] = [];
  const failed: { version: string; detail: string }[] = [];
  const already: string[] = [];
  const conflicts: { version: string; detail: string }[] = [];

  for (const { version, at } of state.applied) {
    const row = rowOf(version);
    if (row === undefined) {
      writes.push({ row: adoptedRow(version, sources.get(version), from, now, at), expected: null });
      adopted.push(version);
    } else if (row.state === 'applied') {
      already.push(version);
    } else if (row.state === 'rolled_back') {
      conflicts.push({
        version,
        detail:
          `${from} lists it as applied, but lockstep ${adoptedFrom(row) ? 'rolled it back' : 'ran it, and it failed and was rolled back'} ` +
          `(${row.finishedAt ?? row.startedAt}): lockstep applies it at the next up. If its effects are in place: lockstep resolve ${version} --applied --force`,
      });
    } else {
      conflicts.push({
        version,
        detail: `${from} lists it as applied, but the ledger has it ${row.state} (run by ${row.appliedBy}): check the database, then lockstep resolve ${version} --applied or --rolled-back`,
      });
    }
  }
  for (const { version, detail } of state.failed) {
    const row = rowOf(version);
    if (row === undefined) {
      writes.push({
        row: adoptedFailedRow(version, sources.get(version), from, detail, now),
        expected: null,
      });
      failed.push({ version, detail });
    } else if (row.state === 'running' || row.state === 'failed') {
      already.push(version);
    } else {
      conflicts.push({
        version,
        detail: `${from} left it half-done (${detail}), but the ledger has it ${row.state} (by ${row.appliedBy}): left as the ledger says`,
      });
    }
  }
  const written = [...adopted, ...failed.map((f) => f.version)];
  return {
    writes,
    report: {
      from,
      table,
      adopted,
      failed,
      already,
      conflicts,
      withoutFile: written.filter((v) => !sources.has(v)).sort(compareVersions),
      unmapped: state.unmapped,
    },
  };
}

/**
 * What the tool recorded that the ledger has no row for at all: `up` would run it again. (A row
 * lockstep rolled back, or one a person resolved, is the ledger's word, not missing.)
 */
export function notAdopted(state: ToolState, rows: readonly LedgerRow[] | null): string[] {
  const known = (rows ?? []).map((r) => r.version);
  return [...state.applied, ...state.failed]
    .map((entry) => entry.version)
    .filter((v) => !known.some((k) => compareVersions(k, v) === 0))
    .sort(compareVersions);
}

/**
 * The tools whose tables `up` must look at before it changes anything: every tool on a database
 * with no ledger yet (a project's first run of lockstep), else those the ledger adopted from.
 */
export function toolsToCheck(rows: readonly LedgerRow[] | null): ToolName[] {
  if (rows === null) return [...TOOL_NAMES];
  const from = new Set(rows.map(adoptedFrom));
  return TOOL_NAMES.filter((tool) => from.has(tool));
}

/**
 * The ledger, where rolling back (or resolving as rolled back) a migration adopted from another
 * tool leaves a `rolled_back` row instead of none: that tool's table still lists it, and the row
 * says lockstep knows it is not applied, so neither `up`'s check nor a later adopt takes it back.
 */
export function keepingAdoptedRollbacks(inner: Ledger, runnerId: string): Ledger {
  return {
    read: () => inner.read(),
    create: () => inner.create(),
    write: (row, expected) => inner.write(row, expected),
    delete: async (expected) => {
      const tool = adoptedFrom(expected);
      if (tool === undefined || !(TOOL_NAMES as readonly string[]).includes(tool))
        return inner.delete(expected);
      const now = new Date().toISOString();
      await inner.write(
        {
          ...expected,
          state: 'rolled_back',
          direction: 'down',
          finishedAt: now,
          error: `adopted from ${tool}; rolled back by ${runnerId} (${tool}'s table still lists it)`,
        },
        expected,
      );
    },
  };
}
