import type { AsyncEvent } from '../async/events.js';
import type { AsyncActionResult, AsyncStatusResult } from '../async/migrator.js';
import type { AsyncAction } from '../async/transitions.js';
import type { AsyncRunView } from '../async/view.js';
import type { LockstepEvent } from '../core/events.js';
import { alignColumns, formatEvent } from './output.js';

/** Progress lines on stderr; batch progress at most once a second. */
export class AsyncEventPrinter {
  readonly #write: (line: string) => void;
  readonly #quiet: boolean;
  #lastProgress = 0;

  constructor(write: (line: string) => void, quiet: boolean) {
    this.#write = write;
    this.#quiet = quiet;
  }

  print(event: AsyncEvent | LockstepEvent): void {
    if (this.#quiet && event.type !== 'lock-waiting') return;
    const line = this.#format(event);
    if (line) this.#write(line);
  }

  #format(event: AsyncEvent | LockstepEvent): string | undefined {
    switch (event.type) {
      case 'async-state':
        return `${event.name}: ${event.previous} → ${event.state}${event.detail ? ` (${event.detail})` : ''}`;
      case 'async-operation':
        return `${event.name}: ${event.direction === 'rollback' ? 'undoing' : 'running'} operation ${event.operation} of ${event.count}${event.kind === 'batched' ? ' (batched)' : ''}${event.transactional ? '' : ' (not transactional)'}`;
      case 'async-progress': {
        const now = Date.now();
        if (now - this.#lastProgress < 1_000) return undefined;
        this.#lastProgress = now;
        return `${event.name}: ${event.progress}% (operation ${event.operation}: keys below ${event.to} done, of ${event.rangeMax})`;
      }
      case 'async-orphan':
        return `${event.name}: ${event.action === 'cancelled' ? 'cancelled' : 'waiting for'} a statement its dead worker left running (id ${event.id}, ${Math.round(event.runningMs / 1000)}s): ${abbreviate(event.query)}`;
      case 'async-log':
        return `${event.name}: ${event.message}`;
      default:
        return formatEvent(event);
    }
  }
}

/** What trigger, stop, resume and rollback did: the transition, and what comes next. */
export function formatAction(r: AsyncActionResult): string {
  const lines = [
    r.state === r.previous
      ? `${r.name}: ${r.state}`
      : `${r.name}: ${r.previous} → ${r.state}${r.action === 'queue' ? ' (behind the active one)' : ''}`,
  ];
  if (r.reaped) lines.push(`note: ${r.reaped}'s worker was gone (its lock was free): marked errored`);
  if (r.cancelled !== undefined)
    lines.push(`cancelled ${r.cancelled} running statement${r.cancelled === 1 ? '' : 's'}`);
  if (r.note) lines.push(`note: ${r.note}`);
  if (r.state === 'starting' || r.state === 'running' || r.state === 'rolling_back') {
    lines.push(`a worker executes it (lockstep async worker), or run it here with --wait`);
  }
  return lines.join('\n');
}

/** How a run that this process waited for (--wait) ended. */
export function formatFinal(view: AsyncRunView): string {
  return `${view.name}: ${describeState(view)}`;
}

/** `async list`, and `async status` without a name. */
export function formatList(status: AsyncStatusResult): string {
  const lines = [`target: ${status.target}`, ''];
  if (status.runs.length === 0) {
    lines.push('(no long-running migrations: add definitions with `lockstep async new <name>`)');
    return lines.join('\n');
  }
  const header = ['NAME', 'STATE', 'PROGRESS', 'OPERATION', 'WORKER', 'UPDATED'];
  const table = status.runs.map((r) => [
    r.name,
    r.alive === false
      ? `${r.state} (worker dead)`
      : r.waitingForWorker
        ? `${r.state} (no worker yet)`
        : r.state,
    r.state === 'not_started' ? '' : `${r.progress}%`,
    r.operation && r.state !== 'not_started'
      ? `${r.operation.number}/${r.operation.count}${r.operation.kind === 'batched' ? ' batched' : ''}`
      : '',
    r.worker ?? '',
    r.updatedAt ?? '',
  ]);
  lines.push(...alignColumns([header, ...table]));
  for (const r of status.runs) {
    if (r.error && (r.state === 'errored' || r.state === 'failed_at_startup'))
      lines.push(`    ${r.name}: ${r.error}`);
    if (r.alive === false) lines.push(`    ${r.name}: its worker ${r.worker} is gone; ${nextSteps(r)}`);
  }
  return lines.join('\n');
}

/** `async status <name>`. */
export function formatOne(status: AsyncStatusResult): string {
  const r = status.runs[0] as AsyncRunView;
  const lines = [`${r.name}${r.description ? ` — ${r.description}` : ''}`];
  const field = (label: string, value: string | null | undefined) => {
    if (value) lines.push(`  ${`${label}:`.padEnd(12)}${value}`);
  };
  field('file', r.file ?? '(gone: the run keeps its frozen plan)');
  field('problem', r.definitionProblem);
  field('state', describeState(r));
  if (r.state !== 'not_started') field('progress', `${r.progress}%`);
  if (r.operation && r.state !== 'not_started') {
    const batch = r.operation.batch
      ? ` — batch cursor ${r.operation.batch.cursor} in keys ${r.operation.batch.min}..${r.operation.batch.max}`
      : '';
    field(
      'operation',
      `${r.direction === 'rollback' ? 'undoing ' : ''}${r.operation.number} of ${r.operation.count} (${r.operation.kind})${batch}`,
    );
    field('statement', abbreviate(r.operation.statement));
  }
  field('query tag', r.queryTag);
  if (r.parameters && Object.keys(r.parameters).length > 0) {
    field(
      'parameters',
      Object.entries(r.parameters)
        .map(([k, v]) => `${k}=${v}`)
        .join(', '),
    );
  }
  if (r.dependsOn.length > 0) field('depends on', r.dependsOn.join(', '));
  field('requested', r.requestedBy ? `by ${r.requestedBy}` : null);
  field('started', r.startedAt);
  field('updated', r.updatedAt);
  field('finished', r.finishedAt);
  field('attempt', r.attempt > 0 ? String(r.attempt) : null);
  field('note', r.note);
  field('error', r.error);
  if (r.definitionChanged)
    field('changed', 'the file changed since this run froze its plan; the run goes on with what it froze');
  if (status.errors.length > 0) {
    lines.push('  errors:');
    for (const e of status.errors) {
      lines.push(
        `    ${e.at} attempt ${e.attempt}${e.operation ? `, operation ${e.operation}` : ''}${e.direction === 'rollback' ? ' (rollback)' : ''}: ${e.message}`,
      );
      if (e.statement) lines.push(`      statement: ${abbreviate(e.statement)}`);
    }
  }
  field('next', nextSteps(r));
  return lines.join('\n');
}

function describeState(r: AsyncRunView): string {
  if (r.alive === false) return `${r.state} — its worker ${r.worker} is gone (its lock is free)`;
  if (r.waitingForWorker) return `${r.state} — waiting for a worker (lockstep async worker)`;
  if (r.alive) return `${r.state} — executed by ${r.worker}`;
  return r.state;
}

function nextSteps(r: AsyncRunView): string {
  const command = (a: AsyncAction) => (a === 'force-stop' ? `stop ${r.name} --force` : `${a} ${r.name}`);
  return r.actions.map((a) => `lockstep async ${command(a)}`).join(' | ');
}

function abbreviate(sql: string): string {
  const oneLine = sql.replace(/\s+/g, ' ').trim();
  return oneLine.length > 160 ? `${oneLine.slice(0, 157)}...` : oneLine;
}
