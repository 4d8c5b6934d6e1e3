import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';

/**
 * Every option of every command, in one table: an option means the same wherever it is given,
 * before the command or after it, and the command line is parsed once, whatever the command.
 */
export const OPTIONS = {
  url: { type: 'string', short: 'u' },
  pooler: { type: 'string' },
  'direct-url': { type: 'string' },
  'coordinator-url': { type: 'string' },
  dir: { type: 'string', short: 'd' },
  table: { type: 'string', short: 't' },
  'lock-timeout': { type: 'string' },
  'ddl-lock-timeout': { type: 'string' },
  'ddl-lock-retries': { type: 'string' },
  'migration-timeout': { type: 'string' },
  'run-timeout': { type: 'string' },
  'async-dir': { type: 'string' },
  'async-table': { type: 'string' },
  dbmate: { type: 'string' },
  'allow-out-of-order': { type: 'boolean' },
  'allow-changed': { type: 'boolean' },
  'allow-missing': { type: 'boolean' },
  steps: { type: 'string' },
  from: { type: 'string' },
  'from-table': { type: 'string' },
  'dry-run': { type: 'boolean' },
  applied: { type: 'boolean' },
  'rolled-back': { type: 'boolean' },
  force: { type: 'boolean' },
  ts: { type: 'boolean' },
  param: { type: 'string', multiple: true },
  queue: { type: 'boolean' },
  wait: { type: 'boolean' },
  once: { type: 'boolean' },
  poll: { type: 'string' },
  'on-dead': { type: 'string' },
  'cancel-orphans': { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  token: { type: 'string' },
  worker: { type: 'boolean' },
  'allow-host': { type: 'string', multiple: true },
  'allow-any-host': { type: 'boolean' },
  // dbmate's options (see DBMATE_OPTIONS below); -v is --verbose after up, migrate and rollback.
  'migrations-dir': { type: 'string', multiple: true },
  'migrations-table': { type: 'string' },
  env: { type: 'string', short: 'e' },
  'env-file': { type: 'string', multiple: true },
  driver: { type: 'string' },
  'schema-file': { type: 'string', short: 's' },
  'no-dump-schema': { type: 'boolean' },
  'wait-timeout': { type: 'string' },
  'wait-interval': { type: 'string' },
  strict: { type: 'boolean' },
  verbose: { type: 'boolean' },
  'exit-code': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type OptionName = keyof typeof OPTIONS;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>
>['values'];

const OUTPUT = ['json', 'quiet', 'help'] as const;
/**
 * Where the database and the files are: every command takes these (those that need none ignore
 * them), so one wrapper script (`lockstep -u "$URL" -d db/migrations "$@"`) serves every command.
 * They name a place, never change what a command does.
 */
const WHERE = ['url', 'pooler', 'coordinator-url', 'dir', 'table', 'async-dir', 'async-table'] as const;
const RUN = [
  'lock-timeout',
  'ddl-lock-timeout',
  'ddl-lock-retries',
  'migration-timeout',
  'run-timeout',
  'cancel-orphans',
] as const;
const ASYNC = [...WHERE, ...OUTPUT] as const;
/**
 * dbmate's global options, taken by every command of the core (dbmate's and lockstep's), so a
 * dbmate command line runs unchanged. --wait: wait for the database before the command.
 */
export const DBMATE_OPTIONS = [
  'migrations-dir',
  'migrations-table',
  'env',
  'env-file',
  'driver',
  'schema-file',
  'no-dump-schema',
  'wait',
  'wait-timeout',
  'wait-interval',
] as const;

const UP = [
  ...WHERE,
  'direct-url',
  ...RUN,
  'allow-out-of-order',
  'allow-changed',
  'allow-missing',
  'strict',
  'verbose',
  ...OUTPUT,
] as const;

/** The options each command takes; any other is an error that names the commands taking it. */
export const COMMAND_OPTIONS: Readonly<Record<string, readonly OptionName[]>> = {
  up: [...UP, 'dbmate', ...DBMATE_OPTIONS],
  migrate: [...UP, 'dbmate', ...DBMATE_OPTIONS],
  down: [...WHERE, 'direct-url', ...RUN, 'dbmate', 'steps', 'verbose', ...OUTPUT, ...DBMATE_OPTIONS],
  status: [...WHERE, 'dbmate', 'exit-code', ...OUTPUT, ...DBMATE_OPTIONS],
  resolve: [
    ...WHERE,
    'lock-timeout',
    'cancel-orphans',
    'dbmate',
    'applied',
    'rolled-back',
    'force',
    ...OUTPUT,
    ...DBMATE_OPTIONS,
  ],
  adopt: [...WHERE, 'lock-timeout', 'from', 'from-table', 'dry-run', ...OUTPUT, ...DBMATE_OPTIONS],
  new: [...WHERE, 'ts', ...OUTPUT, ...DBMATE_OPTIONS],
  create: [...WHERE, ...OUTPUT, ...DBMATE_OPTIONS],
  drop: [...WHERE, ...OUTPUT, ...DBMATE_OPTIONS],
  wait: [...WHERE, ...OUTPUT, ...DBMATE_OPTIONS],
  dump: [...WHERE, ...OUTPUT, ...DBMATE_OPTIONS],
  load: [...WHERE, ...OUTPUT, ...DBMATE_OPTIONS],
  'async list': ASYNC,
  'async status': ASYNC,
  // --cancel-orphans: whoever executes a run (a worker, or --wait here) may take over a dead one.
  'async trigger': [...ASYNC, 'param', 'queue', 'wait', 'cancel-orphans'],
  'async stop': [...ASYNC, 'force'],
  'async resume': [...ASYNC, 'wait', 'cancel-orphans'],
  'async rollback': [...ASYNC, 'wait', 'cancel-orphans'],
  'async worker': [...ASYNC, 'once', 'poll', 'on-dead', 'cancel-orphans'],
  'async new': [...ASYNC, 'ts'],
  serve: [...WHERE, 'host', 'port', 'token', 'worker', 'allow-host', 'allow-any-host', 'quiet', 'help'],
};

export const CORE_COMMANDS = [
  'up',
  'migrate',
  'down',
  'status',
  'new',
  'resolve',
  'adopt',
  'create',
  'drop',
  'wait',
  'dump',
  'load',
] as const;
/** dbmate's other names of commands. */
export const ALIASES: Readonly<Record<string, (typeof CORE_COMMANDS)[number]>> = {
  n: 'new',
  rollback: 'down',
};
/** Commands only dbmate has: one of them says that dbmate's conventions are in use. */
export const DBMATE_COMMANDS: readonly string[] = [
  'migrate',
  'rollback',
  'n',
  'create',
  'drop',
  'wait',
  'dump',
  'load',
];
/** The commands where -v means --verbose, as in dbmate (anywhere else it is --version). */
const VERBOSE_COMMANDS = ['up', 'migrate', 'down', 'rollback'];
export const ASYNC_COMMANDS = ['list', 'status', 'trigger', 'stop', 'resume', 'rollback', 'worker', 'new'];

export type CommandLine =
  /** `command` is `up`, `async list`, `serve`, ...; `async` alone when no subcommand was given. */
  | {
      readonly kind: 'run';
      readonly command: string;
      readonly args: string[];
      readonly values: Values;
      /** The command as typed: dbmate's `rollback` or `n` for `down` or `new`. */
      readonly typed: string;
    }
  /** --help anywhere: the help of `command` (`''`: lockstep's own). */
  | { readonly kind: 'help'; readonly command: string }
  | { readonly kind: 'version' };

/**
 * argv → the command, its arguments and options; never a silent misreading. An unknown option, an
 * option the command does not take, a single-valued option given twice, and --version with
 * anything else are ConfigErrors (exit 2) that say what was meant. Pure.
 */
export function parseCommandLine(argvIn: readonly string[]): CommandLine {
  // A lenient pass finds the command; the strict pass below checks the values.
  const lenient = (args: readonly string[]) =>
    parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: false, tokens: true })
      .tokens;
  let argv = argvIn;
  let tokens = lenient(argv);
  const positionals = () => tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  const first = tokens.find((t) => t.kind === 'positional');
  if (first?.kind === 'positional' && VERBOSE_COMMANDS.includes(first.value)) {
    // dbmate's `up -v` is --verbose; before the command (`-v up`), -v stays --version.
    argv = argv.map((a, i) => (a === '-v' && i > first.index ? '--verbose' : a));
    tokens = lenient(argv);
  }
  let words = positionals();
  const typed = words[0] ?? 'up';
  if (typed === 'help' || typed === 'h') {
    // dbmate's `help [command]`.
    return { kind: 'help', command: ALIASES[words[1] ?? ''] ?? words[1] ?? '' };
  }
  const alias = ALIASES[typed];
  if (alias) words = [alias, ...words.slice(1)];
  const { command, args } = commandOf(words);
  const given = tokens.flatMap((t) => (t.kind === 'option' ? [t] : []));
  if (given.some((t) => t.name === 'help')) return { kind: 'help', command: words.length > 0 ? command : '' };

  const unknown = given.find((t) => !Object.hasOwn(OPTIONS, t.name));
  if (unknown) {
    throw new ConfigError(`unknown option ${unknown.rawName}. Run \`${helpFor(command)}\` for the options.`);
  }
  const version = given.find((t) => t.name === 'version');
  if (version) {
    if (argv.length === 1) return { kind: 'version' };
    throw new ConfigError(
      `${version.rawName === '-v' ? '-v is not verbose here: -v is --version (but after up, migrate and down, as in dbmate), and ' : ''}` +
        '--version takes no command and no other option: `lockstep --version` prints the version. ' +
        'Progress already goes to stderr (--quiet keeps only errors); --verbose (up, migrate, down) ' +
        'adds each statement, and --json prints the result as JSON.',
    );
  }

  let values: Values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\nRun \`${helpFor(command)}\` for usage.`);
  }
  if (command === 'async') return { kind: 'run', command, args, values, typed };
  const takes = COMMAND_OPTIONS[command];
  if (!takes) throw unknownCommand(command);
  for (const option of given) {
    const name = option.name as OptionName;
    if (!takes.includes(name)) throw notAnOptionOf(command, name);
  }
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const spec: { type: string; multiple?: boolean } = OPTIONS[name];
    const times = given.filter((t) => t.name === name);
    if (spec.type === 'string' && !spec.multiple && times.length > 1) {
      // A URL or a token is never echoed: it may hold a secret.
      const secret = name === 'url' || name === 'token';
      const shown = secret ? '' : ` (${times.map((t) => JSON.stringify(t.value ?? '')).join(', then ')})`;
      if (name === 'dir') {
        throw new ConfigError(
          `--dir (-d) given ${times.length === 2 ? 'twice' : `${times.length} times`}${shown}: lockstep reads ` +
            'the migrations of one directory; put them in one (dbmate runs several in file-name order, as one directory does)',
        );
      }
      throw new ConfigError(
        `--${name} given ${times.length === 2 ? 'twice' : `${times.length} times`}${shown}: give it once`,
      );
    }
  }
  return { kind: 'run', command, args, values, typed };
}

function commandOf(words: readonly string[]): { command: string; args: string[] } {
  const [first = 'up', second, ...rest] = words;
  if (first === 'async') {
    return second === undefined ? { command: 'async', args: [] } : { command: `async ${second}`, args: rest };
  }
  return { command: first, args: words.slice(1) };
}

/** The `--help` that explains a command's options. */
export function helpFor(command: string): string {
  if (command.startsWith('async')) return 'lockstep async --help';
  if (command === 'serve' || (CORE_COMMANDS as readonly string[]).includes(command))
    return `lockstep ${command} --help`;
  return 'lockstep --help';
}

function unknownCommand(command: string): ConfigError {
  return command.startsWith('async ')
    ? new ConfigError(
        `unknown command "${command}". Commands: ${ASYNC_COMMANDS.join(', ')}. See lockstep async --help.`,
      )
    : new ConfigError(
        `unknown command "${command}". Commands: ${CORE_COMMANDS.join(', ')}, async, serve ` +
          `(and dbmate's ${Object.keys(ALIASES).join(', ')}, help). See --help.`,
      );
}

function notAnOptionOf(command: string, name: OptionName): ConfigError {
  const takers = Object.entries(COMMAND_OPTIONS)
    .filter(([, options]) => options.includes(name))
    .map(([c]) => `\`lockstep ${c}\``);
  return new ConfigError(
    `--${name} is not an option of \`lockstep ${command}\`; it goes with ${takers.join(', ')}. ` +
      `Run \`${helpFor(command)}\` for the options of ${command}.`,
  );
}
