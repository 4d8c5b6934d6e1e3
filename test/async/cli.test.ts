/**
 * `lockstep async` as a real process: help, the status a user reads, --json, and bad input — each
 * case with its exit code and a message that names what is wrong (file and line for definitions).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeDefinitions } from '../helpers/async.js';
import {
  CLEAN_ENV,
  createPostgresDatabase,
  createSqliteDatabase,
  runCli,
  TARGETS,
  type TestDatabase,
} from '../helpers/targets.js';

const GOOD = `-- async:description Count to three
-- async:parameter label 'three' what to call it
-- async:operation
CREATE TABLE counted (n integer);
-- async:rollback
DROP TABLE counted;
-- async:operation
INSERT INTO counted (n) VALUES (1), (2), (3);
-- async:rollback
DELETE FROM counted;
`;

async function withSqlite(
  files: Record<string, string>,
  work: (db: TestDatabase, run: (args: string[]) => ReturnType<typeof runCli>) => Promise<void>,
) {
  const db = await createSqliteDatabase();
  try {
    const dir = writeDefinitions(db.dir, files);
    await work(db, (args) =>
      runCli(['async', ...args, '--url', db.url, '--async-dir', dir], { cwd: db.dir, env: CLEAN_ENV }),
    );
  } finally {
    await db.cleanup();
  }
}

describe('lockstep async: the CLI', () => {
  it('--help explains every command; no command prints it and exits 2; lockstep --help points to it', async () => {
    const help = await runCli(['async', '--help'], { env: CLEAN_ENV });
    assert.equal(help.code, 0);
    for (const command of [
      'list',
      'status',
      'trigger',
      'stop',
      'resume',
      'rollback',
      'worker',
      'new',
      '--wait',
      '--queue',
      '--force',
      '--on-dead',
      '--coordinator-url',
    ]) {
      assert.ok(help.stdout.includes(command), `--help mentions ${command}`);
    }
    const bare = await runCli(['async'], { env: CLEAN_ENV });
    assert.equal(bare.code, 2);
    assert.match(bare.stdout, /Usage: lockstep async <command>/);
    assert.match(
      (await runCli(['--help'], { env: CLEAN_ENV })).stdout,
      /async <command> +Long-running migrations[\s\S]*?See `lockstep async --help`/,
    );
  });

  it('list, trigger --wait, status: what a user sees', async () => {
    await withSqlite({ '0001_count.sql': GOOD }, async (_db, run) => {
      const before = await run(['list']);
      assert.equal(before.code, 0, before.stderr);
      assert.match(
        before.stdout,
        /NAME\s+STATE\s+PROGRESS\s+OPERATION\s+WORKER\s+UPDATED\n0001_count\s+not_started/,
      );
      const done = await run(['trigger', '0001_count', '--wait', '--param', 'label=3']);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /0001_count: not_started → starting\n/);
      assert.match(done.stdout, /0001_count: completed$/m);
      assert.match(done.stderr, /0001_count: running operation 2 of 2\n/);
      const status = await run(['status', '0001_count']);
      assert.match(status.stdout, /^0001_count — Count to three\n/);
      assert.match(status.stdout, /state: +completed\n/);
      assert.match(status.stdout, /progress: +100%\n/);
      assert.match(status.stdout, /parameters: label=3\n/);
      assert.match(status.stdout, /next: +lockstep async rollback 0001_count$/m);
      const json = JSON.parse((await run(['status', '--json'])).stdout);
      assert.equal(json.runs[0].state, 'completed');
      assert.equal(json.runs[0].parameters.label, '3');
    });
  });

  it('definitions with mistakes: exit 2, every problem with its file and line, nothing created', async () => {
    await withSqlite(
      {
        '0001_bad.sql': `-- async:description broken
-- async:operation timeout:soon
SELECT 1;
-- async:operation batched table:t key:id
UPDATE t SET x = 1;
-- async:rollback
`,
      },
      async (db, run) => {
        const r = await run(['trigger', '0001_bad']);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /0001_bad\.sql:2: option "timeout:soon": timeout takes a duration/);
        assert.match(r.stderr, /0001_bad\.sql:2: operation without "-- async:rollback"/);
        assert.match(r.stderr, /0001_bad\.sql:4: a batched operation needs batch_size/);
        assert.equal(existsSync(db.url.replace('sqlite://', '')), false, 'not even the database file');
      },
    );
  });

  it('bad usage: exit 2 with a message that says what to do', async () => {
    await withSqlite({ '0001_count.sql': GOOD }, async (_db, run) => {
      const cases: [string[], RegExp][] = [
        [['trigger', 'nope'], /no long-running migration named "nope" in .*; there are: 0001_count/],
        [['trigger'], /usage: lockstep async trigger <name>/],
        [['trigger', '0001_count', '--param', 'label'], /--param takes name=value, got "label"/],
        [
          ['trigger', '0001_count', '--param', 'size=1'],
          /0001_count has no parameter "size"; its parameters: label/,
        ],
        [
          ['list', '--wait'],
          // (and with the core's commands: there --wait is dbmate's, for the database)
          /--wait is not an option of `lockstep async list`; it goes with .*`lockstep async trigger`/,
        ],
        [['worker', '--on-dead', 'maybe'], /--on-dead takes error or resume, got "maybe"/],
        [['worker', '--poll', 'often'], /invalid poll interval "often"/],
        [['explode'], /unknown command "async explode"/],
        [['status', '--bogus'], /unknown option --bogus/],
      ];
      for (const [args, message] of cases) {
        const r = await run(args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message, args.join(' '));
      }
    });
  });

  it('refused: exit 6, --json names the active run', async () => {
    await withSqlite(
      { '0001_count.sql': GOOD, '0002_other.sql': GOOD.replaceAll('counted', 'other') },
      async (_db, run) => {
        assert.equal((await run(['trigger', '0001_count'])).code, 0);
        const r = await run(['trigger', '0002_other', '--json']);
        assert.equal(r.code, 6);
        const error = JSON.parse(r.stdout);
        assert.equal(error.error, 'ASYNC_REFUSED');
        assert.equal(error.active, '0001_count');
        assert.match(r.stderr, /or queue this one with --queue/);
        const queued = await run(['trigger', '0002_other', '--queue']);
        assert.match(queued.stdout, /0002_other: not_started → queued \(behind the active one\)/);
        const resume = await run(['resume', '0001_count']);
        assert.equal(resume.code, 6);
        assert.match(resume.stderr, /cannot resume 0001_count: it is starting \(possible now: stop\)/);
      },
    );
  });

  it('new writes a template that lists and plans cleanly; options may come before `async`', async () => {
    await withSqlite({}, async (db, run) => {
      const dir = path.join(db.dir, 'async');
      const created = await runCli(['async', 'new', '0001_template', '--async-dir', dir], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(created.code, 0, created.stderr);
      const listed = await runCli(['--url', db.url, 'async', 'list', '--async-dir', dir], {
        cwd: db.dir,
        env: CLEAN_ENV,
      });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /0001_template\s+not_started/);
      // Its type-only import of 'lockstep' needs no installed package at run time.
      const ts = await run(['new', '0002_template', '--ts']);
      assert.equal(ts.code, 0, ts.stderr);
      assert.match((await run(['status', '0002_template'])).stdout, /What this long-running migration does/);
    });
  });
});

describe('lockstep async: secrets', {
  skip: !TARGETS.some((t) => t.kind === 'postgres') && 'postgres is not among LOCKSTEP_TEST_TARGETS',
}, () => {
  it('a password in the URL never reaches output', async () => {
    const db = await createPostgresDatabase();
    try {
      const url = new URL(db.url);
      url.password = 'S3cretPW';
      url.port = '1';
      const dir = writeDefinitions(db.dir, { '0001_count.sql': GOOD });
      for (const args of [['list'], ['trigger', '0001_count', '--json']]) {
        const r = await runCli(['async', ...args, '--url', url.href, '--async-dir', dir], {
          cwd: db.dir,
          env: CLEAN_ENV,
        });
        assert.equal(r.code, 5, r.stderr);
        assert.doesNotMatch(r.stdout + r.stderr, /S3cretPW/);
        assert.match(r.stderr, /cannot connect to postgres:\/\/postgres:\*\*\*@/);
      }
    } finally {
      await db.cleanup();
    }
  });
});
