// Builds dist/: the library (ESM + CJS with declarations), the mock helpers, and the CLI: one
// minified CommonJS bundle with zod inlined (cli-main.cjs) and the small executable that loads it
// with a V8 code cache (gpu-layers.cjs, see src/cli/launcher.ts). Start-up time is measured
// against a pynvml script: CommonJS loads faster than an ESM graph on Node 20, and modules that a
// verb reaches only through import() stay uninitialised until that verb runs.
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', mock: 'src/mock-host/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    target: 'node20',
    sourcemap: false,
  },
  {
    entry: { 'cli-main': 'src/cli/bin.ts' },
    outDir: 'dist/cli',
    format: ['cjs'],
    splitting: false,
    minify: true,
    shims: true,
    target: 'node20',
    noExternal: ['zod'],
  },
  {
    entry: { 'gpu-layers': 'src/cli/launcher.ts' },
    outDir: 'dist/cli',
    format: ['cjs'],
    splitting: false,
    minify: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
