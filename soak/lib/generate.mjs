// A random migration set: 3–8 SQL migrations, transactional or not, fast and slow statements,
// sometimes one that fails on purpose. Every statement records itself: an INSERT into soak_runs
// (migration, statement), or, for DDL, the table it creates. So what ran can be read afterwards.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A slow statement that records itself when it ends. SQLite spins a recursive CTE. */
function slowSql(kind, version, index, ms, sqliteRowsPerMs) {
  const record = `INSERT INTO soak_runs (migration, statement) SELECT '${version}', ${index}`;
  if (kind === 'postgres') return `${record} FROM (SELECT pg_sleep(${ms / 1000})) AS s`;
  if (kind === 'mysql') return `${record} FROM (SELECT SLEEP(${ms / 1000}) AS z) AS s`;
  const rows = Math.max(1, Math.round(ms * sqliteRowsPerMs));
  return `${record} FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT COUNT(*) FROM c) AS s`;
}

function statementSql(kind, version, index, statement, sqliteRowsPerMs) {
  switch (statement.kind) {
    case 'insert':
      return `INSERT INTO soak_runs (migration, statement) VALUES ('${version}', ${index})`;
    case 'slow':
      return slowSql(kind, version, index, statement.ms, sqliteRowsPerMs);
    case 'ddl':
      return `CREATE TABLE ${ddlTable(version, index)} (id integer)`;
    case 'fail':
      return `INSERT INTO soak_runs (migration, statement) SELECT '${version}', ${index} FROM soak_no_such_table`;
  }
  throw new Error(`unknown statement kind ${statement.kind}`);
}

export const ddlTable = (version, index) => `soak_t_${version}_${index}`;

/**
 * options: { kind, failures (may one migration fail), slowMs: [min, max], slowChance,
 * needSlow (at least one slow statement, for kills mid-statement), sqliteRowsPerMs }.
 * Returns { migrations: [{ version, name, file, transactional, effectiveTransactional,
 * statements: [{ kind, sql, line }], fails }], failing: index of the failing migration or -1 }.
 */
export function generateSet(random, options) {
  const { kind } = options;
  const count = random.int(3, 8);
  const failing = options.failures && random.chance(0.35) ? random.int(0, count - 1) : -1;
  const migrations = [];
  for (let m = 0; m < count; m++) {
    const version = String(m + 1).padStart(3, '0');
    const transactional = random.chance(0.6);
    const shapes = Array.from({ length: random.int(1, 4) }, () => {
      if (random.chance(options.slowChance ?? 0.25)) {
        return { kind: 'slow', ms: random.int(options.slowMs[0], options.slowMs[1]) };
      }
      return { kind: random.chance(0.15) ? 'ddl' : 'insert' };
    });
    if (m === failing) shapes[random.int(0, shapes.length - 1)] = { kind: 'fail' };
    migrations.push({ version, name: `m${m + 1}`, transactional, shapes });
  }
  if (options.needSlow && !migrations.some((m) => m.shapes.some((s) => s.kind === 'slow'))) {
    const target = random.pick(migrations);
    target.shapes[random.int(0, target.shapes.length - 1)] = {
      kind: 'slow',
      ms: random.int(options.slowMs[0], options.slowMs[1]),
    };
  }
  for (const migration of migrations) {
    migration.file = `${migration.version}_${migration.name}.sql`;
    migration.statements = migration.shapes.map((shape, i) => ({
      ...shape,
      index: i + 1,
      line: i + 2,
      sql: statementSql(kind, migration.version, i + 1, shape, options.sqliteRowsPerMs),
    }));
    delete migration.shapes;
    migration.fails = migration.statements.some((s) => s.kind === 'fail');
    // Where DDL commits implicitly (MySQL), lockstep runs a migration with DDL outside a transaction.
    migration.effectiveTransactional =
      migration.transactional && !(kind === 'mysql' && migration.statements.some((s) => s.kind === 'ddl'));
  }
  return { migrations, failing };
}

export function fileText(migration) {
  const header = `-- migrate:up${migration.transactional ? '' : ' transaction:false'}`;
  return `${header}\n${migration.statements.map((s) => `${s.sql};\n`).join('')}`;
}

export function writeSet(dir, set) {
  mkdirSync(dir, { recursive: true });
  for (const migration of set.migrations) writeFileSync(path.join(dir, migration.file), fileText(migration));
}

/** The failing statement made to succeed (the fix a person would make), and the file rewritten. */
export function fixFailing(dir, kind, migration) {
  for (const statement of migration.statements) {
    if (statement.kind !== 'fail') continue;
    statement.kind = 'insert';
    statement.sql = statementSql(kind, migration.version, statement.index, statement, 0);
  }
  migration.fails = false;
  writeFileSync(path.join(dir, migration.file), fileText(migration));
}

/** Rows of the recursive CTE SQLite counts per millisecond on this machine. */
export async function calibrateSqlite(query) {
  const rows = 200_000;
  const t0 = performance.now();
  await query(
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT COUNT(*) AS n FROM c`,
  );
  return rows / Math.max(1, performance.now() - t0);
}
