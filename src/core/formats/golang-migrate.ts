/**
 * golang-migrate's files: `<version>_<name>.up.sql` and `<version>_<name>.down.sql`, one file per
 * direction, the whole file the direction. The name rule is golang-migrate's own
 * (source/parse.go: `^([0-9]+)_(.*)\.(down|up)\.(.*)$`): any digits, then `_`, any name (dots
 * too, or none). Pure.
 */
import type { SourceProblem } from '../../errors.js';
import { rangeSection, type Section } from './common.js';

const MAX_UINT64 = 18446744073709551615n;
const FILE = /^([0-9]+)_(.*)\.(down|up)\.(.*)$/;

export interface GolangMigrateFile {
  readonly version: string;
  readonly name: string;
  readonly direction: 'up' | 'down';
}

/** The version, name and direction of a golang-migrate SQL file's name, or undefined. */
export function golangMigrateFile(fileName: string): GolangMigrateFile | undefined {
  const match = FILE.exec(fileName);
  if (match?.[4] !== 'sql') return undefined;
  return { version: match[1] as string, name: match[2] as string, direction: match[3] as 'up' | 'down' };
}

/** One golang-migrate file read: its direction's whole text. */
export interface GolangMigratePart extends GolangMigrateFile {
  readonly file: string;
  readonly path: string;
  readonly section: Section;
}

export function golangMigratePart(
  found: GolangMigrateFile,
  file: string,
  path: string,
  text: string,
): GolangMigratePart {
  return { ...found, file, path, section: rangeSection(file, text, 0, text.length) };
}

export interface GolangMigratePair {
  readonly up: GolangMigratePart;
  readonly down?: GolangMigratePart;
}

/**
 * The up and down files of each version paired: a version with up only has no down (rolled back
 * as a no-op, as an empty down); a down without its up is refused, as are two files of one
 * direction (golang-migrate refuses both too).
 */
export function pairGolangMigrate(parts: readonly GolangMigratePart[]): {
  pairs: GolangMigratePair[];
  problems: SourceProblem[];
} {
  const byVersion = new Map<string, { up?: GolangMigratePart; down?: GolangMigratePart }>();
  const problems: SourceProblem[] = [];
  for (const part of parts) {
    // golang-migrate reads the version as a number: 1 and 01 are one version.
    const key = part.version.replace(/^0+(?=\d)/, '');
    if (BigInt(key) > MAX_UINT64) {
      problems.push({
        file: part.file,
        problem: `version ${part.version} is beyond golang-migrate's 64-bit versions (at most ${MAX_UINT64}): golang-migrate skips this file; rename it with a smaller version`,
      });
      continue;
    }
    const entry = byVersion.get(key) ?? {};
    const other = entry[part.direction];
    if (other) {
      problems.push({
        file: part.file,
        problem: `a second ${part.direction} file for version ${part.version}, also ${other.file} (golang-migrate refuses it too)`,
      });
      continue;
    }
    entry[part.direction] = part;
    byVersion.set(key, entry);
  }
  const pairs: GolangMigratePair[] = [];
  for (const { up, down } of byVersion.values()) {
    if (up) pairs.push(down ? { up, down } : { up });
    else if (down)
      problems.push({
        file: down.file,
        problem: `a down file without its up file (${down.version}_${down.name}.up.sql): a migration is applied by its up file; add it, or delete this file`,
      });
  }
  return { pairs, problems };
}
