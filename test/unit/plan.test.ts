/** Planning: ledger rows × migration files → what to do. Pure, with fake migrations and rows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Migration } from '../../src/core/migration.js';
import {
  describeStatus,
  failedInThisWave,
  type HistoryPolicy,
  planDown,
  planUp,
  WAVE_WINDOW_MS,
} from '../../src/core/plan.js';
import type { LedgerRow } from '../../src/drivers/driver.js';

/** A migration file `<version>_m<version>.sql` whose checksum is `sum-<version>` unless told. */
function migration(version: string, checksum = `sum-${version}`): Migration {
  return {
    version,
    name: `m${version}`,
    file: `migrations/${version}_m${version}.sql`,
    path: `/project/migrations/${version}_m${version}.sql`,
    checksum,
    kind: 'sql',
    hasDown: true,
    load: () => Promise.reject(new Error('not loaded in planning tests')),
  };
}

/** A ledger row for `version`, applied with the checksum `migration(version)` has, unless told. */
function row(version: string, fields: Partial<LedgerRow> = {}): LedgerRow {
  return {
    version,
    name: `m${version}`,
    checksum: `sum-${version}`,
    state: 'applied',
    direction: 'up',
    statementsDone: 1,
    statementCount: 1,
    startedAt: '2024-01-01T00:00:00.000Z',
    finishedAt: '2024-01-01T00:00:01.000Z',
    durationMs: 1000,
    appliedBy: 'host:42',
    error: null,
    ...fields,
  };
}

const versions = (items: readonly { version: string }[]) => items.map((m) => m.version);

describe('planUp: pending', () => {
  const cases: readonly { name: string; files: string[]; rows: LedgerRow[]; pending: string[] }[] = [
    { name: 'an empty ledger: everything', files: ['1', '2', '3'], rows: [], pending: ['1', '2', '3'] },
    { name: 'nothing to do', files: ['1', '2'], rows: [row('1'), row('2')], pending: [] },
    { name: 'only the new ones', files: ['1', '2', '3'], rows: [row('1'), row('2')], pending: ['3'] },
    {
      name: 'a rolled-back attempt counts as pending',
      files: ['1', '2'],
      rows: [row('1'), row('2', { state: 'rolled_back', error: 'syntax error' })],
      pending: ['2'],
    },
    {
      name: 'running and failed rows are not pending',
      files: ['1', '2'],
      rows: [row('1', { state: 'running' }), row('2', { state: 'failed' })],
      pending: [],
    },
    {
      name: 'versions compare as numbers',
      files: ['9', '10', '11'],
      rows: [row('9'), row('10')],
      pending: ['11'],
    },
  ];
  for (const { name, files, rows, pending } of cases) {
    it(name, () => {
      const plan = planUp(
        files.map((v) => migration(v)),
        rows,
        {},
      );
      assert.deepEqual(versions(plan.pending), pending);
      assert.deepEqual(plan.problems, []);
    });
  }

  it('keeps the order of the migrations it is given', () => {
    const plan = planUp([migration('001'), migration('002'), migration('010')], [], {});
    assert.deepEqual(versions(plan.pending), ['001', '002', '010']);
  });
});

describe('planUp: history checks', () => {
  const cases: readonly {
    name: string;
    files: Migration[];
    rows: LedgerRow[];
    kinds: string[];
    allowedBy: keyof HistoryPolicy;
    pending: string[];
  }[] = [
    {
      name: 'an applied migration whose file changed',
      files: [migration('1', 'edited'), migration('2')],
      rows: [row('1')],
      kinds: ['changed:1'],
      allowedBy: 'allowChanged',
      pending: ['2'],
    },
    {
      name: 'an applied migration whose file is gone',
      files: [migration('2')],
      rows: [row('1')],
      kinds: ['missing:1'],
      allowedBy: 'allowMissing',
      pending: ['2'],
    },
    {
      name: 'a pending migration older than the newest applied',
      files: [migration('1'), migration('2'), migration('3')],
      rows: [row('1'), row('3')],
      kinds: ['out-of-order:2'],
      allowedBy: 'allowOutOfOrder',
      pending: ['2'],
    },
    {
      name: 'a rolled-back migration older than the newest applied',
      files: [migration('1'), migration('2')],
      rows: [row('1', { state: 'rolled_back' }), row('2')],
      kinds: ['out-of-order:1'],
      allowedBy: 'allowOutOfOrder',
      pending: ['1'],
    },
    {
      name: 'out of order by number, not by string (2 < 10)',
      files: [migration('2'), migration('10')],
      rows: [row('10')],
      kinds: ['out-of-order:2'],
      allowedBy: 'allowOutOfOrder',
      pending: ['2'],
    },
  ];
  for (const { name, files, rows, kinds, allowedBy, pending } of cases) {
    it(`refuses ${name}`, () => {
      const plan = planUp(files, rows, {});
      assert.deepEqual(
        plan.problems.map((p) => `${p.kind}:${p.version}`),
        kinds,
      );
      assert.deepEqual(versions(plan.pending), pending);
    });
    it(`accepts ${name} with ${allowedBy}`, () => {
      const plan = planUp(files, rows, { [allowedBy]: true });
      assert.deepEqual(plan.problems, []);
      assert.deepEqual(versions(plan.pending), pending);
    });
    for (const other of (['allowChanged', 'allowMissing', 'allowOutOfOrder'] as const).filter(
      (f) => f !== allowedBy,
    )) {
      it(`still refuses ${name} with only ${other}`, () => {
        assert.deepEqual(
          planUp(files, rows, { [other]: true }).problems.map((p) => p.kind),
          kinds.map((k) => k.split(':')[0]),
        );
      });
    }
  }

  it('names the file and who applied it', () => {
    const [changed] = planUp([migration('7', 'edited')], [row('7', { appliedBy: 'web-1:99' })], {}).problems;
    assert.equal(changed?.file, 'migrations/7_m7.sql');
    assert.match(changed?.detail ?? '', /web-1:99/);
    const [missing] = planUp([], [row('7', { appliedBy: 'web-1:99' })], {}).problems;
    assert.equal(missing?.file, undefined);
    assert.match(missing?.detail ?? '', /7_m7.*web-1:99.*missing/);
  });

  it('does not check rows that are not applied', () => {
    // A rolled-back attempt with another checksum, and one whose file is gone, are no history.
    const plan = planUp(
      [migration('1', 'fixed')],
      [row('1', { state: 'rolled_back' }), row('2', { state: 'rolled_back' })],
      {},
    );
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(versions(plan.pending), ['1']);
  });

  it('reports every problem at once', () => {
    const plan = planUp(
      [migration('1', 'edited'), migration('2'), migration('4')],
      [row('1'), row('3'), row('4')],
      {},
    );
    assert.deepEqual(plan.problems.map((p) => `${p.kind}:${p.version}`).sort(), [
      'changed:1',
      'missing:3',
      'out-of-order:2',
    ]);
  });
});

describe('planUp: dirty rows', () => {
  const cases: readonly { name: string; rows: LedgerRow[]; dirty: string | undefined }[] = [
    { name: 'none when all are applied', rows: [row('1'), row('2')], dirty: undefined },
    { name: 'none for a rolled-back attempt', rows: [row('1', { state: 'rolled_back' })], dirty: undefined },
    { name: 'a running row (its runner died)', rows: [row('1'), row('2', { state: 'running' })], dirty: '2' },
    { name: 'a failed row', rows: [row('1'), row('2', { state: 'failed' })], dirty: '2' },
    {
      name: 'the oldest of several, by number',
      rows: [row('10', { state: 'failed' }), row('9', { state: 'running' })],
      dirty: '9',
    },
  ];
  for (const { name, rows, dirty } of cases) {
    it(name, () => {
      const plan = planUp(
        ['1', '2', '9', '10'].map((v) => migration(v)),
        rows,
        {},
      );
      assert.equal(plan.dirty?.version, dirty);
    });
  }

  it('reports a dirty row even when its file is gone', () => {
    assert.equal(planUp([], [row('5', { state: 'running' })], {}).dirty?.version, '5');
  });
});

describe('planDown', () => {
  const rows = [
    row('9'),
    row('10'),
    row('2'),
    row('11', { state: 'rolled_back' }),
    row('12', { state: 'failed' }),
  ];
  const cases: readonly { steps: number; expected: string[] }[] = [
    { steps: 0, expected: [] },
    { steps: 1, expected: ['10'] },
    { steps: 2, expected: ['10', '9'] },
    { steps: 3, expected: ['10', '9', '2'] },
    { steps: 99, expected: ['10', '9', '2'] },
  ];
  for (const { steps, expected } of cases) {
    it(`${steps} step(s): the newest applied first, numerically`, () => {
      assert.deepEqual(versions(planDown(rows, steps)), expected);
    });
  }

  it('does not reorder the rows it was given', () => {
    planDown(rows, 3);
    assert.deepEqual(versions(rows), ['9', '10', '2', '11', '12']);
  });
});

describe('describeStatus', () => {
  it('lists the union of files and rows, oldest first, with each status', () => {
    const files = ['1', '2', '3', '4', '5', '6'].map((v) => migration(v, v === '2' ? 'edited' : `sum-${v}`));
    const rows = [
      row('1'),
      row('2'),
      row('3', { state: 'running' }),
      row('4', { state: 'failed' }),
      row('5', { state: 'rolled_back' }),
      row('10'),
      row('8', { state: 'failed' }),
      row('9', { state: 'rolled_back' }),
    ];
    const entries = describeStatus(files, rows);
    assert.deepEqual(
      entries.map((e) => [e.version, e.status, e.file, e.row?.version ?? null]),
      [
        ['1', 'applied', 'migrations/1_m1.sql', '1'],
        ['2', 'changed', 'migrations/2_m2.sql', '2'],
        ['3', 'running', 'migrations/3_m3.sql', '3'],
        ['4', 'failed', 'migrations/4_m4.sql', '4'],
        ['5', 'pending', 'migrations/5_m5.sql', '5'],
        ['6', 'pending', 'migrations/6_m6.sql', null],
        ['8', 'failed', null, '8'],
        ['9', 'missing', null, '9'],
        ['10', 'missing', null, '10'],
      ],
    );
    assert.equal(entries.find((e) => e.version === '10')?.name, 'm10');
  });

  it('is empty for no files and no rows', () => {
    assert.deepEqual(describeStatus([], []), []);
  });
});

describe('failedInThisWave: a broken migration is run once per wave of runners', () => {
  const failedAt = Date.parse('2024-01-01T00:00:01.000Z');
  const failed = row('001', { state: 'rolled_back', error: 'boom' });
  const cases: readonly [string, LedgerRow | undefined, LedgerRow | undefined, string, number, boolean][] = [
    ['no row: never tried', undefined, undefined, 'sum-001', failedAt, false],
    ['applied row: not a failure', row('001'), undefined, 'sum-001', failedAt, false],
    ['failed after this runner first looked', failed, undefined, 'sum-001', failedAt + 60_000, true],
    ['failed moments before this runner looked', failed, failed, 'sum-001', failedAt + 2_000, true],
    [
      'failed long before this runner looked: retry',
      failed,
      failed,
      'sum-001',
      failedAt + WAVE_WINDOW_MS,
      false,
    ],
    ['the file changed since it failed: retry', failed, undefined, 'sum-fixed', failedAt + 1, false],
    [
      'failed again since this runner looked',
      failed,
      row('001', { state: 'rolled_back', finishedAt: '2023-12-31T00:00:00.000Z' }),
      'sum-001',
      failedAt + 60_000,
      true,
    ],
  ];
  for (const [name, current, seen, checksum, now, expected] of cases) {
    it(name, () => assert.equal(failedInThisWave(current, seen, checksum, now), expected));
  }
});
