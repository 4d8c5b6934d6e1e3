import type { LockstepEvent } from '../core/events.js';
import { isAdopted } from '../core/ledger-rows.js';
import type { AdoptResult, DownResult, ResolveResult, StatusResult, UpResult } from '../core/runner.js';
import type { LedgerRow } from '../drivers/driver.js';
import { describeHolder } from '../errors.js';
import { formatDuration } from '../util/duration.js';
import { printableName } from '../util/text.js';

/** One progress line on stderr for an event, or undefined for events not shown. */
export function formatEvent(event: LockstepEvent): string | undefined {
  switch (event.type) {
    case 'lock-waiting':
      return `waiting for the migration lock, held by ${describeHolder(event.holder)} (waited ${formatDuration(event.waitedMs)})`;
    case 'lock-acquired':
      return event.waitedMs > 0
        ? `got the migration lock after ${formatDuration(event.waitedMs)}`
        : undefined;
    case 'applied-by-other':
      return `${event.version} ${printableName(event.name)}: applied by ${event.by} while this runner waited`;
    case 'migrating':
      return `${event.direction === 'up' ? 'applying' : 'rolling back'} ${event.version} ${printableName(event.name)}${event.transactional ? '' : ' (not transactional)'}`;
    case 'migrated':
      return `${event.direction === 'up' ? 'applied' : 'rolled back'} ${event.version} ${printableName(event.name)} in ${formatDuration(event.durationMs)}`;
    case 'lock-retry':
      return `${event.version}: table lock not granted (${event.message}); retry ${event.attempt} in ${formatDuration(event.delayMs)}`;
    case 'adopted':
      return `adopted ${plural(event.versions.length, 'migration')} that ${event.from} applied (its ${event.table}): ${event.versions.join(', ')}; they are recorded as applied and not run again`;
    case 'log':
      return `${event.version}: ${event.message}`;
    case 'notice':
      return event.message;
    default:
      return undefined;
  }
}

/** What `new` (and `async new`) returns: the file it created. */
export interface CreatedFile {
  readonly created: string;
}

/** The human result of `up`, for stdout; each formatX below takes its command's result type. */
export function formatUp(r: UpResult): string {
  if (r.applied.length > 0) {
    const total = r.applied.reduce((sum, m) => sum + m.durationMs, 0);
    return `applied ${plural(r.applied.length, 'migration')} in ${formatDuration(total)}; ${r.total} applied in all`;
  }
  if (r.appliedByOthers.length > 0) {
    const by = [...new Set(r.appliedByOthers.map((m) => m.by))].join(', ');
    return `up to date: ${plural(r.appliedByOthers.length, 'migration')} applied by ${by} while this runner waited; ${r.total} applied in all`;
  }
  return `up to date: ${plural(r.total, 'migration')} applied, nothing pending`;
}

export function formatDown(r: DownResult): string {
  return r.rolledBack.length === 0
    ? 'nothing to roll back: no migration is applied'
    : `rolled back ${r.rolledBack.map((m) => `${m.version} ${printableName(m.name)}`).join(', ')}`;
}

export function formatResolve(r: ResolveResult): string {
  return `migration ${r.version} recorded as ${r.resolvedAs} (was ${r.previousState ?? 'not in the ledger'})`;
}

export function formatAdopt(r: AdoptResult): string {
  const would = r.dryRun ? 'would record' : 'recorded';
  const lines = [
    r.adopted.length > 0
      ? `${r.dryRun ? 'would adopt' : 'adopted'} ${plural(r.adopted.length, 'migration')} that ${r.from} applied (its ${r.table}): ${r.adopted.join(', ')}; ${would} as applied, never run by lockstep`
      : `nothing to adopt from ${r.from}'s ${r.table}${r.already.length > 0 ? `: the ledger has all ${r.already.length} already` : ''}`,
  ];
  for (const f of r.failed)
    lines.push(
      `${would} ${f.version} as failed: ${f.detail}; lockstep resolve ${f.version} --applied | --rolled-back decides it`,
    );
  if (r.already.length > 0 && r.adopted.length > 0)
    lines.push(`already in the ledger: ${r.already.join(', ')}`);
  for (const c of r.conflicts) lines.push(`left as the ledger says: ${c.version}: ${c.detail}`);
  if (r.withoutFile.length > 0)
    lines.push(
      `no file in the migrations folder for: ${r.withoutFile.join(', ')} (status lists them as missing)`,
    );
  for (const u of r.unmapped) lines.push(`not mapped: ${r.from} recorded "${u.key}": ${u.why}`);
  return lines.join('\n');
}

export function formatCreated(r: CreatedFile): string {
  return `created ${r.created}`;
}

function appliedAt(row: LedgerRow): string {
  if (!isAdopted(row)) return row.finishedAt ?? '';
  return row.finishedAt !== null && row.startedAt !== row.finishedAt ? row.startedAt : '';
}

export function formatStatus(status: StatusResult): string {
  const lines = [
    `target: ${status.target}`,
    `lock:   ${status.lockHolder ? `held by ${describeHolder(status.lockHolder)}` : 'free'}`,
    '',
  ];
  const header = ['VERSION', 'NAME', 'STATE', 'APPLIED AT', 'BY', 'TOOK'];
  const table = status.migrations.map((m) => [
    m.version,
    printableName(m.name),
    m.status === 'running' && m.row
      ? `running (${m.row.statementsDone}/${m.row.statementCount ?? '?'} statements)`
      : m.status,
    // An adopted row's finish is when it was adopted; when the other tool applied it is its start, where that tool said.
    m.row?.state === 'applied' ? appliedAt(m.row) : '',
    m.row && m.row.state !== 'rolled_back'
      ? `${m.row.appliedBy}${isAdopted(m.row) ? ` (adopted ${m.row.finishedAt ?? 'by the next up'})` : ''}`
      : '',
    m.row?.durationMs != null && m.row.state === 'applied' ? formatDuration(m.row.durationMs) : '',
  ]);
  const [head, ...rows] = alignColumns([header, ...table]);
  lines.push(head as string);
  status.migrations.forEach((m, i) => {
    lines.push(rows[i] as string);
    if (m.row?.error && m.row.state !== 'applied') {
      const label = m.row.state === 'rolled_back' ? 'last attempt failed and was rolled back' : 'error';
      lines.push(`    ${label}: ${m.row.error}`);
    }
    if (m.status === 'running' || m.status === 'failed') {
      lines.push(`    fix: lockstep resolve ${m.version} --applied | --rolled-back`);
    }
  });
  if (status.migrations.length === 0) lines.push('(no migrations)');
  const counts = new Map<string, number>();
  for (const m of status.migrations) counts.set(m.status, (counts.get(m.status) ?? 0) + 1);
  lines.push('', [...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'nothing yet');
  return lines.join('\n');
}

/** Rows of cells as lines of aligned columns, two spaces apart. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd(),
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
