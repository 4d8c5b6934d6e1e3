import { ConfigError } from '../errors.js';

/** Quotes an identifier the standard way ("..." with doubled quotes). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A LIKE pattern matching text that starts with `prefix` (backslash, `%` and `_` escaped). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A database setting's name, checked: it is spliced into SET/RESET/PRAGMA statements. */
export function settingName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(name)) {
    throw new ConfigError(
      `invalid database setting name "${name}": use letters, digits and _ (e.g. work_mem)`,
    );
  }
  return name;
}

/** A timestamp as read back: a JS Date (pg) as ISO 8601, text as it is. */
export function isoFromDate(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}
