/**
 * The rooms of src/ form one direction, as docs/architecture.md draws them: a module imports only
 * from its own room or a room listed before it (foundation, binding, sample, probe, sources,
 * layers, monitor, then the rooms that use the monitor, then the CLI and the library's entry).
 * The order is read from docs/architecture.md, so the document and the code cannot drift apart:
 * an upward import, a room the document does not list, or a listed room that is gone fails here.
 * Also no module-level mutable state: no top-level let/var, and top-level Maps and Sets typed
 * read-only.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';

const src = path.join(repoRoot, 'src');

/** The ```rooms block of docs/architecture.md: one rank a line, rooms of a rank side by side. */
function roomRanks(): Map<string, number> {
  const doc = readFileSync(path.join(repoRoot, 'docs/architecture.md'), 'utf8');
  const block = /```rooms\n([\s\S]*?)```/.exec(doc)?.[1];
  if (block === undefined) throw new Error('docs/architecture.md has no ```rooms block');
  const ranks = new Map<string, number>();
  block
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .forEach((line, rank) => {
      for (const room of line.split(/\s+/)) ranks.set(room, rank);
    });
  return ranks;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

/** A file's room: its folder under src/, "foundation" for src/*.ts, "entry" for src/index.ts. */
function roomOf(file: string): string {
  const relative = path.relative(src, file).split(path.sep);
  if (relative.length > 1) return relative[0]!;
  return relative[0] === 'index.ts' ? 'entry' : 'foundation';
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => path.resolve(path.dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts')));
}

/** Every import that goes against the order, as "from -> to (room rank -> room rank)". */
function upwardImports(files: readonly string[], ranks: ReadonlyMap<string, number>): string[] {
  const found: string[] = [];
  for (const file of files) {
    const from = roomOf(file);
    for (const target of importsOf(file)) {
      const to = roomOf(target);
      if (from === to) continue;
      const a = ranks.get(from)!;
      const b = ranks.get(to)!;
      if (!(b < a)) found.push(`${path.relative(repoRoot, file)} -> ${path.relative(repoRoot, target)} (${from} ${a} -> ${to} ${b})`);
    }
  }
  return found;
}

const files = sourceFiles(src);
const ranks = roomRanks();

describe('the pipeline direction', () => {
  it('docs/architecture.md lists every room of src/, and no room that is not there', () => {
    const rooms = new Set(files.map(roomOf));
    expect([...rooms].filter((room) => !ranks.has(room)).sort()).toEqual([]);
    expect([...ranks.keys()].filter((room) => !rooms.has(room)).sort()).toEqual([]);
  });

  it('every import stays in its room or goes to a room before it', () => {
    expect(upwardImports(files, ranks)).toEqual([]);
  });

  it('reports an import against the order (with sources and layers swapped, layers reads upward)', () => {
    const swapped = new Map(ranks);
    swapped.set('sources', ranks.get('layers')!);
    swapped.set('layers', ranks.get('sources')!);
    expect(upwardImports(files, swapped).some((line) => /^src\/layers\/\S+ -> src\/sources\//.test(line))).toBe(true);
  });

  it('keeps no module-level mutable state', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const where = `${path.relative(repoRoot, file)}:${i + 1}`;
        if (/^(?:export\s+)?(?:let|var)\s/.test(line)) offenders.push(`${where} ${line.trim()}`);
        const collection = /^(?:export\s+)?const\s+\w+(\s*:\s*[^=]+)?=\s*new\s+(Map|Set|WeakMap|WeakSet)\b/.exec(line);
        if (collection !== null && !/Readonly(Map|Set)</.test(collection[1] ?? '')) offenders.push(`${where} ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
