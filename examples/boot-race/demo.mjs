// The boot race, on SQLite: four workers start at the same moment and all run migrations.
// Exactly one applies them; the others wait, then say who did. Run with `npm run demo`.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(here, 'demo.sqlite3');
const url = `sqlite://${file}`;
const dir = path.join(here, 'migrations');
const cli = path.join(here, '../../dist/cli/main.js');

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', resolve);
  });
}

async function boot(round) {
  console.log(`\n== ${round}: 4 workers boot at once ==`);
  const codes = await Promise.all(
    [1, 2, 3, 4].map((n) => run([path.join(here, 'worker.mjs'), String(n), url, dir])),
  );
  if (codes.some((c) => c !== 0)) process.exit(1);
}

for (const suffix of ['', '-lockstep_migrations.lock']) rmSync(`${file}${suffix}`, { force: true });
await boot('fresh database');
await boot('next deploy, nothing pending');
console.log('\n== lockstep status ==');
await run([cli, 'status', '--url', url, '--dir', dir]);
