import { type ChildProcess, spawn } from 'node:child_process';
import { CLI, type ProcessResult } from './targets.js';

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Resolves once stderr (or stdout) has printed a line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** What it printed so far. */
  output(): { readonly stdout: string; readonly stderr: string };
  readonly done: Promise<ProcessResult>;
}

/** Starts the built CLI as a real OS process and lets the test watch its output as it goes. */
export function startCli(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): RunningProcess {
  const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: undefined, ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of watchers) w();
  };
  child.stdout?.on('data', (d) => {
    stdout += d;
    notify();
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
    notify();
  });
  const done = new Promise<ProcessResult>((resolve) =>
    child.on('close', (code, signal) => {
      notify();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  let exited = false;
  void done.then(() => {
    exited = true;
  });
  return {
    child,
    done,
    output: () => ({ stdout, stderr }),
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stderr) || pattern.test(stdout)) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve();
          } else if (exited) {
            watchers.delete(check);
            clearTimeout(timer);
            reject(new Error(`process exited before printing ${pattern}:\n${stderr}\n${stdout}`));
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`timed out waiting for ${pattern}:\n${stderr}\n${stdout}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
  };
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  probe: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
