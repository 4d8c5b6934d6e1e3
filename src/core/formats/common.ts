/**
 * What every migration file format gives the sources: one direction as statements, its settings
 * and what its checksum covers. Each other tool's format (golang-migrate, goose, node-pg-migrate,
 * Prisma, Drizzle) is one module beside this one; sources.ts dispatches to them.
 */
import type { SourceProblem } from '../../errors.js';
import { lineFinder, type SplitDialect, splitStatements } from '../../sql/split.js';
import type { MigrationSettings, SqlStatement } from '../migration.js';

/** One direction of a migration file, not yet split for a database. */
export interface Section {
  /** The file this direction is in, as shown (golang-migrate keeps down in a file of its own). */
  readonly file: string;
  readonly settings: MigrationSettings;
  /** What the migration's checksum covers (the up direction's). */
  readonly checksumText: string;
  /** Its statements for a database's syntax, each with its offset and line in `file`. */
  statements(dialect: SplitDialect): SqlStatement[];
}

/** What reading one file in a format gives: directions, or why the file cannot be used. */
export interface FormatRead {
  readonly up?: Section;
  readonly down?: Section;
  /** Why there is no down, when rolling back must be refused rather than be a no-op. */
  readonly noDown?: string;
  readonly problems: SourceProblem[];
  readonly warnings: SourceProblem[];
}

export const IN_TRANSACTION: MigrationSettings = { transaction: true };

/** `fileText[start, end)` split by lockstep's splitter, positions in the file. */
export function splitRange(
  fileText: string,
  start: number,
  end: number,
  dialect: SplitDialect,
): SqlStatement[] {
  const lineOf = lineFinder(fileText);
  return splitStatements(fileText.slice(start, end), dialect).map((s) => {
    const offset = start + s.offset;
    return { sql: s.sql, offset, line: lineOf(offset) };
  });
}

/** A whole range of a file as one direction, split by lockstep's splitter. */
export function rangeSection(
  file: string,
  fileText: string,
  start: number,
  end: number,
  settings: MigrationSettings = IN_TRANSACTION,
): Section {
  return {
    file,
    settings,
    checksumText: `\n${fileText.slice(start, end).trimEnd()}`,
    statements: (dialect) => splitRange(fileText, start, end, dialect),
  };
}

/** Offsets where each line of `text` starts (split on `\n`; a `\r` before it stays in the line). */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}
