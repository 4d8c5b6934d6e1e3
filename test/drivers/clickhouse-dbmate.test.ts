/**
 * A ClickHouse database that dbmate migrated: lockstep adopts what dbmate's `schema_migrations`
 * says is applied (never running it again) and keeps the table in line from then on, so dbmate can
 * take over again; a version dbmate rolled back (its `applied = 0` row) is not adopted. The table
 * is written as dbmate's ClickHouse driver writes it (version, ts, applied; ReplacingMergeTree).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClickHouseTestDatabase, createClickHouseDatabase } from '../helpers/clickhouse.js';
import { CLEAN_ENV, runCli, writeMigrations } from '../helpers/targets.js';

describe('ClickHouse: a database dbmate migrated', () => {
  let ch: ClickHouseTestDatabase;
  before(async () => {
    ch = await createClickHouseDatabase();
  });
  after(() => ch?.cleanup());

  const lockstep = (...args: string[]) =>
    runCli(
      [
        ...args,
        ...['--url', ch.url, '--coordinator-url', `sqlite:${path.join(ch.dir, 'coordinator.db')}`],
        ...['--dir', path.join(ch.dir, 'migrations')],
      ],
      { cwd: ch.dir, env: CLEAN_ENV },
    );

  it('adopts what dbmate applied, runs only the rest, and the table says all of it', async () => {
    writeMigrations(ch.dir, {
      '001_events.sql':
        '-- migrate:up\nCREATE TABLE events (id UInt64) ENGINE = MergeTree ORDER BY id;\n-- migrate:down\nDROP TABLE events;\n',
      '002_users.sql':
        '-- migrate:up\nCREATE TABLE users (id UInt64) ENGINE = MergeTree ORDER BY id;\n-- migrate:down\nDROP TABLE users;\n',
      '003_tags.sql':
        '-- migrate:up\nCREATE TABLE tags (id UInt64) ENGINE = MergeTree ORDER BY id;\n-- migrate:down\nDROP TABLE tags;\n',
    });
    // dbmate applied 001 and 002, then rolled 002 back (dbmate's down inserts applied = 0).
    await ch.query(
      'CREATE TABLE schema_migrations (version String, ts DateTime DEFAULT now(), applied UInt8 DEFAULT 1) ' +
        'ENGINE = ReplacingMergeTree(ts) PRIMARY KEY version ORDER BY version',
    );
    await ch.query('CREATE TABLE events (id UInt64) ENGINE = MergeTree ORDER BY id');
    await ch.query("INSERT INTO schema_migrations (version, ts, applied) VALUES ('001', now() - 60, 1)");
    await ch.query("INSERT INTO schema_migrations (version, ts, applied) VALUES ('002', now() - 30, 1)");
    await ch.query("INSERT INTO schema_migrations (version, ts, applied) VALUES ('002', now() - 20, 0)");

    const up = await lockstep('up', '--json');
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(
      JSON.parse(up.stdout).applied.map((m: { version: string }) => m.version),
      ['002', '003'],
      '001 adopted, not run again (its CREATE TABLE would fail)',
    );
    assert.match(up.stderr, /adopted 1 migration that dbmate applied \(its schema_migrations\): 001/);
    assert.deepEqual(
      await ch.query('SELECT version FROM schema_migrations FINAL WHERE applied ORDER BY version'),
      [{ version: '001' }, { version: '002' }, { version: '003' }],
    );
    const status = await lockstep('status');
    assert.match(status.stdout, /001\s+events\s+applied\s+dbmate \(adopted/);

    const again = await lockstep('up');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
    const down = await lockstep('down');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(
      await ch.query('SELECT version FROM schema_migrations FINAL WHERE applied ORDER BY version'),
      [{ version: '001' }, { version: '002' }],
      'dbmate reads what lockstep rolled back',
    );
  });
});
