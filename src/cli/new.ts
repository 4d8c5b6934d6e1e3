import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';

const SQL_TEMPLATE = `-- migrate:up


-- migrate:down

`;

const TS_TEMPLATE = `import type { MigrationContext } from 'lockstep';

// Runs in one transaction with its ledger record; export const transaction = false to opt out.
export async function up(ctx: MigrationContext): Promise<void> {
  await ctx.exec(\`\`);
}

export async function down(ctx: MigrationContext): Promise<void> {
  await ctx.exec(\`\`);
}
`;

/** Creates `<dir>/<UTC yyyymmddhhmmss>_<name>.sql|.ts` and returns its path. */
export async function createMigrationFile(dir: string, name: string, typescript: boolean): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) {
    throw new ConfigError(`migration name "${name}" must be letters, digits, _ and - (e.g. add_users_email)`);
  }
  const version = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  await mkdir(dir, { recursive: true });
  const clash = (await readdir(dir)).find((f) => f.startsWith(`${version}_`));
  if (clash)
    throw new ConfigError(
      `${path.join(dir, clash)} already uses version ${version}; wait a second and retry`,
    );
  const file = path.join(dir, `${version}_${name}.${typescript ? 'ts' : 'sql'}`);
  await writeFile(file, typescript ? TS_TEMPLATE : SQL_TEMPLATE, { flag: 'wx' });
  return file;
}
