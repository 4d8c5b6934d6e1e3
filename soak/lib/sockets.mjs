// The local TCP ports of a process's sockets (Linux /proc): which server session is whose.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function clientPorts(pid) {
  const inodes = new Set();
  for (const fd of safe(() => readdirSync(`/proc/${pid}/fd`), [])) {
    const match = /^socket:\[(\d+)\]$/.exec(safe(() => readlinkSync(`/proc/${pid}/fd/${fd}`), ''));
    if (match) inodes.add(match[1]);
  }
  const ports = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of safe(() => readFileSync(table, 'utf8'), '')
      .split('\n')
      .slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && inodes.has(fields[9]))
        ports.push(Number.parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}

function safe(read, fallback) {
  try {
    return read();
  } catch {
    return fallback;
  }
}
