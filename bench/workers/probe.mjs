// Diagnostics in a fresh process, printed as JSON { ms, rssMiB }:
//   probe.mjs read <sync|async|lockstep> <dir>   read every file of dir (lockstep: its readMigrations)
//   probe.mjs load <module path>                  import one module (a database driver)
const [what, mode, target] = process.argv.slice(2);
const t0 = performance.now();
if (what === 'read') {
  const fs = await import('node:fs');
  const names = fs.readdirSync(target);
  if (mode === 'sync') for (const n of names) fs.readFileSync(`${target}/${n}`, 'utf8');
  if (mode === 'async') await Promise.all(names.map((n) => fs.promises.readFile(`${target}/${n}`, 'utf8')));
  if (mode === 'lockstep') await (await import(process.env.BENCH_SOURCES)).readMigrations(target);
} else if (what === 'load') {
  await import(mode);
}
const ms = Math.round((performance.now() - t0) * 10) / 10;
process.stdout.write(JSON.stringify({ ms, rssMiB: Math.round(process.resourceUsage().maxRSS / 102.4) / 10 }));
