/**
 * libpq's sslmode meanings over node-postgres, which alone knows only "TLS, verified" or "none":
 * the TLS options of each attempt, and when a failed attempt is followed by the other one
 * (`prefer`: plaintext when the server refuses TLS; `allow`: TLS when the server refuses plaintext).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../../errors.js';
import type { TlsPlan } from './url.js';

/** One way to connect: plaintext (false) or TLS with these options. */
export type Attempt = false | ConnectionOptions;

export interface TlsAttempts {
  readonly first: Attempt;
  /** Tried when `first` failed for the reason `retryOn` recognises. */
  readonly fallback?: { readonly attempt: Attempt; readonly retryOn: (error: Error) => boolean };
}

/** pg's error when the server answers the TLS request with 'N'. */
export const serverRefusedTls = (error: Error) => /server does not support SSL/i.test(error.message);
/** A pg_hba.conf `hostssl` line: the server refuses a plaintext connection at authentication. */
const refusedPlaintext = (error: Error) =>
  (error as { code?: string }).code === '28000' && /no encryption|SSL off/i.test(error.message);

type ReadFile = (file: string) => Buffer;

/** The files libpq looks for when the URL names none (~/.postgresql/…). */
function defaultFile(name: string, home: string): string | undefined {
  const file = path.join(home, '.postgresql', name);
  return existsSync(file) ? file : undefined;
}

export function tlsAttempts(plan: TlsPlan, read: ReadFile = readFileSync, home = homedir()): TlsAttempts {
  if (plan.mode === 'disable') return { first: false };
  const options = (verify: 'none' | 'ca' | 'full'): ConnectionOptions => {
    const rootCert = plan.rootCert ?? (verify === 'none' ? undefined : defaultFile('root.crt', home));
    const cert = plan.cert ?? defaultFile('postgresql.crt', home);
    const key = plan.key ?? (cert ? defaultFile('postgresql.key', home) : undefined);
    return {
      ...(rootCert && rootCert !== 'system' ? { ca: fileOf(read, rootCert, 'sslrootcert') } : {}),
      ...(cert ? { cert: fileOf(read, cert, 'sslcert') } : {}),
      ...(key ? { key: fileOf(read, key, 'sslkey') } : {}),
      ...(plan.keyPassphrase !== undefined ? { passphrase: plan.keyPassphrase } : {}),
      rejectUnauthorized: verify !== 'none',
      // verify-ca: the chain is checked, the host name is not.
      ...(verify === 'ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  };
  // As libpq: with a root certificate (given, or ~/.postgresql/root.crt), require checks the chain.
  const weak = (): ConnectionOptions =>
    plan.rootCert || defaultFile('root.crt', home) ? options('ca') : options('none');
  switch (plan.mode) {
    case 'allow':
      return { first: false, fallback: { attempt: options('none'), retryOn: refusedPlaintext } };
    case 'prefer':
      return { first: weak(), fallback: { attempt: false, retryOn: serverRefusedTls } };
    case 'require':
      return { first: weak() };
    case 'verify-ca':
      return { first: options('ca') };
    case 'verify-full':
      return { first: options('full') };
  }
}

function fileOf(read: ReadFile, file: string, parameter: string): Buffer {
  try {
    return read(file);
  } catch (error) {
    throw new ConfigError(`cannot read ${parameter} file ${file}: ${(error as Error).message}`);
  }
}

/** Says which sslmode a TLS failure comes from, and what to change. */
export function tlsFailure(plan: TlsPlan, error: Error): string {
  const source =
    plan.from === 'url'
      ? `sslmode=${plan.mode} in the URL`
      : plan.from === 'PGSSLMODE'
        ? `PGSSLMODE=${plan.mode}`
        : `sslmode=${plan.mode} (the default)`;
  if (serverRefusedTls(error)) {
    return `the server does not accept TLS connections, and ${source} asks for TLS: enable ssl on the server, or use sslmode=prefer (TLS when offered) or sslmode=disable`;
  }
  if (/certificate|self[- ]signed|altnames|unable to verify|CERT_|DEPTH_ZERO/i.test(error.message)) {
    const how =
      plan.mode === 'verify-full'
        ? 'give the CA that signed it as sslrootcert=<file> (and connect by a name the certificate holds), or use sslmode=verify-ca or require'
        : 'give the CA that signed it as sslrootcert=<file>, or use sslmode=require without a root certificate';
    return `${error.message} (the server's TLS certificate was not accepted under ${source}: ${how})`;
  }
  return error.message;
}
