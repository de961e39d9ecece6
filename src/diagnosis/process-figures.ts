/**
 * The figures of one GPU process the rules read, out of a layered sample: about twenty numbers
 * instead of the whole document, so a history of days stays small. `processFiguresSchema` says
 * what they are and what a reading that is not a figure becomes (null: unknown), the source of
 * truth; `figuresOf` is the same reading written out by hand, because a streamed recording of
 * 8 GPUs at 5 s has fifty thousand samples and zod's parse of them cost more than JSON.parse
 * itself (measured: +1.3 s per 7,400 samples for the whole sample, +0.5 s for these fields, on a
 * 2-core VM). A property test holds the two to the same answers.
 */
import * as z from 'zod/mini';

/** A byte count: a non-negative safe integer, else unknown. */
const bytes = z.catch(z.nullable(z.int().check(z.nonnegative())), null);
/** A difference of byte counts (may be negative). */
const signedBytes = z.catch(z.nullable(z.int()), null);
/** A count or a mean of requests: finite, non-negative. */
const amount = z.catch(z.nullable(z.number().check(z.nonnegative())), null);

export const processFiguresSchema = z.object({
  pid: z.int().check(z.positive()),
  command: z.catch(z.nullable(z.string()), null),
  layers: z.object({
    driverBytes: bytes,
    allocator: z.catch(
      z.nullable(
        z.object({
          reservedBytes: bytes,
          allocatedBytes: bytes,
          inactiveSplitBytes: bytes,
          privatePoolBytes: bytes,
          largestFreeBlockBytes: bytes,
          numAllocRetries: bytes,
          numOoms: bytes,
        }),
      ),
      null,
    ),
    framework: z.catch(
      z.nullable(
        z.object({
          requestsRunning: amount,
          requestsWaiting: amount,
          /** vLLM's cumulative counters (they reset when it restarts). */
          requestsFinished: amount,
          promptTokens: amount,
          generationTokens: amount,
        }),
      ),
      null,
    ),
  }),
  gaps: z.catch(z.object({ outsideAllocatorBytes: signedBytes }), { outsideAllocatorBytes: null }),
  host: z.catch(
    z.nullable(
      z.object({
        rssBytes: bytes,
        anonBytes: bytes,
        fileBytes: bytes,
        shmemBytes: bytes,
        driverMappedBytes: bytes,
        heapBytes: bytes,
        anonMappingsBytes: bytes,
        mallocInUseBytes: bytes,
        mallocFreeBytes: bytes,
        outsideMallocBytes: signedBytes,
        containerPath: z.catch(z.nullable(z.string()), null),
        containerUsageBytes: bytes,
        containerWorkingSetBytes: bytes,
        containerLimitBytes: bytes,
        containerOomKills: bytes,
        startTimeTicks: bytes,
      }),
    ),
    null,
  ),
  /** Why the allocator layer is unknown, where it is. */
  allocatorReason: z.catch(z.nullable(z.string()), null),
});

export type ProcessFigures = z.infer<typeof processFiguresSchema>;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const byteOf = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
const signedOf = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
const amountOf = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

/** The figures of a recorded process (a validated LayeredProcess or raw JSON); null when it is not one. */
export function figuresOf(process: unknown): ProcessFigures | null {
  if (!isObject(process)) return null;
  const pid = process.pid;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return null;
  const layers = process.layers;
  if (!isObject(layers)) return null;
  const a = layers.allocator;
  const f = layers.framework;
  const gaps = process.gaps;
  const host = process.host;
  const malloc = isObject(host) && isObject(host.malloc) ? host.malloc : null;
  const container = isObject(host) && isObject(host.container) ? host.container : null;
  const counters = isObject(f) && isObject(f.counters) ? f.counters : null;
  const errors = isObject(process.errors) ? process.errors : null;
  const reason = errors !== null && isObject(errors['layers.allocator']) ? errors['layers.allocator'].message : null;
  return {
    pid,
    command: typeof process.command === 'string' ? process.command : null,
    layers: {
      driverBytes: byteOf(layers.driverBytes),
      allocator: isObject(a)
        ? {
            reservedBytes: byteOf(a.reservedBytes),
            allocatedBytes: byteOf(a.allocatedBytes),
            inactiveSplitBytes: byteOf(a.inactiveSplitBytes),
            privatePoolBytes: byteOf(a.privatePoolBytes),
            largestFreeBlockBytes: byteOf(a.largestFreeBlockBytes),
            numAllocRetries: byteOf(a.numAllocRetries),
            numOoms: byteOf(a.numOoms),
          }
        : null,
      framework: isObject(f)
        ? {
            requestsRunning: amountOf(f.requestsRunning),
            requestsWaiting: amountOf(f.requestsWaiting),
            requestsFinished: amountOf(counters?.requestsFinished),
            promptTokens: amountOf(counters?.promptTokens),
            generationTokens: amountOf(counters?.generationTokens),
          }
        : null,
    },
    gaps: { outsideAllocatorBytes: isObject(gaps) ? signedOf(gaps.outsideAllocatorBytes) : null },
    host: isObject(host)
      ? {
          rssBytes: byteOf(host.rssBytes),
          anonBytes: byteOf(host.anonBytes),
          fileBytes: byteOf(host.fileBytes),
          shmemBytes: byteOf(host.shmemBytes),
          driverMappedBytes: byteOf(host.driverMappedBytes),
          heapBytes: byteOf(host.heapBytes),
          anonMappingsBytes: byteOf(host.anonMappingsBytes),
          mallocInUseBytes: byteOf(malloc?.inUseBytes),
          mallocFreeBytes: byteOf(malloc?.freeBytes),
          outsideMallocBytes: signedOf(host.outsideMallocBytes),
          containerPath: typeof container?.path === 'string' ? container.path : null,
          containerUsageBytes: byteOf(container?.usageBytes),
          containerWorkingSetBytes: byteOf(container?.workingSetBytes),
          containerLimitBytes: byteOf(container?.limitBytes),
          containerOomKills: byteOf(container?.oomKills),
          startTimeTicks: byteOf(host.startTimeTicks),
        }
      : null,
    allocatorReason: typeof reason === 'string' ? reason : null,
  };
}
