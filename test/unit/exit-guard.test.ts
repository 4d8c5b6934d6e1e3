/** The process.exit() guard around migration code: intercepts, nests, records, restores. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardProcessExit, ProcessExitAttempt } from '../../src/core/exit-guard.js';

/** Read through a function: an assertion on `guard.attempt` would narrow the getter's type. */
const messageOf = (guard: ReturnType<typeof guardProcessExit>) => guard.attempt?.message ?? '';

describe('guardProcessExit', () => {
  it('makes process.exit() throw while held, and restores it after', () => {
    const original = process.exit;
    const guard = guardProcessExit();
    assert.notEqual(process.exit, original);
    assert.throws(
      () => process.exit(3),
      (e: unknown) => e instanceof ProcessExitAttempt && /process\.exit\(3\)/.test(e.message),
    );
    const internals = process as NodeJS.Process & { reallyExit?: (code?: number) => void };
    assert.throws(() => internals.reallyExit?.(0), ProcessExitAttempt, 'the internal path too');
    guard.release();
    assert.equal(process.exit, original);
    assert.match(guard.attempt?.message ?? '', /process\.exit\(3\)/, 'the attempt is kept after release');
  });

  it('nests: the outer guard still holds after the inner is released, and each sees only its own attempts', () => {
    const original = process.exit;
    const outer = guardProcessExit();
    const inner = guardProcessExit();
    inner.release();
    assert.notEqual(process.exit, original);
    assert.equal(outer.attempt, undefined);
    try {
      process.exit();
    } catch {}
    assert.equal(inner.attempt, undefined);
    assert.match(messageOf(outer), /process\.exit\(\)/);
    outer.release();
    outer.release();
    assert.equal(process.exit, original);
  });
});
