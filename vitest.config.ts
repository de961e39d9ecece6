// vitest: each test file in its own process (pool "forks"): a file's dlopened libraries, NVML
// state, CUDA's once-per-process device list and environment cannot leak into another file.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    isolate: true,
    testTimeout: 20_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
