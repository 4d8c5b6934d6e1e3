import type { SourceProblem } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import type { MigrationSettings } from './migration.js';

/** One `-- migrate:up` or `-- migrate:down` section of a dbmate-format SQL file. */
export interface SqlSection {
  readonly text: string;
  /** Offset of `text` in the file. */
  readonly offset: number;
  /** 1-based line of the marker. */
  readonly markerLine: number;
  readonly settings: MigrationSettings;
  /** The marker's options as written, part of the checksum. */
  readonly optionsText: string;
}

export interface ParsedSqlFile {
  readonly up?: SqlSection;
  readonly down?: SqlSection;
  /** What makes the file unusable: it is refused. */
  readonly problems: SourceProblem[];
  /** What dbmate accepts and lockstep would not write: the file loads, the user is told. */
  readonly warnings: SourceProblem[];
}

/**
 * A marker exactly as dbmate reads one: at the start of a line, `up` or `down` followed by
 * whitespace or the end of the line (`-- migrate:upgrade` is a comment). Go's `\s` is ASCII.
 */
const MARKER = /^--[\t\f\r ]*migrate:(up|down)(?:[\t\f\r ](.*))?$/s;
/** A line that looks like a marker and is not one: said, since its SQL lands in the section above. */
const NEAR_MARKER = /^\s*--\s*migrate\s*:/i;
const SPACE = /[\t\n\f\r ]+/;
const KNOWN = 'transaction, lock_timeout, lock_retries, timeout, requires';

/** Whether a file has a dbmate marker line: then it is read as dbmate's, whatever its name. */
export function hasDbmateMarker(text: string): boolean {
  // Every file is read at each boot: one without the word has no marker, and is not split.
  if (!text.includes('migrate:')) return false;
  return text.split('\n').some((line) => MARKER.test(line.replace(/\r$/, '')));
}

interface Marker {
  readonly direction: 'up' | 'down';
  readonly line: number;
  readonly start: number;
  readonly bodyStart: number;
  readonly options: string;
}

/**
 * Parses dbmate's format: `-- migrate:up [options]`, then optionally `-- migrate:down
 * [options]`. What dbmate refuses is refused; what dbmate accepts loads, with a warning where
 * lockstep reads it more strictly (an option it does not know, a line that looks like a marker).
 * Pure.
 */
export function parseSqlFile(text: string, file: string): ParsedSqlFile {
  const problems: SourceProblem[] = [];
  const warnings: SourceProblem[] = [];
  const markers: Marker[] = [];
  const nearMarkers: number[] = [];
  let offset = 0;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    const bare = line.replace(/\r$/, '');
    const match = MARKER.exec(bare);
    if (match) {
      markers.push({
        direction: match[1] as 'up' | 'down',
        line: lineNo,
        start: offset,
        bodyStart: offset + line.length + 1,
        options: (match[2] ?? '').trim(),
      });
    } else if (NEAR_MARKER.test(bare)) {
      nearMarkers.push(lineNo);
    }
    offset += line.length + 1;
  }

  const firstUp = markers.findIndex((m) => m.direction === 'up');
  if (firstUp < 0)
    problems.push({ file, problem: 'no "-- migrate:up" section (dbmate format: "-- migrate:up", then SQL)' });
  // Before the first up marker, as in dbmate: comment lines and blank lines only.
  const preamble = text.slice(0, markers[firstUp]?.start ?? text.length);
  const stray = preamble.split('\n').findIndex((l) => !/^[\t\f\r ]*$/.test(l) && !/^[\t\f\r ]*--/.test(l));
  if (stray >= 0) {
    problems.push({
      file,
      line: stray + 1,
      problem: 'SQL before the first "-- migrate:up" marker would never run; move it into a section',
    });
  }
  if (firstUp < 0) return { problems, warnings };
  // With nothing but comments under it (else `stray` above), dbmate reads it as a comment too.
  for (const early of stray < 0 ? markers.slice(0, firstUp) : []) {
    warnings.push({
      file,
      line: early.line,
      problem: '"-- migrate:down" before "-- migrate:up" is read as a comment; remove it',
    });
  }

  const sections: Partial<Record<'up' | 'down', SqlSection>> = {};
  const rest = markers.slice(firstUp);
  for (const [index, marker] of rest.entries()) {
    if (marker.direction === 'up' && sections.up) {
      // What follows belongs to a migration of its own; its markers are not this one's.
      problems.push({
        file,
        line: marker.line,
        problem:
          'a second "-- migrate:up" section: one migration per file (dbmate records the version again at the second section and fails there); move it to a file of its own',
      });
      break;
    }
    if (sections[marker.direction]) {
      problems.push({
        file,
        line: marker.line,
        problem: 'a second "-- migrate:down" section (dbmate refuses it too); keep one',
      });
      continue;
    }
    const end = rest[index + 1]?.start ?? text.length;
    const bodyStart = Math.min(marker.bodyStart, text.length);
    sections[marker.direction] = {
      text: text.slice(bodyStart, end),
      offset: bodyStart,
      markerLine: marker.line,
      settings: parseOptions(marker.options, { file, line: marker.line, problems, warnings }),
      optionsText: marker.options,
    };
  }

  for (const line of nearMarkers) {
    const problem = `not a marker, read as a comment: a marker is "-- migrate:up" or "-- migrate:down" at the start of a line, then a space or the end of the line`;
    // After up without a down marker, its SQL would run as part of up; dbmate refuses such a file.
    if (sections.down || line < (sections.up?.markerLine ?? 0)) warnings.push({ file, line, problem });
    else problems.push({ file, line, problem: `${problem}; this file has no real "-- migrate:down"` });
  }
  return { ...sections, problems, warnings };
}

interface Report {
  readonly file: string;
  readonly line: number;
  readonly problems: SourceProblem[];
  readonly warnings: SourceProblem[];
}

/**
 * The marker's options, read as dbmate reads them: whitespace-separated `key:value` pairs, the
 * last of a key winning (`requires` adds up), anything else ignored. lockstep's own options with a bad value are
 * refused; what dbmate would ignore is a warning, except words after a `--` (a comment).
 */
function parseOptions(options: string, report: Report): MigrationSettings {
  const { file, line } = report;
  let transaction = true;
  let lockTimeoutMs: number | null | undefined;
  let lockRetries: number | undefined;
  let timeoutMs: number | null | undefined;
  const requires: string[] = [];
  let comment = false;
  const ignored: string[] = [];
  for (const option of options.split(SPACE).filter(Boolean)) {
    if (option.startsWith('--')) comment = true;
    const pair = option.split(':');
    const [key, value] = pair as [string, string];
    const bad = (expected: string) =>
      report.problems.push({ file, line, problem: `option "${option}": ${key} takes ${expected}` });
    if (pair.length !== 2) {
      if (!comment) ignored.push(option);
      continue;
    }
    switch (key) {
      case 'transaction':
        transaction = value !== 'false';
        if (value !== 'true' && value !== 'false')
          report.warnings.push({
            file,
            line,
            problem: `option "${option}" is read as transaction:true, as dbmate reads it (only transaction:false turns the transaction off)`,
          });
        break;
      case 'lock_timeout': {
        const ms = value === 'off' ? null : parseDuration(value);
        if (ms === undefined) bad('a duration such as 2s or 500ms, or off');
        else lockTimeoutMs = ms;
        break;
      }
      case 'lock_retries':
        if (/^\d+$/.test(value)) lockRetries = Number(value);
        else bad('a whole number');
        break;
      case 'timeout': {
        const ms = value === 'off' ? null : parseDuration(value);
        if (ms === undefined || ms === 0) bad('a duration above zero such as 30m or 2h, or off');
        else timeoutMs = ms;
        break;
      }
      case 'requires':
        if (/^[A-Za-z0-9][A-Za-z0-9_-]*(,[A-Za-z0-9][A-Za-z0-9_-]*)*$/.test(value))
          requires.push(...value.split(','));
        else bad('long-running migration names, comma-separated');
        break;
      default:
        if (!comment) ignored.push(option);
    }
  }
  if (ignored.length > 0) {
    report.warnings.push({
      file,
      line,
      problem: `ignored ${ignored.map((o) => `"${o}"`).join(', ')} after the marker, as dbmate does: lockstep's options are ${KNOWN} (as key:value); a comment there starts with --`,
    });
  }
  return {
    transaction,
    lockTimeoutMs,
    lockRetries,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(requires.length > 0 ? { requires } : {}),
  };
}
