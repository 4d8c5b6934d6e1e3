import { createHash } from 'node:crypto';
import { type Dirent, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { lineAt, type SplitDialect, splitStatements } from '../sql/split.js';
import { parseDuration } from '../util/duration.js';
import { SourceError, type SourceProblem } from './errors.js';
import {
  compareVersions,
  type Migration,
  type MigrationFunction,
  type MigrationSettings,
  type Step,
} from './migration.js';
import { parseSqlFile, type SqlSection } from './sql-file.js';

const FILE_NAME = /^(\d+)(?:_(.*))?\.(sql|ts|mts|js|mjs)$/;
const MODULE_EXTENSIONS = /\.(ts|mts|js|mjs)$/;

/**
 * Reads a migrations directory into Migrations sorted by version. Pure file work, no database:
 * bad input stops here, before anything is changed (SPEC "The run", step 1).
 */
export async function readMigrations(dir: string, cwd = process.cwd()): Promise<Migration[]> {
  const absoluteDir = path.resolve(cwd, dir);
  let entries: Dirent[];
  try {
    entries = await readdir(absoluteDir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SourceError([
        {
          file: dir,
          problem:
            code === 'ENOENT'
              ? 'migrations directory not found (create it, or pass --dir; `lockstep new <name>` creates it)'
              : 'is not a directory (--dir names the folder that holds the migration files)',
        },
      ]);
    }
    throw error;
  }

  const problems: SourceProblem[] = [];
  const migrations: Migration[] = [];
  // Only names that can be migrations are read: README.md and the like are ignored.
  const named = entries.filter(
    (e) => !e.name.startsWith('.') && !e.name.endsWith('.d.ts') && /\.(sql|ts|mts|js|mjs)$/.test(e.name),
  );
  for (const entry of named) {
    if (entry.isDirectory()) {
      problems.push({
        file: displayPath(path.join(absoluteDir, entry.name), cwd),
        problem: 'is a directory, not a migration file',
      });
    }
  }
  const candidates = named
    .filter((e) => !e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const fileName of candidates) {
    const fullPath = path.join(absoluteDir, fileName);
    const shown = displayPath(fullPath, cwd);
    const match = FILE_NAME.exec(fileName);
    if (!match) {
      if (/\.(sql|ts|mts|js|mjs)$/.test(fileName)) {
        problems.push({
          file: shown,
          problem: 'file name must start with a version number: <version>_<name>.sql',
        });
      }
      continue;
    }
    const version = match[1] as string;
    const name = match[2] ?? '';
    // Sequential synchronous reads: for thousands of small files they are several times faster,
    // and far lighter on memory, than as many concurrent promises.
    const text = readFileSync(fullPath, 'utf8');
    if (fileName.endsWith('.sql')) {
      const parsed = parseSqlFile(text, shown);
      problems.push(...parsed.problems);
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
    hasDown: down !== undefined && down.text.trim() !== '',
    async load(direction, dialect) {
      const section = direction === 'up' ? up : down;
      if (!section)
        throw new SourceError([{ file, problem: 'no "-- migrate:down" section to roll back with' }]);
      return { kind: 'sql', settings: section.settings, statements: splitSection(text, section, dialect) };
    },
  };
}

function splitSection(fileText: string, section: SqlSection, dialect: SplitDialect) {
  return splitStatements(section.text, dialect).map((s) => {
    const offset = section.offset + s.offset;
    return { sql: s.sql, offset, line: lineAt(fileText, offset) };
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
  else if (typeof lockTimeout === 'number') lockTimeoutMs = lockTimeout;
  else if (typeof lockTimeout === 'string') lockTimeoutMs = parseDuration(lockTimeout);
  if (lockTimeout !== undefined && lockTimeoutMs === undefined) {
    problems.push({ file, problem: '`lockTimeout` must be milliseconds, a duration such as "2s", or null' });
  }
  let timeoutMs: number | null | undefined;
  if (timeout === null || timeout === false || timeout === 'off') timeoutMs = null;
  else if (typeof timeout === 'number' && timeout > 0) timeoutMs = timeout;
  else if (typeof timeout === 'string') timeoutMs = parseDuration(timeout) || undefined;
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function displayPath(fullPath: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, fullPath);
  return relative.startsWith('..') || path.isAbsolute(relative) ? fullPath : relative;
}
