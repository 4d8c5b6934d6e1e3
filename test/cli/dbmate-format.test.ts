/**
 * Parity with the real dbmate 2.36.0 binary on the file format: for each folder of
 * test/helpers/dbmate-format-cases.ts, `dbmate up` and `lockstep up` on fresh SQLite databases
 * both accept or both refuse (unless the case names the difference), leave the same schema, and
 * lockstep reports exactly the warnings the case lists, with file and line. Cases marked
 * `rollback` are then rolled back by both, to the same schema.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FORMAT_CASES, type FormatCase } from '../helpers/dbmate-format-cases.js';
import { CLEAN_ENV, type ProcessResult, ROOT, runCli, runProcess } from '../helpers/targets.js';

const DBMATE = path.join(ROOT, 'node_modules/.bin/dbmate');
const scratch = mkdtempSync(path.join(tmpdir(), 'lockstep-dbmate-format-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Each tool's own tables left out: the schema the migrations made. */
function schema(file: string): string[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT type, name, sql FROM sqlite_master
          WHERE name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' AND name NOT LIKE 'lockstep_%'
          ORDER BY type, name`,
      )
      .all() as { type: string; name: string; sql: string | null }[];
    return rows.map((r) => `${r.type} ${r.name}: ${r.sql?.replace(/\s+/g, ' ')}`);
  } finally {
    db.close();
  }
}

function show(tool: string, r: ProcessResult): string {
  return `${tool}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

const dbmate = (url: string, dir: string, command: string) =>
  runProcess(DBMATE, ['--url', url, '--migrations-dir', dir, '--no-dump-schema', command], {
    env: { PATH: process.env.PATH },
  });
const lockstep = (url: string, dir: string, command: string) =>
  runCli([command, '--url', url, '--dir', dir], { env: CLEAN_ENV });

function setUp(index: number, c: FormatCase) {
  const root = path.join(scratch, String(index));
  const dir = path.join(root, 'migrations');
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(c.files)) {
    if (name.endsWith('/')) mkdirSync(path.join(dir, name));
    else writeFileSync(path.join(dir, name), text);
  }
  return { dir, dbmateDb: path.join(root, 'dbmate.db'), lockstepDb: path.join(root, 'lockstep.db') };
}

/** lockstep's warnings, as `file:line` relative to the migrations folder. */
function warnings(stderr: string, dir: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('warning: '))
    .map((l) => {
      const [, where] = /^warning: (.*?\.(?:sql|ts|js)(?::\d+)?): /.exec(l) ?? [];
      return path.relative(dir, where ?? l);
    });
}

describe('the file format: the real dbmate and lockstep, on SQLite', () => {
  FORMAT_CASES.forEach((c, index) => {
    it(`${c.what}: dbmate ${c.dbmate}, lockstep ${c.lockstep}`, async () => {
      const { dir, dbmateDb, lockstepDb } = setUp(index, c);
      const [d, l] = await Promise.all([
        dbmate(`sqlite:${dbmateDb}`, dir, 'up'),
        lockstep(`sqlite://${lockstepDb}`, dir, 'up'),
      ]);
      const both = `${show('dbmate', d)}\n${show('lockstep', l)}`;
      assert.equal(d.code === 0 ? 'accepts' : 'refuses', c.dbmate, both);
      assert.equal(l.code === 0 ? 'accepts' : 'refuses', c.lockstep, both);
      assert.ok(l.code === 0 || l.code === 2, `a refusal is exit 2 (bad input)\n${both}`);
      assert.deepEqual(warnings(l.stderr, dir).sort(), [...(c.warnings ?? [])].sort(), both);
      if (c.difference === undefined) {
        assert.deepEqual(schema(lockstepDb), schema(dbmateDb), both);
      } else if (c.lockstep === 'refuses') {
        assert.deepEqual(schema(lockstepDb), [], `lockstep changed nothing\n${both}`);
      }
      if (c.rollback) {
        const [dr, lr] = await Promise.all([
          dbmate(`sqlite:${dbmateDb}`, dir, 'rollback'),
          lockstep(`sqlite://${lockstepDb}`, dir, 'down'),
        ]);
        const rolled = `${show('dbmate rollback', dr)}\n${show('lockstep down', lr)}`;
        assert.equal(dr.code, 0, rolled);
        assert.equal(lr.code, 0, rolled);
        assert.deepEqual(schema(lockstepDb), schema(dbmateDb), rolled);
        const body = Object.values(c.files).join('\n');
        if (/-- migrate:down\r?\n(--[^\n]*\n)*$/.test(body)) {
          assert.match(
            lr.stderr,
            /down section is empty or absent: rolling it back only removes its ledger row/,
          );
        }
      }
    });
  });

  it('rolls back a migration without a down marker as a no-op, saying so', async () => {
    const c = FORMAT_CASES.find((x) => x.what === 'an up section and no down marker') as FormatCase;
    const { dir, lockstepDb } = setUp(FORMAT_CASES.length, c);
    const url = `sqlite://${lockstepDb}`;
    assert.equal((await lockstep(url, dir, 'up')).code, 0);
    const down = await lockstep(url, dir, 'down');
    assert.equal(down.code, 0, show('lockstep down', down));
    assert.match(down.stderr, /1_users\.sql: its down section is empty or absent/);
    assert.match(down.stdout, /rolled back 1 users/);
    assert.deepEqual(schema(lockstepDb), ['table users: CREATE TABLE users (id integer)']);
    const status = await lockstep(url, dir, 'status');
    assert.match(status.stdout, /1\s+users\s+pending/, show('lockstep status', status));
  });
});
