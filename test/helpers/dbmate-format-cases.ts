/**
 * Migration folders in dbmate's format, each with what dbmate 2.36.0 does with it and what
 * lockstep does: the cases of dbmate's own parser tests (described here in our words), and the
 * file names and folder contents dbmate's discovery accepts or skips. Shared by the unit table
 * (test/unit/dbmate-format.test.ts) and the real-binary parity test (test/cli/dbmate-format.test.ts).
 */

export type Verdict = 'accepts' | 'refuses';

export interface FormatCase {
  readonly what: string;
  /** File name → text; a name ending in `/` is a directory. */
  readonly files: Readonly<Record<string, string>>;
  /** What `dbmate up` does with the folder. */
  readonly dbmate: Verdict;
  /** What `lockstep up` does with it: the same, except where `difference` says why not. */
  readonly lockstep: Verdict;
  /** The warnings lockstep gives, as `file:line` (or `file` for a file as a whole). */
  readonly warnings?: readonly string[];
  /** Why lockstep's verdict or the resulting schema differs from dbmate's. */
  readonly difference?: string;
  /** After `up`, `dbmate rollback` and `lockstep down` are run too and must both succeed alike. */
  readonly rollback?: true;
}

const UP_DOWN =
  '-- migrate:up\nCREATE TABLE users (id integer, name text);\n-- migrate:down\nDROP TABLE users;\n';

export const FORMAT_CASES: readonly FormatCase[] = [
  // The cases of dbmate's parser tests.
  {
    what: 'one up and one down section, the file ending without a newline',
    files: { '1_users.sql': UP_DOWN.trimEnd() },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'markers with no space between -- and migrate, after a blank first line',
    files: {
      '1_users.sql':
        '\n--migrate:up\nCREATE TABLE users (id integer);\n\n--migrate:down\nDROP TABLE users;\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'the down section written before the up section',
    files: {
      '1_users.sql': '-- migrate:down\nDROP TABLE users;\n-- migrate:up\nCREATE TABLE users (id integer);\n',
    },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'transaction:false and transaction:true on the markers of one migration',
    files: {
      '1_users.sql':
        '-- migrate:up transaction:false\nCREATE TABLE users (id integer);\n-- migrate:down transaction:true\nDROP TABLE users;\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'several up/down pairs in one file',
    files: {
      '1_two.sql':
        '-- migrate:up transaction:false\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n' +
        '-- migrate:up\nCREATE TABLE b (id integer);\n-- migrate:down\nDROP TABLE b;\n',
    },
    dbmate: 'refuses',
    lockstep: 'refuses',
    difference:
      "dbmate's parser accepts it, then `up` applies the first pair and fails at the second (it records the version twice); lockstep refuses the file before changing anything",
  },
  {
    what: 'SQL and no marker at all',
    files: { '1_users.sql': 'CREATE TABLE users (id integer);\n' },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'a down section and no up section',
    files: { '1_users.sql': '-- migrate:down\nDROP TABLE users;\n' },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'an up section and no down marker',
    files: { '1_users.sql': '-- migrate:up\nCREATE TABLE users (id integer);\n' },
    dbmate: 'refuses',
    lockstep: 'accepts',
    difference: 'the down section is optional in lockstep (SPEC); rolling such a migration back is a no-op',
  },
  {
    what: 'comment lines and blank lines before the up marker',
    files: { '1_users.sql': `\n-- Creates users.\n-- Drops them on rollback.\n\n${UP_DOWN}` },
    dbmate: 'accepts',
    lockstep: 'accepts',
  },
  {
    what: 'a statement before the up marker',
    files: { '1_users.sql': `-- first a table\nCREATE TABLE early (id integer);\n\n${UP_DOWN}` },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'CRLF line endings',
    files: { '1_users.sql': UP_DOWN.replaceAll('\n', '\r\n') },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'CRLF line endings with options on the markers',
    files: {
      '1_users.sql':
        '-- migrate:up transaction:true\r\nCREATE TABLE users (id integer);\r\n-- migrate:down transaction:true\r\nDROP TABLE users;\r\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'two up markers and one down marker',
    files: {
      '1_two.sql':
        '-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:up\nCREATE TABLE b (id integer);\n-- migrate:down\nDROP TABLE b;\n',
    },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'two down markers after one up marker',
    files: {
      '1_users.sql': `${UP_DOWN}-- migrate:down\nDROP TABLE other;\n`,
    },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },

  // Marker lines.
  {
    what: 'an option neither tool knows on the up marker',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:up', '-- migrate:up foo:bar') },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:1'],
  },
  {
    what: 'a word that is not key:value on the down marker',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:down', '-- migrate:down concurrently') },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:3'],
    rollback: true,
  },
  {
    what: 'transaction:no, which dbmate reads as true',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:up', '-- migrate:up transaction:no') },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:1'],
  },
  {
    what: 'transaction:false:x, which dbmate ignores',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:up', '-- migrate:up transaction:false:x') },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:1'],
  },
  {
    what: 'a comment after the marker',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:up', '-- migrate:up -- the users table') },
    dbmate: 'accepts',
    lockstep: 'accepts',
  },
  {
    what: 'lockstep options, which dbmate ignores',
    files: { '1_users.sql': UP_DOWN.replace('-- migrate:up', '-- migrate:up lock_timeout:2s timeout:10m') },
    dbmate: 'accepts',
    lockstep: 'accepts',
  },
  {
    what: '-- migrate:upgrade inside the up section (a comment to both)',
    files: {
      '1_users.sql':
        '-- migrate:up\nCREATE TABLE users (id integer);\n-- migrate:upgrade the rows too\nCREATE TABLE more (id integer);\n-- migrate:down\nDROP TABLE more;\nDROP TABLE users;\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:3'],
    rollback: true,
  },
  {
    what: 'a down marker in capitals and no real one',
    files: {
      '1_users.sql': '-- migrate:up\nCREATE TABLE users (id integer);\n-- MIGRATE:DOWN\nDROP TABLE users;\n',
    },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'an indented up marker only',
    files: { '1_users.sql': '  -- migrate:up\nCREATE TABLE users (id integer);\n' },
    dbmate: 'refuses',
    lockstep: 'refuses',
  },
  {
    what: 'an empty down marker before the up marker (a comment to dbmate)',
    files: { '1_users.sql': `-- migrate:down\n${UP_DOWN}` },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['1_users.sql:1'],
  },
  {
    what: 'an empty up section',
    files: { '1_nothing.sql': '-- migrate:up\n-- migrate:down\n' },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'an empty down section, rolled back as a no-op',
    files: { '1_users.sql': '-- migrate:up\nCREATE TABLE users (id integer);\n-- migrate:down\n' },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'a down section of comments only, rolled back as a no-op',
    files: {
      '1_users.sql': '-- migrate:up\nCREATE TABLE users (id integer);\n-- migrate:down\n-- kept on purpose\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },

  // File names and the folder.
  {
    what: 'file names <digits>-name.sql and <digits>.sql',
    files: {
      '1-users.sql': UP_DOWN,
      '2.sql': '-- migrate:up\nCREATE TABLE posts (id integer);\n-- migrate:down\nDROP TABLE posts;\n',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    rollback: true,
  },
  {
    what: 'files that are not migrations beside them, and subdirectories',
    files: {
      '1_users.sql': UP_DOWN,
      'README.md': '# migrations\n',
      'schema.sql': 'CREATE TABLE never (id integer);\n',
      'notes.txt': 'x',
      '2_old.sql.bak': 'CREATE TABLE never2 (id integer);\n',
      '3_ignored.SQL': 'CREATE TABLE never3 (id integer);\n',
      'archive/': '',
      '4_dir.sql/': '',
    },
    dbmate: 'accepts',
    lockstep: 'accepts',
    warnings: ['4_dir.sql', 'schema.sql'],
  },
  {
    what: 'the same version number written with and without leading zeros',
    files: {
      '1_users.sql': UP_DOWN,
      '001_posts.sql':
        '-- migrate:up\nCREATE TABLE posts (id integer);\n-- migrate:down\nDROP TABLE posts;\n',
    },
    dbmate: 'accepts',
    lockstep: 'refuses',
    difference:
      'lockstep compares versions as numbers (9 before 10, 1 = 001); dbmate keeps both as different strings',
  },
];
