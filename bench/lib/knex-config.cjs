// One knex configuration for the knex CLI (workers/knexfile.cjs) and the in-process runs.
exports.knexConfig = ({ kind, url, file, dir }) => {
  const migrations = { directory: dir, loadExtensions: ['.cjs'] };
  if (kind === 'postgres') return { client: 'pg', connection: url, migrations };
  if (kind === 'mysql') return { client: 'mysql2', connection: url, migrations };
  return { client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true, migrations };
};
