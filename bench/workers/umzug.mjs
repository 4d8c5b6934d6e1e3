// What an umzug user runs at boot (umzug has no CLI of its own): umzug.up().
import { runPeer } from '../lib/peer-runners.mjs';

await runPeer('umzug', fromEnv()).then(
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
