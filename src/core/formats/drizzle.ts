/**
 * Drizzle Kit's migrations folder: `meta/_journal.json` lists the migrations (entries
 * `{ idx, version, when, tag, breakpoints }`), each `<tag>.sql` beside it, the whole file the up,
 * its statements separated by `--> statement-breakpoint` exactly where Drizzle's migrator splits
 * (`sql.split('--> statement-breakpoint')`, anywhere in the text); each piece is then split by
 * lockstep's splitter (a file written without breakpoints holds several statements in one piece),
 * which never splits inside a string or comment. Drizzle has no down migrations.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SourceError, type SourceProblem } from '../../errors.js';
import { type SplitDialect, splitStatements } from '../../sql/split.js';
import { isObject } from '../../util/objects.js';
import type { SqlStatement } from '../migration.js';
import { IN_TRANSACTION, type Section, splitRange } from './common.js';

export const DRIZZLE_JOURNAL = path.join('meta', '_journal.json');
export const BREAKPOINT = '--> statement-breakpoint';

export const DRIZZLE_NO_DOWN =
  'a Drizzle migration has no down (Drizzle cannot roll one back either): write a new migration that undoes it, and apply that with lockstep up';

export interface DrizzleJournal {
  /** The journal file, as shown. */
  readonly file: string;
  /** The `.sql` file names the journal lists. */
  readonly files: ReadonlySet<string>;
  /** Each entry's tag by its `when` (what drizzle-orm records as a migration's `created_at`). */
  readonly tagsByWhen: ReadonlyMap<number, string>;
  readonly problems: SourceProblem[];
}

/**
 * The folder's Drizzle journal, or undefined when it has none. `shown` turns a path into how
 * messages show it.
 */
export function readDrizzleJournal(
  dir: string,
  shown: (fullPath: string) => string,
): DrizzleJournal | undefined {
  const fullPath = path.join(dir, DRIZZLE_JOURNAL);
  let text: string;
  try {
    text = readFileSync(fullPath, 'utf8');
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
    )
      return undefined;
    return {
      file: shown(fullPath),
      files: new Set(),
      tagsByWhen: new Map(),
      problems: [{ file: shown(fullPath), problem: `cannot be read: ${(error as Error).message}` }],
    };
  }
  return parseDrizzleJournal(text, shown(fullPath));
}

/** A journal's text: the file names of its entries, or what is wrong with it (with its line). */
export function parseDrizzleJournal(text: string, file: string): DrizzleJournal {
  const problems: SourceProblem[] = [];
  const files = new Set<string>();
  const tagsByWhen = new Map<number, string>();
  let journal: unknown;
  try {
    journal = JSON.parse(text);
  } catch (error) {
    const at = /position (\d+)/.exec((error as Error).message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    problems.push({
      file,
      ...(line ? { line } : {}),
      problem: `is not valid JSON (${(error as Error).message}): Drizzle Kit writes it; restore it`,
    });
    return { file, files, tagsByWhen, problems };
  }
  const entries = isObject(journal) ? journal.entries : undefined;
  if (!Array.isArray(entries)) {
    problems.push({ file, problem: 'has no "entries" list: it is not a Drizzle Kit journal' });
    return { file, files, tagsByWhen, problems };
  }
  entries.forEach((entry, index) => {
    const tag = isObject(entry) ? entry.tag : undefined;
    if (typeof tag !== 'string' || tag === '' || tag.includes('/') || tag.includes('\\')) {
      problems.push({
        file,
        line: entryLine(text, index),
        problem: `entry ${index} has no "tag" naming its .sql file`,
      });
      return;
    }
    if (!/^\d/.test(tag))
      problems.push({
        file,
        line: entryLine(text, index),
        problem: `entry ${index} ("${tag}"): lockstep's version is the tag's leading digits, and it has none`,
      });
    files.add(`${tag}.sql`);
    if (typeof entry.when === 'number') tagsByWhen.set(entry.when, tag);
  });
  return { file, files, tagsByWhen, problems };
}

/** The line of the index-th `"tag"` of the journal's text (Drizzle Kit writes one per entry). */
function entryLine(text: string, index: number): number | undefined {
  let at = -1;
  for (let i = 0; i <= index; i++) {
    at = text.indexOf('"tag"', at + 1);
    if (at < 0) return undefined;
  }
  return text.slice(0, at).split('\n').length;
}

/** Where Drizzle's migrator splits the file: the ranges between breakpoints. */
export function drizzlePieces(text: string): { start: number; end: number }[] {
  const pieces: { start: number; end: number }[] = [];
  let start = 0;
  for (let at = text.indexOf(BREAKPOINT); at >= 0; at = text.indexOf(BREAKPOINT, start)) {
    pieces.push({ start, end: at });
    start = at + BREAKPOINT.length;
  }
  pieces.push({ start, end: text.length });
  return pieces;
}

/** Whether `piece` ends inside a string, block comment or body: a `;` after it ends no statement. */
function endsOpen(piece: string, dialect: SplitDialect): boolean {
  const probe = 'SELECT 1';
  const statements = splitStatements(`${piece}\n;${probe}`, dialect);
  return statements.at(-1)?.sql !== probe;
}

export function drizzleSection(file: string, text: string): Section {
  return {
    file,
    settings: IN_TRANSACTION,
    checksumText: `\n${text.trimEnd()}`,
    statements: (dialect) => {
      const pieces = drizzlePieces(text);
      pieces.slice(0, -1).forEach(({ start, end }) => {
        if (endsOpen(text.slice(start, end), dialect))
          throw new SourceError([
            {
              file,
              line: text.slice(0, end).split('\n').length,
              problem: `"${BREAKPOINT}" inside a string, comment or statement body: Drizzle's migrator splits there too and runs the two halves; move it after the statement's ";"`,
            },
          ]);
      });
      return pieces.flatMap(({ start, end }): SqlStatement[] => splitRange(text, start, end, dialect));
    },
  };
}
