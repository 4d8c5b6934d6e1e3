// A long-lived runner for scenario 2. On each { run } message it calls lockstep's migrate() once
// and reports, on the machine-wide monotonic clock (process.hrtime, CLOCK_MONOTONIC: the same in
// every process), when it started waiting, when it finished its last migration (the moment before
// it releases the lock) and when it started its first one (the moment it starts work).
const { migrate } = await import(process.env.BENCH_LIBRARY);

const clock = () => Number(process.hrtime.bigint()) / 1e6;

process.on('message', async (message) => {
  if (message.type === 'exit') process.exit(0);
  const marks = { waiting: null, acquired: null, firstMigrating: null, lastMigrated: null, unlockSent: null };
  const on = (event) => {
    const t = clock();
    if (event.type === 'lock-waiting' && marks.waiting === null) {
      marks.waiting = t;
      process.send({ type: 'waiting', round: message.round });
    } else if (event.type === 'lock-acquired') {
      marks.acquired = t;
    } else if (event.type === 'migrating' && marks.firstMigrating === null) {
      marks.firstMigrating = t;
      process.send({ type: 'started', round: message.round });
    } else if (event.type === 'migrated') {
      marks.lastMigrated = t;
    } else if (event.type === 'query' && /advisory_unlock|RELEASE_LOCK/.test(event.sql)) {
      marks.unlockSent = t;
    }
  };
  try {
    const result = await migrate({ url: message.url, dir: message.dir, table: message.table, on });
    process.send({ type: 'done', round: message.round, marks, result });
  } catch (error) {
    process.send({ type: 'done', round: message.round, marks, error: String(error?.message ?? error) });
  }
});
process.send({ type: 'ready' });
