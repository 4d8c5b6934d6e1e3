import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';

export interface RawAnswer {
  /** The status code of the first response, or undefined if the server closed without one. */
  readonly status: number | undefined;
  /** The response as received (latin1), headers and body. */
  readonly text: string;
  /** Whether the client had to half-close its side before the server answered or closed. */
  readonly halfClosed: boolean;
}

/**
 * Sends `bytes` as they are over a fresh TCP connection and reads the first response. A server
 * still waiting after `quietMs` (a request that wants more) gets the client's FIN; one that neither
 * answers nor closes within `deadlineMs` after that is wedged: the promise rejects.
 */
export function rawRequest(
  port: number,
  bytes: Buffer | string,
  { quietMs = 1_000, deadlineMs = 15_000 } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let halfClosed = false;
    const finish = () => {
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      const text = withoutInterim(received);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), text, halfClosed });
    };
    const quiet = setTimeout(() => {
      halfClosed = true;
      socket.end();
    }, quietMs);
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`wedged: no answer and no close ${quietMs + deadlineMs} ms after ${show(bytes)}`));
    }, quietMs + deadlineMs);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (complete(received)) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => {}); // a reset is a close
    socket.write(bytes);
  });
}

/** A whole response: headers and as much body as Content-Length says (or none said). */
function complete(received: Buffer): boolean {
  const text = withoutInterim(received);
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = text.slice(0, end);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return text.endsWith('\r\n0\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  return length === undefined || text.length >= end + 4 + Number(length);
}

/** The response without any `100 Continue` before it. */
function withoutInterim(received: Buffer): string {
  return received.toString('latin1').replace(/^(?:HTTP\/1\.[01] 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
}

export function show(bytes: Buffer | string): string {
  return JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 300));
}

/** The JSON body of a raw answer. */
export function jsonOf(answer: RawAnswer): Record<string, unknown> {
  const end = answer.text.indexOf('\r\n\r\n');
  let body = answer.text.slice(end + 4);
  if (/\r\ntransfer-encoding: *chunked/i.test(answer.text.slice(0, end))) {
    let joined = '';
    for (let at = 0, size = 1; size > 0; ) {
      const line = body.indexOf('\r\n', at);
      size = Number.parseInt(body.slice(at, line), 16);
      joined += body.slice(line + 2, line + 2 + size);
      at = line + 2 + size + 2;
    }
    body = joined;
  }
  return JSON.parse(Buffer.from(body, 'latin1').toString('utf8'));
}

export interface FreshAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/**
 * One HTTP request on a connection of its own (no keep-alive reuse). A test whose process blocks
 * its event loop for seconds (better-sqlite3 runs a long statement synchronously) would otherwise
 * race the server's keep-alive timeout: the client reuses the socket as the server closes it, and
 * `fetch` fails with nothing the server did wrong.
 */
export function freshRequest(
  url: URL,
  {
    method = 'GET',
    headers = {},
    body,
  }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<FreshAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const answerHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
            answerHeaders.append(name, one);
          }
        }
        resolve({
          status: response.statusCode ?? 0,
          headers: answerHeaders,
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}
