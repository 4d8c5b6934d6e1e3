import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SourceError, type SourceProblem } from '../errors.js';
import { durationMs } from '../util/duration.js';
import { isObject } from '../util/objects.js';
import { bytesForDisplay, decodeUtf8, invalidUtf8At } from '../util/text.js';
import { type FormatRead, type Section, splitRange } from './formats/common.js';
import {
  DRIZZLE_NO_DOWN,
  type DrizzleJournal,
  drizzleSection,
  readDrizzleJournal,
} from './formats/drizzle.js';
import {
  type GolangMigratePart,
  golangMigrateFile,
  golangMigratePart,
  pairGolangMigrate,
} from './formats/golang-migrate.js';
import {
  GOOSE_GO_REFUSAL,
  GOOSE_GO_WARNING,
  hasGooseAnnotation,
  isGooseGoFile,
  readGoose,
} from './formats/goose.js';
import { foreignModuleRefusal, foreignModuleTool } from './formats/knex.js';
import { hasNodePgMigrateMarker, readNodePgMigrate } from './formats/node-pg-migrate.js';
import { PRISMA_FILE, PRISMA_NO_DOWN, prismaSection } from './formats/prisma.js';
import {
  compareVersions,
  MAX_VERSION_DIGITS,
  type Migration,
  type MigrationFormat,
  type MigrationFunction,
  type MigrationSettings,
  type Step,
} from './migration.js';
import { hasDbmateMarker, parseSqlFile, type SqlSection } from './sql-file.js';

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

  const shown = (fullPath: string) => displayPath(fullPath, cwd);
  const folder: Folder = {
    dir: absoluteDir,
    shown,
    warn,
    problems: [],
    migrations: [],
    golangMigrate: [],
    // A Drizzle Kit folder: its journal says which .sql files are migrations.
    drizzle: readDrizzleJournal(absoluteDir, shown),
    drizzleRead: new Set(),
  };
  const { problems, migrations, drizzle } = folder;
  if (drizzle) problems.push(...drizzle.problems);
  // Only names that can be migrations are read: README.md and the like are ignored.
  const candidates = entries
    .map((bytes) => ({ bytes, name: bytes.toString('utf8') }))
    .filter(
      ({ name }) =>
        isSourceFileName(name) || isGooseGoFile(name) || isPrismaFolder(path.join(absoluteDir, name)),
    )
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  for (const { bytes, name: fileName } of candidates) {
    if (invalidUtf8At(bytes) !== -1) {
      problems.push({
        file: shown(path.join(absoluteDir, bytesForDisplay(bytes))),
        problem: 'the file name is not valid UTF-8: rename it',
      });
      continue;
    }
    const fullPath = path.join(absoluteDir, fileName);
    const file = shown(fullPath);
    const match = VERSIONED.exec(withoutExtension(fileName));
    if (!match) {
      // dbmate ignores it too (schema.sql, a helper module): said, in case it was meant to run.
      warn({
        file,
        problem: 'ignored: not a migration, its name does not start with a version (<version>_<name>.sql)',
      });
      continue;
    }
    const version = match[1] as string;
    if (version.length > MAX_VERSION_DIGITS) {
      problems.push({
        file,
        problem: `a version of ${version.length} digits: the ledger's version column holds at most ${MAX_VERSION_DIGITS} digits (on every database)`,
      });
      continue;
    }
    readEntry(folder, { version, name: match[2] ?? '', file, path: fullPath }, fileName);
  }
  for (const listed of drizzle?.files ?? []) {
    // One that is there and was not read has a problem of its own (its name, its format).
    if (!folder.drizzleRead.has(listed) && !isFile(path.join(absoluteDir, listed)))
      problems.push({
        file: shown(path.join(absoluteDir, listed)),
        problem: `listed in Drizzle's journal (${drizzle?.file}) but not there (or not a file): restore it, or remove its entry`,
      });
  }
  const paired = pairGolangMigrate(folder.golangMigrate);
  problems.push(...paired.problems);
  for (const { up, down } of paired.pairs) {
    const base = { version: up.version, name: up.name, file: up.file, path: up.path };
    const sections = down ? { up: up.section, down: down.section } : { up: up.section };
    migrations.push(formatMigration(base, 'golang-migrate', sections));
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

/** What reading one migrations directory gathers, entry by entry. */
interface Folder {
  readonly dir: string;
  readonly shown: (fullPath: string) => string;
  readonly warn: (warning: SourceProblem) => void;
  readonly problems: SourceProblem[];
  readonly migrations: Migration[];
  /** golang-migrate's files, paired into migrations once all are read. */
  readonly golangMigrate: GolangMigratePart[];
  readonly drizzle: DrizzleJournal | undefined;
  /** The journal's files read, so that one listed and missing is said. */
  readonly drizzleRead: Set<string>;
}

/**
 * One versioned entry of the directory, read in the format its name or text says: the one
 * dispatch point for lockstep's (dbmate's) format and the other tools' (core/formats/).
 */
function readEntry(folder: Folder, base: MigrationBase, fileName: string): void {
  const { problems, migrations, warn } = folder;
  if (isDirectory(base.path)) {
    if (!isPrismaFolder(base.path)) {
      warn({ file: base.file, problem: 'ignored: a directory, not a migration file (dbmate skips it too)' });
      return;
    }
    const sqlPath = path.join(base.path, PRISMA_FILE);
    const file = folder.shown(sqlPath);
    const read = readSource(sqlPath);
    if ('problem' in read) problems.push({ file, ...read });
    else {
      const sections = { up: prismaSection(file, read.text), noDown: PRISMA_NO_DOWN };
      migrations.push(formatMigration({ ...base, file, path: sqlPath }, 'prisma', sections));
    }
    return;
  }
  if (isGooseGoFile(fileName)) {
    warn({ file: base.file, problem: GOOSE_GO_WARNING });
    const text = readFileIfAny(base.path);
    // The line that registers it with goose, where there is one.
    const at = text.search(/\bgoose\.Add(?:Named)?Migration/);
    const line = at < 0 ? undefined : text.slice(0, at).split('\n').length;
    migrations.push(refusedMigration(base, 'goose', { problem: GOOSE_GO_REFUSAL, line }, text));
    return;
  }
  const read = readSource(base.path);
  if ('problem' in read) {
    problems.push({ file: base.file, ...read });
    return;
  }
  if (fileName.endsWith('.sql')) readSqlFile(folder, base, fileName, read.text);
  else if (MODULE_EXTENSIONS.test(fileName)) {
    const foreign = foreignModuleTool(read.text);
    migrations.push(
      foreign
        ? refusedMigration(
            base,
            foreign.tool === 'knex' ? undefined : foreign.tool,
            { problem: foreignModuleRefusal(foreign.tool), line: foreign.line },
            read.text,
          )
        : moduleMigration(base.version, base.name, base.file, base.path, read.text),
    );
  }
}

/** A `.sql` file: Drizzle's when its journal lists it, golang-migrate's by its name, else by its text. */
function readSqlFile(folder: Folder, base: MigrationBase, fileName: string, text: string): void {
  const { problems, migrations, warn, drizzle } = folder;
  const { file } = base;
  if (drizzle?.files.has(fileName)) {
    folder.drizzleRead.add(fileName);
    migrations.push(
      formatMigration(base, 'drizzle', { up: drizzleSection(file, text), noDown: DRIZZLE_NO_DOWN }),
    );
    return;
  }
  const dbmate = hasDbmateMarker(text);
  const golang = dbmate ? undefined : golangMigrateFile(fileName);
  if (golang) {
    const other = hasGooseAnnotation(text)
      ? 'goose annotations'
      : hasNodePgMigrateMarker(text)
        ? 'node-pg-migrate markers'
        : undefined;
    // Its name makes it golang-migrate's: the whole file runs, what looks like sections too.
    if (other)
      warn({
        file,
        problem: `named as golang-migrate's (<version>_<name>.${golang.direction}.sql), so the whole file is its ${golang.direction}: its ${other} are read as comments; rename it if it is not golang-migrate's`,
      });
    folder.golangMigrate.push(golangMigratePart(golang, file, base.path, text));
    return;
  }
  const formatted = dbmate
    ? undefined
    : hasGooseAnnotation(text)
      ? { format: 'goose' as const, read: readGoose(text, file) }
      : hasNodePgMigrateMarker(text)
        ? { format: 'node-pg-migrate' as const, read: readNodePgMigrate(text, file) }
        : undefined;
  if (formatted) {
    const { format, read } = formatted;
    problems.push(...read.problems);
    for (const warning of read.warnings) warn(warning);
    const { up } = read;
    if (up && read.problems.length === 0) migrations.push(formatMigration(base, format, { ...read, up }));
    return;
  }
  if (drizzle && !dbmate) {
    warn({
      file,
      problem: `ignored: not listed in Drizzle's journal (${drizzle.file}), and not in another format lockstep reads`,
    });
    return;
  }
  const parsed = parseSqlFile(text, file);
  problems.push(...parsed.problems);
  for (const warning of parsed.warnings) warn(warning);
  if (parsed.up) migrations.push(sqlMigration(base, text, parsed.up, parsed.down));
}

/** A Prisma Migrate folder: `<version>_<name>/migration.sql`. */
function isPrismaFolder(fullPath: string): boolean {
  return (
    VERSIONED.test(path.basename(fullPath)) &&
    isDirectory(fullPath) &&
    isFile(path.join(fullPath, PRISMA_FILE))
  );
}

function isFile(fullPath: string): boolean {
  try {
    return statSync(fullPath).isFile();
  } catch {
    return false;
  }
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

interface MigrationBase {
  readonly version: string;
  readonly name: string;
  readonly file: string;
  readonly path: string;
}

/** A dbmate-format file: its sections as lockstep's directions (its checksum as ever). */
function sqlMigration(
  base: MigrationBase,
  text: string,
  up: SqlSection,
  down: SqlSection | undefined,
): Migration {
  const section = (s: SqlSection): Section => ({
    file: base.file,
    settings: s.settings,
    checksumText: `${s.optionsText}\n${s.text.trimEnd()}`,
    statements: (dialect) => splitRange(text, s.offset, s.offset + s.text.length, dialect),
  });
  // An empty or absent down section rolls back as a no-op, as in dbmate: only the ledger row goes.
  return formatMigration(
    base,
    'lockstep',
    down ? { up: section(up), down: section(down) } : { up: section(up) },
  );
}

/** A SQL migration in any format lockstep reads: its directions, split when loaded. */
function formatMigration(
  base: MigrationBase,
  format: MigrationFormat,
  read: Pick<FormatRead, 'down' | 'noDown'> & { readonly up: Section },
): Migration {
  const { up, down, noDown } = read;
  return {
    ...base,
    checksum: sha256(up.checksumText),
    kind: 'sql',
    format,
    hasDown: noDown === undefined,
    ...(noDown === undefined ? {} : { noDown }),
    async load(direction, dialect) {
      if (direction === 'down' && noDown !== undefined)
        throw new SourceError([{ file: base.file, problem: noDown }]);
      const section = direction === 'up' ? up : down;
      if (!section) return { kind: 'sql', settings: { transaction: true }, statements: [] };
      const statements = section.statements(dialect);
      return section.file === base.file
        ? { kind: 'sql', settings: section.settings, statements }
        : { kind: 'sql', settings: section.settings, statements, file: section.file };
    },
  };
}

/**
 * A migration lockstep lists but cannot run (goose's Go code, a knex or node-pg-migrate module):
 * its version is known to the history, and loading it, up or down, is refused with what to do.
 */
function refusedMigration(
  base: MigrationBase,
  format: MigrationFormat | undefined,
  refusal: { readonly problem: string; readonly line: number | undefined },
  text: string,
): Migration {
  const problem: SourceProblem = {
    file: base.file,
    ...(refusal.line === undefined ? {} : { line: refusal.line }),
    problem: refusal.problem,
  };
  return {
    ...base,
    checksum: sha256(text),
    kind: 'module',
    ...(format ? { format } : {}),
    hasDown: true,
    async load() {
      throw new SourceError([problem]);
    },
  };
}

function readFileIfAny(fullPath: string): string {
  const read = readSource(fullPath);
  return 'text' in read ? read.text : '';
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
