/** Where the tests find the builds, the mock libraries and the Debian fixtures. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface NativeBuild {
  name: string;
  addon: string;
  mockNvml: string;
  mockCuda: string;
}

export const nodeGypBuild: NativeBuild = {
  name: 'node-gyp',
  addon: path.join(repoRoot, 'build/Release/gpu_layers.node'),
  mockNvml: path.join(repoRoot, 'build/Release/mock/libnvidia-ml.so.1'),
  mockCuda: path.join(repoRoot, 'build/Release/mock/libcuda.so.1'),
};

export const cmakeBuild: NativeBuild = {
  name: 'cmake-js',
  addon: path.join(repoRoot, 'build-cmake/Release/gpu_layers.node'),
  mockNvml: path.join(repoRoot, 'build-cmake/mock/libnvidia-ml.so.1'),
  mockCuda: path.join(repoRoot, 'build-cmake/mock/libcuda.so.1'),
};

export const cliPath = path.join(repoRoot, 'dist/cli/gpu-layers.cjs');
export const distIndex = path.join(repoRoot, 'dist/index.js');

const debianRoot = path.join(repoRoot, '.cache/debian-nvidia/root');
export const debian = {
  nvml: path.join(debianRoot, 'usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-ml.so.1'),
  cuda: path.join(debianRoot, 'usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1'),
  pynvmlDir: path.join(debianRoot, 'usr/lib/python3/dist-packages'),
};

/** Fails (not skips) when a prerequisite of the suite is missing, saying how to get it. */
export function requireFile(file: string, how: string): string {
  if (!existsSync(file)) throw new Error(`missing ${file}: ${how}`);
  return file;
}

/** Debian's python3 (the interpreter python3-pynvml is packaged for), else python3 on PATH. */
export const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
