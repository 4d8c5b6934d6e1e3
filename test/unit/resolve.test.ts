/** planResolve: resolve acts on running/failed rows only; every other state is refused unless forced. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Migration } from '../../src/core/migration.js';
import { planResolve, type ResolveAction, type ResolveAs } from '../../src/core/resolve.js';
import type { LedgerRow, LedgerState } from '../../src/drivers/driver.js';
import { ConfigError, ExitCode, ResolveRefusedError } from '../../src/errors.js';

const source = { version: '002', name: 'b', file: 'migrations/002_b.sql', checksum: 'abc' } as Migration;

function row(state: LedgerState, checksum = 'abc'): LedgerRow {
  return {
    version: '002',
    name: 'b',
    checksum,
    state,
    direction: 'up',
    statementsDone: 0,
    statementCount: 1,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:00:01.000Z',
    durationMs: 1000,
    appliedBy: 'host:1',
    error: null,
  };
}

type Case = [what: string, row: LedgerRow | undefined, source: Migration | undefined];
const CASES: Case[] = [
  ['running', row('running'), source],
  ['failed', row('failed'), source],
  ['running, file gone', row('running'), undefined],
  ['applied', row('applied'), source],
  ['changed', row('applied', 'old'), source],
  ['rolled_back', row('rolled_back'), source],
  ['pending', undefined, source],
  ['unknown', undefined, undefined],
];

/** [plain, forced] per flag: an action, or the refusal's exit code. */
const EXPECTED: Record<string, Record<ResolveAs, [ResolveAction | number, ResolveAction | number]>> = {
  running: { applied: ['write-applied', 'write-applied'], 'rolled-back': ['delete-row', 'delete-row'] },
  failed: { applied: ['write-applied', 'write-applied'], 'rolled-back': ['delete-row', 'delete-row'] },
  'running, file gone': {
    applied: ['write-applied', 'write-applied'],
    'rolled-back': ['delete-row', 'delete-row'],
  },
  applied: { applied: [ExitCode.refused, ExitCode.refused], 'rolled-back': [ExitCode.refused, 'delete-row'] },
  changed: { applied: [ExitCode.refused, 'write-applied'], 'rolled-back': [ExitCode.refused, 'delete-row'] },
  rolled_back: {
    applied: [ExitCode.refused, 'write-applied'],
    'rolled-back': [ExitCode.refused, 'delete-row'],
  },
  pending: {
    applied: [ExitCode.refused, 'write-applied'],
    'rolled-back': [ExitCode.refused, ExitCode.refused],
  },
  unknown: {
    applied: [ExitCode.badInput, ExitCode.badInput],
    'rolled-back': [ExitCode.badInput, ExitCode.badInput],
  },
};

function outcome(...args: Parameters<typeof planResolve>): ResolveAction | number {
  try {
    return planResolve(...args);
  } catch (error) {
    assert.ok(error instanceof ResolveRefusedError || error instanceof ConfigError, String(error));
    if (error instanceof ResolveRefusedError) {
      assert.match(error.message, /Nothing was changed\.$/);
      assert.match(error.message, /lockstep (up|down)|nothing to (resolve|change|roll back)/);
    }
    return error.exitCode;
  }
}

describe('planResolve', () => {
  for (const [what, r, s] of CASES) {
    it(`${what}: every flag, with and without force`, () => {
      for (const as of ['applied', 'rolled-back'] as const) {
        const [plain, forced] = EXPECTED[what]?.[as] ?? [];
        assert.equal(outcome('002', r, s, as, false), plain, `${what} --${as}`);
        assert.equal(outcome('002', r, s, as, true), forced, `${what} --${as} --force`);
      }
    });
  }

  it('a refusal names the state it found', () => {
    for (const [what, r, s] of CASES.filter(([w]) =>
      ['applied', 'changed', 'rolled_back', 'pending'].includes(w),
    )) {
      try {
        planResolve('002', r, s, 'applied', false);
        assert.fail(what);
      } catch (error) {
        assert.ok(error instanceof ResolveRefusedError);
        assert.equal(error.state, what);
        assert.match(error.message, /is applied|rolled back|is pending/);
      }
    }
  });
});
