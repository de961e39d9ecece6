/** formatScenario: the line format the C mock reads, and the validation in front of it. */
import { describe, expect, it } from 'vitest';

import { formatScenario } from '../../src/mock-host/scenario-text.js';

describe('formatScenario', () => {
  it('writes every directive in the documented format', () => {
    const text = formatScenario({
      driverVersion: '535.54.03',
      nvmlInitRc: 0,
      processRowBytes: 32,
      hide: ['nvmlDeviceGetMemoryInfo_v2'],
      rc: [{ symbol: 'nvmlDeviceGetBAR1MemoryInfo', rc: 3, device: 1 }, { symbol: '*', rc: 15, device: 0, migSlot: 2 }],
      delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 100 }],
      grow: { processes: 2, calls: 'always' },
      cudaOrder: [1, 0],
      devices: [
        {
          name: 'NVIDIA H100 80GB HBM3',
          pci: { domain: 0, bus: 24, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
          memory: { total: 100, reserved: 'na', used: 2n ** 60n, free: 0 },
          migMode: { current: 1, pending: 1 },
          processes: [{ type: 'compute', pid: 5, usedBytes: 'na' }],
          migDevices: [{ slot: 2, gpuInstanceId: 3, computeInstanceId: 0, processes: [{ type: 'mps', pid: 6, usedBytes: 7, gpuInstanceId: 3, computeInstanceId: 0 }] }],
        },
      ],
    });
    expect(text).toBe(
      [
        'gpu-layers-mock-scenario 1',
        'driver_version 535.54.03',
        'nvml_init_rc 0',
        'process_row_bytes 32',
        'hide nvmlDeviceGetMemoryInfo_v2',
        'rc nvmlDeviceGetBAR1MemoryInfo 3 1',
        'rc * 15 0/2',
        'delay nvmlDeviceGetCount_v2 100',
        'grow 2 -1',
        'cuda_order 1 0',
        'device',
        'name NVIDIA H100 80GB HBM3',
        'pci 0 24 0 0x233010de 0x16c110de',
        `memory 100 na ${2n ** 60n} 0`,
        'mig_mode 1 1',
        'process compute 5 na',
        'mig 2 3 0',
        'process mps 6 7 3 0',
        '',
      ].join('\n'),
    );
  });

  it.each([
    [{ devices: [{ name: 'bad # name' }] }, /line breaks or #/],
    [{ devices: [{ name: 'two\nlines' }] }, /line breaks or #/],
    [{ rc: [{ symbol: 'nvmlShutdown', rc: 1, migSlot: 1 }], devices: [] }, /migSlot needs device/],
    [{ hide: ['*'], devices: [] }, /exported symbol name/],
    [{ devices: [{ processes: [{ type: 'compute', pid: 0, usedBytes: 1 }] }] }, /pid/],
    [{ devices: [], surprise: true }, /surprise/],
  ])('refuses %j with SCENARIO_INVALID', (scenario, message) => {
    expect(() => formatScenario(scenario as never)).toThrow(expect.objectContaining({ code: 'SCENARIO_INVALID', message: expect.stringMatching(message) }));
  });
});
