// Builds dist/: the library (ESM + CJS with declarations), the mock helpers, and the CLI as one
// minified CommonJS file with zod inlined. Start-up time is measured against a pynvml script:
// CommonJS loads faster than an ESM graph on Node 20, and modules that a verb reaches only through
// import() stay uninitialised until that verb runs.
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', mock: 'src/mock/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    target: 'node20',
    sourcemap: false,
  },
  {
    entry: { 'gpu-layers': 'src/cli/bin.ts' },
    outDir: 'dist/cli',
    format: ['cjs'],
    splitting: false,
    minify: true,
    shims: true,
    target: 'node20',
    noExternal: ['zod'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
