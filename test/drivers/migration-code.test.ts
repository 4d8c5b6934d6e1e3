/** Through migrate(): a migration that exits, ends its own transaction or runs too long, on every database. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMigrator, MigrationError, MigrationTimeoutError, migrate } from '../../src/index.js';
import { TARGETS, writeMigrations } from '../helpers/targets.js';

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => assert.fail('expected the run to fail'),
    (e: unknown) => e,
  );

for (const target of TARGETS) {
  describe(`migration code via migrate(): ${target.kind}`, () => {
    it('process.exit() in up() rejects with a MigrationError, and process.exit is restored', async () => {
      const db = await target.create();
      const original = process.exit;
      try {
        const dir = writeMigrations(db.dir, {
          '001_exits.mjs': 'export async function up() {\n  process.exit(0);\n}\n',
        });
        const error = await failure(migrate({ url: db.url, dir }));
        assert.ok(error instanceof MigrationError, String(error));
        assert.equal(error.exitCode, 1);
        assert.match(error.message, /called process\.exit\(0\)/);
        assert.equal(error.line, 2);
        assert.equal(process.exit, original);
      } finally {
        await db.cleanup();
      }
    });

    it('process.exit() in down() fails the rollback; the ledger says what is true', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_t.mjs':
            "export async function up(ctx) { await ctx.exec('CREATE TABLE t (id integer)'); }\n" +
            "export async function down(ctx) { await ctx.exec('DROP TABLE t'); process.exit(0); }\n",
        });
        await migrate({ url: db.url, dir });
        const error = await failure(createMigrator({ url: db.url, dir }).down());
        assert.ok(error instanceof MigrationError, String(error));
        assert.equal(error.direction, 'down');
        const [row] = await db.query(
          "SELECT state, direction FROM lockstep_migrations WHERE version = '001'",
        );
        // Transactional: the DROP rolled back with it; MySQL (DDL commits): recorded failed mid-rollback.
        assert.deepEqual(
          { ...row },
          target.kind === 'mysql'
            ? { state: 'failed', direction: 'down' }
            : { state: 'applied', direction: 'up' },
        );
      } finally {
        await db.cleanup();
      }
    });

    it('a module over its limit rejects with a MigrationTimeoutError naming the limit', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, {
          '001_hangs.mjs': 'export async function up() {\n  await new Promise(() => {});\n}\n',
        });
        const started = performance.now();
        const error = await failure(migrate({ url: db.url, dir, migrationTimeout: 300 }));
        assert.ok(error instanceof MigrationTimeoutError, String(error));
        assert.equal(error.code, 'MIGRATION_TIMEOUT');
        assert.deepEqual(error.limit, { name: '--migration-timeout 300ms', ms: 300, scope: 'migration' });
        assert.ok(performance.now() - started < 10_000);
        assert.equal(error.toJSON().error, 'MIGRATION_TIMEOUT');
      } finally {
        await db.cleanup();
      }
    });

    it('takes no limit at all: null, or off as on the command line', async () => {
      const db = await target.create();
      try {
        const dir = writeMigrations(db.dir, { '001_quick.mjs': 'export async function up() {}\n' });
        const done = await migrate({ url: db.url, dir, migrationTimeout: null, runTimeout: 'off' });
        assert.deepEqual(
          done.applied.map((m) => m.version),
          ['001'],
        );
      } finally {
        await db.cleanup();
      }
    });

    if (target.kind !== 'mysql') {
      it('ctx.exec of a script that commits is refused before any of it is sent', async () => {
        const db = await target.create();
        try {
          const dir = writeMigrations(db.dir, {
            '001_commits.mjs':
              "export async function up(ctx) {\n  await ctx.exec('CREATE TABLE a (id integer); END; CREATE TABLE b (id integer)');\n}\n",
          });
          const error = await failure(migrate({ url: db.url, dir }));
          assert.ok(error instanceof MigrationError, String(error));
          assert.equal(error.stateLeft, 'rolled back');
          assert.equal(error.statement, 'END');
          assert.match(error.message, /END would end the transaction/);
          const tables = await db.query(
            target.kind === 'postgres'
              ? "SELECT table_name FROM information_schema.tables WHERE table_name IN ('a', 'b')"
              : "SELECT name FROM sqlite_master WHERE name IN ('a', 'b')",
          );
          assert.deepEqual(tables, []);
        } finally {
          await db.cleanup();
        }
      });
    }
  });
}
