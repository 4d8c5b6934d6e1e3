/** The command line: every (command, option) pair, before and after the command, once and twice. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMAND_OPTIONS, OPTIONS, type OptionName, parseCommandLine } from '../../src/cli/options.js';
import { ConfigError } from '../../src/errors.js';

const COMMANDS = Object.keys(COMMAND_OPTIONS);
const NAMES = Object.keys(OPTIONS) as OptionName[];

/** The command words and the positional arguments a command needs to parse. */
function words(command: string): string[] {
  const needs: Record<string, string[]> = { resolve: ['001'], new: ['x'] };
  return [...command.split(' '), ...(needs[command] ?? needs[command.split(' ')[1] ?? ''] ?? [])];
}

function flag(name: OptionName): string[] {
  return OPTIONS[name].type === 'string' ? [`--${name}`, `${name}-value`] : [`--${name}`];
}

function refusal(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail(`accepted: ${argv.join(' ')}`);
}

describe('parseCommandLine', () => {
  it('takes each option a command takes, before and after it, with the same result', () => {
    for (const command of COMMANDS) {
      for (const name of COMMAND_OPTIONS[command] ?? []) {
        if (name === 'help') continue;
        const after = parseCommandLine([...words(command), ...flag(name)]);
        const before = parseCommandLine([...flag(name), ...words(command)]);
        assert.deepEqual(before, after, `${command} --${name}`);
        assert.equal(after.kind, 'run');
        if (after.kind !== 'run') continue;
        assert.equal(after.command, command);
        const expected = OPTIONS[name].type === 'string' ? `${name}-value` : true;
        const value = after.values[name];
        assert.deepEqual(Array.isArray(value) ? value[0] : value, expected, `${command} --${name}`);
      }
    }
  });

  it('refuses each option a command does not take, naming the commands that do', () => {
    for (const command of COMMANDS) {
      for (const name of NAMES) {
        if (COMMAND_OPTIONS[command]?.includes(name) || name === 'version') continue;
        for (const argv of [
          [...words(command), ...flag(name)],
          [...flag(name), ...words(command)],
        ]) {
          const message = refusal(argv);
          assert.match(
            message,
            new RegExp(`^--${name} is not an option of \`lockstep ${command}\``),
            argv.join(' '),
          );
          for (const [other, takes] of Object.entries(COMMAND_OPTIONS)) {
            if (takes.includes(name))
              assert.ok(message.includes(`\`lockstep ${other}\``), `${argv.join(' ')}: ${message}`);
          }
        }
      }
    }
  });

  it('refuses a single-valued option given twice, and takes a repeatable one', () => {
    for (const command of COMMANDS) {
      for (const name of COMMAND_OPTIONS[command] ?? []) {
        const spec: { type: string; multiple?: boolean } = OPTIONS[name];
        if (spec.type !== 'string') continue;
        const argv = [...flag(name), ...words(command), `--${name}=other`];
        if (spec.multiple) {
          const line = parseCommandLine(argv);
          assert.deepEqual(line.kind === 'run' && line.values[name], [`${name}-value`, 'other']);
        } else if (name === 'dir') {
          // dbmate takes several -d; lockstep one directory, and says so.
          assert.match(
            refusal(argv),
            /^--dir \(-d\) given twice .*: lockstep reads the migrations of one directory/,
          );
        } else {
          assert.match(refusal(argv), new RegExp(`^--${name} given twice`), argv.join(' '));
        }
      }
    }
  });

  it('never echoes a URL or a token given twice (they may hold secrets)', () => {
    for (const name of ['url', 'token']) {
      const message = refusal(['serve', `--${name}`, 'secret-one', `--${name}`, 'secret-two']);
      assert.doesNotMatch(message, /secret/);
    }
  });

  it('--version only alone; -v is --verbose after up, migrate and down only (dbmate), elsewhere refused', () => {
    assert.deepEqual(parseCommandLine(['-v']), { kind: 'version' });
    assert.deepEqual(parseCommandLine(['--version']), { kind: 'version' });
    for (const command of COMMANDS) {
      if (['up', 'migrate', 'down'].includes(command)) {
        const line = parseCommandLine([...words(command), '-v']);
        assert.equal(line.kind === 'run' && line.values.verbose, true, command);
        // Before the command it is --version, as in dbmate, and so refused with a command.
        assert.match(refusal(['-v', ...words(command)]), /^-v is not verbose here/);
        continue;
      }
      assert.match(refusal([...words(command), '-v']), /^-v is not verbose here/);
      assert.match(refusal(['--version', ...words(command)]), /^--version takes no command/);
    }
  });

  it('--help anywhere asks for that command’s help, whatever else is wrong', () => {
    for (const command of COMMANDS) {
      for (const argv of [
        [...words(command), '--help'],
        ['-h', ...words(command)],
        [...words(command), '--bogus', '-v', '--help'],
      ]) {
        assert.deepEqual(parseCommandLine(argv), { kind: 'help', command }, argv.join(' '));
      }
    }
    assert.deepEqual(parseCommandLine(['--help']), { kind: 'help', command: '' });
  });

  it('up is the default command; unknown commands and options are refused with a pointer to --help', () => {
    const line = parseCommandLine(['--dir', 'x']);
    assert.equal(line.kind === 'run' && line.command, 'up');
    assert.match(refusal(['explode']), /unknown command "explode".*--help/);
    for (const [alias, command] of [
      ['n', 'new'],
      ['rollback', 'down'],
    ]) {
      const aliased = parseCommandLine([alias as string, ...(alias === 'n' ? ['x'] : [])]);
      assert.deepEqual(aliased.kind === 'run' && [aliased.command, aliased.typed], [command, alias]);
    }
    assert.deepEqual(parseCommandLine(['help', 'rollback']), { kind: 'help', command: 'down' });
    assert.match(refusal(['async', 'explode']), /unknown command "async explode"/);
    assert.match(refusal(['up', '--bogus']), /unknown option --bogus.*lockstep up --help/);
    assert.match(refusal(['up', '-x']), /unknown option -x/);
    assert.match(refusal(['up', '--dir']), /--dir/);
    assert.match(refusal(['up', '--json=yes']), /--json/);
  });
});
