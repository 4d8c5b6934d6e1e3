/**
 * goose's SQL migrations (`-- +goose Up`, `-- +goose Down`, `-- +goose StatementBegin` /
 * `StatementEnd`, `-- +goose NO TRANSACTION`, `-- +goose ENVSUB ON/OFF`), read as goose's parser
 * (internal/sqlparser) reads them: line by line, a statement ending at a line whose last word
 * before a `--` ends with `;`, a StatementBegin/End block one statement. What goose refuses is
 * refused, with the line goose stops at. Each plain statement goose finds is then split by
 * lockstep's splitter (`SELECT 1; SELECT 2;` on one line is two), a block never. Pure.
 */
import type { SourceProblem } from '../../errors.js';
import { lineFinder, splitStatements } from '../../sql/split.js';
import type { SqlStatement } from '../migration.js';
import type { FormatRead, Section } from './common.js';

/** Go's unicode.IsSpace, which strings.TrimSpace and bufio.ScanWords use (not JavaScript's \s). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');
const WORDS = new RegExp(`[^${GO_SPACE}]+`, 'g');
const LEADING_SPACE = new RegExp(`^[${GO_SPACE}]*`);

export function goTrim(text: string): string {
  return text.replace(TRIM, '');
}

const ANNOTATIONS = [
  'Up',
  'Down',
  'StatementBegin',
  'StatementEnd',
  'NO TRANSACTION',
  'ENVSUB ON',
  'ENVSUB OFF',
] as const;
type Annotation = (typeof ANNOTATIONS)[number];

/** A line goose reads as an annotation: a comment (after white space) that holds `+goose`. */
export function isGooseAnnotationLine(line: string): boolean {
  return goTrim(line).startsWith('--') && line.includes('+goose');
}

/** Whether a file holds a goose annotation line: then it is read as goose's. */
export function hasGooseAnnotation(text: string): boolean {
  return text.split('\n').some((line) => isGooseAnnotationLine(line.replace(/\r$/, '')));
}

/** goose's extractAnnotation: the annotation, or why the line is refused. */
export function gooseAnnotation(line: string): Annotation | { problem: string } {
  if (line.startsWith(' ') || line.startsWith('\t'))
    return {
      problem:
        'a goose annotation must start at the beginning of the line (goose refuses leading white space)',
    };
  let command = line.replaceAll('--', '').replace('+goose', '');
  if (command.includes('+goose')) return { problem: 'more than one "+goose" on the line (goose refuses it)' };
  command = goTrim(command);
  if (command === '') return { problem: 'an empty goose annotation (goose refuses it)' };
  const known = ANNOTATIONS.find((a) => a.toLowerCase() === command.toLowerCase());
  if (known) return known;
  return {
    problem: `"${command}" is not a goose annotation (goose refuses the file): goose knows ${ANNOTATIONS.join(', ')}; a comment that mentions +goose is read as one`,
  };
}

/** goose's endsWithSemicolon: the last word before one starting with `--` ends with `;`. */
export function gooseEndsWithSemicolon(line: string): boolean {
  let previous = '';
  for (const [word] of line.matchAll(WORDS)) {
    if (word.startsWith('--')) break;
    previous = word;
  }
  return previous.endsWith(';');
}

/** One statement as goose finds it: its range in the file, and whether a block made it. */
export interface GooseUnit {
  readonly start: number;
  readonly end: number;
  readonly block: boolean;
  /** The statement goose runs (its buffer, trimmed). */
  readonly sql: string;
}

export interface ParsedGoose {
  readonly up: GooseUnit[];
  readonly down: GooseUnit[];
  readonly transaction: boolean;
  readonly problems: SourceProblem[];
  readonly warnings: SourceProblem[];
}

type State = 'start' | 'up' | 'beginUp' | 'endUp' | 'down' | 'beginDown' | 'endDown';

interface Line {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly number: number;
}

/** bufio.Scanner's lines: split on \n, a \r before it dropped, no empty line after a final \n. */
function scanLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  let number = 0;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    const stop = newline < 0 ? text.length : newline;
    const end = stop > start && text.charCodeAt(stop - 1) === 13 ? stop - 1 : stop;
    lines.push({ text: text.slice(start, end), start, end, number: ++number });
    start = stop + 1;
  }
  return lines;
}

/** goose's ParseSQLMigration for one direction: its statements, or the first problem with its line. */
function parseDirection(
  lines: readonly Line[],
  direction: 'up' | 'down',
  file: string,
): { units: GooseUnit[]; transaction: boolean; problem?: SourceProblem; envsub: SourceProblem[] } {
  const units: GooseUnit[] = [];
  const envsub: SourceProblem[] = [];
  let state: State = 'start';
  let transaction = true;
  let substituting = false;
  let substitutingFrom = 0;
  // The buffer: lines from `bufStart` to `bufEnd`, as offsets in the file.
  let bufStart = -1;
  let bufEnd = -1;
  let bufText = '';
  const reset = () => {
    bufStart = -1;
    bufEnd = -1;
    bufText = '';
  };
  const fail = (line: number, problem: string) => ({
    units,
    transaction,
    envsub,
    problem: { file, line, problem },
  });
  const store = (block: boolean) => {
    units.push({ start: bufStart, end: bufEnd, block, sql: goTrim(bufText) });
    reset();
  };
  let lastLine = 0;
  let blockLines = 0;
  for (const line of lines) {
    lastLine = line.number;
    if (state === 'start' && goTrim(line.text) === '') continue;
    if (isGooseAnnotationLine(line.text)) {
      const annotation = gooseAnnotation(line.text);
      if (typeof annotation !== 'string') return fail(line.number, annotation.problem);
      let next = false;
      switch (annotation) {
        case 'Up':
          if (state !== 'start')
            return fail(line.number, 'a second "-- +goose Up" (goose refuses it): one migration per file');
          state = 'up';
          next = true;
          break;
        case 'Down':
          if (state !== 'up' && state !== 'endUp')
            return fail(
              line.number,
              state === 'start'
                ? '"-- +goose Down" before "-- +goose Up" (goose refuses it): a goose file starts with "-- +goose Up"'
                : state === 'beginUp'
                  ? '"-- +goose Down" inside a StatementBegin block: end it with "-- +goose StatementEnd" first (goose refuses it)'
                  : 'a second "-- +goose Down" (goose refuses it)',
            );
          if (goTrim(bufText) !== '')
            return fail(
              line.number,
              `the up statement before "-- +goose Down" does not end with ";" at the end of a line (goose refuses it: missing semicolon): ${JSON.stringify(goTrim(bufText).slice(0, 80))}`,
            );
          state = 'down';
          next = true;
          break;
        case 'StatementBegin':
          blockLines = 0;
          if (state === 'up' || state === 'endUp') state = 'beginUp';
          else if (state === 'down' || state === 'endDown') state = 'beginDown';
          else
            return fail(
              line.number,
              state === 'start'
                ? '"-- +goose StatementBegin" before "-- +goose Up" (goose refuses it)'
                : 'a "-- +goose StatementBegin" inside another: end the first with "-- +goose StatementEnd" (goose refuses it)',
            );
          next = true;
          break;
        case 'StatementEnd':
          if (state === 'beginUp') state = 'endUp';
          else if (state === 'beginDown') state = 'endDown';
          else
            return fail(
              line.number,
              '"-- +goose StatementEnd" without a "-- +goose StatementBegin" before it (goose refuses it)',
            );
          if (blockLines === 0)
            // goose would then drop the next SQL line and run an empty statement: refused instead.
            return fail(
              line.number,
              'an empty StatementBegin/StatementEnd block: goose would drop the line after it; remove the block',
            );
          break;
        case 'NO TRANSACTION':
          transaction = false;
          next = true;
          break;
        case 'ENVSUB ON':
          if (!substituting) substitutingFrom = line.number;
          substituting = true;
          next = true;
          break;
        case 'ENVSUB OFF':
          substituting = false;
          next = true;
          break;
      }
      if (next) continue;
    }
    // Comments and empty lines before a statement are not part of it.
    if (bufStart < 0 && (goTrim(line.text).startsWith('--') || line.text === '')) continue;
    if (state !== 'endUp' && state !== 'endDown') {
      if (substituting && line.text.includes('$'))
        envsub.push({
          file,
          line: line.number,
          problem: `"-- +goose ENVSUB ON" (line ${substitutingFrom}) has goose replace $NAME, \${NAME} and $$ here; lockstep does not substitute, so it would run other SQL than goose: write the value, or end the substitution before this line with "-- +goose ENVSUB OFF"`,
        });
      if (state === 'beginUp' || state === 'beginDown') blockLines++;
      if (bufStart < 0) bufStart = line.start;
      bufEnd = line.end;
      bufText += `${line.text}\n`;
    }
    const inUp = state === 'up' || state === 'beginUp' || state === 'endUp';
    const inDown = state === 'down' || state === 'beginDown' || state === 'endDown';
    if (!inUp && !inDown)
      return fail(
        line.number,
        'SQL before "-- +goose Up" (goose refuses it): a goose file starts with "-- +goose Up"',
      );
    if ((inUp && direction === 'down') || (inDown && direction === 'up')) {
      reset();
      continue;
    }
    if (state === 'up' || state === 'down') {
      if (gooseEndsWithSemicolon(line.text)) store(false);
    } else if (state === 'endUp' || state === 'endDown') {
      store(true);
      state = state === 'endUp' ? 'up' : 'down';
    }
  }
  if (state === 'start')
    return fail(
      1,
      'no "-- +goose Up" annotation (goose refuses the file): a goose file starts with "-- +goose Up"',
    );
  if (state === 'beginUp' || state === 'beginDown')
    return fail(
      lastLine,
      'a "-- +goose StatementBegin" without its "-- +goose StatementEnd" (goose refuses it)',
    );
  if (goTrim(bufText) !== '') {
    const at = lines.find((l) => l.start <= bufStart && bufStart <= l.end)?.number ?? lastLine;
    return fail(
      at,
      `the last ${direction} statement does not end with ";" at the end of a line (goose refuses it: missing semicolon)`,
    );
  }
  return { units, transaction, envsub };
}

/** Parses a goose SQL file in both directions, as goose does before it runs either. */
export function parseGoose(text: string, file: string): ParsedGoose {
  const lines = scanLines(text);
  const up = parseDirection(lines, 'up', file);
  const down = parseDirection(lines, 'down', file);
  const problems: SourceProblem[] = [];
  const seen = new Set<string>();
  for (const p of [up.problem, down.problem, ...up.envsub, ...down.envsub]) {
    if (!p) continue;
    const key = `${p.line}\0${p.problem}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(p);
  }
  const warnings: SourceProblem[] = [];
  if (up.envsub.length === 0 && down.envsub.length === 0)
    for (const line of lines)
      if (isGooseAnnotationLine(line.text) && gooseAnnotation(line.text) === 'ENVSUB ON')
        warnings.push({
          file,
          line: line.number,
          problem:
            'lockstep does not substitute environment variables; no line this covers holds a $, so the SQL is the same as goose would run',
        });
  return { up: up.units, down: down.units, transaction: up.transaction, problems, warnings };
}

/** A goose statement as lockstep runs it: a block whole, a plain statement split by lockstep's splitter. */
function unitStatements(
  text: string,
  units: readonly GooseUnit[],
  dialect: Parameters<typeof splitStatements>[1],
): SqlStatement[] {
  const lineOf = lineFinder(text);
  const statements: SqlStatement[] = [];
  for (const unit of units) {
    const raw = text.slice(unit.start, unit.end);
    if (unit.block) {
      // Only white space between the annotations: goose runs an empty statement, a no-op.
      if (unit.sql === '') continue;
      const offset = unit.start + (LEADING_SPACE.exec(raw)?.[0].length ?? 0);
      statements.push({ sql: goTrim(raw), offset, line: lineOf(offset) });
      continue;
    }
    for (const s of splitStatements(raw, dialect)) {
      const offset = unit.start + s.offset;
      statements.push({ sql: s.sql, offset, line: lineOf(offset) });
    }
  }
  return statements;
}

/** A goose SQL file as lockstep's directions. */
export function readGoose(text: string, file: string): FormatRead {
  const parsed = parseGoose(text, file);
  if (parsed.problems.length > 0) return { problems: parsed.problems, warnings: parsed.warnings };
  const settings = { transaction: parsed.transaction };
  const section = (units: readonly GooseUnit[]): Section => ({
    file,
    settings,
    checksumText: `goose transaction:${parsed.transaction}\n${units.map((u) => u.sql).join('\n')}`,
    statements: (dialect) => unitStatements(text, units, dialect),
  });
  return { up: section(parsed.up), down: section(parsed.down), problems: [], warnings: parsed.warnings };
}

/** goose's Go migrations (`00002_add_users.go`): lockstep cannot run them. */
export const GOOSE_GO_FILE = /^(\d+)_(.+)\.go$/;

export function isGooseGoFile(fileName: string): boolean {
  return GOOSE_GO_FILE.test(fileName) && !fileName.endsWith('_test.go');
}

export const GOOSE_GO_REFUSAL =
  'goose Go migration: lockstep cannot run it (it is Go code, compiled into your goose binary). Applied already, it is adopted with `lockstep adopt --from goose`; pending, run it with goose, or rewrite it as a lockstep SQL file or up(ctx) module';

export const GOOSE_GO_WARNING =
  'goose Go migration: lockstep cannot run it; listed by its version, refused (not skipped) while it is pending';
