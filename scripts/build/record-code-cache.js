#!/usr/bin/env node
// Part of `npm run build:ts`: records the V8 code cache that dist/cli/gpu-layers.cjs loads the
// CLI bundle with (src/cli/launcher.ts says why). The cache is taken after a `demo --live --json`
// run, so it holds the compiled code of a whole probe; where the demo cannot run yet (the addon is
// not built), after `--help`. Failing to record is not an error: the CLI only starts a little slower.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const launcher = path.join(root, 'dist/cli/gpu-layers.cjs');
const cache = path.join(root, 'dist/cli/cli-main.v8cache');
rmSync(cache, { force: true });

const env = { ...process.env, GPU_LAYERS_RECORD_CODE_CACHE: cache, NO_COLOR: '1' };
for (const args of [['demo', '--live', '--json'], ['--help']]) {
  const run = spawnSync(process.execPath, [launcher, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (run.status === 0) {
    console.log(`code cache recorded after \`gpu-layers ${args.join(' ')}\``);
    process.exit(0);
  }
}
console.log('no code cache recorded: the CLI will compile its bundle at each start');
