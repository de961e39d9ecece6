/**
 * The readable `gpu-layers snapshot` report: per device what the allocator holds and how it is
 * split, the fragmentation, whether recent requests still fit, the private pools (CUDA graphs),
 * the Swiss-cheese segments and the allocation sites.
 */
import { formatBytes } from '../../format-bytes.js';
import type { SnapshotDevice, SnapshotReport } from '../../snapshot/snapshot-report-schema.js';
import type { Style } from './style.js';

const percent = (part: number, whole: number): string => (whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`);
const hex = (address: number): string => `0x${address.toString(16)}`;

function deviceLines(d: SnapshotDevice, style: Style): string[] {
  const lines = [style.bold(`device ${d.device}`) + `  ${d.segmentCount} segment(s), ${formatBytes(d.reservedBytes)} reserved`];
  const pending = d.activeBytes - d.allocatedBytes;
  lines.push(
    `  allocated ${formatBytes(d.allocatedBytes)} (requested ${formatBytes(d.requestedBytes)})` +
      (pending > 0 ? `, pending free ${formatBytes(pending)}` : '') +
      `, free ${formatBytes(d.freeBytes)} (${percent(d.freeBytes, d.reservedBytes)} of reserved)`,
  );
  if (d.fragmentationRatio !== null) {
    const ratio = `fragmentation ${d.fragmentationRatio.toFixed(3)}`;
    lines.push(`  ${d.fragmentationRatio >= 0.5 ? style.warn(ratio) : ratio}: the largest free block is ${formatBytes(d.largestFreeBlockBytes)} of ${formatBytes(d.freeBytes)} free`);
  }
  const r = d.recentRequests;
  const fits = `  largest request that fits without growing the pool: ${formatBytes(d.largestAllocatableBytes)}`;
  if (r.count > 0) {
    const over = r.overLargestAllocatable;
    lines.push(`${fits}; of ${r.count} recent requests (largest ${formatBytes(r.largestBytes)}) ${over === 0 ? 'all fit' : style.warn(`${over} would not`)}`);
  } else {
    lines.push(`${fits} (no request trace: record one with torch.cuda.memory._record_memory_history())`);
  }
  for (const oom of d.ooms.slice(0, 5)) {
    lines.push(style.warn(`  OOM: a request of ${formatBytes(oom.sizeBytes)} failed with ${formatBytes(oom.deviceFreeBytes)} free on the device`));
  }
  if (d.ooms.length > 5) lines.push(style.warn(`  ... ${d.ooms.length - 5} more OOMs`));
  for (const pool of d.privatePools) {
    const what = pool.kind === 'cuda-graph' ? 'CUDA graph pool' : 'private pool (graph_pool_handle / MemPool)';
    lines.push(`  ${what} (${pool.poolId.join(', ')}): ${formatBytes(pool.reservedBytes)} reserved, ${formatBytes(pool.allocatedBytes)} allocated, ${formatBytes(pool.freeBytes)} free in ${pool.segmentCount} segment(s)`);
  }
  if (d.expandableSegments.segmentCount > 0) {
    lines.push(`  expandable segments: ${d.expandableSegments.segmentCount} mapped range(s), ${formatBytes(d.expandableSegments.reservedBytes)}`);
  }
  if (d.swissCheese.length > 0) {
    lines.push('  Swiss-cheese segments (most free pieces):');
    for (const s of d.swissCheese) {
      lines.push(`    ${hex(s.address)}  ${formatBytes(s.totalBytes)}: ${formatBytes(s.freeBytes)} free in ${s.freePieces} pieces, largest ${formatBytes(s.largestFreeBlockBytes)}${s.poolId[0] !== 0 || s.poolId[1] !== 0 ? `  pool (${s.poolId.join(', ')})` : ''}`);
    }
  }
  if (d.topAllocationSites.length > 0) {
    lines.push('  top allocation sites:');
    for (const site of d.topAllocationSites) lines.push(`    ${formatBytes(site.bytes).padStart(10)}  ${String(site.blocks).padStart(6)} block${site.blocks === 1 ? ' ' : 's'}  ${site.site}`);
  }
  return lines;
}

export function renderSnapshotReport(report: SnapshotReport, style: Style): string {
  const lines = [`${style.bold(report.file ?? 'snapshot')}: ${formatBytes(report.sizeBytes)}, pickle protocol ${report.protocol}, ${report.devices.length} device(s)`, ''];
  if (report.devices.length === 0) lines.push('No segments and no traces: the allocator held nothing when the snapshot was taken.');
  for (const device of report.devices) lines.push(...deviceLines(device, style), '');
  return lines.join('\n');
}
