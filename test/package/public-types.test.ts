/**
 * The package's declarations as a TypeScript user meets them: the public types are named in
 * editors and in compiler errors (`Sample`, `LayeredSample`, `Finding`, not the object type zod
 * infers), and every entry (`gpu-layers`, `/analysis`, `/schemas`, `/mock`) type-checks under
 * `moduleResolution: node10` (which reads no exports map) as under node16 and bundler, strict,
 * against dist/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot, requireFile } from '../helpers/paths.js';

let project: string;

const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');

/** tsc's diagnostics for one tsconfig of the project, one per line (empty when it compiles). */
function diagnostics(config: string): string[] {
  try {
    execFileSync(process.execPath, [tsc, '-p', config, '--pretty', 'false'], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
    return [];
  } catch (error) {
    const out = (error as { stdout?: string }).stdout ?? '';
    if (out.trim() === '') throw error;
    return out.trim().split('\n').filter((line) => /error TS\d+/.test(line));
  }
}

function tsconfig(name: string, compilerOptions: Record<string, unknown>, files: string[]): string {
  const file = path.join(project, name);
  writeFileSync(file, JSON.stringify({ compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules/@types')], ...compilerOptions }, files }));
  return file;
}

beforeAll(() => {
  requireFile(path.join(repoRoot, 'dist/index.d.ts'), 'build the package (npx tsup)');
  project = mkdtempSync(path.join(tmpdir(), 'gpu-layers-types-'));
  mkdirSync(path.join(project, 'node_modules'));
  symlinkSync(repoRoot, path.join(project, 'node_modules', 'gpu-layers'));
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'typed-consumer', private: true, type: 'module' }));
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

// Each entry's types must be found: a wrong use is an error, so an unresolved, `any`-typed module
// would leave the @ts-expect-error lines unused and fail.
const CONSUMER = `import { openProbe, isGpuLayersError, type Probe } from 'gpu-layers';
  import { diagnose, type Finding } from 'gpu-layers/analysis';
  import { sampleSchema, FINDING_IDS } from 'gpu-layers/schemas';
  import { mockLibraries, type MockLibraries } from 'gpu-layers/mock';
  export async function use(): Promise<number> {
    const probe: Probe = await openProbe({ timeoutMs: 1000 });
    const findings: Finding[] = diagnose([]);
    const libraries: MockLibraries = mockLibraries();
    // @ts-expect-error: timeoutMs is a number
    await openProbe({ timeoutMs: 'soon' });
    // @ts-expect-error: the mock libraries' paths are strings
    const wrong: number = libraries.nvml;
    const parsed = sampleSchema.safeParse({});
    return findings.length + FINDING_IDS.length + (parsed.success ? 1 : 0) + (isGpuLayersError(probe) ? 1 : 0) + wrong;
  }
`;
const NAMED = ['Sample', 'LayeredSample', 'Finding'];
let node16: string[] | null = null;

/**
 * The node16 program's diagnostics, compiled once: the consumer as an ES module and as CommonJS,
 * and per public type a file that assigns a value of it where a number is expected.
 */
function node16Diagnostics(): string[] {
  if (node16 === null) {
    writeFileSync(path.join(project, 'esm.mts'), CONSUMER);
    writeFileSync(path.join(project, 'cjs.cts'), CONSUMER);
    for (const type of NAMED) writeFileSync(path.join(project, `${type}.ts`), `import type { ${type} } from 'gpu-layers';\ndeclare const value: ${type};\nexport const n: number = value;\n`);
    node16 = diagnostics(tsconfig('tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16' }, ['esm.mts', 'cjs.cts', ...NAMED.map((type) => `${type}.ts`)]));
  }
  return node16;
}

/** tsc's one message about the file of the public type `name`. */
function mismatchNaming(name: string): string {
  const found = node16Diagnostics().filter((line) => line.startsWith(`${name}.ts(`));
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('public types', { timeout: 60_000 }, () => {
  it('compiler errors name Sample and Finding, not the object type zod infers', () => {
    expect(mismatchNaming('Sample')).toContain("Type 'Sample' is not assignable to type 'number'");
    expect(mismatchNaming('Finding')).toContain("Type 'Finding' is not assignable to type 'number'");
  });

  it('compiler errors name LayeredSample', () => {
    expect(mismatchNaming('LayeredSample')).toContain("Type 'LayeredSample' is not assignable to type 'number'");
  });

  it('every entry type-checks under node16, from an ES module and from CommonJS', () => {
    expect(node16Diagnostics().filter((line) => !NAMED.some((type) => line.startsWith(`${type}.ts(`)))).toEqual([]);
  });

  it('every entry type-checks under moduleResolution node10', () => {
    writeFileSync(path.join(project, 'node10.ts'), CONSUMER);
    expect(diagnostics(tsconfig('tsconfig.node10.json', { module: 'commonjs', moduleResolution: 'node10' }, ['node10.ts']))).toEqual([]);
  });

  it('every entry type-checks under moduleResolution bundler', () => {
    writeFileSync(path.join(project, 'bundled.ts'), CONSUMER);
    expect(diagnostics(tsconfig('tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler' }, ['bundled.ts']))).toEqual([]);
  });
});
