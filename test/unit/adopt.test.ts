/** Adopting another tool's history: what is written, reported and refused. Pure, with fake files and rows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { keepingAdoptedRollbacks, notAdopted, planAdoption, toolsToCheck } from '../../src/core/adopt.js';
import { adoptedFrom, adoptedRow, isAdopted } from '../../src/core/ledger-rows.js';
import type { Migration } from '../../src/core/migration.js';
import { planUp } from '../../src/core/plan.js';
import { namedHistory } from '../../src/core/tools/named.js';
import { folderVersion, isoOf, leadingVersion } from '../../src/core/tools/rows.js';
import { TOOL_NAMES, type ToolState } from '../../src/core/tools/tool.js';
import type { Ledger, LedgerRow } from '../../src/drivers/driver.js';

const NOW = '2026-12-02T00:00:00.000Z';

function migration(version: string): Migration {
  return {
    version,
    name: `m${version}`,
    file: `db/migrations/${version}_m${version}.sql`,
    path: `/p/db/migrations/${version}_m${version}.sql`,
    checksum: `sum-${version}`,
    kind: 'sql',
    hasDown: true,
    load: () => Promise.reject(new Error('not loaded')),
  };
}

function row(version: string, fields: Partial<LedgerRow> = {}): LedgerRow {
  return {
    version,
    name: `m${version}`,
    checksum: `sum-${version}`,
    state: 'applied',
    direction: 'up',
    statementsDone: 1,
    statementCount: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    durationMs: 1000,
    appliedBy: 'host:1',
    error: null,
    ...fields,
  };
}

const state = (applied: string[], failed: { version: string; detail: string }[] = []): ToolState => ({
  applied: applied.map((version) => ({ version, at: null })),
  failed,
  unmapped: [],
});

const files = ['001', '002', '003', '004'].map(migration);

describe('planAdoption', () => {
  it('records what the tool applied as adopted, and up then runs only the rest', () => {
    const plan = planAdoption('knex', 'knex_migrations', state(['001', '002']), null, files, NOW);
    assert.deepEqual(plan.report.adopted, ['001', '002']);
    assert.ok(
      plan.writes.every((w) => w.expected === null && isAdopted(w.row) && w.row.appliedBy === 'knex'),
    );
    const after = planUp(
      files,
      plan.writes.map((w) => w.row),
      {},
    );
    assert.deepEqual(
      after.pending.map((m) => m.version),
      ['003', '004'],
    );
    assert.equal(after.problems.length, 0);
  });

  it('adds nothing the ledger has: a second adopt writes nothing', () => {
    const first = planAdoption('goose', 'goose_db_version', state(['001', '002']), null, files, NOW);
    const second = planAdoption(
      'goose',
      'goose_db_version',
      state(['001', '002']),
      first.writes.map((w) => w.row),
      files,
      NOW,
    );
    assert.equal(second.writes.length, 0);
    assert.deepEqual(second.report.already, ['001', '002']);
  });

  it('records a half-done migration as failed: up refuses it as dirty until resolved', () => {
    const detail = 'golang-migrate left it dirty';
    const plan = planAdoption(
      'golang-migrate',
      'schema_migrations',
      state(['001'], [{ version: '002', detail }]),
      null,
      files,
      NOW,
    );
    const failed = plan.writes.find((w) => w.row.version === '002')?.row;
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.error, detail);
    assert.equal(adoptedFrom(failed as LedgerRow), 'golang-migrate');
    assert.equal(
      planUp(
        files,
        plan.writes.map((w) => w.row),
        {},
      ).dirty?.version,
      '002',
    );
  });

  it('never overwrites what the ledger says: conflicts are named and left', () => {
    const rows = [row('001', { state: 'failed' }), row('002', { state: 'rolled_back' }), row('003')];
    const plan = planAdoption(
      'prisma',
      '_prisma_migrations',
      state(['001', '002'], [{ version: '003', detail: 'failed' }]),
      rows,
      files,
      NOW,
    );
    assert.equal(plan.writes.length, 0);
    assert.deepEqual(
      plan.report.conflicts.map((c) => c.version),
      ['001', '002', '003'],
    );
    assert.match(plan.report.conflicts[0]?.detail ?? '', /lockstep resolve 001/);
  });

  it('names versions without a file, and keeps what the tool could not map', () => {
    const tool: ToolState = { ...state(['001', '009']), unmapped: [{ key: 'legacy.js', why: 'no version' }] };
    const plan = planAdoption('knex', 'knex_migrations', tool, null, files, NOW);
    assert.deepEqual(plan.report.withoutFile, ['009']);
    assert.deepEqual(plan.report.unmapped, tool.unmapped);
  });

  it('keeps the time the tool applied it as the start, the adoption as the finish', () => {
    const plan = planAdoption(
      'knex',
      'knex_migrations',
      { ...state([]), applied: [{ version: '001', at: '2025-05-05T00:00:00.000Z' }] },
      null,
      files,
      NOW,
    );
    assert.equal(plan.writes[0]?.row.startedAt, '2025-05-05T00:00:00.000Z');
    assert.equal(plan.writes[0]?.row.finishedAt, NOW);
  });

  it('property: after adopting, nothing the tool applied is pending, and adopting again writes nothing', () => {
    const version = fc.integer({ min: 1, max: 30 }).map((n) => String(n).padStart(3, '0'));
    fc.assert(
      fc.property(fc.uniqueArray(version), fc.uniqueArray(version), (folder, applied) => {
        const migrations = folder.sort().map(migration);
        const plan = planAdoption('goose', 't', state(applied), null, migrations, NOW);
        const rows = plan.writes.map((w) => w.row);
        const pending = planUp(migrations, rows, { allowOutOfOrder: true }).pending.map((m) => m.version);
        assert.ok(pending.every((v) => !applied.includes(v)));
        assert.equal(planAdoption('goose', 't', state(applied), rows, migrations, NOW).writes.length, 0);
        assert.deepEqual(notAdopted(state(applied), rows), []);
      }),
    );
  });
});

describe("up's check of other tools' tables", () => {
  it('looks at every tool on a first run, then only at those the ledger adopted from', () => {
    assert.deepEqual(toolsToCheck(null), [...TOOL_NAMES]);
    assert.deepEqual(toolsToCheck([row('001')]), []);
    assert.deepEqual(toolsToCheck([adoptedRow('001', undefined, 'knex', NOW), row('002')]), ['knex']);
  });

  it('counts a version the ledger has in any state as known; only one with no row is not adopted', () => {
    const rows = [row('001', { state: 'rolled_back' }), row('002', { state: 'failed' })];
    assert.deepEqual(notAdopted(state(['001', '002', '3']), rows), ['3']);
    assert.deepEqual(notAdopted(state(['1']), [row('001')]), [], '1 and 001 are one version');
  });
});

describe('rolling back an adopted migration', () => {
  function memoryLedger(rows: LedgerRow[]): Ledger & { rows: LedgerRow[] } {
    return {
      rows,
      read: async () => rows,
      create: async () => {},
      write: async (r) => {
        const i = rows.findIndex((x) => x.version === r.version);
        if (i >= 0) rows[i] = r;
        else rows.push(r);
      },
      delete: async (r) => {
        rows.splice(
          rows.findIndex((x) => x.version === r.version),
          1,
        );
      },
    };
  }

  it("leaves a rolled_back row for another tool's migration, and removes lockstep's own and dbmate's", async () => {
    const inner = memoryLedger([
      adoptedRow('001', undefined, 'goose', NOW),
      row('002'),
      adoptedRow('003', undefined, 'dbmate', NOW),
    ]);
    const ledger = keepingAdoptedRollbacks(inner, 'host:9');
    for (const r of [...inner.rows]) await ledger.delete(r);
    assert.deepEqual(
      inner.rows.map((r) => [r.version, r.state]),
      [['001', 'rolled_back']],
    );
    assert.match(inner.rows[0]?.error ?? '', /adopted from goose; rolled back by host:9/);
    assert.deepEqual(notAdopted(state(['001']), inner.rows), [], 'goose still lists it: not taken back');
    assert.deepEqual(
      planUp([migration('001')], inner.rows, {}).pending.map((m) => m.version),
      ['001'],
      'and up applies it again',
    );
  });
});

describe('tool rows', () => {
  it('reads a leading version and maps it to the folder spelling', () => {
    assert.equal(leadingVersion('20240101120000_add_users.js'), '20240101120000');
    assert.equal(leadingVersion('add_users.js'), null);
    assert.equal(folderVersion('3', files), '003');
    assert.equal(folderVersion('7', files), '7');
  });

  it('reads times as tools store them', () => {
    assert.equal(isoOf(new Date('2025-01-01T00:00:00Z')), '2025-01-01T00:00:00.000Z');
    assert.equal(isoOf(1735689600000), '2025-01-01T00:00:00.000Z');
    assert.equal(isoOf('1735689600'), '2025-01-01T00:00:00.000Z');
    assert.equal(
      isoOf('2025-01-01 00:00:00'),
      '2025-01-01T00:00:00.000Z',
      "SQLite's CURRENT_TIMESTAMP is UTC",
    );
    assert.equal(isoOf('not a time'), null);
    assert.equal(isoOf(null), null);
  });

  it('names what a named history cannot map: no version, or a version twice', () => {
    const h = namedHistory(
      [
        { name: '001_a.js', at: null },
        { name: 'legacy.js', at: null },
        { name: '1_b.js', at: null },
      ],
      files,
    );
    assert.deepEqual(
      h.applied.map((a) => a.version),
      ['001'],
    );
    assert.deepEqual(
      h.unmapped.map((u) => u.key),
      ['legacy.js', '1_b.js'],
    );
  });
});

describe('who left a migration half-done', () => {
  it("names the tool for the failed row adopt wrote, never for lockstep's own rollback of an adopted migration", async () => {
    const { leftHalfDoneBy, adoptedFailedRow, rollingBackRow } = await import(
      '../../src/core/ledger-rows.js'
    );
    const failed = adoptedFailedRow('002', undefined, 'golang-migrate', 'dirty', NOW);
    assert.equal(leftHalfDoneBy(failed), 'golang-migrate');
    const rollback = rollingBackRow(adoptedRow('002', undefined, 'golang-migrate', NOW));
    assert.equal(leftHalfDoneBy(rollback), undefined, 'an interrupted rollback by lockstep');
    assert.equal(
      leftHalfDoneBy({ ...rollback, state: 'failed' }),
      undefined,
      'a failed rollback by lockstep',
    );
    assert.equal(leftHalfDoneBy(row('003', { state: 'failed' })), undefined);
  });
});
