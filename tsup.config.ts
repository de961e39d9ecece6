// Builds dist/: the library (ESM + CJS with declarations: the main entry, gpu-layers/analysis,
// gpu-layers/schemas and the mock helpers), and the CLI: one minified CommonJS bundle with zod
// inlined (cli-main.cjs) and the small executable that loads it with a V8 code cache
// (gpu-layers.cjs, see src/cli/launcher.ts). Start-up time is measured against a pynvml script:
// CommonJS loads faster than an ESM graph on Node 20, and modules that a verb reaches only through
// import() stay uninitialised until that verb runs.
//
// The library is split into chunks in both formats. Why for CommonJS too (tsup's splitting is
// off there by default): the main entry's import() of the probe, monitor or exporter must stay a
// separate file that loads on the first call, so that require('gpu-layers') loads neither zod nor
// prom-client; and the entries must share one copy of each module, or a GpuLayersError thrown by
// gpu-layers/analysis would fail `instanceof` against the one gpu-layers exports.
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', analysis: 'src/entry/analysis.ts', schemas: 'src/entry/schemas.ts', mock: 'src/mock-host/index.ts' },
    format: ['esm', 'cjs'],
    splitting: true,
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
