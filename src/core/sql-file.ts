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
  readonly problems: SourceProblem[];
}

const MARKER = /^--\s*migrate:(\w+)(.*)$/;

/** Parses dbmate's format: `-- migrate:up [options]`, `-- migrate:down [options]`. Pure. */
export function parseSqlFile(text: string, file: string): ParsedSqlFile {
  const problems: SourceProblem[] = [];
  const markers: { direction: string; line: number; start: number; bodyStart: number; options: string }[] =
    [];
  let offset = 0;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    const match = MARKER.exec(line.replace(/\r$/, ''));
    if (match) {
      markers.push({
        direction: match[1] as string,
        line: lineNo,
        start: offset,
        bodyStart: offset + line.length + 1,
        options: (match[2] ?? '').trim(),
      });
    }
    offset += line.length + 1;
  }

  const sections: Partial<Record<'up' | 'down', SqlSection>> = {};
  markers.forEach((marker, index) => {
    if (marker.direction !== 'up' && marker.direction !== 'down') {
      problems.push({
        file,
        line: marker.line,
        problem: `unknown marker "-- migrate:${marker.direction}" (expected migrate:up or migrate:down)`,
      });
      return;
    }
    if (sections[marker.direction]) {
      problems.push({
        file,
        line: marker.line,
        problem: `a second "-- migrate:${marker.direction}" section`,
      });
      return;
    }
    const end = markers[index + 1]?.start ?? text.length;
    const bodyStart = Math.min(marker.bodyStart, text.length);
    sections[marker.direction] = {
      text: text.slice(bodyStart, end),
      offset: bodyStart,
      markerLine: marker.line,
      settings: parseOptions(marker.options, file, marker.line, problems),
      optionsText: marker.options,
    };
  });

  if (!sections.up && !markers.some((m) => m.direction === 'up')) {
    problems.push({ file, problem: 'no "-- migrate:up" section (dbmate format: "-- migrate:up", then SQL)' });
  }
  const firstMarker = markers[0]?.start ?? text.length;
  const preamble = text.slice(0, firstMarker);
  const stray = preamble.split('\n').findIndex((l) => l.trim() !== '' && !l.trim().startsWith('--'));
  if (stray >= 0) {
    problems.push({
      file,
      line: stray + 1,
      problem: 'SQL before the first "-- migrate:" marker would never run; move it into a section',
    });
  }
  return { ...sections, problems };
}

function parseOptions(
  options: string,
  file: string,
  line: number,
  problems: SourceProblem[],
): MigrationSettings {
  let transaction = true;
  let lockTimeoutMs: number | null | undefined;
  let lockRetries: number | undefined;
  let timeoutMs: number | null | undefined;
  const requires: string[] = [];
  for (const option of options.split(/\s+/).filter(Boolean)) {
    const [key, value = ''] = option.split(':', 2) as [string, string?];
    const bad = (expected: string) =>
      problems.push({ file, line, problem: `option "${option}": ${key} takes ${expected}` });
    switch (key) {
      case 'transaction':
        if (value === 'true' || value === 'false') transaction = value === 'true';
        else bad('true or false');
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
        problems.push({
          file,
          line,
          problem: `unknown option "${option}" (known: transaction:false, lock_timeout:<duration>|off, lock_retries:<n>, timeout:<duration>|off, requires:<long-running migration>)`,
        });
    }
  }
  return {
    transaction,
    lockTimeoutMs,
    lockRetries,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(requires.length > 0 ? { requires } : {}),
  };
}
