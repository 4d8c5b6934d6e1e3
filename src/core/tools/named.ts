import { compareVersions } from '../migration.js';
import { folderVersion, leadingVersion } from './rows.js';
import type { FolderMigration, ToolState } from './tool.js';

/**
 * A history that names each applied migration by its file (knex, node-pg-migrate) or folder
 * (Prisma): the version is the name's leading digits, as lockstep reads the folder.
 */
export function namedHistory(
  entries: readonly { readonly name: string; readonly at: string | null }[],
  migrations: readonly FolderMigration[],
): Pick<ToolState, 'applied' | 'unmapped'> & { failed: [] } {
  const applied: { version: string; at: string | null }[] = [];
  const unmapped: { key: string; why: string }[] = [];
  for (const { name, at } of entries) {
    const version = leadingVersion(name);
    if (version === null) {
      unmapped.push({
        key: name,
        why: 'its name does not start with a version, which is how lockstep orders migrations',
      });
      continue;
    }
    const inFolder = folderVersion(version, migrations);
    if (applied.some((a) => compareVersions(a.version, inFolder) === 0)) {
      unmapped.push({ key: name, why: `another applied migration has the same version ${version}` });
      continue;
    }
    applied.push({ version: inFolder, at });
  }
  applied.sort((a, b) => compareVersions(a.version, b.version));
  return { applied, failed: [], unmapped };
}
