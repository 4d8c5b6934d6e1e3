/**
 * Bounded fuzzing: fast-check properties run in a worker thread, so that a parser caught in an
 * endless loop fails the test (naming the input it was on) instead of hanging the run.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';

/** Runs per property; LOCKSTEP_FUZZ_RUNS raises it for a longer local hunt. */
export const FUZZ_RUNS = Number(process.env.LOCKSTEP_FUZZ_RUNS ?? 300);
/** A fixed seed (LOCKSTEP_FUZZ_SEED) replays a failure; otherwise each run explores anew. */
export const FUZZ_SEED = process.env.LOCKSTEP_FUZZ_SEED ? Number(process.env.LOCKSTEP_FUZZ_SEED) : undefined;

/** How long a worker may take: a minute per 300 runs, for a loaded machine. */
export const FUZZ_DEADLINE_MS = 60_000 * Math.max(1, FUZZ_RUNS / 300);

export function fuzzParameters<T>(numRuns = FUZZ_RUNS): fc.Parameters<T> {
  return { numRuns, ...(FUZZ_SEED === undefined ? {} : { seed: FUZZ_SEED }) };
}

type WorkerMessage =
  | { type: 'input'; input: string }
  | { type: 'done' }
  | { type: 'failed'; message: string };

/**
 * Runs `job` in a worker started from `module` (a test file that, off the main thread, runs the
 * job named in `workerData` and reports through `reportInput`/`reportDone`). Rejects on failure,
 * or when no answer came within `deadlineMs`, with the last input the worker was working on.
 */
export function runInWorker(module: URL, job: unknown, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // A worker does not inherit tsx's loader: register it there before loading the test file.
    const api = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); })`;
    const worker = new Worker(boot, { eval: true, workerData: job });
    let lastInput = '';
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(
        new Error(
          `no answer within ${deadlineMs} ms (a hang?); last input: ${JSON.stringify(lastInput.slice(0, 2000))}`,
        ),
      );
    }, deadlineMs);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      void worker.terminate();
      if (error) reject(error);
      else resolve();
    };
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'input') lastInput = message.input;
      else if (message.type === 'done') settle();
      else settle(new Error(message.message));
    });
    worker.on('error', (error) => settle(error));
    worker.on('exit', (code) => settle(new Error(`the fuzz worker exited (${code}) without an answer`)));
  });
}

/** Inside the worker: runs the property, reporting each input before it is tried. */
export async function answerFromWorker(
  run: (report: (input: string) => void) => void | Promise<void>,
): Promise<void> {
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('answerFromWorker runs in a worker thread only');
  try {
    await run((input) => parentPort.postMessage({ type: 'input', input }));
    parentPort.postMessage({ type: 'done' });
  } catch (error) {
    parentPort.postMessage({
      type: 'failed',
      message: describeFailure(error),
    });
  }
}

/** fast-check's report (counterexample, seed, path) and the assertion that failed. */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `\ncaused by: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

/** Text made of the given tokens and random characters, with or without space between them. */
export function tokenSoup(tokens: readonly string[], maxTokens = 60): fc.Arbitrary<string> {
  const piece = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...tokens) },
    { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
  );
  const glue = fc.constantFrom('', ' ', ' ', '\n', '\r\n', '\t');
  return fc
    .array(fc.tuple(piece, glue), { maxLength: maxTokens })
    .map((pairs) => pairs.map(([p, g]) => p + g).join(''));
}

/**
 * A window of a seed text with a few edits: tokens inserted, ranges deleted or duplicated, the
 * window itself cut anywhere (mid-string, mid-comment).
 */
export function mutatedSeed(seeds: readonly string[], tokens: readonly string[]): fc.Arbitrary<string> {
  const edit = fc.record({
    kind: fc.constantFrom('insert', 'delete', 'duplicate'),
    at: fc.nat(),
    size: fc.nat(200),
    token: fc.constantFrom(...tokens),
  });
  return fc
    .record({
      seed: fc.nat(seeds.length - 1),
      start: fc.nat(),
      length: fc.integer({ min: 0, max: 4000 }),
      edits: fc.array(edit, { maxLength: 6 }),
    })
    .map(({ seed, start, length, edits }) => {
      const source = seeds[seed] as string;
      const from = source.length === 0 ? 0 : start % source.length;
      let text = source.slice(from, from + length);
      for (const { kind, at, size, token } of edits) {
        const i = at % (text.length + 1);
        if (kind === 'insert') text = text.slice(0, i) + token + text.slice(i);
        else if (kind === 'delete') text = text.slice(0, i) + text.slice(i + size);
        else text = text.slice(0, i + size) + text.slice(i);
      }
      return text;
    });
}

/**
 * Runs `work` and fails when it took longer than `budgetMs` twice in a row: a parser that blows up
 * on an input does so again, a machine that stalled once does not.
 */
export function withinBudget<T>(work: () => T, budgetMs: number, what: string): T {
  let result: T | undefined;
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    result = work();
    const took = performance.now() - started;
    if (took < budgetMs) return result;
    if (attempt === 2) throw new Error(`${what} took ${Math.round(took)} ms, twice over ${budgetMs} ms`);
  }
}

/** 1-based line count of a text: one more than its newlines (a final newline opens an empty line). */
export function lineCount(text: string): number {
  let lines = 1;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}
