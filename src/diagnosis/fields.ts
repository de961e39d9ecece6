/**
 * The series the rules read, each by one reader function: one reader is one series, so a series
 * read by several rules is read (and shaped) once per history (growth.ts keeps them).
 */
import type { HistoryPoint } from './process-history.js';

type Reader = (point: HistoryPoint) => number | null | undefined;

export const driverBytes: Reader = (p) => p.process.layers.driverBytes;
export const reservedBytes: Reader = (p) => p.process.layers.allocator?.reservedBytes;
export const allocatedBytes: Reader = (p) => p.process.layers.allocator?.allocatedBytes;
export const inactiveSplitBytes: Reader = (p) => p.process.layers.allocator?.inactiveSplitBytes;
export const privatePoolBytes: Reader = (p) => p.process.layers.allocator?.privatePoolBytes;
export const largestFreeBlockBytes: Reader = (p) => p.process.layers.allocator?.largestFreeBlockBytes;
export const numAllocRetries: Reader = (p) => p.process.layers.allocator?.numAllocRetries;
export const numOoms: Reader = (p) => p.process.layers.allocator?.numOoms;
export const cachedBytes: Reader = (p) => {
  const a = p.process.layers.allocator;
  return a?.reservedBytes != null && a.allocatedBytes != null ? a.reservedBytes - a.allocatedBytes : null;
};
/** Reserved where the driver figure is known too: how much of the driver series the allocator covers. */
export const reservedWithDriver: Reader = (p) => (p.process.layers.driverBytes === null ? null : p.process.layers.allocator?.reservedBytes);
export const outsideAllocatorBytes: Reader = (p) => p.process.gaps.outsideAllocatorBytes;
export const requestsRunning: Reader = (p) => p.process.layers.framework?.requestsRunning;
export const anonBytes: Reader = (p) => p.process.host?.anonBytes;
export const rssBytes: Reader = (p) => p.process.host?.rssBytes;
export const fileBytes: Reader = (p) => p.process.host?.fileBytes;
export const shmemBytes: Reader = (p) => p.process.host?.shmemBytes;
export const driverMappedBytes: Reader = (p) => p.process.host?.driverMappedBytes;
export const heapBytes: Reader = (p) => p.process.host?.heapBytes;
export const anonMappingsBytes: Reader = (p) => p.process.host?.anonMappingsBytes;
export const mallocInUseBytes: Reader = (p) => p.process.host?.mallocInUseBytes;
export const mallocFreeBytes: Reader = (p) => p.process.host?.mallocFreeBytes;
export const outsideMallocBytes: Reader = (p) => p.process.host?.outsideMallocBytes;
export const containerUsageBytes: Reader = (p) => p.process.host?.containerUsageBytes;
/** vLLM's cumulative counters: read them through counterIncrease (layers/request-load.ts), never as levels. */
export const requestsFinished: Reader = (p) => p.process.layers.framework?.requestsFinished;
export const promptTokens: Reader = (p) => p.process.layers.framework?.promptTokens;
export const generationTokens: Reader = (p) => p.process.layers.framework?.generationTokens;
