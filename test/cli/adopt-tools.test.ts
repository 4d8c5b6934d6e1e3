/**
 * Coming from another migration tool (`lockstep adopt --from <tool>`), against the real knex,
 * node-pg-migrate and drizzle-kit, and against golang-migrate's, goose's and Prisma's tables as
 * their source writes them (test/helpers/tools.ts says why those cannot run here): the tool
 * migrates, lockstep adopts what it applied (never running it), `up` applies only what is new,
 * the tool run again finds nothing to do; twenty processes racing `adopt` and then `up` adopt
 * exactly once; a half-done migration of the tool becomes lockstep's failed state. Every fixture
 * migration writes a row into `counter`, so a migration run twice shows.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CLEAN_ENV, type ProcessResult, runCli, TARGETS, type TestDatabase } from '../helpers/targets.js';
import {
  counterRows,
  migrateWithTool,
  REAL_TOOL,
  readToolTable,
  TOOLS,
  type ToolName,
  type ToolProject,
  toolProject,
  toolSupports,
} from '../helpers/tools.js';

const ROUNDS = Number(process.env.LOCKSTEP_RACE_ROUNDS ?? 3);
const RACERS = 20;

/** The counter rows the fixture's three migrations write, in `ORDER BY` order. */
const TOOL_COUNTER: Record<ToolName, string[]> = {
  'golang-migrate': ['1_create_runs_1', '2_create_runs_2', '3_create_runs_3'],
  goose: ['00001_create_runs_1', '00002_create_runs_2', '00003_create_runs_3'],
  knex: ['20240101000000_create_runs_1', '20240102000000_create_runs_2', '20240103000000_create_runs_3'],
  'node-pg-migrate': [
    '1704153600000_create_runs_1',
    '1704240000000_create_runs_2',
    '1704326400000_create_runs_3',
  ],
  prisma: ['20240101000000_create_runs_1', '20240102000000_create_runs_2', '20240103000000_create_runs_3'],
  drizzle: ['0000_create_runs_1', '0001_create_runs_2', '0002_create_runs_3'],
};

/** The file name of the migration added after the adoption, in lockstep's format, sorting after the tool's. */
const NEXT_FILE: Record<ToolName, string> = {
  'golang-migrate': '4_create_runs_4.sql',
  goose: '00004_create_runs_4.sql',
  knex: '20240104000000_create_runs_4.sql',
  'node-pg-migrate': '1704412800000_create_runs_4.sql',
  prisma: '20240104000000_create_runs_4.sql',
  drizzle: '0003_create_runs_4.sql',
};
const NEXT_COUNTER = 'lockstep_create_runs_4';

/**
 * The migration added after the adoption: in lockstep's format, but for Drizzle, whose journal
 * says which files of its folder are migrations (lockstep ignores others there, saying so): in
 * Drizzle Kit's format, listed in the journal.
 */
function addLockstepMigration(project: ToolProject): void {
  if (project.tool === 'drizzle') {
    writeFileSync(
      path.join(project.migrations, NEXT_FILE.drizzle),
      `CREATE TABLE runs_4 (id int);\n--> statement-breakpoint\nINSERT INTO counter (migration) VALUES ('${NEXT_COUNTER}');\n`,
    );
    const journalFile = path.join(project.migrations, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: Record<string, unknown>[] };
    const last = journal.entries.at(-1) as Record<string, unknown>;
    journal.entries.push({
      ...last,
      idx: journal.entries.length,
      when: Number(last.when) + 86_400_000,
      tag: NEXT_FILE.drizzle.replace(/\.sql$/, ''),
    });
    writeFileSync(journalFile, `${JSON.stringify(journal, null, 2)}\n`);
    return;
  }
  writeFileSync(
    path.join(project.migrations, NEXT_FILE[project.tool]),
    [
      '-- migrate:up',
      'CREATE TABLE runs_4 (id int);',
      `INSERT INTO counter (migration) VALUES ('${NEXT_COUNTER}');`,
      '',
      '-- migrate:down',
      'DROP TABLE runs_4;',
      `DELETE FROM counter WHERE migration = '${NEXT_COUNTER}';`,
      '',
    ].join('\n'),
  );
}

function lockstep(db: TestDatabase, project: ToolProject, ...args: string[]): Promise<ProcessResult> {
  return runCli([...args, '--url', db.url, '--dir', project.migrations], {
    cwd: project.root,
    env: CLEAN_ENV,
  });
}

interface LedgerLine {
  readonly version: string;
  readonly state: string;
  readonly by: string;
  readonly checksum: string;
}

async function ledger(db: TestDatabase): Promise<LedgerLine[]> {
  const rows = await db.query('SELECT version, state, applied_by, checksum FROM lockstep_migrations');
  return rows
    .map((r) => ({
      version: String(r.version),
      state: String(r.state),
      by: String(r.applied_by),
      checksum: String(r.checksum),
    }))
    .sort((a, b) => Number(a.version) - Number(b.version));
}

function show(result: ProcessResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

async function migratedByTool(tool: ToolName, db: TestDatabase): Promise<ToolProject> {
  const project = toolProject(tool, db);
  const run = await migrateWithTool(project, db);
  assert.equal(run.code, 0, `${tool} failed:\n${show(run)}`);
  assert.deepEqual(await counterRows(db), TOOL_COUNTER[tool], `${tool} ran its three migrations once each`);
  return project;
}

for (const target of TARGETS) {
  for (const tool of TOOLS) {
    if (!toolSupports(tool, target.kind)) continue;
    const how = REAL_TOOL[tool] ? 'the real tool' : "the tool's table as its source writes it";
    describe(`coming from ${tool} (${how}): ${target.kind}`, () => {
      it(`${tool} migrates; adopt records its migrations; up applies only the new one; ${tool} again finds nothing to do`, async () => {
        const db = await target.create();
        try {
          const project = await migratedByTool(tool, db);
          const toolTable = await readToolTable(tool, db);
          assert.equal(
            toolTable.length >= (tool === 'golang-migrate' ? 1 : 3),
            true,
            `${tool}'s table: ${toolTable.join(', ')}`,
          );

          // Before the adoption, up refuses (it would run again what the tool applied) and says how.
          const early = await lockstep(db, project, 'up');
          assert.notEqual(early.code, 0, show(early));
          assert.match(early.stderr, new RegExp(`lockstep adopt --from ${tool}`), show(early));
          assert.deepEqual(await counterRows(db), TOOL_COUNTER[tool], 'the refused up ran nothing');

          const adopt = await lockstep(db, project, 'adopt', '--from', tool);
          assert.equal(adopt.code, 0, show(adopt));
          assert.match(adopt.stdout, new RegExp(`adopted 3 migrations that ${tool} applied`), show(adopt));
          const adopted = await ledger(db);
          assert.equal(adopted.length, 3, `three ledger rows: ${JSON.stringify(adopted)}`);
          for (const row of adopted) {
            assert.equal(row.state, 'applied', JSON.stringify(row));
            assert.equal(row.by, tool, JSON.stringify(row));
            assert.equal(row.checksum, '', JSON.stringify(row));
          }
          assert.deepEqual(await counterRows(db), TOOL_COUNTER[tool], 'adopt ran nothing');
          assert.deepEqual(await readToolTable(tool, db), toolTable, `adopt left ${tool}'s table as it was`);

          const status = await lockstep(db, project, 'status');
          assert.equal(status.code, 0, show(status));
          assert.equal((status.stdout.match(/\(adopted /g) ?? []).length, 3, show(status));
          assert.match(status.stdout, /^3 applied$/m, show(status));
          // No fixture applied anything in 2024: Drizzle's journal times are when it generated each one.
          assert.doesNotMatch(status.stdout, /2024-01-0\d/, show(status));

          addLockstepMigration(project);
          const up = await lockstep(db, project, 'up');
          assert.equal(up.code, 0, show(up));
          assert.deepEqual(
            await counterRows(db),
            [...TOOL_COUNTER[tool], NEXT_COUNTER].sort(),
            'up ran only the new migration, once',
          );
          const after = await ledger(db);
          assert.equal(after.length, 4, JSON.stringify(after));
          assert.deepEqual(
            after.map((r) => r.by === tool),
            [true, true, true, false],
            `the new one is lockstep's: ${JSON.stringify(after)}`,
          );
          const again = await lockstep(db, project, 'up');
          assert.equal(again.code, 0, show(again));

          // The tool again, on its own project as it was: its table says it is done.
          const rerun = await migrateWithTool(toolProject(tool, db), db);
          assert.equal(rerun.code, 0, `${tool} after lockstep:\n${show(rerun)}`);
          assert.deepEqual(
            await counterRows(db),
            [...TOOL_COUNTER[tool], NEXT_COUNTER].sort(),
            `${tool} run again ran nothing`,
          );
          assert.deepEqual(await readToolTable(tool, db), toolTable, `${tool}'s table is as it left it`);
        } finally {
          await db.cleanup();
        }
      });
    });
  }

  describe(`adopt races: ${target.kind}`, () => {
    // knex: the real tool, on every database.
    for (let round = 1; round <= ROUNDS; round++) {
      it(`round ${round}: ${RACERS} processes adopt at once, then ${RACERS} run up: adopted exactly once, nothing run twice`, async () => {
        const db = await target.create();
        try {
          const project = await migratedByTool('knex', db);
          addLockstepMigration(project);
          const adopts = await Promise.all(
            Array.from({ length: RACERS }, () => lockstep(db, project, 'adopt', '--from', 'knex')),
          );
          for (const r of adopts) assert.equal(r.code, 0, show(r));
          const adopted = await ledger(db);
          assert.equal(adopted.length, 3, `adopted once: ${JSON.stringify(adopted)}`);
          assert.equal(
            adopted.every((r) => r.by === 'knex' && r.state === 'applied'),
            true,
            JSON.stringify(adopted),
          );
          assert.deepEqual(await counterRows(db), TOOL_COUNTER.knex, 'adopt ran nothing');

          const ups = await Promise.all(Array.from({ length: RACERS }, () => lockstep(db, project, 'up')));
          for (const r of ups) assert.equal(r.code, 0, show(r));
          assert.deepEqual(
            await counterRows(db),
            [...TOOL_COUNTER.knex, NEXT_COUNTER].sort(),
            'nothing ran twice',
          );
          const after = await ledger(db);
          assert.equal(after.length, 4, JSON.stringify(after));
          assert.equal(after.filter((r) => r.by === 'knex').length, 3, JSON.stringify(after));
        } finally {
          await db.cleanup();
        }
      });
    }
  });

  describe(`golang-migrate's schema_migrations is not dbmate's: ${target.kind}`, () => {
    it("status, adopt and up on a lockstep-format folder: nothing adopted from dbmate, golang-migrate's row untouched", async () => {
      const db = await target.create();
      try {
        // golang-migrate's folder as lockstep's files (the same SQL, with lockstep's markers), so
        // this holds without lockstep reading golang-migrate's file names.
        const project = toolProject('golang-migrate', db);
        const run = await migrateWithTool(project, db);
        assert.equal(run.code, 0, show(run));
        for (const n of [1, 2, 3]) {
          const base = path.join(project.migrations, `${n}_create_runs_${n}`);
          const up = readFileSync(`${base}.up.sql`, 'utf8');
          const down = readFileSync(`${base}.down.sql`, 'utf8');
          writeFileSync(`${base}.sql`, `-- migrate:up\n${up}\n-- migrate:down\n${down}`);
          rmSync(`${base}.up.sql`);
          rmSync(`${base}.down.sql`);
        }
        const before = await lockstep(db, project, 'status');
        assert.equal(before.code, 0, show(before));
        assert.doesNotMatch(before.stdout, /dbmate/, show(before));

        const adopt = await lockstep(db, project, 'adopt', '--from', 'golang-migrate');
        assert.equal(adopt.code, 0, show(adopt));
        addLockstepMigration(project);
        const up = await lockstep(db, project, 'up');
        assert.equal(up.code, 0, show(up));
        assert.deepEqual(await counterRows(db), [...TOOL_COUNTER['golang-migrate'], NEXT_COUNTER].sort());
        const rows = await ledger(db);
        assert.deepEqual(
          rows.map((r) => r.by === 'golang-migrate'),
          [true, true, true, false],
          JSON.stringify(rows),
        );
        assert.deepEqual(
          await readToolTable('golang-migrate', db),
          ['3:clean'],
          "golang-migrate's row as it was",
        );
      } finally {
        await db.cleanup();
      }
    });
  });

  describe(`a half-done migration of the tool: ${target.kind}`, () => {
    for (const tool of ['golang-migrate', 'prisma'] as const) {
      it(`${tool} left migration 3 half-done: adopt records it failed, up refuses and names lockstep resolve`, async () => {
        const db = await target.create();
        try {
          const project = toolProject(tool, db);
          const failAt = tool === 'golang-migrate' ? '3' : '20240103000000';
          const run = await migrateWithTool(project, db, { failAt });
          assert.equal(run.code, 1, show(run));
          const toolTable = await readToolTable(tool, db);
          assert.deepEqual(
            toolTable,
            tool === 'golang-migrate'
              ? ['3:dirty']
              : [
                  '20240101000000_create_runs_1:finished',
                  '20240102000000_create_runs_2:finished',
                  '20240103000000_create_runs_3:unfinished',
                ],
          );

          const adopt = await lockstep(db, project, 'adopt', '--from', tool);
          assert.equal(adopt.code === 0 || adopt.code === 4, true, show(adopt));
          assert.match(adopt.stdout + adopt.stderr, /failed|dirty/i, show(adopt));
          const rows = await ledger(db);
          assert.deepEqual(
            rows.map((r) => [r.state, r.by]),
            [
              ['applied', tool],
              ['applied', tool],
              ['failed', tool],
            ],
            JSON.stringify(rows),
          );

          const up = await lockstep(db, project, 'up');
          assert.notEqual(up.code, 0, show(up));
          assert.match(up.stderr, /lockstep resolve/, show(up));
          assert.deepEqual(
            await counterRows(db),
            TOOL_COUNTER[tool].slice(0, 2),
            'the half-done migration was not run by lockstep',
          );
          assert.deepEqual(await readToolTable(tool, db), toolTable, `adopt left ${tool}'s table as it was`);
        } finally {
          await db.cleanup();
        }
      });
    }
  });
}
