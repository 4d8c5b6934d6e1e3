/**
 * The library API of long-running migrations against every database: the state store and its
 * constraint, startup checks, dependencies, queueing, stops of runs not yet executing, TypeScript
 * definitions, and events.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { AsyncEvent } from '../../src/async/events.js';
import { AsyncRefusedError, AsyncRunError } from '../../src/async/index.js';
import { AsyncMigrator } from '../../src/async/migrator.js';
import { readTrace, stateRow, traceTableSql, writeDefinitions } from '../helpers/async.js';
import { ROOT, TARGETS, type TestDatabase } from '../helpers/targets.js';

const logOp = (name: string, ev: string) =>
  `-- async:operation\nINSERT INTO trace (name, ev) VALUES ('${name}', '${ev}');\n-- async:rollback\nDELETE FROM trace WHERE name = '${name}' AND ev = '${ev}';\n`;

function simple(name: string, extra = ''): string {
  return `-- async:description ${name}\n${extra}${logOp(name, 'op1')}`;
}

async function prepare(db: TestDatabase, files: Record<string, string>) {
  await db.query(traceTableSql(db.kind));
  const dir = writeDefinitions(db.dir, files);
  const events: (AsyncEvent | { type: string })[] = [];
  const migrator = new AsyncMigrator({
    url: db.url,
    dir,
    cwd: db.dir,
    on: (e) => events.push(e),
    pollInterval: 50,
  });
  return { dir, migrator, events };
}

async function refusal(promise: Promise<unknown>): Promise<AsyncRefusedError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AsyncRefusedError) return error;
    throw error;
  }
  assert.fail('expected a refusal');
}

for (const target of TARGETS) {
  describe(`long-running migrations, library: ${target.kind}`, () => {
    it('creates its tables under the migration lock, the first time it changes something', async () => {
      const db = await target.create();
      try {
        const { migrator, events } = await prepare(db, { 'a.sql': simple('a') });
        assert.equal((await migrator.status()).runs[0]?.state, 'not_started', 'status creates nothing');
        assert.equal(await stateRow(db, 'a'), undefined);
        const holder = spawn(
          process.execPath,
          [path.join(ROOT, 'test/fixtures/hold-lock.mjs'), db.url, 'lockstep_migrations'],
          {
            cwd: db.dir,
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
        const triggered = migrator.trigger('a');
        await new Promise((r) => setTimeout(r, 700));
        assert.ok(
          events.some((e) => e.type === 'lock-waiting'),
          'it waits for the migration lock',
        );
        holder.kill('SIGKILL');
        assert.equal((await triggered).state, 'starting');
        assert.equal((await stateRow(db, 'a'))?.state, 'starting');
      } finally {
        await db.cleanup();
      }
    });

    it('the database refuses a second active run, whoever writes the rows', async () => {
      const db = await target.create();
      try {
        const { migrator } = await prepare(db, { 'a.sql': simple('a'), 'b.sql': simple('b') });
        await migrator.trigger('a');
        const row = (await db.query("SELECT * FROM lockstep_async WHERE name = 'a'"))[0] as Record<
          string,
          unknown
        >;
        const copy = async (changes: Record<string, unknown>) => {
          const values = { ...row, ...changes };
          const columns = Object.keys(values);
          const params = columns.map((_, i) => (target.kind === 'postgres' ? `$${i + 1}` : '?'));
          await db.query(
            `INSERT INTO lockstep_async (${columns.join(', ')}) VALUES (${params.join(', ')})`,
            Object.values(values).map((v) => (v instanceof Date ? v.toISOString() : v)),
          );
        };
        await assert.rejects(copy({ name: 'b', state: 'running' }), /unique|duplicate/i, 'two active runs');
        await assert.rejects(
          copy({ name: 'b', state: 'running', active_slot: null }),
          /check|constraint/i,
          'an active run without its slot',
        );
        await assert.rejects(
          copy({ name: 'b', state: 'completed' }),
          /check|constraint/i,
          'a slot on a resting run',
        );
        await copy({ name: 'b', state: 'completed', active_slot: null });
      } finally {
        await db.cleanup();
      }
    });

    it('trigger, wait, status, rollback; refusals name the active run; queue runs in order', async () => {
      const db = await target.create();
      try {
        const { migrator, events } = await prepare(db, {
          'a.sql': simple('a'),
          'b.sql': simple('b', '-- async:depends_on a\n'),
          'c.sql': simple('c'),
        });
        const dependency = await refusal(migrator.trigger('b'));
        assert.match(
          dependency.message,
          /cannot trigger b: it depends on a, which is not_started; run that first/,
        );
        await migrator.trigger('a');
        const busy = await refusal(migrator.trigger('c'));
        assert.equal(busy.active, 'a');
        assert.equal(busy.exitCode, 6);
        assert.match(busy.message, /a is starting, and one long-running migration runs at a time/);
        const queued = await migrator.trigger('b', { queue: true });
        assert.equal(queued.state, 'queued', 'b may queue behind a, which it depends on');
        const final = await migrator.wait('b');
        assert.equal(final.state, 'completed');
        assert.deepEqual(await readTrace(db), ['a:op1', 'b:op1']);
        assert.ok(
          events.some((e) => e.type === 'async-state' && (e as { state: string }).state === 'completed'),
        );

        const status = await migrator.status();
        assert.deepEqual(
          status.runs.map((r) => [r.name, r.state, r.progress, r.actions]),
          [
            ['a', 'completed', 100, ['rollback']],
            ['b', 'completed', 100, ['rollback']],
            ['c', 'not_started', 0, ['trigger']],
          ],
        );
        assert.equal((await migrator.rollback('b')).state, 'rolling_back');
        assert.equal((await migrator.wait('b')).state, 'rolled_back');
        assert.deepEqual(await readTrace(db), ['a:op1']);
        await refusal(migrator.resume('b'));
        assert.equal((await migrator.trigger('b')).state, 'starting', 'a rolled-back run can run again');
      } finally {
        await db.cleanup();
      }
    });

    it('stop takes a queued run off the queue and ends a run no worker picked up', async () => {
      const db = await target.create();
      try {
        const { migrator } = await prepare(db, { 'a.sql': simple('a'), 'b.sql': simple('b') });
        await migrator.trigger('a');
        await migrator.trigger('b', { queue: true });
        assert.deepEqual(await migrator.stop('b'), {
          name: 'b',
          action: 'stop',
          previous: 'queued',
          state: 'not_started',
        });
        const stopped = await migrator.stop('a');
        assert.equal(stopped.state, 'failed_at_startup');
        assert.match(String((await migrator.status('a')).runs[0]?.error), /stopped by \S+ before it started/);
        await migrator.work({ once: true });
        assert.deepEqual(await readTrace(db), [], 'nothing ran');
        assert.equal((await migrator.trigger('a')).state, 'starting', 'and it can be triggered again');
      } finally {
        await db.cleanup();
      }
    });

    it('startup checks: a failing precheck ends in failed_at_startup; isRequired false completes without running', async () => {
      const db = await target.create();
      try {
        const { migrator } = await prepare(db, {
          'p.sql': simple('p', "-- async:precheck\nSELECT COUNT(*) > 0 FROM trace WHERE ev = 'ready';\n"),
          'r.sql': simple('r', "-- async:is_required\nSELECT COUNT(*) = 0 FROM trace WHERE name = 'p';\n"),
        });
        await migrator.trigger('p');
        await assert.rejects(migrator.wait('p'), (error: unknown) => {
          assert.ok(error instanceof AsyncRunError);
          assert.equal(error.state, 'failed_at_startup');
          assert.match(error.message, /precheck at \S*p\.sql:3 returned (false|0)/);
          return true;
        });
        await db.query("INSERT INTO trace (name, ev) VALUES ('x', 'ready')");
        await migrator.trigger('p');
        assert.equal((await migrator.wait('p')).state, 'completed');

        await migrator.trigger('r');
        const r = await migrator.wait('r');
        assert.equal(r.state, 'completed');
        assert.match(String(r.note), /not required/);
        assert.deepEqual(await readTrace(db), ['x:ready', 'p:op1'], 'r ran nothing');
      } finally {
        await db.cleanup();
      }
    });

    it('a TypeScript definition: parameters, operations from them, a batched operation, checks as functions', async () => {
      const db = await target.create();
      try {
        await db.query('CREATE TABLE nums (id integer PRIMARY KEY, doubled integer)');
        await db.query(
          `INSERT INTO nums (id) VALUES ${Array.from({ length: 50 }, (_, i) => `(${i + 1})`).join(', ')}`,
        );
        const { migrator, dir } = await prepare(db, {
          '0001_double.ts': `import { defineAsyncMigration } from ${JSON.stringify(path.join(ROOT, 'src/index.js'))};

export default defineAsyncMigration({
  description: 'Double every id into doubled',
  parameters: { factor: { default: 2 }, size: { default: 7, description: 'keys per batch' } },
  precheck: async (ctx) => {
    const { rows } = await ctx.query('SELECT COUNT(*) AS n FROM nums');
    return Number(rows[0]?.n) === 50 || 'expected 50 rows in nums';
  },
  healthcheck: () => true,
  operations: (p) => [
    { sql: "INSERT INTO trace (name, ev) VALUES ('ts', {{factor}})", rollback: "DELETE FROM trace WHERE name = 'ts'" },
    {
      batched: { table: 'nums', key: 'id', size: Number(p.size), pause: 0 },
      sql: 'UPDATE nums SET doubled = id * {{factor}} WHERE id >= :start AND id < :end',
      rollback: 'UPDATE nums SET doubled = NULL WHERE id >= :start AND id < :end',
    },
  ],
});
`,
        });
        await migrator.trigger('0001_double', { parameters: { factor: '3' } });
        const done = await migrator.wait('0001_double');
        assert.equal(done.state, 'completed');
        assert.deepEqual(done.parameters, { factor: 3, size: 7 });
        assert.deepEqual(await readTrace(db), ['ts:3']);
        const wrong = await db.query(
          'SELECT COUNT(*) AS n FROM nums WHERE doubled IS NULL OR doubled <> id * 3',
        );
        assert.equal(Number(wrong[0]?.n), 0);

        // The file changes after the run froze its plan: status says so.
        writeFileSync(
          path.join(dir, '0001_double.ts'),
          (await import('node:fs'))
            .readFileSync(path.join(dir, '0001_double.ts'), 'utf8')
            .replace("('ts', {{factor}})", "('ts', 2 * {{factor}})"),
        );
        const fresh = new AsyncMigrator({ url: db.url, dir, cwd: db.dir });
        assert.equal((await fresh.status('0001_double')).runs[0]?.definitionChanged, true);
      } finally {
        await db.cleanup();
      }
    });
  });
}
