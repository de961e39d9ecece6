/** cudaOrdinalOf: UUID first, PCI only where a UUID is unknown, reasons otherwise. */
import { describe, expect, it } from 'vitest';

import { cudaOrdinalOf, uuidHex, type CudaDevice } from '../../src/sample/cuda-ordinals.js';

const available = { available: true, error: null };
const devices: CudaDevice[] = [
  { ordinal: 0, name: null, uuidHex: 'bb'.repeat(16), totalBytes: null, pci: { domain: 0, bus: 2, device: 0 } },
  { ordinal: 1, name: null, uuidHex: null, totalBytes: null, pci: { domain: 0, bus: 1, device: 0 } },
];

describe('uuidHex', () => {
  it('strips the prefix and dashes of GPU- and MIG- UUIDs', () => {
    expect(uuidHex('GPU-BBBBBBBB-bbbb-bbbb-bbbb-bbbbbbbbbbbb')).toBe('bb'.repeat(16));
    expect(uuidHex('MIG-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa')).toBe('aa'.repeat(16));
  });
  it('refuses what is not a UUID', () => {
    expect(uuidHex('MIG-GPU-deadbeef/1/0')).toBeNull();
    expect(uuidHex(null)).toBeNull();
  });
});

describe('cudaOrdinalOf', () => {
  it('matches by UUID', () => {
    expect(cudaOrdinalOf({ uuid: `GPU-${'bb'.repeat(4)}-bbbb-bbbb-bbbb-${'bb'.repeat(6)}`, pci: null, migEnabled: false }, available, devices)).toEqual({ ordinal: 0, error: null });
  });
  it('falls back to PCI when CUDA could not read the UUID', () => {
    expect(cudaOrdinalOf({ uuid: 'GPU-cccccccc-cccc-cccc-cccc-cccccccccccc', pci: { domain: 0, bus: 1, device: 0 }, migEnabled: false }, available, devices).ordinal).toBe(1);
  });
  it('does not let PCI override two known, different UUIDs', () => {
    const result = cudaOrdinalOf({ uuid: 'GPU-cccccccc-cccc-cccc-cccc-cccccccccccc', pci: { domain: 0, bus: 2, device: 0 }, migEnabled: false }, available, devices);
    expect(result).toMatchObject({ ordinal: null, error: { code: 'NOT_VISIBLE_TO_CUDA' } });
  });
  it('says why when CUDA is unavailable or the GPU is in MIG mode', () => {
    const unavailable = { available: false, error: { code: 'CUDA_ERROR_NO_DEVICE', nvmlReturn: null, message: 'cuInit returned CUDA_ERROR_NO_DEVICE (100)' } };
    expect(cudaOrdinalOf({ uuid: null, pci: null, migEnabled: false }, unavailable, devices).error?.message).toBe(
      'the CUDA driver cannot list devices: cuInit returned CUDA_ERROR_NO_DEVICE (100)',
    );
    expect(cudaOrdinalOf({ uuid: null, pci: null, migEnabled: true }, available, devices).error?.code).toBe('MIG_ENABLED');
  });
});
