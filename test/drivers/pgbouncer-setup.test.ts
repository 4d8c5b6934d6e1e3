/**
 * The PgBouncer harness itself: both pool modes really pool (session keeps a client on one backend,
 * transaction shares backends between clients), the pooler stands between client and server (the
 * BackendKeyData pid is its own), and stop() leaves no process behind.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPooledPostgresDatabase, type PgBouncer, startPgBouncer } from '../helpers/pgbouncer.js';
import { isRunning } from '../helpers/process.js';
import { directPostgresUrl } from '../helpers/targets.js';

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]?.pid ?? Number.NaN;
}

/** The pid in the BackendKeyData the client was sent (pg keeps it; its types do not declare it). */
function announcedPid(client: pg.Client): number {
  return (client as unknown as { processID: number }).processID;
}

/** Pids of the processes holding a socket that listens on 127.0.0.1:`port`. */
function listenersOn(port: number): number[] {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set(
    readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[1] === wanted && f[3] === '0A')
      .map((f) => `socket:[${f[9]}]`),
  );
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (holds) pids.push(Number(entry));
  }
  return pids;
}

describe('PgBouncer test harness', () => {
  let session: PgBouncer;
  let transaction: PgBouncer;
  const startupMs: Record<string, number> = {};

  before(async () => {
    let t = performance.now();
    session = await startPgBouncer('session');
    startupMs.session = Math.round(performance.now() - t);
    t = performance.now();
    transaction = await startPgBouncer('transaction', { poolSize: 1 });
    startupMs.transaction = Math.round(performance.now() - t);
  });

  after(async () => {
    await session?.stop();
    await transaction?.stop();
  });

  it('starts both modes on distinct loopback ports', () => {
    assert.equal(session.mode, 'session');
    assert.equal(transaction.mode, 'transaction');
    assert.notEqual(session.port, transaction.port);
    assert.equal(session.url('test'), `postgres://postgres@127.0.0.1:${session.port}/test`);
    assert.match(session.log(), /process up/);
    console.log(
      `pgbouncer startup: session ${startupMs.session} ms, transaction ${startupMs.transaction} ms`,
    );
  });

  it('session mode keeps one client on one backend', async () => {
    const client = await connect(session.url('test'));
    try {
      const first = await backendPid(client);
      const second = await backendPid(client);
      assert.equal(second, first);
    } finally {
      await client.end();
    }
  });

  it('session mode gives two clients held at once two backends', async () => {
    const a = await connect(session.url('test'));
    const b = await connect(session.url('test'));
    try {
      assert.notEqual(await backendPid(a), await backendPid(b));
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('transaction mode shares backends between interleaving clients', async () => {
    const a = await connect(transaction.url('test'));
    const b = await connect(transaction.url('test'));
    try {
      const seenByA = new Set<number>();
      const seenByB = new Set<number>();
      for (let round = 0; round < 20; round++) {
        seenByA.add(await backendPid(a));
        seenByB.add(await backendPid(b));
        seenByA.add(await backendPid(a));
      }
      const shared = [...seenByA].filter((pid) => seenByB.has(pid));
      assert.ok(shared.length > 0, `A saw ${[...seenByA]}, B saw ${[...seenByB]}: no backend shared`);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("the BackendKeyData pid is the pooler's through either bouncer, the server's direct", async () => {
    for (const bouncer of [session, transaction]) {
      const client = await connect(bouncer.url('test'));
      try {
        assert.notEqual(announcedPid(client), await backendPid(client), `${bouncer.mode} mode`);
      } finally {
        await client.end();
      }
    }
    const direct = await connect(directPostgresUrl('test'));
    try {
      assert.equal(announcedPid(direct), await backendPid(direct));
    } finally {
      await direct.end();
    }
  });

  it('a pooled test database is reached through the bouncer and queried directly', async () => {
    const db = await createPooledPostgresDatabase(session, '?application_name=pooled');
    try {
      const url = new URL(db.url);
      assert.equal(url.port, String(session.port));
      assert.equal(url.search, '?application_name=pooled');
      await db.query('CREATE TABLE made_directly (id int)');
      const client = await connect(db.url);
      try {
        const { rows } = await client.query('SELECT count(*)::int AS n FROM made_directly');
        assert.deepEqual(rows, [{ n: 0 }]);
        assert.notEqual(announcedPid(client), await backendPid(client));
      } finally {
        await client.end();
      }
      const [direct] = await db.query('SELECT pg_backend_pid() AS pid, current_database() AS db');
      assert.equal(direct?.db, url.pathname.slice(1));
    } finally {
      await db.cleanup();
    }
  });

  it('stop() leaves no pgbouncer process of ours', async () => {
    const ours = [...listenersOn(session.port), ...listenersOn(transaction.port)];
    assert.equal(ours.length, 2, `listeners found: ${ours}`);
    for (const pid of ours) assert.match(readFileSync(`/proc/${pid}/comm`, 'utf8'), /^pgbouncer/);
    await session.stop();
    await transaction.stop();
    for (const pid of ours) assert.equal(isRunning(pid), false, `pgbouncer ${pid} still running`);
    assert.deepEqual([...listenersOn(session.port), ...listenersOn(transaction.port)], []);
    assert.match(session.log(), /shutting down|got SIGTERM/i);
  });
});
