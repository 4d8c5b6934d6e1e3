/**
 * The one owner of secret scrubbing (SPEC guarantee 11). Every channel that leaves the process —
 * error messages and fields, ledger and error-table writes, events and `ctx.log`, CLI output,
 * HTTP responses — passes its text through a scrubber made here from the database URL in use.
 *
 * A scrubber hides:
 * - the URL's password (`scheme://user:password@…`, taken to run to the last `@`), and the values
 *   of secret query parameters (see SECRET_PARAMETER), wherever they appear: as written in the
 *   URL, percent-decoded, percent-encoded, and escaped as JSON or SQL string text;
 * - the credentials of any URL-looking text, also one that does not parse (`postgres://u:pa`,
 *   what a `.env` line `postgres://u:pa#ss@h/db` is cut to at its `#` comment).
 * Passwords shorter than MIN_LITERAL are hidden in URLs only: replacing every `ab` of a message
 * would garble it, and its gaps would spell the password.
 */

export type Scrub = (text: string) => string;

export const REDACTED = '***';

/** Query parameters whose value is a secret: `key` (SQLCipher), or a name containing one of these. */
export const SECRET_PARAMETER =
  /^(?:key|[a-z0-9_.-]*(?:pass|pwd|secret|token|credential|auth|api_?key|access_?key|private_?key)[a-z0-9_.-]*)$/i;

/** Shortest password hidden wherever it appears, not only inside a URL. */
export const MIN_LITERAL = 4;

const SCHEME = '[a-z][a-z0-9+.-]*://';
/** Stops a URL inside a text: whitespace, the quotes around it, a backslash (JSON's escapes). */
const END = `\\s"'\`<>\\\\`;

/** `scheme://user:password@`: the password runs to the last `@` of the URL (it may hold `@ / ? #`). */
const WHOLE_URL_USERINFO = new RegExp(`^(${SCHEME}[^:/?#@[]*):(.*)@`, 'is');
/** `scheme://user:rest` with no `@`: a cut URL; `rest` is a password unless it is a port. */
const WHOLE_URL_CUT = new RegExp(`^(${SCHEME}[^:/?#@[]*):(?!\\d*(?:[/?#]|$))(.+)$`, 'is');
/**
 * In a text a URL starts where a scheme starts (not inside a longer word), and its credentials are
 * at most MAX_CREDENTIALS long: unbounded, a long text of letters or of repeated `x://` costs
 * quadratic time, and texts from clients reach these patterns. (The URL in use is hidden whatever
 * its length: its secrets are replaced literally.)
 */
const SCHEME_IN_TEXT = `(?<![a-z0-9+.-])${SCHEME}`;
const MAX_CREDENTIALS = 256;
const URL_USERINFO_IN_TEXT = new RegExp(
  `(${SCHEME_IN_TEXT}[^:/?#@[${END}]{0,${MAX_CREDENTIALS}}):[^${END}]{0,${MAX_CREDENTIALS}}@`,
  'gi',
);
const URL_CUT_IN_TEXT = new RegExp(
  `(${SCHEME_IN_TEXT}[^:/?#@[${END}]{0,${MAX_CREDENTIALS}}):(?!\\d*(?:[/?#${END}]|$))[^@${END}]{1,${MAX_CREDENTIALS}}(?=[${END}]|$)`,
  'gi',
);
/** `?name=value`: in a whole URL the value runs to the next `&` or `#`; in a text, also to END. */
const URL_PARAMETER = /([?&]([^=&#]+)=)([^&#]*)/g;
const TEXT_PARAMETER = /([?&]([^=&#?\s"'`\\]+)=)([^&#\s"'`\\]*)/g;

/** The URL with its password and secret parameters replaced, safe to show. */
export function redactUrl(url: string): string {
  const hidden = WHOLE_URL_USERINFO.test(url)
    ? url.replace(WHOLE_URL_USERINFO, `$1:${REDACTED}@`)
    : url.replace(WHOLE_URL_CUT, `$1:${REDACTED}`);
  return redactParameters(hidden, URL_PARAMETER);
}

/** Hides the credentials of every URL found in a text, also of URLs that do not parse. */
export function redactUrlsIn(text: string): string {
  return redactParameters(
    text.replace(URL_USERINFO_IN_TEXT, `$1:${REDACTED}@`).replace(URL_CUT_IN_TEXT, `$1:${REDACTED}`),
    TEXT_PARAMETER,
  );
}

function redactParameters(text: string, pattern: RegExp): string {
  return text.replace(pattern, (all, head: string, name: string) =>
    SECRET_PARAMETER.test(name) ? `${head}${REDACTED}` : all,
  );
}

/** The secrets a URL carries, as written in it: its password and secret parameter values. */
export function urlSecrets(url: string): string[] {
  const userinfo = WHOLE_URL_USERINFO.exec(url);
  const password = userinfo?.[2] ?? WHOLE_URL_CUT.exec(url)?.[2];
  const query = url.slice(userinfo?.[0].length ?? 0).replace(/^[^?]*/, '');
  const parameters = [...query.matchAll(URL_PARAMETER)]
    .filter((m) => SECRET_PARAMETER.test(m[2] as string))
    .map((m) => m[3] as string);
  return [password, ...parameters].filter((s): s is string => s !== undefined && s !== '');
}

/** Every spelling of a secret that output may carry, longest first. */
export function secretForms(secret: string): string[] {
  const decoded = lenientDecode(secret);
  const bases = new Set([secret, decoded, encodeURIComponent(decoded), encodeURI(decoded)]);
  const forms = new Set<string>();
  for (const base of bases) {
    for (const form of [
      base,
      JSON.stringify(base).slice(1, -1),
      base.replaceAll("'", "''"),
      base.replace(/[\\']/g, '\\$&'),
      base.replace(/\s+/g, ' '),
      // MySQL's utf8mb3 messages (SIGNAL's MESSAGE_TEXT) turn characters beyond the BMP into `?`.
      base.replace(/[\u{10000}-\u{10FFFF}]/gu, '?'),
    ]) {
      forms.add(form);
    }
  }
  return [...forms].filter((f) => f.length >= MIN_LITERAL).sort((a, b) => b.length - a.length);
}

/** Decodes the valid `%XX` sequences of a text, leaving the rest as it is. */
function lenientDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/** A scrubber for the URL in use (none: only the credentials of URLs in the text are hidden). */
export function secretScrubber(url: string | undefined): Scrub {
  const forms = [...new Set(url ? urlSecrets(url).flatMap(secretForms) : [])].sort(
    (a, b) => b.length - a.length,
  );
  const shown = url ? redactUrl(url) : undefined;
  return (text) => {
    let result = url && shown ? text.split(url).join(shown) : text;
    for (const form of forms) result = result.split(form).join(REDACTED);
    return redactUrlsIn(result);
  };
}

/**
 * A copy of a value with every string in it scrubbed: objects and arrays deeply; an Error is
 * scrubbed in place (message, stack, every field, its cause), so it keeps its class and identity.
 */
export function scrubDeep<T>(value: T, scrub: Scrub, seen = new WeakMap<object, unknown>()): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return seen.get(value) as T;
  if (value instanceof Error) {
    seen.set(value, value);
    scrubErrorInPlace(value, scrub, seen);
    return value;
  }
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(scrubDeep(item, scrub, seen));
    return copy as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Dates, Buffers, ...: no text
  const copy: Record<string, unknown> = {};
  seen.set(value, copy);
  for (const [key, item] of Object.entries(value)) copy[key] = scrubDeep(item, scrub, seen);
  return copy as T;
}

function scrubErrorInPlace(error: Error, scrub: Scrub, seen: WeakMap<object, unknown>): void {
  const fields = error as unknown as Record<string, unknown>;
  for (const key of new Set(['message', 'stack', 'cause', ...Object.keys(error)])) {
    if (!(key in error)) continue;
    try {
      fields[key] = scrubDeep(fields[key], scrub, seen);
    } catch {
      // a getter-only field: nothing lockstep puts secrets in
    }
  }
}

/** Runs `work`; no error leaves it with a secret of `url` anywhere in it. */
export async function withoutSecrets<T>(url: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw scrubDeep(error, secretScrubber(url));
  }
}

/** Removes the secrets of `url` from a text (e.g. a driver's message that echoes the URL). */
export function scrubSecrets(text: string, url: string): string {
  return secretScrubber(url)(text);
}

/** An event handler that sees every event with the secrets of `url` scrubbed. */
export function scrubbingHandler<E>(on: (event: E) => void, url: string): (event: E) => void {
  const scrub = secretScrubber(url);
  return (event) => on(scrubDeep(event, scrub));
}

/** The raw (still percent-encoded) user, password and path of a `scheme://` URL. */
export function urlParts(
  url: string,
): { readonly user: string; readonly password?: string; readonly path: string } | undefined {
  const scheme = new RegExp(`^${SCHEME}`, 'i').exec(url);
  if (!scheme) return undefined;
  const userinfo = WHOLE_URL_USERINFO.exec(url);
  const rest = userinfo ? url.slice(userinfo[0].length) : url.slice(scheme[0].length);
  const bare = userinfo ? undefined : /^([^/?#@]*)@/.exec(rest);
  const path = /^[^/?#]*([^?#]*)/.exec(bare ? rest.slice(bare[0].length) : rest)?.[1] ?? '';
  if (userinfo) {
    return { user: (userinfo[1] as string).slice(scheme[0].length), password: userinfo[2] as string, path };
  }
  return { user: bare?.[1] ?? '', path };
}
