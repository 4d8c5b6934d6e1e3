// What a kysely user runs at boot (kysely has no CLI of its own): Migrator.migrateToLatest().
import { runPeer } from '../lib/peer-runners.mjs';

await runPeer('kysely', fromEnv()).then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

function fromEnv() {
  const env = process.env;
  return {
    kind: env.BENCH_DB_KIND,
    url: env.BENCH_DB_URL,
    file: env.BENCH_DB_FILE,
    dir: env.BENCH_MIGRATIONS_DIR,
  };
}
