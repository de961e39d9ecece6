/**
 * The table of the recording's last sample: per device its memory, and per process each layer
 * and gap as the last reading gave it ("n/a" where unknown).
 */
import { formatBytes, formatSignedBytes } from '../format-bytes.js';
import { processesOf } from '../layers/device-processes.js';
import type { LayeredDevice, LayeredProcess, LayeredSample } from '../layers/schema.js';
import { formatDateTime } from './chart-scales.js';
import { escapeHtml } from './html-escape.js';

const COLUMNS: { key: string; label: string; title: string; value: (p: LayeredProcess) => number | null }[] = [
  { key: 'driver', label: 'driver', title: 'NVML usedGpuMemory', value: (p) => p.layers.driverBytes ?? p.usedBytes },
  { key: 'context', label: 'context', title: 'a bare CUDA context (calibrate)', value: (p) => p.layers.contextBytes },
  { key: 'reserved', label: 'reserved', title: 'PyTorch allocator reserved', value: (p) => p.layers.allocator?.reservedBytes ?? null },
  { key: 'allocated', label: 'allocated', title: 'PyTorch allocator allocated (live tensors)', value: (p) => p.layers.allocator?.allocatedBytes ?? null },
  { key: 'outside', label: 'outside allocator', title: 'driver − reserved', value: (p) => p.gaps.outsideAllocatorBytes },
  { key: 'cuda-graphs', label: 'CUDA graphs (est.)', title: 'private pools + outside allocator − context (an estimate)', value: (p) => p.gaps.cudaGraphs.totalEstimateBytes },
  { key: 'kv-cache', label: 'KV cache', title: 'vLLM KV cache', value: (p) => p.layers.framework?.kvCacheBytes ?? null },
  { key: 'host-rss', label: 'host RSS', title: 'resident set size on the host', value: (p) => p.host?.rssBytes ?? null },
];

function cell(key: string, value: number | null): string {
  return `<td class="num${value === null ? ' unknown' : ''}" data-col="${key}">${escapeHtml(formatSignedBytes(value))}</td>`;
}

function deviceRows(device: LayeredDevice): string {
  const m = device.memory;
  const facts = [
    device.name ?? 'unknown model',
    `used ${formatBytes(m.usedBytes)} of ${formatBytes(m.totalBytes)}`,
    `free ${formatBytes(m.freeBytes)}`,
    `unattributed ${formatSignedBytes(device.unattributedBytes)}`,
  ];
  const heading = `<tr class="device-row"><th scope="rowgroup" colspan="${COLUMNS.length + 2}"><a href="#device-${device.index}">GPU ${device.index}</a> <span class="muted">${escapeHtml(facts.join(' · '))}</span></th></tr>`;
  const processes = processesOf(device);
  if (processes.length === 0) return `<tbody>${heading}<tr><td colspan="${COLUMNS.length + 2}" class="muted">no processes</td></tr></tbody>`;
  const rows = processes.map((p) => {
    const command = p.command ?? '';
    return (
      `<tr data-final-row="${device.index}-${p.pid}"><th scope="row" class="num">${p.pid}</th>` +
      `<td class="command" title="${escapeHtml(command)}"><code>${escapeHtml(command === '' ? 'n/a' : command)}</code></td>` +
      COLUMNS.map((c) => cell(c.key, c.value(p))).join('') +
      '</tr>'
    );
  });
  return `<tbody>${heading}${rows.join('')}</tbody>`;
}

export function finalSampleTable(sample: LayeredSample): string {
  const head = COLUMNS.map((c) => `<th scope="col" class="num" title="${escapeHtml(c.title)}">${escapeHtml(c.label)}</th>`).join('');
  const taken = Date.parse(sample.takenAt);
  return (
    `<section id="last-sample" class="card"><h2>Last sample <span class="muted">${escapeHtml(Number.isFinite(taken) ? formatDateTime(taken) : sample.takenAt)}</span></h2>` +
    `<div class="table-scroll"><table class="final" data-final-table><thead><tr><th scope="col" class="num">pid</th><th scope="col">command</th>${head}</tr></thead>` +
    `${sample.devices.map(deviceRows).join('')}</table></div></section>`
  );
}
