/**
 * dbmate's normalisation of a dump, byte for byte (its dbutil.TrimLeadingSQLComments): the
 * comment lines and blank lines before the first statement (client and server versions, which
 * differ from machine to machine) are dropped, and every line loses its trailing whitespace.
 */
export function trimLeadingSqlComments(text: string): string {
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start another.
  if (lines.at(-1) === '') lines.pop();
  let out = '';
  let preamble = true;
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (preamble && (line === '' || line.startsWith('--'))) continue;
    preamble = false;
    out += `${line.replace(TRAILING_SPACE, '')}\n`;
  }
  return out;
}

/** What Go's unicode.IsSpace calls white space, at the end of a line. */
const TRAILING_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;

/** MySQL's table option `AUTO_INCREMENT=<next id>`, which changes with the data, is dropped (as dbmate does). */
export function trimAutoIncrementValues(text: string): string {
  return text.replace(/ AUTO_INCREMENT=[0-9]*/g, '');
}

/**
 * Removes whole statements from a dump: each `statement;` that starts a line and ends one. For
 * SQLite, whose `.schema` prints each stored CREATE statement followed by ";" (a table whose
 * stored name is quoted as `CREATE TABLE IF NOT EXISTS "name"`, as the sqlite3 shell does).
 */
export function withoutStatements(dump: string, statements: readonly string[]): string {
  let out = dump;
  for (const stored of statements) {
    const statement = /^CREATE TABLE ['"]/.test(stored)
      ? `CREATE TABLE IF NOT EXISTS ${stored.slice('CREATE TABLE '.length)}`
      : stored;
    const text = `${statement};\n`;
    if (out.startsWith(text)) out = out.slice(text.length);
    out = out.split(`\n${text}`).join('\n');
  }
  return out;
}
