/**
 * Careless input in the long-running migrations' folder gets the same answers as in the migrations
 * folder: a file that cannot be used is refused with its reason, never skipped, never waited on.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readDefinitionFiles } from '../../src/async/sources.js';
import { createSqliteDriver } from '../../src/drivers/sqlite/index.js';
import { SourceError } from '../../src/errors.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'lockstep-async-sources-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
// Made without connecting: loading needs only its dialect and lexer.
const sqlite = createSqliteDriver('sqlite:/tmp/lockstep-never-opened.db', {
  table: 't',
  runnerId: 'r',
}).dialect;

const GOOD = '-- async:description d\n-- async:operation\nSELECT 1;\n-- async:rollback\n';

const CASES: [string, (file: string) => void, RegExp][] = [
  ['a FIFO', (file) => execFileSync('mkfifo', [file]), /not a regular file \(a FIFO/],
  [
    'a dangling symbolic link',
    (file) => symlinkSync(path.join(scratch, 'gone.sql'), file),
    /symbolic link to .*gone\.sql, which does not exist/,
  ],
  ['a folder', (file) => mkdirSync(file), /is a directory/],
  [
    'invalid UTF-8',
    (file) => writeFileSync(file, Buffer.concat([Buffer.from(GOOD), Buffer.from([0x53, 0xc3, 0x28])])),
    /:5:2: not valid UTF-8 \(byte 0xc3\)/,
  ],
  [
    'a module that is a FIFO',
    (file) => execFileSync('mkfifo', [file.replace(/\.sql$/, '.ts')]),
    /not a regular file/,
  ],
];

describe('long-running migration files that cannot be used', () => {
  let n = 0;
  for (const [what, make, expected] of CASES) {
    it(`${what}: refused with its reason when loaded`, async () => {
      const dir = path.join(scratch, `d${++n}`);
      mkdirSync(dir);
      make(path.join(dir, 'bad.sql'));
      const files = await readDefinitionFiles(dir, scratch);
      assert.equal(files.length, 1, 'listed, not skipped');
      await assert.rejects(files[0]?.load(sqlite) as Promise<unknown>, (error: unknown) => {
        assert.ok(error instanceof SourceError, String(error));
        assert.match(error.message, expected);
        return true;
      });
    });
  }

  it('a UTF-8 byte order mark is accepted', async () => {
    const dir = path.join(scratch, 'bom');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'ok.sql'), `\ufeff${GOOD}`);
    const [file] = await readDefinitionFiles(dir, scratch);
    const loaded = await file?.load(sqlite);
    assert.equal(loaded?.description, 'd');
  });
});
