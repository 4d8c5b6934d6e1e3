import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

/**
 * The layers of src, lowest first: a module may import its own layer or a lower one, never a
 * higher one. The library entry (index.ts) composes core and the long-running side; the status
 * server and the CLI sit on top.
 */
const LAYERS: readonly (readonly [string, number])[] = [
  ['util/', 0],
  ['errors.ts', 1],
  ['defaults.ts', 1],
  ['sql/', 1],
  ['drivers/', 2],
  ['schema/', 3],
  ['core/', 3],
  ['async/', 4],
  ['index.ts', 5],
  ['server/', 6],
  ['cli/', 7],
];

const SRC = resolve(import.meta.dirname, '../../src');

function layerOf(file: string): number {
  const path = relative(SRC, file);
  const found = LAYERS.find(([prefix]) => path === prefix || path.startsWith(prefix));
  assert.ok(found, `${path} belongs to no layer: add its folder to LAYERS`);
  return found[1];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports, static and dynamic, type-only included: a type is a dependency too. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map(
    (m) => m[1] as string,
  );
  return found.map((spec) => resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
}

test('no module imports from a higher layer', () => {
  const upward: string[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const target of importsOf(file)) {
      if (layerOf(target) > layerOf(file)) upward.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('the layer check sees dynamic and type-only imports', () => {
  const runner = importsOf(join(SRC, 'core/runner.ts')).map((f) => relative(SRC, f));
  assert.ok(runner.includes('drivers/driver.ts'));
  const registry = importsOf(join(SRC, 'drivers/registry.ts')).map((f) => relative(SRC, f));
  assert.ok(registry.includes('drivers/postgres/index.ts'), 'dynamic import seen');
});
