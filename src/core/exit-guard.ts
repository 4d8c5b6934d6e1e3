/**
 * While migration code runs (its module is imported, its up/down runs), `process.exit()` throws
 * instead of ending the process: a migration that exits would otherwise end `lockstep up` with exit
 * code 0, no output and, where it is not transactional, a ledger row left `running`. Abrupt ends
 * that are crashes (`process.abort()`, signals) are not intercepted: the crash protocol covers them.
 */

/** What `process.exit(code)` throws inside migration code. */
export class ProcessExitAttempt extends Error {
  constructor(readonly requestedCode: string) {
    super(
      `the migration called process.exit(${requestedCode}); a migration must not end the process ` +
        '(throw an error to make it fail)',
    );
    this.name = 'ProcessExitAttempt';
  }
}

type Exit = (code?: number | string | null) => never;
type ProcessWithInternals = NodeJS.Process & { reallyExit?: (code?: number) => void };

let installed = 0;
let originals: { exit: Exit; reallyExit: ProcessWithInternals['reallyExit'] } | undefined;
const attempts: ProcessExitAttempt[] = [];

/** Intercepts process.exit until the returned guard is released. Nests. */
export function guardProcessExit(): { release(): void; readonly attempt: ProcessExitAttempt | undefined } {
  const proc = process as ProcessWithInternals;
  if (installed++ === 0) {
    originals = { exit: proc.exit, reallyExit: proc.reallyExit };
    const intercept = (code?: number | string | null): never => {
      const attempt = new ProcessExitAttempt(code === undefined ? '' : String(code));
      attempts.push(attempt);
      throw attempt;
    };
    proc.exit = intercept;
    if (proc.reallyExit) proc.reallyExit = intercept;
  }
  const first = attempts.length;
  let released = false;
  let seen: ProcessExitAttempt | undefined;
  return {
    release() {
      if (released) return;
      released = true;
      seen = attempts[first];
      if (--installed === 0 && originals) {
        proc.exit = originals.exit;
        if (originals.reallyExit) proc.reallyExit = originals.reallyExit;
        originals = undefined;
        attempts.length = 0;
      }
    },
    /** The first exit attempt while this guard was held, even if the migration caught it. */
    get attempt() {
      return released ? seen : attempts[first];
    },
  };
}
