/**
 * Text that came from outside (file names, file contents, database messages) made safe to show
 * and checked for what lockstep refuses to guess about.
 */

/** Control characters a terminal may act on: C0 (but \t and \n), DEL, C1, and bidi overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/** The same, with \t and \n: inside one name or table cell they are never layout. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL_IN_NAME = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const code = c.codePointAt(0) as number;
  return code < 0x80
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** A message as printed: a control character (an ANSI escape, say) is shown, never obeyed. */
export function printable(text: string): string {
  return text.replace(CONTROL, escapeOne);
}

/** One name, path or table cell as printed: also its newlines and tabs are shown as escapes. */
export function printableName(text: string): string {
  return text.replace(CONTROL_IN_NAME, escapeOne);
}

/**
 * JSON text with what JSON.stringify leaves raw (DEL, C1 controls, bidi overrides) escaped too:
 * the same JSON value, safe to print on a terminal.
 */
export function printableJson(json: string): string {
  return json.replace(
    /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}

/**
 * The byte offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF), or -1 when all of it is UTF-8.
 */
export function invalidUtf8At(bytes: Uint8Array, from = 0): number {
  let i = from;
  while (i < bytes.length) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const trailing =
      lead >= 0xc2 && lead <= 0xdf
        ? 1
        : lead >= 0xe0 && lead <= 0xef
          ? 2
          : lead >= 0xf0 && lead <= 0xf4
            ? 3
            : 0;
    if (trailing === 0) return i;
    // The second byte's range is narrower after E0, ED, F0 and F4 (overlongs, surrogates, > U+10FFFF).
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= trailing; k++) {
      const b = bytes[i + k];
      if (b === undefined || b < (k === 1 ? low : 0x80) || b > (k === 1 ? high : 0xbf)) return i;
    }
    i += trailing + 1;
  }
  return -1;
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes as text, where each byte that is not UTF-8 shows as \xNN: a file name that cannot be decoded. */
export function bytesForDisplay(bytes: Uint8Array): string {
  let text = '';
  let start = 0;
  for (let bad = invalidUtf8At(bytes); bad !== -1; bad = invalidUtf8At(bytes, start)) {
    text += `${utf8.decode(bytes.subarray(start, bad))}\\x${hex2(bytes[bad] as number)}`;
    start = bad + 1;
  }
  return text + utf8.decode(bytes.subarray(start));
}

export type Decoded =
  | { readonly text: string }
  | { readonly line: number; readonly column: number; readonly problem: string };

/**
 * A file's bytes as UTF-8 text, or where and why they are not: never a silent U+FFFD. A UTF-8
 * byte order mark is dropped (editors on Windows write one; it is no part of the SQL).
 */
export function decodeUtf8(bytes: Uint8Array): Decoded {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return {
      line: 1,
      column: 1,
      problem: 'is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8',
    };
  }
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  try {
    return { text: utf8.decode(body) };
  } catch {
    const bad = invalidUtf8At(body);
    const lineStart = bad === 0 ? 0 : body.lastIndexOf(0x0a, bad - 1) + 1;
    const line = 1 + body.subarray(0, lineStart).filter((b) => b === 0x0a).length;
    const column = 1 + [...utf8.decode(body.subarray(lineStart, bad))].length;
    return {
      line,
      column,
      problem: `not valid UTF-8 (byte 0x${hex2(body[bad] as number)}): save the file as UTF-8; lockstep does not guess encodings`,
    };
  }
}
