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

/**
 * GPU_LAYERS_TEST_BUILD_DIR (set by scripts/hardening/check-native-memory.sh to build-sanitize/) swaps the
 * build the suites use by default for another cmake-js build of the same sources, e.g. the ASan +
 * UBSan one, without touching each test. Probes opened without an addonPath (and CLI children)
 * load the addon named by GPU_LAYERS_ADDON, which the same script points at that build.
 */
const testBuildDir = process.env.GPU_LAYERS_TEST_BUILD_DIR;

export const nodeGypBuild: NativeBuild =
  testBuildDir !== undefined && testBuildDir !== ''
    ? {
        name: `cmake-js ${path.relative(repoRoot, path.resolve(repoRoot, testBuildDir)) || testBuildDir}`,
        addon: path.resolve(repoRoot, testBuildDir, 'Release/gpu_layers.node'),
        mockNvml: path.resolve(repoRoot, testBuildDir, 'mock/libnvidia-ml.so.1'),
        mockCuda: path.resolve(repoRoot, testBuildDir, 'mock/libcuda.so.1'),
      }
    : {
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
