import type { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { QueryResult } from '../driver.js';
import { literal } from './dialect.js';
import { codeOf, DDL_TIMEOUT, messageOf, serverMessage } from './errors.js';

/** `… ON CLUSTER name …`: DDL the server hands to the cluster's distributed DDL queue. */
export const ON_CLUSTER = /\bON\s+CLUSTER\b/i;

/** Where the queue lives unless the server's <distributed_ddl><path> says otherwise. */
const DEFAULT_QUEUE = '/clickhouse/task_queue/ddl';
const POLL_MS = 500;

/** One host's answer to a distributed DDL. */
export interface HostResult {
  readonly host: string;
  /** 0: done; otherwise the server's error code. */
  readonly status: number;
  readonly error: string;
}

/** A distributed DDL that did not succeed on every host: each host's result, never "applied". */
export class ClusterDdlError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly hosts: readonly HostResult[],
    summary: string,
  ) {
    const failed = hosts.filter((h) => h.status !== 0);
    const done = hosts.filter((h) => h.status === 0);
    const perHost = [
      ...done.map((h) => `${h.host} done`),
      ...failed.map(
        (h) => `${h.host} failed: ${serverMessage(h.error).replace(/\.$/, '') || `code ${h.status}`}`,
      ),
    ];
    super(`${summary.replace(/\.?$/, '.')}${perHost.length > 0 ? ` Per host: ${perHost.join('; ')}.` : ''}`);
    this.code = failed[0] ? String(failed[0].status) : undefined;
  }
}

/**
 * Runs `ON CLUSTER` DDL and checks every host's result. The server answers a row per host; a
 * host that refused makes the statement fail, reported per host (a table created on one host and
 * refused by another is not "applied"). When `distributed_ddl_task_timeout` expires the DDL goes
 * on in the background: the queue entry is followed until every host has finished it.
 */
export class ClusterDdl {
  readonly #client: ClickHouseClient;
  readonly #closed: () => boolean;
  readonly #notice: (message: string) => void;

  constructor(client: ClickHouseClient, closed: () => boolean, notice: (message: string) => void) {
    this.#client = client;
    this.#closed = closed;
    this.#notice = notice;
  }

  async run(sql: string, queryId: string, settings: Record<string, string | number>): Promise<QueryResult> {
    const newest = await this.#newestEntry(DEFAULT_QUEUE).catch(() => undefined);
    let text: string;
    try {
      const result = await this.#client.exec({
        query: sql,
        query_id: queryId,
        clickhouse_settings: { ...settings, default_format: 'TabSeparatedWithNames' },
      });
      text = await readAll(result.stream as Readable);
    } catch (error) {
      if (codeOf(error) === DDL_TIMEOUT) {
        const task = /Watching task (\S+) is executing longer/.exec(messageOf(error))?.[1];
        if (task) {
          this.#notice(
            `${serverMessage(error).replace(/\.?$/, '')}: not a failure; following ${task} until every host has run it`,
          );
          return this.#hostsDone(await this.#follow(task), sql);
        }
        throw error;
      }
      if (/There was an error on \[/.test(messageOf(error))) {
        const task = newest === undefined ? undefined : await this.#entryAfter(DEFAULT_QUEUE, newest);
        const hosts = task ? await this.#follow(task) : [];
        throw new ClusterDdlError(hosts, serverMessage(error));
      }
      throw error;
    }
    return this.#hostsDone(parseHostRows(text), sql);
  }

  #hostsDone(hosts: readonly HostResult[], sql: string): QueryResult {
    if (hosts.some((h) => h.status !== 0)) {
      throw new ClusterDdlError(
        hosts,
        `the distributed DDL failed on part of the cluster: ${sql.slice(0, 200)}`,
      );
    }
    return { rows: hosts.map((h) => ({ ...h })), rowCount: hosts.length };
  }

  /** Waits until every host of the queue entry `task` has finished it; each host's result. */
  async #follow(task: string): Promise<HostResult[]> {
    const [entry] = await this.#zookeeper(
      `path = ${literal(parent(task))} AND name = ${literal(leaf(task))}`,
    );
    const hosts = [...String(entry?.value ?? '').matchAll(/'([^']+)'/g)].map((m) =>
      decodeURIComponent((m[1] as string).replaceAll('%2E', '.')),
    );
    if (hosts.length === 0) {
      throw new Error(
        `the distributed DDL queue entry ${task} cannot be read (system.zookeeper): which hosts ran it is ` +
          'not known; the DDL may go on in the background',
      );
    }
    for (;;) {
      const finished = await this.#zookeeper(`path = ${literal(`${task}/finished`)}`);
      if (finished.length >= hosts.length || this.#closed()) {
        return finished.map((f) => {
          const [status = '0', ...error] = String(f.value).split('\n');
          return {
            host: decodeURIComponent(String(f.name)),
            status: Number(status),
            error: error.join('\n').trim(),
          };
        });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async #newestEntry(queue: string): Promise<string | undefined> {
    const rows = await this.#zookeeper(
      `path = ${literal(queue)} AND name LIKE 'query-%'`,
      'ORDER BY name DESC LIMIT 1',
    );
    return rows[0] ? String(rows[0].name) : '';
  }

  /** The one entry queued after `newest` (lockstep holds the lock: its own DDL), or undefined. */
  async #entryAfter(queue: string, newest: string): Promise<string | undefined> {
    const rows = await this.#zookeeper(
      `path = ${literal(queue)} AND name > ${literal(newest)} AND name LIKE 'query-%'`,
    );
    return rows.length === 1 ? `${queue}/${String(rows[0]?.name)}` : undefined;
  }

  async #zookeeper(where: string, tail = ''): Promise<Record<string, unknown>[]> {
    const result = await this.#client.query({
      query: `SELECT name, value FROM system.zookeeper WHERE ${where} ${tail}`,
      format: 'JSONEachRow',
    });
    return (await result.json()) as Record<string, unknown>[];
  }
}

/** `host port status error num_hosts_remaining num_hosts_active`, with a header row. */
function parseHostRows(text: string): HostResult[] {
  const [header, ...lines] = text.split('\n').filter((l) => l !== '');
  const columns = (header ?? '').split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    const cell = (name: string) => unescapeTsv(cells[columns.indexOf(name)] ?? '');
    return { host: `${cell('host')}:${cell('port')}`, status: Number(cell('status')), error: cell('error') };
  });
}

function unescapeTsv(text: string): string {
  return text.replace(/\\([tn\\'])/g, (_, c: string) => ({ t: '\t', n: '\n', '\\': '\\', "'": "'" })[c] ?? c);
}

function parent(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}

function leaf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}
