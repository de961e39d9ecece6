/**
 * NVIDIA's real libraries (Debian's libnvidia-ml1 and libcuda1, 535.261.03) on a machine with no
 * GPU: NVML's init fails with DRIVER_NOT_LOADED (9), cuInit with NO_DEVICE (100), while
 * cuDriverGetVersion still reports 12020. The probe must say exactly that, typed, and the CLI
 * must exit 3 with its one plain paragraph.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { GpuLayersError } from '../../src/errors.js';
import { openProbe } from '../../src/probe/probe.js';
import { runCli } from '../helpers/cli.js';
import { debian, repoRoot, requireFile } from '../helpers/paths.js';

beforeAll(() => {
  for (const file of [debian.nvml, debian.cuda]) requireFile(file, 'run scripts/fixtures/fetch-debian-nvidia.sh (npm test does it first)');
});

describe("Debian's NVIDIA 535.261.03 libraries without a GPU", () => {
  it('are the packages the test means', () => {
    const versions = readFileSync(path.join(repoRoot, '.cache/debian-nvidia/versions.txt'), 'utf8');
    expect(versions).toMatch(/^libnvidia-ml1 535\.261\.03/m);
    expect(versions).toMatch(/^libcuda1 535\.261\.03/m);
  });

  it('openProbe rejects with NVML_DRIVER_NOT_LOADED and the CUDA driver state', async () => {
    const error = await openProbe({ nvmlLibrary: debian.nvml, cudaLibrary: debian.cuda }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GpuLayersError);
    expect(error).toMatchObject({
      code: 'NVML_DRIVER_NOT_LOADED',
      nvmlReturn: 9,
      library: debian.nvml,
      message: expect.stringContaining('NVML says "Driver Not Loaded"'),
      cuda: {
        available: false,
        driverVersion: 12020,
        deviceCount: null,
        error: { code: 'CUDA_ERROR_NO_DEVICE', nvmlReturn: null, message: 'cuInit returned CUDA_ERROR_NO_DEVICE (100)' },
      },
    });
  });

  it('the CLI exits 3 with one plain paragraph naming the library, the error and what to do', () => {
    const run = runCli(['probe'], { GPU_LAYERS_NVML_LIB: debian.nvml, GPU_LAYERS_CUDA_LIB: debian.cuda });
    expect(run.status).toBe(3);
    expect(run.stdout).toBe('');
    const paragraph = run.stderr.trimEnd();
    expect(paragraph.split('\n')).toHaveLength(1);
    expect(paragraph).toContain(debian.nvml);
    expect(paragraph).toContain('NVML_ERROR_DRIVER_NOT_LOADED');
    expect(paragraph).toContain('CUDA_ERROR_NO_DEVICE');
    expect(paragraph).toContain('driver API 12.2');
    expect(paragraph).toMatch(/What to do: .*kernel module/);
    expect(paragraph).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('--json changes nothing about the failure: no JSON on stdout, exit 3', () => {
    const run = runCli(['probe', '--json'], { GPU_LAYERS_NVML_LIB: debian.nvml, GPU_LAYERS_CUDA_LIB: debian.cuda });
    expect(run.status).toBe(3);
    expect(run.stdout).toBe('');
  });
});
