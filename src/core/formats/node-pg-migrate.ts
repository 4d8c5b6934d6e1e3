/**
 * node-pg-migrate's SQL migrations: `-- Up Migration` and `-- Down Migration` markers, found as
 * node-pg-migrate finds them (its regular expression `^\s*--[\s-]*up\s+migration`, any case, at the
 * start of any line, the first match of each; each section from its marker to the other's, or to
 * the end of the file), and its `-- no transaction` header line. Pure.
 */
import type { SourceProblem } from '../../errors.js';
import { type FormatRead, rangeSection } from './common.js';

const marker = (direction: 'up' | 'down') => new RegExp(`^\\s*--[\\s-]*${direction}\\s+migration`, 'im');
const UP = marker('up');
const DOWN = marker('down');
const NO_TRANSACTION = /^--[ \t]*no[ \t]*transaction[ \t]*$/i;

/** Whether a SQL file has node-pg-migrate's markers: then it is read as node-pg-migrate's. */
export function hasNodePgMigrateMarker(text: string): boolean {
  return UP.test(text) || DOWN.test(text);
}

/** node-pg-migrate's `-- no transaction`: a line of the comment header before any SQL. */
function noTransaction(text: string): boolean {
  for (const line of text.split(/\r?\n/)) {
    const header = line.trim();
    if (!header) continue;
    if (!header.startsWith('--')) return false;
    if (NO_TRANSACTION.test(header)) return true;
  }
  return false;
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

export const NODE_PG_MIGRATE_NO_DOWN =
  'has no "-- Down Migration" section: it cannot be rolled back (node-pg-migrate refuses it too); add one';

export function readNodePgMigrate(text: string, file: string): FormatRead {
  const upStart = text.search(UP);
  const downStart = text.search(DOWN);
  const problems: SourceProblem[] = [];
  if (upStart < 0) {
    // node-pg-migrate would run the whole file, its down section too, as the up migration.
    problems.push({
      file,
      line: lineOf(text, downStart + (text.slice(downStart).search(/\S/) || 0)),
      problem:
        '"-- Down Migration" with no "-- Up Migration" before it: node-pg-migrate would run the whole file, this down section too, as the up migration; add "-- Up Migration" above the up SQL',
    });
    return { problems, warnings: [] };
  }
  const settings = { transaction: !noTransaction(text) };
  const upEnd = downStart < upStart ? text.length : downStart;
  const up = rangeSection(file, text, upStart, upEnd, settings);
  if (downStart < 0) return { up, noDown: NODE_PG_MIGRATE_NO_DOWN, problems, warnings: [] };
  const downEnd = upStart < downStart ? text.length : upStart;
  return { up, down: rangeSection(file, text, downStart, downEnd, settings), problems, warnings: [] };
}
