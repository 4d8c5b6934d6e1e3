/**
 * Prisma Migrate's folders: `<version>_<name>/migration.sql`, the whole file the migration's up;
 * `migration_lock.toml` beside them is Prisma's and ignored. Prisma has no down migrations.
 */
import { rangeSection, type Section } from './common.js';

export const PRISMA_FILE = 'migration.sql';

export const PRISMA_NO_DOWN =
  'a Prisma migration has no down (Prisma cannot roll one back either): write a new migration that undoes it, and apply that with lockstep up';

export function prismaSection(file: string, text: string): Section {
  return rangeSection(file, text, 0, text.length);
}
