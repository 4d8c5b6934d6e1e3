// One application worker booting: it runs migrations first, like every worker would.
import { migrate } from '../../dist/index.js';

const [workerNo, url, dir] = process.argv.slice(2);
const started = performance.now();
const result = await migrate({ url, dir });
const ms = Math.round(performance.now() - started);
const tag = `worker ${workerNo} (pid ${process.pid})`;
if (result.applied.length > 0) {
  console.log(`${tag}: applied ${result.applied.map((m) => `${m.version}_${m.name}`).join(', ')} in ${ms}ms`);
} else if (result.appliedByOthers.length > 0) {
  const by = [...new Set(result.appliedByOthers.map((m) => m.by))].join(', ');
  console.log(
    `${tag}: waited ${Math.round(result.waitedMs)}ms; ${result.appliedByOthers.length} migrations were applied by ${by}`,
  );
} else {
  console.log(`${tag}: up to date (${result.total} applied), ready in ${ms}ms`);
}
