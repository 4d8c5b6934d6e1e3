// Counts the queries every in-process tool sends, by wrapping the drivers' query methods (both
// copies: lockstep's own node_modules and bench's). One query sent = one round trip.
import { createRequire } from 'node:module';
import path from 'node:path';
import { BENCH, ROOT } from './shared.mjs';

let count = 0;
let installed = false;

function wrap(prototype, names) {
  for (const name of names) {
    const original = prototype[name];
    prototype[name] = function counted(...args) {
      count++;
      return original.apply(this, args);
    };
  }
}

export function installRoundTripCounter() {
  if (installed) return;
  for (const base of [ROOT, BENCH]) {
    const require = createRequire(path.join(base, 'package.json'));
    wrap(require('pg').Client.prototype, ['query']);
    // The base class of mysql2's Connection and PoolConnection, where query/execute live.
    wrap(Object.getPrototypeOf(require('mysql2').Connection.prototype), ['query', 'execute']);
  }
  installed = true;
}

/** Runs `work` and returns how many queries it sent. */
export async function countRoundTrips(work) {
  installRoundTripCounter();
  const before = count;
  await work();
  return count - before;
}
