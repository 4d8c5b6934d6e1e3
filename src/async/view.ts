import { SourceError } from '../errors.js';
import type { AsyncParameter, LoadedDefinition } from './definition.js';
import type { ParameterValues } from './parameters.js';
import { type PlanTarget, planChecksum, planRun } from './plan.js';
import type { DefinitionFile } from './sources.js';
import { type AsyncState, isActive } from './states.js';
import type { AsyncRun } from './store.js';
import { type AsyncAction, allowedActions } from './transitions.js';

/** A long-running migration as status shows it: its definition joined with its state row. */
export interface AsyncRunView {
  readonly name: string;
  readonly description: string | null;
  /** The definition file; null when it is gone (the run's frozen plan still works). */
  readonly file: string | null;
  readonly state: AsyncState;
  /**
   * For an active run with a worker: whether that worker is alive (holds the run lock). A false
   * here is a dead worker, found at once: resume, rollback or stop it.
   */
  readonly alive: boolean | null;
  /** Active, and no worker has picked it up yet. */
  readonly waitingForWorker: boolean;
  readonly direction: 'forward' | 'rollback';
  readonly progress: number;
  /** The operation in flight (or next), 1-based. */
  readonly operation: {
    readonly number: number;
    readonly count: number;
    readonly kind: 'sql' | 'batched';
    readonly statement: string;
    readonly batch: { readonly cursor: string; readonly min: string; readonly max: string } | null;
  } | null;
  readonly queryTag: string | null;
  readonly attempt: number;
  readonly worker: string | null;
  readonly requestedBy: string | null;
  readonly parameters: ParameterValues | null;
  /** What a trigger may set, with defaults, from the definition file. */
  readonly declaredParameters: Readonly<Record<string, AsyncParameter>>;
  readonly dependsOn: readonly string[];
  readonly queuedAt: string | null;
  readonly startedAt: string | null;
  readonly updatedAt: string | null;
  readonly finishedAt: string | null;
  readonly error: string | null;
  readonly note: string | null;
  /** The file no longer plans to what the run froze (the run goes on with what it froze). */
  readonly definitionChanged: boolean | null;
  /** Why the definition file cannot be used as it is, when it cannot. */
  readonly definitionProblem: string | null;
  /** What may be done now: the CLI's commands, the status page's buttons. */
  readonly actions: AsyncAction[];
}

/**
 * A run's state row joined with its definition file: what status, the CLI and the status page show.
 * `lockHeld`: whether the run lock is held now (its worker, if it has one, is alive).
 */
export async function describeRun(
  run: AsyncRun,
  file: DefinitionFile | undefined,
  target: PlanTarget,
  lockHeld: boolean,
): Promise<AsyncRunView> {
  let definition: LoadedDefinition | undefined;
  let definitionChanged: boolean | null = null;
  let definitionProblem: string | null = null;
  if (file) {
    definition = await file.load(target).catch((error: Error) => {
      definitionProblem =
        error instanceof SourceError
          ? error.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}: ${p.problem}`).join('; ')
          : error.message;
      return undefined;
    });
    if (definition && run.plan && run.checksum) {
      try {
        definitionChanged = planChecksum(planRun(definition, run.plan.parameters, target)) !== run.checksum;
      } catch {
        definitionChanged = true;
      }
    }
  }
  const active = isActive(run.state);
  const alive = active && run.worker ? lockHeld : null;
  const op = run.plan?.operations[run.opIndex];
  const statements = op ? (run.direction === 'forward' ? op.statements : op.rollback) : [];
  return {
    name: run.name,
    description: definition?.description ?? null,
    file: file?.file ?? null,
    state: run.state,
    alive,
    waitingForWorker: active && !run.worker,
    direction: run.direction,
    progress: run.progress,
    operation:
      op && run.state !== 'completed' && run.state !== 'rolled_back'
        ? {
            number: run.opIndex + 1,
            count: run.opCount,
            kind: op.kind,
            statement: statements.map((s) => s.sql).join(';\n'),
            batch:
              run.cursor !== null && run.rangeMin !== null && run.rangeMax !== null
                ? { cursor: String(run.cursor), min: String(run.rangeMin), max: String(run.rangeMax) }
                : null,
          }
        : null,
    queryTag: run.queryTag,
    attempt: run.attempt,
    worker: run.worker,
    requestedBy: run.requestedBy,
    parameters: run.plan?.parameters ?? null,
    declaredParameters: definition?.parameters ?? {},
    dependsOn: run.plan?.dependsOn ?? definition?.dependsOn ?? [],
    queuedAt: run.queuedAt,
    startedAt: run.startedAt,
    updatedAt: run.updatedAt,
    finishedAt: run.finishedAt,
    error: run.error,
    note: run.note,
    definitionChanged,
    definitionProblem,
    actions: allowedActions(run.state, alive !== false),
  };
}
