// The index and ./testing must run in a browser: no runtime import of a node: module
// (type-only imports are erased) and nothing from the Node-only ./ledger subpath.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const IMPORT = /^(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)';/gm;

function runtimeGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (file: string) => {
    if (graph.has(file)) return;
    const specifiers = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => m[1] as string);
    graph.set(file, specifiers);
    for (const s of specifiers) if (s.startsWith('.')) visit(join(dirname(file), s.replace(/\.js$/, '.ts')));
  };
  visit(join(src, entry));
  return graph;
}

describe('browser-safe entry points', () => {
  for (const entry of ['index.ts', 'testing/index.ts']) {
    it(`${entry} reaches no node: module and nothing under ledger/`, () => {
      const graph = runtimeGraph(entry);
      const offending = [...graph].flatMap(([file, specifiers]) =>
        specifiers
          .filter((s) => s.startsWith('node:') || relative(src, join(dirname(file), s)).startsWith('ledger'))
          .map((s) => `${relative(src, file)} imports ${s}`),
      );
      expect(graph.size).toBeGreaterThanOrEqual(3);
      expect(offending).toEqual([]);
    });
  }

  it('the ledger entry does use node: modules (the check can see them)', () => {
    const graph = runtimeGraph('ledger/index.ts');
    expect([...graph.values()].flat().filter((s) => s.startsWith('node:'))).toContain('node:sqlite');
  });
});
