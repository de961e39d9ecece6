// Builds dist/: the library (ESM + CJS with declarations), the mock helpers, and the CLI as one
// bundled ESM file (zod inlined) so `npx gpu-layers` starts without resolving a module tree.
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', mock: 'src/mock/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    shims: true,
    target: 'node20',
    clean: true,
    sourcemap: false,
  },
  {
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    shims: true,
    target: 'node20',
    noExternal: ['zod'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
