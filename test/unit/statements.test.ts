/** What migrations and long-running migrations share about running statements and reading sources. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSourceFileName, withoutExtension } from '../../src/core/sources.js';
import { runsInTransaction } from '../../src/core/statements.js';
import { fileLine } from '../../src/sql/split.js';
import { durationMs } from '../../src/util/duration.js';

describe('runsInTransaction', () => {
  const postgres = { transactionalDdl: true };
  const mysql = {
    transactionalDdl: false,
    isTransactionalStatement: (sql: string) => !/^\s*create/i.test(sql),
  };
  const dml = [{ sql: 'UPDATE t SET a = 1' }];
  const ddl = [{ sql: 'UPDATE t SET a = 1' }, { sql: 'CREATE TABLE u (id int)' }];

  it('never when the statements ask not to', () =>
    assert.equal(runsInTransaction(postgres, false, dml), false));
  it('always where DDL is transactional', () =>
    assert.equal(runsInTransaction(postgres, true, undefined), true));
  it('where DDL commits, only a list of DML statements', () => {
    assert.equal(runsInTransaction(mysql, true, dml), true);
    assert.equal(runsInTransaction(mysql, true, ddl), false);
    assert.equal(runsInTransaction(mysql, true, undefined), false, 'not known in advance: no');
    assert.equal(runsInTransaction({ transactionalDdl: false }, true, dml), false, 'no test: no');
  });
});

describe('fileLine', () => {
  it('is the line of an offset in a piece of a file that starts at a given line', () => {
    assert.equal(fileLine(10, 'SELECT 1;\nSELECT 2;', 0), 10);
    assert.equal(fileLine(10, 'SELECT 1;\nSELECT 2;', 12), 11);
  });
});

describe('source file names', () => {
  it('are SQL or modules, neither hidden nor type declarations', () => {
    for (const name of ['001_a.sql', '001_a.ts', 'backfill.mts', 'x.js', 'x.mjs'])
      assert.ok(isSourceFileName(name), name);
    for (const name of ['README.md', '.001_a.sql', 'types.d.ts', '001_a.sql.bak'])
      assert.ok(!isSourceFileName(name), name);
  });
  it('lose only their last extension', () => {
    assert.equal(withoutExtension('001_a.sql'), '001_a');
    assert.equal(withoutExtension('0001_backfill.v2.ts'), '0001_backfill.v2');
  });
});

describe('durationMs', () => {
  it('takes ms or a duration as written, nothing else', () => {
    assert.equal(durationMs(1500), 1500);
    assert.equal(durationMs('2s'), 2000);
    assert.equal(durationMs('soon'), undefined);
    assert.equal(durationMs(true), undefined);
    assert.equal(durationMs(undefined), undefined);
  });
});
