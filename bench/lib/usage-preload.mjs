// Loaded with `node --import` ahead of a CLI: when the process exits, however it exits, writes
// its peak resident set size (KiB) and CPU time (µs) to $BENCH_USAGE_FILE as JSON.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  if (!process.env.BENCH_USAGE_FILE) return;
  const { maxRSS, userCPUTime, systemCPUTime } = process.resourceUsage();
  writeFileSync(
    process.env.BENCH_USAGE_FILE,
    JSON.stringify({ maxRSS, cpuMicros: userCPUTime + systemCPUTime }),
  );
});
