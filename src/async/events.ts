import type { LockstepEvent } from '../core/events.js';
import type { AsyncState } from './states.js';

/** What long-running migrations report as they go; the CLI prints them, the server streams them. */
export type AsyncEvent =
  | {
      readonly type: 'async-state';
      readonly name: string;
      readonly state: AsyncState;
      readonly previous: AsyncState;
      readonly detail?: string | undefined;
    }
  | {
      readonly type: 'async-operation';
      readonly name: string;
      readonly direction: 'forward' | 'rollback';
      /** 1-based. */
      readonly operation: number;
      readonly count: number;
      readonly kind: 'sql' | 'batched';
      readonly transactional: boolean;
    }
  | {
      readonly type: 'async-progress';
      readonly name: string;
      readonly progress: number;
      readonly operation: number;
      /** The batch just committed: keys [from, to). */
      readonly from: string;
      readonly to: string;
      readonly rangeMax: string;
    }
  | {
      readonly type: 'async-orphan';
      readonly name: string;
      readonly id: string;
      readonly query: string;
      readonly runningMs: number;
      readonly action: 'waiting' | 'cancelled';
    }
  | { readonly type: 'async-log'; readonly name: string; readonly message: string };

export type AsyncEventHandler = (event: AsyncEvent | LockstepEvent) => void;
