#!/usr/bin/env node
// Copies the node-gyp build (build/Release) into prebuilds/linux-x64/, the folder `npm pack` ships
// so that `npm install` needs no compiler, and checks its symbol versions (scripts/build/check-glibc.sh):
// a prebuild that needs a newer glibc than the one promised fails the pack. Run by `npm run
// prebuilds` (after `node-gyp rebuild`), which `prepack` runs; `--out DIR` writes DIR/linux-x64/
// instead (the package test stages a tarball with it).
//
// Not prebuildify: it builds and copies the addon only, and the mock libraries must ship too, under
// their exact names (libnvidia-ml.so.1, libcuda.so.1: clients load them by name through
// LD_LIBRARY_PATH). The layout is prebuildify's, so node-gyp-build (the install script) finds the
// addon: its tags `napi` (one build for every Node with Node-API 8) and `glibc` (musl gets a
// source build) are read from the file name; the `gpu-layers` part is only a name.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(root, 'prebuilds') } } });

// The compat header's symbol versions are x86-64 glibc's; another platform packs without prebuilds
// and installs from source, as before.
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.warn(`prebuilds: none for ${process.platform}-${process.arch} (only linux-x64 is prebuilt); the package will build from source`);
  process.exit(0);
}

const release = path.join(root, 'build', 'Release');
const files = [
  [path.join(release, 'gpu_layers.node'), 'gpu-layers.napi.glibc.node'],
  [path.join(release, 'mock', 'libnvidia-ml.so.1'), path.join('mock', 'libnvidia-ml.so.1')],
  [path.join(release, 'mock', 'libcuda.so.1'), path.join('mock', 'libcuda.so.1')],
];
const missing = files.filter(([from]) => !existsSync(from)).map(([from]) => path.relative(root, from));
if (missing.length > 0) {
  console.error(`prebuilds: not built: ${missing.join(', ')} (run \`npm run prebuilds\`, which runs node-gyp rebuild first)`);
  process.exit(1);
}

const target = path.join(path.resolve(values.out), 'linux-x64');
rmSync(target, { recursive: true, force: true });
mkdirSync(path.join(target, 'mock'), { recursive: true });
for (const [from, to] of files) copyFileSync(from, path.join(target, to));

const check = spawnSync('bash', [path.join(root, 'scripts', 'build', 'check-glibc.sh'), ...files.map(([, to]) => path.join(target, to))], { stdio: 'inherit' });
if (check.status !== 0) {
  rmSync(target, { recursive: true, force: true });
  console.error('prebuilds: removed: the binaries need newer symbol versions than the prebuilds promise (see native/glibc_compat.h)');
  process.exit(1);
}
console.log(`prebuilds: ${path.relative(process.cwd(), target) || '.'} ready`);
