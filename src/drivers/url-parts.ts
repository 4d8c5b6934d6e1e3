/**
 * A database URL split as Go's net/url splits it (what dbmate reads): the fragment cut at the
 * first `#`, the query at the first `?`, the authority up to the first `/`, the user information up
 * to its last `@`. Unlike WHATWG's URL it takes an empty host after user information
 * (`postgres://user@/db?host=/var/run/postgresql`, dbmate's socket forms).
 */
export interface UrlParts {
  readonly scheme: string;
  /** Percent-decoded; undefined when the URL has none. */
  readonly user?: string;
  readonly password?: string;
  /** Percent-decoded, without the brackets of an IPv6 address; '' when empty. */
  readonly host: string;
  /** '' when none is written. */
  readonly port: string;
  /** The path, percent-decoded, without its leading `/`. */
  readonly path: string;
  /** The query's parameters in order, decoded as a form (`+` is a space). */
  readonly params: readonly (readonly [string, string])[];
}

/** Returns undefined for text that is no `scheme://…` URL or holds a bad %-escape. */
export function splitUrl(text: string): UrlParts | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (!scheme) return undefined;
  let rest = text.slice(scheme[0].length);
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  const query = question === -1 ? '' : rest.slice(question + 1);
  if (question !== -1) rest = rest.slice(0, question);
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const rawPath = slash === -1 ? '' : rest.slice(slash + 1);
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? undefined : authority.slice(0, at);
  const hostPort = at === -1 ? authority : authority.slice(at + 1);
  const address = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d*))?$/.exec(hostPort);
  if (!address) return undefined;
  try {
    const colon = userinfo?.indexOf(':') ?? -1;
    const user = userinfo === undefined ? undefined : colon === -1 ? userinfo : userinfo.slice(0, colon);
    const password = userinfo === undefined || colon === -1 ? undefined : userinfo.slice(colon + 1);
    return {
      scheme: (scheme[1] as string).toLowerCase(),
      ...(user !== undefined && user !== '' ? { user: decodeURIComponent(user) } : {}),
      ...(password !== undefined ? { password: decodeURIComponent(password) } : {}),
      host: decodeURIComponent((address[1] as string).replace(/^\[(.*)\]$/, '$1')),
      port: address[2] ?? '',
      path: decodeURIComponent(rawPath),
      params: [...new URLSearchParams(query)],
    };
  } catch {
    return undefined;
  }
}
