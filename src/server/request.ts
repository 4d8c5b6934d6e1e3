/**
 * What the handler reads from a request — the target's path, the Host header, a JSON body's fields —
 * as pure functions that never throw, whatever a client sent: anything they cannot make sense of
 * is `undefined` or a message, for the handler to answer with a 4xx.
 */

/**
 * The path of a request target (origin-form `/a/b?q` or absolute-form `http://host/a/b?q`), as
 * sent: not decoded, dot segments kept. `undefined` for any other form (`*`, `host:port`, junk).
 */
export function requestPath(target: string): string | undefined {
  let rest = target;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (absolute) rest = target.slice(absolute[0].length).replace(/^(?!\/)/, '/');
  if (!rest.startsWith('/')) return undefined;
  const end = rest.search(/[?#]/);
  return end === -1 ? rest : rest.slice(0, end);
}

/**
 * The host a request names: an absolute-form target's authority (which, per RFC 9112, replaces
 * the Host header), else the Host header.
 */
export function requestHost(target: string, header: string | undefined): string | undefined {
  const absolute = /^https?:\/\/([^/?#]*)/i.exec(target);
  return absolute ? absolute[1] : header;
}

/** Whether `path` is `base` or below it (`/lockstep`, `/lockstep/…`, not `/lockstepx`). */
export function isUnder(path: string, base: string): boolean {
  return base === '' || path === base || path.startsWith(`${base}/`);
}

export interface HostName {
  /** Lower case; an IPv6 address keeps its brackets: `[::1]`. */
  readonly name: string;
  readonly port: number | undefined;
}

/** A Host header value (or an `--allow-host` value): `name`, `name:port`, `[v6]`, `[v6]:port`. */
export function parseHost(value: string): HostName | undefined {
  const match = /^(\[[0-9a-z:.%_-]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?)(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!match) return undefined;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: (match[1] as string).toLowerCase(), port };
}

/** The names a loopback client uses. */
export const LOOPBACK_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Whether a Host header names this server: its name is an allowed one, and where an allowed
 * entry has a port, the port too. A Host without a port is the default port, 80.
 */
export function hostAllowed(header: string | undefined, allowed: readonly HostName[]): boolean {
  const host = header === undefined ? undefined : parseHost(header);
  if (!host) return false;
  return allowed.some((a) => a.name === host.name && (a.port === undefined || a.port === (host.port ?? 80)));
}

/** Client text in a message, cut short: a message never grows with the request (nor does its redaction's cost). */
export function clip(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Client text in a message, clipped and quoted. */
export function quote(text: string): string {
  return JSON.stringify(clip(text));
}

export type FieldKind = 'boolean' | 'parameters';

/**
 * Why a JSON body does not fit `fields` (what each field must be), or `undefined` if it does.
 * Only the body's and `fields`' own properties count: `constructor`, `__proto__` or `toString`
 * are unknown fields like any other.
 */
export function bodyProblem(
  action: string,
  fields: Readonly<Record<string, FieldKind>>,
  body: unknown,
): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body must be a JSON object';
  for (const [key, value] of Object.entries(body)) {
    const kind = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (kind === undefined) {
      const known = Object.keys(fields);
      return `${action} takes ${known.length > 0 ? `only ${known.join(', ')}` : 'no fields'}, not ${quote(key)}`;
    }
    if (kind === 'boolean' && typeof value !== 'boolean') return `"${key}" must be true or false`;
    if (kind === 'parameters' && !isParameters(value))
      return `"${key}" must be an object of names to strings, numbers or booleans`;
  }
  return undefined;
}

function isParameters(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every(
      (v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)),
    )
  );
}
