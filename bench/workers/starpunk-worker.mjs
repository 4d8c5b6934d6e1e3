// One application worker booting (scenario 5): run migrations in-process with the tool's library,
// then report "ready" with the machine-wide monotonic clock, as a web worker would start serving.
import { runPeer } from '../lib/peer-runners.mjs';

const [tool] = process.argv.slice(2);
const env = process.env;
const target = {
  kind: 'sqlite',
  url: env.BENCH_DB_URL,
  file: env.BENCH_DB_FILE,
  dir: env.BENCH_MIGRATIONS_DIR,
};
try {
  if (tool === 'lockstep') {
    const { migrate } = await import(env.BENCH_LIBRARY);
    await migrate({ url: target.url, dir: target.dir });
  } else {
    await runPeer(tool, target);
  }
  process.stdout.write(`ready ${Number(process.hrtime.bigint()) / 1e6}\n`);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
