/** Text from outside: UTF-8 checked to the byte, control characters shown and never obeyed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bytesForDisplay,
  decodeUtf8,
  invalidUtf8At,
  printable,
  printableJson,
  printableName,
} from '../../src/util/text.js';

const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function isUtf8(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Bytes that are mostly UTF-8 with a few stray bytes: where encoding mistakes hide. */
const nearlyUtf8 = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme' }).map((s) => [...Buffer.from(s)]),
      fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 2 }),
    ),
    { maxLength: 8 },
  )
  .map((parts) => Uint8Array.from(parts.flat()));

describe('invalidUtf8At', () => {
  it('agrees with a fatal TextDecoder on every byte string, and the prefix before it decodes', () => {
    fc.assert(
      fc.property(fc.oneof(nearlyUtf8, fc.uint8Array({ maxLength: 12 })), (bytes) => {
        const at = invalidUtf8At(bytes);
        assert.equal(at === -1, isUtf8(bytes));
        if (at !== -1) assert.ok(isUtf8(bytes.subarray(0, at)));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses overlongs, surrogates and code points above U+10FFFF', () => {
    for (const bad of [
      [0xc0, 0xaf],
      [0xe0, 0x80, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0xe2, 0x82],
    ]) {
      assert.equal(invalidUtf8At(Uint8Array.from([0x41, ...bad])), 1, bad.join(','));
    }
  });
});

describe('decodeUtf8', () => {
  it('names line and column (in characters) of the first byte that is not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from('one\nzwei €\ndrei '), Buffer.from([0xe9]), Buffer.from('\n')]);
    assert.deepEqual(
      { ...decodeUtf8(bytes), problem: undefined },
      { line: 3, column: 6, problem: undefined },
    );
    assert.deepEqual(
      { ...decodeUtf8(Uint8Array.from([0xff])), problem: undefined },
      { line: 1, column: 1, problem: undefined },
    );
  });

  it('drops a UTF-8 byte order mark and names UTF-16', () => {
    assert.deepEqual(decodeUtf8(Buffer.from('\uFEFFSELECT 1;')), { text: 'SELECT 1;' });
    assert.match(
      String((decodeUtf8(Buffer.from('\uFEFFSELECT', 'utf16le')) as { problem: string }).problem),
      /UTF-16/,
    );
  });

  it('bytesForDisplay shows each stray byte as \\xNN', () => {
    assert.equal(bytesForDisplay(Uint8Array.from([...Buffer.from('café'), 0xe9, 0x41])), 'café\\xe9A');
  });
});

describe('printable', () => {
  it('escapes every control character; keeps newlines in messages, not in names', () => {
    assert.equal(printable('a\x1b[31mb\x07\u009b\u202e\n\tc'), 'a\\x1b[31mb\\x07\\u009b\\u202e\n\tc');
    assert.equal(printableName('a\nb\tc\x7f'), 'a\\x0ab\\x09c\\x7f');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
        assert.doesNotMatch(printableName(s), /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
      }),
      { numRuns: 500 },
    );
  });

  it('printableJson is the same JSON value, with nothing a terminal acts on', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const json = printableJson(JSON.stringify({ s }));
        assert.deepEqual(JSON.parse(json), { s });
        // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
        assert.doesNotMatch(json, /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
      }),
      { numRuns: 500 },
    );
  });
});
