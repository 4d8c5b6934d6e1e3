import path from 'node:path';
import { ROOT } from './targets.js';

/**
 * The race suites' migrations: each inserts its version into applied_log, so a count above 1 is a
 * double application. The third builds an index: outside a transaction (`concurrently`: Postgres'
 * CREATE INDEX CONCURRENTLY, elsewhere a plain index with transaction:false) or inside one.
 */
export function countedMigrations(
  index: 'concurrently' | 'transaction:false' | 'in a transaction',
): Record<string, string> {
  const statement =
    index === 'concurrently'
      ? 'CREATE INDEX CONCURRENTLY users_email ON users (email);'
      : 'CREATE INDEX users_email ON users (email);';
  return {
    '001_applied_log.sql': `-- migrate:up
CREATE TABLE applied_log (version varchar(32) NOT NULL);
INSERT INTO applied_log (version) VALUES ('001');
-- migrate:down
DROP TABLE applied_log;
`,
    '002_users.sql': `-- migrate:up
CREATE TABLE users (id integer PRIMARY KEY, email varchar(255));
INSERT INTO applied_log (version) VALUES ('002');
-- migrate:down
DROP TABLE users;
`,
    '003_users_email.sql': `-- migrate:up${index === 'in a transaction' ? '' : ' transaction:false'}
${statement}
INSERT INTO applied_log (version) VALUES ('003');
`,
    '004_slow.ts': `import type { MigrationContext } from '${path.join(ROOT, 'src/index.js')}';

export async function up(ctx: MigrationContext): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  await ctx.query("INSERT INTO applied_log (version) VALUES ('004')");
}
`,
  };
}

export const COUNTED_VERSIONS = ['001', '002', '003', '004'];
