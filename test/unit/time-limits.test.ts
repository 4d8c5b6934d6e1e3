import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Migration } from '../../src/core/migration.js';
import { deadline, fasterOrLonger, timeLimit } from '../../src/core/time-limits.js';

const sqlMigration = { kind: 'sql' } as Migration;

describe('time limits', () => {
  it('a migration runs under its own timeout, else the run default; null is no limit', () => {
    assert.deepEqual(timeLimit(5_000, 3_600_000, undefined, 100), {
      at: 5_100,
      ms: 5_000,
      name: 'its own timeout of 5s',
      scope: 'migration',
    });
    assert.equal(timeLimit(undefined, 60_000, undefined, 0)?.name, '--migration-timeout 1m');
    assert.equal(timeLimit(null, 60_000, undefined, 0), undefined);
    assert.equal(timeLimit(undefined, null, undefined, 0), undefined);
  });

  it('the earlier of the migration limit and the end of the run wins', () => {
    const end = { at: 2_000, ms: 7_200_000 };
    const limit = timeLimit(undefined, 60_000, end, 0);
    assert.deepEqual(limit, { at: 2_000, ms: 7_200_000, name: '--run-timeout 2h', scope: 'run' });
    assert.equal(timeLimit(1_000, 60_000, end, 0)?.scope, 'migration');
    assert.equal(timeLimit(null, null, end, 0)?.scope, 'run');
  });

  it('a deadline is set from now; none without a limit', () => {
    const before = performance.now();
    const d = deadline(1_000);
    assert.ok(d && d.ms === 1_000 && d.at >= before + 1_000);
    assert.equal(deadline(null), undefined);
  });

  it('the advice names the option that set the limit', () => {
    const run = { at: 0, ms: 1, name: '--run-timeout 1s', scope: 'run' } as const;
    const own = { at: 0, ms: 1, name: 'its own timeout of 1s', scope: 'migration' } as const;
    assert.match(fasterOrLonger(run, sqlMigration), /raise --run-timeout/);
    assert.match(fasterOrLonger(own, sqlMigration), /timeout:<duration> on its -- migrate:up line/);
    assert.match(fasterOrLonger(own, { kind: 'module' } as Migration), /export const timeout/);
  });
});
