/**
 * The allocator layer of one GPU process on one device, from the companion file that counted for
 * it (sources/companion.ts): torch's figures as whole byte counts, or null where torch does not
 * report one (never zero for unknown).
 */
import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import { normalizeUuid } from '../sample/uuid.js';
import { companionOomSnapshotPath, type CompanionDevice, type CompanionResult } from '../sources/companion.js';
import type { AllocatorLayer } from './schema.js';

function stat(device: CompanionDevice, key: string): number | null {
  const value = device.stats[key];
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

function wholeBytes(value: number | null | undefined): number | null {
  return value !== null && value !== undefined && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/** The last CUDA out-of-memory the companion saw on torch's device `index`, with its snapshot's full path. */
function lastOomOf(result: Extract<CompanionResult, { ok: true }>, index: number): AllocatorLayer['lastOom'] {
  const oom = result.document.oom;
  if (oom === undefined || oom === null || oom.device !== index) return null;
  return {
    count: oom.count,
    at: new Date(oom.at * 1000).toISOString(),
    device: oom.device,
    requestedBytes: wholeBytes(oom.requestedBytes),
    deviceTotalBytes: wholeBytes(oom.deviceTotalBytes),
    deviceFreeBytes: wholeBytes(oom.deviceFreeBytes),
    snapshot: companionOomSnapshotPath(result.file, oom),
    snapshotError: oom.snapshotError,
  };
}

/**
 * The allocator layer on the device with `uuid`. When the companion could not give UUIDs (old
 * torch), a device is matched only if it is the one device the allocator uses.
 */
export function allocatorLayerOf(result: Extract<CompanionResult, { ok: true }>, uuid: string | null): AllocatorLayer | FieldError {
  const { document } = result;
  const want = normalizeUuid(uuid);
  let device = document.devices.find((d) => want !== null && normalizeUuid(d.uuid) === want);
  if (device === undefined && document.devices.every((d) => d.uuid === null)) {
    const used = document.devices.filter((d) => (stat(d, 'reserved_bytes.all.current') ?? 0) > 0);
    if (used.length === 1) device = used[0];
  }
  if (device === undefined) {
    return sourceError('COMPANION_NO_DEVICE', `the companion reports no allocator on device ${uuid ?? '(unknown UUID)'} (${document.devices.length} device(s) in ${result.file})`);
  }
  return {
    reservedBytes: stat(device, 'reserved_bytes.all.current'),
    allocatedBytes: stat(device, 'allocated_bytes.all.current'),
    activeBytes: stat(device, 'active_bytes.all.current'),
    inactiveSplitBytes: stat(device, 'inactive_split_bytes.all.current'),
    requestedBytes: stat(device, 'requested_bytes.all.current'),
    numAllocRetries: stat(device, 'num_alloc_retries'),
    numOoms: stat(device, 'num_ooms'),
    privatePoolBytes: wholeBytes(device.privatePoolBytes),
    largestFreeBlockBytes: wholeBytes(device.largestFreeBlockBytes),
    privatePoolAllocatedBytes: wholeBytes(device.privatePoolAllocatedBytes),
    lastOom: lastOomOf(result, device.index),
    source: {
      file: result.file,
      writtenAt: new Date(document.writtenAt * 1000).toISOString(),
      ageSeconds: Math.round(result.ageSeconds * 1000) / 1000,
      torchVersion: document.torchVersion,
    },
  };
}
