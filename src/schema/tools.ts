import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, ExitCode, HttpStatus, LockstepError } from '../errors.js';
import type { Scrub } from '../util/secrets.js';

/** The Debian package that installs each tool lockstep runs for the schema file. */
const PACKAGES: Record<string, string> = {
  pg_dump: 'postgresql-client',
  psql: 'postgresql-client',
  'mariadb-dump': 'mariadb-client',
  mariadb: 'mariadb-client',
  mysqldump: 'mariadb-client (or mysql-client)',
  mysql: 'mariadb-client (or mysql-client)',
  sqlite3: 'sqlite3',
};

/**
 * A dump or load tool is not installed (`missing`: exit 2, nothing was run), or it failed (exit 1;
 * its own message, scrubbed of the URL's secrets, says why).
 */
export class SchemaToolError extends LockstepError {
  readonly code = 'SCHEMA_TOOL';
  readonly exitCode: number;
  readonly httpStatus = HttpStatus.internal;
  readonly tool: string;
  readonly missing: boolean;

  constructor(facts: { tool: string; missing: boolean; message: string }) {
    super(facts.message);
    this.tool = facts.tool;
    this.missing = facts.missing;
    this.exitCode = facts.missing ? ExitCode.badInput : ExitCode.migrationFailed;
  }
}

export interface ToolRun {
  /** Variables added to the environment (the password: PGPASSWORD, MYSQL_PWD). */
  readonly env?: Record<string, string>;
  /** A file given to the tool on its standard input. */
  readonly stdinFile?: string;
  /** What the tool is run for, for messages: "dump the schema", "load db/schema.sql". */
  readonly purpose: string;
  readonly scrub: Scrub;
  readonly cwd: string;
}

/** Whether `command` is an executable file on $PATH. */
export function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/**
 * Runs a tool to its end and returns what it printed on stdout. A tool that is not installed is
 * said so, with the package that installs it; one that fails, with its own message. Neither
 * message holds the URL's password: it is never on a command line (it goes in `env`).
 */
export function runTool(command: string, args: readonly string[], run: ToolRun): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdin: number | 'ignore' = 'ignore';
    if (run.stdinFile !== undefined) {
      try {
        stdin = openSync(path.resolve(run.cwd, run.stdinFile), 'r');
      } catch (error) {
        reject(new ConfigError(`cannot read ${run.stdinFile}: ${(error as Error).message}`));
        return;
      }
    }
    const child = spawn(command, args, {
      cwd: run.cwd,
      env: { ...process.env, ...run.env },
      stdio: [stdin, 'pipe', 'pipe'],
    });
    if (typeof stdin === 'number') closeSync(stdin);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => stdout.push(d));
    child.stderr?.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') reject(missingTool(command, run.purpose));
      else
        reject(
          new SchemaToolError({
            tool: command,
            missing: false,
            message: run.scrub(`${command}: ${error.message}`),
          }),
        );
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(Buffer.concat(stdout).toString('utf8'));
        return;
      }
      const said = Buffer.concat(stderr).toString('utf8').trim();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(
        new SchemaToolError({
          tool: command,
          missing: false,
          message: run.scrub(`${command} failed to ${run.purpose} (${how})${said ? `: ${said}` : ''}`),
        }),
      );
    });
  });
}

export function missingTool(command: string, purpose: string): SchemaToolError {
  const pkg = PACKAGES[command] ?? command;
  return new SchemaToolError({
    tool: command,
    missing: true,
    message:
      `${command} is not installed (or not on PATH): lockstep runs it to ${purpose}, as dbmate does. ` +
      `Install it (Debian/Ubuntu: apt-get install ${pkg})`,
  });
}
