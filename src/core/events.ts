import type { LockHolder } from '../errors.js';

/**
 * What a run reports while it goes. Logging, progress output and metrics attach here from
 * outside; the runner itself prints nothing.
 */
export type LockstepEvent =
  | { readonly type: 'up-to-date'; readonly applied: number }
  | { readonly type: 'lock-waiting'; readonly holder: LockHolder | null; readonly waitedMs: number }
  | { readonly type: 'lock-acquired'; readonly waitedMs: number }
  | {
      readonly type: 'applied-by-other';
      readonly version: string;
      readonly name: string;
      readonly by: string;
      readonly at: string | null;
    }
  | {
      readonly type: 'migrating';
      readonly version: string;
      readonly name: string;
      readonly direction: 'up' | 'down';
      readonly transactional: boolean;
    }
  | {
      readonly type: 'migrated';
      readonly version: string;
      readonly name: string;
      readonly direction: 'up' | 'down';
      readonly durationMs: number;
    }
  | {
      readonly type: 'lock-retry';
      readonly version: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly message: string;
    }
  | {
      /** Migrations another tool applied, taken into the ledger as applied: never run again. */
      readonly type: 'adopted';
      readonly from: string;
      /** Where that tool keeps its history (dbmate's `schema_migrations`). */
      readonly table: string;
      readonly versions: readonly string[];
    }
  | { readonly type: 'log'; readonly version: string; readonly message: string }
  /** What the user should know that is not an error (from the driver, or a wait on the server). */
  | { readonly type: 'notice'; readonly message: string }
  | { readonly type: 'query'; readonly sql: string };

export type EventHandler = (event: LockstepEvent) => void;
