/**
 * How long a migration, and a whole run, may take (`timeout:`, `--migration-timeout`,
 * `--run-timeout`), and the watchdog that ends a migration past its limit.
 */
import { asWritten } from '../util/duration.js';
import type { Migration } from './migration.js';

/** A point in time (`performance.now()`) set by a limit of `ms`. */
export interface Deadline {
  readonly at: number;
  readonly ms: number;
}

/** The time limit a migration runs under: the earlier of its own and the run's. */
export interface TimeLimit extends Deadline {
  /** The limit as the user set it, for messages: `--migration-timeout 1h`, `--run-timeout 2h`. */
  readonly name: string;
  readonly scope: 'migration' | 'run';
}

/** When a limit of `ms` from now ends, or undefined for no limit. */
export function deadline(ms: number | null): Deadline | undefined {
  return ms === null ? undefined : { at: performance.now() + ms, ms };
}

/** The earlier of the migration's own limit (or the run's default for one) and the run's end. */
export function timeLimit(
  own: number | null | undefined,
  migrationTimeoutMs: number | null,
  end: Deadline | undefined,
  now: number,
): TimeLimit | undefined {
  const ms = own !== undefined ? own : migrationTimeoutMs;
  const limits: TimeLimit[] = [];
  if (ms !== null) {
    const name =
      own !== undefined ? `its own timeout of ${asWritten(ms)}` : `--migration-timeout ${asWritten(ms)}`;
    limits.push({ at: now + ms, ms, name, scope: 'migration' });
  }
  if (end) limits.push({ ...end, name: `--run-timeout ${asWritten(end.ms)}`, scope: 'run' });
  return limits.sort((a, b) => a.at - b.at)[0];
}

export function fasterOrLonger(limit: TimeLimit, migration: Migration): string {
  const raise =
    limit.scope === 'run'
      ? 'raise --run-timeout (runTimeout), or apply fewer migrations per run'
      : migration.kind === 'sql'
        ? 'raise its limit (timeout:<duration> on its -- migrate:up line, or --migration-timeout)'
        : 'raise its limit (export const timeout = "2h", or --migration-timeout)';
  return `Make it faster, move long work into a long-running migration (lockstep async), or ${raise}`;
}

/** What `Watchdog.expired` rejects with. */
export const TIME_RAN_OUT = Symbol('time ran out');

/**
 * Ends a migration that runs past its time limit: once the limit passes, the statement in flight is
 * cancelled on the server, and `expired` rejects once the session is free again (for a module that
 * awaits something that never settles). Statements after that are not sent.
 */
export class Watchdog {
  readonly expired: Promise<never>;
  #fired = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> | undefined;
  #cancelled: Promise<void> = Promise.resolve();

  constructor(
    readonly limit: TimeLimit | undefined,
    cancel: () => Promise<void>,
  ) {
    let reject: (reason: unknown) => void = () => {};
    this.expired = new Promise<never>((_, r) => {
      reject = r;
    });
    this.expired.catch(() => {});
    if (!limit) return;
    this.#timer = setTimeout(
      () => {
        this.#fired = true;
        if (this.#inFlight) this.#cancelled = cancel().catch(() => {});
        // After the in-flight statement's own failure (with its line) has had its turn to propagate.
        void Promise.allSettled([this.#inFlight, this.#cancelled]).then(() =>
          setImmediate(() => reject(TIME_RAN_OUT)),
        );
      },
      Math.max(0, limit.at - performance.now()),
    );
  }

  get fired(): boolean {
    return this.#fired;
  }

  /** Tracks the statement in flight; once it settles after the limit, waits until its cancel is sent. */
  async watch<T>(statement: Promise<T>): Promise<T> {
    this.#inFlight = statement;
    try {
      return await statement;
    } finally {
      this.#inFlight = undefined;
      if (this.#fired) await this.#cancelled;
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
