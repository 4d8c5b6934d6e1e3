import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { ASYNC_NAME } from './sources.js';

const SQL_TEMPLATE = `-- async:description What this long-running migration does
-- async:parameter batch_size type:integer default:10000 keys per batch

-- Every operation needs a rollback (leave it empty when there is nothing to undo), and both must
-- be safe to run twice: a resumed run repeats the operation that was in flight.
-- async:operation
ALTER TABLE my_table ADD COLUMN IF NOT EXISTS new_column integer;
-- async:rollback
ALTER TABLE my_table DROP COLUMN IF EXISTS new_column;

-- One transaction per batch of keys [:start, :end), with its progress record.
-- async:operation batched table:my_table key:id batch_size:{{batch_size}} pause:100ms
UPDATE my_table SET new_column = 0 WHERE id >= :start AND id < :end AND new_column IS NULL;
-- async:rollback
`;

const TS_TEMPLATE = `import type { AsyncMigrationDefinition } from 'lockstep';

// A type-only import: this file needs nothing from lockstep at run time (CommonJS projects too).
export default {
  description: 'What this long-running migration does',
  parameters: { batchSize: { type: 'integer', default: 10000, description: 'keys per batch' } },
  // SQL takes a parameter as {{name}} where a literal could go; never paste one into SQL text.
  // Every operation needs a rollback ('' when there is nothing to undo), and both must be safe to
  // run twice: a resumed run repeats the operation that was in flight.
  operations: (p) => [
    {
      sql: 'ALTER TABLE my_table ADD COLUMN IF NOT EXISTS new_column integer',
      rollback: 'ALTER TABLE my_table DROP COLUMN IF EXISTS new_column',
    },
    {
      batched: { table: 'my_table', key: 'id', size: Number(p.batchSize), pause: '100ms' },
      sql: 'UPDATE my_table SET new_column = 0 WHERE id >= :start AND id < :end AND new_column IS NULL',
      rollback: '',
    },
  ],
} satisfies AsyncMigrationDefinition;
`;

/** Creates `<dir>/<name>.sql|.ts` from a template and returns its path. */
export async function createDefinitionFile(dir: string, name: string, typescript: boolean): Promise<string> {
  if (!ASYNC_NAME.test(name)) {
    throw new ConfigError(
      `long-running migration name "${name}" must be letters, digits, _ and - (e.g. 0001_backfill_emails)`,
    );
  }
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.${typescript ? 'ts' : 'sql'}`);
  try {
    await writeFile(file, typescript ? TS_TEMPLATE : SQL_TEMPLATE, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ConfigError(`${file} already exists`);
    throw error;
  }
  return file;
}
