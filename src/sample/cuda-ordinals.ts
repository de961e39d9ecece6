/**
 * Which `cuda:N` an NVML device is. NVML and CUDA enumerate in different orders (CUDA: fastest
 * first or CUDA_DEVICE_ORDER, filtered by CUDA_VISIBLE_DEVICES; NVML: its own index), so devices
 * are matched by UUID, and by numeric PCI (domain, bus, device) only where a UUID is unknown
 * (nvml-abi.md 6.3).
 */
import type { FieldError } from './schema.js';
import { normalizeUuid } from './uuid.js';

export interface CudaDevice {
  ordinal: number;
  name: string | null;
  /** The 16 UUID bytes as 32 lower-case hex digits (CUDA gives no GPU-/MIG- prefix). */
  uuidHex: string | null;
  totalBytes: number | null;
  pci: PciLocation | null;
}

export interface PciLocation {
  domain: number;
  bus: number;
  device: number;
}

export interface CudaState {
  available: boolean;
  error: FieldError | null;
}

export interface OrdinalTarget {
  uuid: string | null;
  pci: PciLocation | null;
  /** A GPU in MIG mode: CUDA lists its MIG devices instead of it. */
  migEnabled: boolean;
}

export type OrdinalResult = { ordinal: number; error: null } | { ordinal: null; error: FieldError };

/** "GPU-0f1e..."/"MIG-..." -> 32 hex digits, or null when it is not a UUID in that form. */
export const uuidHex = normalizeUuid;

function samePci(a: PciLocation, b: PciLocation): boolean {
  return a.domain === b.domain && a.bus === b.bus && a.device === b.device;
}

export function cudaOrdinalOf(target: OrdinalTarget, cuda: CudaState, devices: readonly CudaDevice[]): OrdinalResult {
  if (!cuda.available) {
    return {
      ordinal: null,
      error: {
        code: 'CUDA_UNAVAILABLE',
        nvmlReturn: null,
        message: `the CUDA driver cannot list devices${cuda.error !== null ? `: ${cuda.error.message}` : ''}`,
      },
    };
  }
  if (target.migEnabled) {
    return {
      ordinal: null,
      error: { code: 'MIG_ENABLED', nvmlReturn: null, message: "CUDA lists this GPU's MIG devices, not the GPU itself" },
    };
  }
  const hex = uuidHex(target.uuid);
  if (hex !== null) {
    const byUuid = devices.find((d) => d.uuidHex === hex);
    if (byUuid !== undefined) return { ordinal: byUuid.ordinal, error: null };
  }
  if (target.pci !== null) {
    const pci = target.pci;
    const candidates = devices.filter(
      (d) => d.pci !== null && samePci(d.pci, pci) && (hex === null || d.uuidHex === null),
    );
    if (candidates.length === 1) return { ordinal: candidates[0]!.ordinal, error: null };
  }
  return {
    ordinal: null,
    error: {
      code: 'NOT_VISIBLE_TO_CUDA',
      nvmlReturn: null,
      message: 'CUDA does not list this device in this environment (CUDA_VISIBLE_DEVICES may hide it)',
    },
  };
}
