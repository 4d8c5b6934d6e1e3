// Real OS processes: the built CLI and the event-printing fixture, watched as they go.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOAK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(SOAK, '..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
const FIXTURE = path.join(SOAK, 'fixtures/runner.mjs');

export const now = () => performance.now();

function cleanEnv() {
  const env = { ...process.env };
  for (const key of ['DATABASE_URL', 'PGDATABASE', 'PGHOST', 'PGUSER', 'NODE_OPTIONS']) delete env[key];
  return env;
}

/**
 * Starts `lockstep <args>` (via: 'cli') or the fixture (via: 'library', args = [url, dir]).
 * Returns { pid, via, child, events, on(type → callback), kill(), done }: `events` are the
 * fixture's, each with `at` (the harness's clock when the line arrived); `done` resolves (never
 * rejects) with { code, signal, stdout, stderr, json, timedOut }.
 */
export function start(via, args, { cwd, timeoutMs = 180_000 } = {}) {
  const argv = via === 'cli' ? [CLI, ...args] : [FIXTURE, ...args];
  const child = spawn(process.execPath, argv, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const runner = { pid: child.pid, via, child, events: [], startedAt: now(), killedAt: null };
  const listeners = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (via === 'cli') return;
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      if (!parsed.event) continue;
      const event = { ...parsed.event, at: now() };
      runner.events.push(event);
      for (const listener of [...listeners]) listener(event);
    }
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  runner.exited = false;
  runner.done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      runner.exited = true;
      resolve({ code, signal, stdout, stderr, json: lastJson(stdout), timedOut, endedAt: now() });
    });
  });
  /** Calls `callback(event)` for every event from now on; returns the unsubscribe. */
  runner.on = (callback) => {
    listeners.push(callback);
    return () => listeners.splice(listeners.indexOf(callback), 1);
  };
  /** Resolves with the first event (past or future) for which `test` holds, or null at exit. */
  runner.waitFor = (test) =>
    new Promise((resolve) => {
      const found = runner.events.find(test);
      if (found) return resolve(found);
      const off = runner.on((event) => {
        if (test(event)) {
          off();
          resolve(event);
        }
      });
      runner.done.then(() => {
        off();
        resolve(null);
      });
    });
  runner.kill = () => {
    runner.killedAt = now();
    child.kill('SIGKILL');
  };
  return runner;
}

/** The CLI's `--json` output (one object, possibly pretty-printed), or the fixture's last line. */
function lastJson(stdout) {
  try {
    return JSON.parse(stdout);
  } catch {}
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const parsed = JSON.parse(line);
      if (!parsed.event) return parsed;
    } catch {}
  }
  return null;
}

/** The CLI, run to its end. */
export function cli(args, options) {
  return start('cli', args, options).done;
}
