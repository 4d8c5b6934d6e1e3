// The knexfile the knex CLI runs with: the database and migrations folder come from the bench.
const { knexConfig } = require('../lib/knex-config.cjs');

const env = process.env;
module.exports = knexConfig({
  kind: env.BENCH_DB_KIND,
  url: env.BENCH_DB_URL,
  file: env.BENCH_DB_FILE,
  dir: env.BENCH_MIGRATIONS_DIR,
});
