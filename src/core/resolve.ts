import type { LedgerRow } from '../drivers/driver.js';
import { ConfigError, ResolveRefusedError } from '../errors.js';
import type { Migration } from './migration.js';

export type ResolveAs = 'applied' | 'rolled-back';

/** What `resolve` writes: the row as applied, or no row. */
export type ResolveAction = 'write-applied' | 'delete-row';

/**
 * `resolve` records how an interrupted (`running`) or failed non-transactional migration ended.
 * Any other state is refused with what to do instead; `force` writes the record anyway, for the
 * rare real need (changes made by hand). Pure: throws the refusal, returns the action.
 */
export function planResolve(
  version: string,
  row: LedgerRow | undefined,
  source: Migration | undefined,
  as: ResolveAs,
  force: boolean,
): ResolveAction {
  const action: ResolveAction = as === 'applied' ? 'write-applied' : 'delete-row';
  if (row?.state === 'running' || row?.state === 'failed') return action;
  if (!row && !source) {
    throw new ConfigError(`migration ${version} has no ledger row and no file: nothing to resolve`);
  }
  const what = `migration ${version}${source ? ` (${source.file})` : ''}`;
  const refuse = (state: string, message: string) => {
    throw new ResolveRefusedError({
      version,
      state,
      requested: as,
      message: `${message} Nothing was changed.`,
    });
  };
  if (!row) {
    if (as === 'applied' && force) return action;
    return refuse(
      'pending',
      as === 'applied'
        ? `${what} is pending: it never ran here. \`lockstep up\` applies it; --force records it as ` +
            'applied without running it (only if its changes were already made by hand).'
        : `${what} is pending: it never ran here, so there is nothing to roll back and nothing to change.`,
    );
  }
  if (row.state === 'rolled_back') {
    if (force) return action;
    const attempt = `its last attempt (by ${row.appliedBy}) failed and was rolled back`;
    return refuse(
      'rolled_back',
      as === 'applied'
        ? `${what}: ${attempt}, so nothing of it is in the database. \`lockstep up\` retries it (fix the ` +
            'file first); --force records it as applied without running it (only if its changes were made by hand).'
        : `${what} is already rolled back: ${attempt}; nothing to resolve. \`lockstep up\` retries it; ` +
            '--force deletes the record of that attempt.',
    );
  }
  // Applied: resolve would only make the ledger disagree with the database or the file.
  const changed = source !== undefined && source.checksum !== row.checksum;
  const applied = `${what} is applied (by ${row.appliedBy} at ${row.finishedAt ?? row.startedAt})`;
  if (as === 'rolled-back') {
    if (force) return action;
    return refuse(
      changed ? 'changed' : 'applied',
      `${applied}; resolve --rolled-back would only delete its ledger row and leave its changes in ` +
        'the database. To undo it, run `lockstep down` (it rolls back the newest applied migrations); ' +
        'if its changes are already undone by hand, --force deletes the row.',
    );
  }
  if (changed) {
    if (force) return action;
    return refuse(
      'changed',
      `${applied}, but its file changed since: resolve does not accept edits. Write a new migration ` +
        'for the change, or run `lockstep up --allow-changed` to go on without checking it; --force ' +
        'records the file as it is now as applied (only if the database already matches the edited file).',
    );
  }
  return refuse(
    'applied',
    force
      ? `${applied}, as its file says: nothing to change, even with --force.`
      : `${applied}, as its file says: nothing to resolve (resolve is for a migration that was interrupted or failed).`,
  );
}
