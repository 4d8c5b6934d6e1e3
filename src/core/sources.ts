import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SourceError, type SourceProblem } from '../errors.js';
import { lineFinder, type SplitDialect, splitStatements } from '../sql/split.js';
import { durationMs } from '../util/duration.js';
import { isObject } from '../util/objects.js';
import { bytesForDisplay, decodeUtf8, invalidUtf8At } from '../util/text.js';
import {
  compareVersions,
  MAX_VERSION_DIGITS,
  type Migration,
  type MigrationFunction,
  type MigrationSettings,
  type Step,
} from './migration.js';
import { parseSqlFile, type SqlSection } from './sql-file.js';

/**
 * A migration's name without its extension: leading digits are its version, as dbmate reads
 * them (`001_a`, `001-a`, `001`); one `_` or `-` after them is not part of the name.
 */
const VERSIONED = /^(\d+)[_-]?(.*)$/s;
const MODULE_EXTENSIONS = /\.(ts|mts|js|mjs)$/;
const SOURCE_EXTENSION = /\.(sql|ts|mts|js|mjs)$/;

/**
 * A name lockstep reads as a migration (or a long-running migration's definition): SQL or a
 * module, neither hidden nor a type declaration. README.md and the like are ignored.
 */
export function isSourceFileName(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('.d.ts') && SOURCE_EXTENSION.test(name);
}

/** A source file's name without its extension. */
export function withoutExtension(fileName: string): string {
  return fileName.replace(SOURCE_EXTENSION, '');
}

/**
 * Reads a migrations directory into Migrations sorted by version. Pure file work, no database:
 * bad input stops here, before anything is changed (SPEC "The run", step 1). What dbmate
 * accepts and lockstep reads more strictly goes to `warn`, and the files still load.
 */
export async function readMigrations(
  dir: string,
  cwd = process.cwd(),
  warn: (warning: SourceProblem) => void = () => {},
): Promise<Migration[]> {
  const absoluteDir = path.resolve(cwd, dir);
  let entries: Buffer[];
  try {
    // As bytes: a name that is not UTF-8 must be refused, not decoded into one that does not exist.
    entries = await readdir(absoluteDir, { encoding: 'buffer' });
  } catch (error) {
    throw new SourceError([{ file: dir, problem: directoryProblem(error as NodeJS.ErrnoException) }]);
  }

  const problems: SourceProblem[] = [];
  const migrations: Migration[] = [];
  // Only names that can be migrations are read: README.md and the like are ignored.
  const candidates = entries
    .map((bytes) => ({ bytes, name: bytes.toString('utf8') }))
    .filter(({ name }) => isSourceFileName(name))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  for (const { bytes, name: fileName } of candidates) {
    if (invalidUtf8At(bytes) !== -1) {
      problems.push({
        file: displayPath(path.join(absoluteDir, bytesForDisplay(bytes)), cwd),
        problem: 'the file name is not valid UTF-8: rename it',
      });
      continue;
    }
    const fullPath = path.join(absoluteDir, fileName);
    const shown = displayPath(fullPath, cwd);
    const match = VERSIONED.exec(withoutExtension(fileName));
    if (!match) {
      // dbmate ignores it too (schema.sql, a helper module): said, in case it was meant to run.
      warn({
        file: shown,
        problem: 'ignored: not a migration, its name does not start with a version (<version>_<name>.sql)',
      });
      continue;
    }
    const version = match[1] as string;
    const name = match[2] ?? '';
    if (version.length > MAX_VERSION_DIGITS) {
      problems.push({
        file: shown,
        problem: `a version of ${version.length} digits: the ledger's version column holds at most ${MAX_VERSION_DIGITS} digits (on every database)`,
      });
      continue;
    }
    if (isDirectory(fullPath)) {
      warn({ file: shown, problem: 'ignored: a directory, not a migration file (dbmate skips it too)' });
      continue;
    }
    const read = readSource(fullPath);
    if ('problem' in read) {
      problems.push({ file: shown, ...read });
      continue;
    }
    const { text } = read;
    if (fileName.endsWith('.sql')) {
      const parsed = parseSqlFile(text, shown);
      problems.push(...parsed.problems);
      for (const warning of parsed.warnings) warn(warning);
      if (parsed.up)
        migrations.push(sqlMigration(version, name, shown, fullPath, text, parsed.up, parsed.down));
    } else if (MODULE_EXTENSIONS.test(fileName)) {
      migrations.push(moduleMigration(version, name, shown, fullPath, text));
    }
  }

  migrations.sort((a, b) => compareVersions(a.version, b.version));
  for (let i = 1; i < migrations.length; i++) {
    const previous = migrations[i - 1] as Migration;
    const current = migrations[i] as Migration;
    if (compareVersions(previous.version, current.version) === 0) {
      problems.push({
        file: current.file,
        problem: `duplicate version ${current.version}, also used by ${previous.file}`,
      });
    }
  }
  if (problems.length > 0) throw new SourceError(problems);
  return migrations;
}

/** A directory itself, not a symbolic link to one (dbmate skips the first, fails on the second). */
function isDirectory(fullPath: string): boolean {
  try {
    return lstatSync(fullPath).isDirectory();
  } catch {
    return false;
  }
}

function directoryProblem(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return 'migrations directory not found (create it, or pass --dir; `lockstep new <name>` creates it)';
    case 'ENOTDIR':
      return 'is not a directory (--dir names the folder that holds the migration files)';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied (lockstep must list the migrations directory)';
    default:
      return `cannot be read: ${error.message}`;
  }
}

/**
 * One migration file's text, or why it cannot be used. Opened without blocking, so that a FIFO
 * named like a migration is refused instead of waiting forever for a writer. (Long-running
 * migrations' definitions are read with it too.)
 */
export function readSource(fullPath: string): { text: string } | Omit<SourceProblem, 'file'> {
  let fd: number;
  try {
    fd = openSync(fullPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { problem: fileProblem(error as NodeJS.ErrnoException, fullPath) };
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) return { problem: 'is a directory, not a migration file' };
    if (!stat.isFile())
      return { problem: 'is not a regular file (a FIFO, socket or device): a migration is a file' };
    return decodeUtf8(readFileSync(fd));
  } catch (error) {
    return { problem: fileProblem(error as NodeJS.ErrnoException, fullPath) };
  } finally {
    closeSync(fd);
  }
}

function fileProblem(error: NodeJS.ErrnoException, fullPath: string): string {
  switch (error.code) {
    case 'ENOENT': {
      const target = linkTarget(fullPath);
      return target !== undefined
        ? `is a symbolic link to ${target}, which does not exist`
        : 'disappeared while lockstep read the directory';
    }
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    case 'ELOOP':
      return 'is a symbolic link that loops';
    default:
      return `cannot be read: ${error.message}`;
  }
}

function linkTarget(fullPath: string): string | undefined {
  try {
    return readlinkSync(fullPath);
  } catch {
    return undefined;
  }
}

function sqlMigration(
  version: string,
  name: string,
  file: string,
  fullPath: string,
  text: string,
  up: SqlSection,
  down: SqlSection | undefined,
): Migration {
  const checksum = sha256(`${up.optionsText}\n${up.text.trimEnd()}`);
  return {
    version,
    name,
    file,
    path: fullPath,
    checksum,
    kind: 'sql',
    // An empty or absent down section rolls back as a no-op, as in dbmate: only the ledger row goes.
    hasDown: true,
    async load(direction, dialect) {
      const section = direction === 'up' ? up : down;
      if (!section) return { kind: 'sql', settings: { transaction: true }, statements: [] };
      return { kind: 'sql', settings: section.settings, statements: splitSection(text, section, dialect) };
    },
  };
}

function splitSection(fileText: string, section: SqlSection, dialect: SplitDialect) {
  const lineOf = lineFinder(fileText);
  return splitStatements(section.text, dialect).map((s) => {
    const offset = section.offset + s.offset;
    return { sql: s.sql, offset, line: lineOf(offset) };
  });
}

function moduleMigration(
  version: string,
  name: string,
  file: string,
  fullPath: string,
  text: string,
): Migration {
  let loaded: Promise<Record<string, unknown>> | undefined;
  const load = () => {
    loaded ??= importModule(fullPath);
    return loaded;
  };
  return {
    version,
    name,
    file,
    path: fullPath,
    checksum: sha256(text),
    kind: 'module',
    // Known only once imported; `load('down')` gives the precise error.
    hasDown: /\bdown\b/.test(text),
    async load(direction) {
      let exports: Record<string, unknown>;
      try {
        exports = await load();
      } catch (error) {
        throw new SourceError([{ file, problem: `cannot be imported: ${(error as Error).message}` }]);
      }
      let definition = (isObject(exports.default) ? exports.default : exports) as Record<string, unknown>;
      // `export default {...}` compiled as CommonJS (a package without "type": "module") nests once more.
      if (typeof definition[direction] !== 'function' && isObject(definition.default)) {
        definition = definition.default;
      }
      const run = definition[direction];
      if (typeof run !== 'function') {
        throw new SourceError([
          {
            file,
            problem:
              direction === 'up'
                ? 'exports no up(ctx) function (export async function up(ctx) { ... })'
                : 'exports no down(ctx) function to roll back with',
          },
        ]);
      }
      const settings = moduleSettings(definition, file);
      return { kind: 'module', settings, run: run as MigrationFunction } satisfies Step;
    },
  };
}

function moduleSettings(definition: Record<string, unknown>, file: string): MigrationSettings {
  const { transaction = true, lockTimeout, lockRetries, timeout, requires } = definition;
  const problems: SourceProblem[] = [];
  if (typeof transaction !== 'boolean')
    problems.push({ file, problem: '`transaction` must be true or false' });
  let lockTimeoutMs: number | null | undefined;
  if (lockTimeout === null || lockTimeout === false) lockTimeoutMs = null;
  else lockTimeoutMs = durationMs(lockTimeout);
  if (lockTimeout !== undefined && lockTimeoutMs === undefined) {
    problems.push({ file, problem: '`lockTimeout` must be milliseconds, a duration such as "2s", or null' });
  }
  let timeoutMs: number | null | undefined;
  if (timeout === null || timeout === false || timeout === 'off') timeoutMs = null;
  else {
    const ms = durationMs(timeout);
    if (ms !== undefined && ms > 0) timeoutMs = ms;
  }
  if (timeout !== undefined && timeoutMs === undefined) {
    problems.push({
      file,
      problem: '`timeout` must be milliseconds above zero, a duration such as "30m", or null for no limit',
    });
  }
  if (lockRetries !== undefined && !(Number.isInteger(lockRetries) && (lockRetries as number) >= 0)) {
    problems.push({ file, problem: '`lockRetries` must be a whole number' });
  }
  if (requires !== undefined && !(Array.isArray(requires) && requires.every((r) => typeof r === 'string'))) {
    problems.push({ file, problem: '`requires` must be an array of long-running migration names' });
  }
  if (problems.length > 0) throw new SourceError(problems);
  return {
    transaction: transaction as boolean,
    lockTimeoutMs,
    lockRetries: lockRetries as number | undefined,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(requires ? { requires: requires as string[] } : {}),
  };
}

export async function importModule(fullPath: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(fullPath).href;
  if (/\.m?ts$/.test(fullPath)) {
    // Loaded only when a TypeScript migration must run, so plain boots never pay for it.
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(url, import.meta.url)) as Record<string, unknown>;
  }
  return (await import(url)) as Record<string, unknown>;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function displayPath(fullPath: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, fullPath);
  return relative.startsWith('..') || path.isAbsolute(relative) ? fullPath : relative;
}
