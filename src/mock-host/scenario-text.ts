/**
 * Writes a validated scenario in the line format the mock libraries parse
 * (native/mock/README.md), and writes it to disk atomically (temporary file + rename), so a
 * mock re-reading it between samples never sees half a file.
 */
import type * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { validate } from '../validation.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { scenarioSchema, type Scenario } from './scenario-schema.js';

type ParsedScenario = z.output<typeof scenarioSchema>;
type ParsedDevice = ParsedScenario['devices'][number];
type ParsedProcess = NonNullable<ParsedDevice['processes']>[number];

const MAGIC = 'gpu-layers-mock-scenario 1';

function n(value: number | bigint | 'na'): string {
  return typeof value === 'string' ? value : value.toString();
}

/** Ids as hex, the way lspci writes them ('na' stays 'na'). */
function hex(value: number | 'na'): string {
  return typeof value === 'string' ? value : `0x${value.toString(16)}`;
}

function target(entry: { device?: number | undefined; migSlot?: number | undefined }): string {
  if (entry.device === undefined) return '';
  return entry.migSlot === undefined ? ` ${entry.device}` : ` ${entry.device}/${entry.migSlot}`;
}

function processLines(processes: readonly ParsedProcess[] | undefined): string[] {
  return (processes ?? []).map((p) => {
    const ids = p.gpuInstanceId !== undefined || p.computeInstanceId !== undefined
      ? ` ${n(p.gpuInstanceId ?? 'na')} ${n(p.computeInstanceId ?? 'na')}`
      : '';
    return `process ${p.type} ${p.pid} ${n(p.usedBytes)}${ids}`;
  });
}

function memoryLine(memory: { total: number | bigint | 'na'; reserved: number | bigint | 'na'; used: number | bigint | 'na'; free: number | bigint | 'na' } | undefined): string[] {
  return memory === undefined ? [] : [`memory ${n(memory.total)} ${n(memory.reserved)} ${n(memory.used)} ${n(memory.free)}`];
}

function deviceLines(device: ParsedDevice): string[] {
  const lines = ['device'];
  if (device.name !== undefined) lines.push(`name ${device.name}`);
  if (device.uuid !== undefined) lines.push(`uuid ${device.uuid}`);
  if (device.pci !== undefined) {
    const p = device.pci;
    lines.push(`pci ${p.domain} ${p.bus} ${p.device} ${hex(p.pciDeviceId)} ${hex(p.pciSubSystemId)}`);
  }
  lines.push(...memoryLine(device.memory));
  if (device.bar1 !== undefined) lines.push(`bar1 ${n(device.bar1.total)} ${n(device.bar1.used)} ${n(device.bar1.free)}`);
  if (device.utilization !== undefined) lines.push(`utilization ${n(device.utilization.gpu)} ${n(device.utilization.memory)}`);
  if (device.migMode !== undefined) lines.push(`mig_mode ${device.migMode.current} ${device.migMode.pending}`);
  if (device.contextBytes !== undefined) lines.push(`context_bytes ${n(device.contextBytes)}`);
  lines.push(...processLines(device.processes));
  for (const mig of device.migDevices ?? []) {
    lines.push(`mig ${mig.slot} ${mig.gpuInstanceId} ${mig.computeInstanceId}`);
    if (mig.name !== undefined) lines.push(`name ${mig.name}`);
    if (mig.uuid !== undefined) lines.push(`uuid ${mig.uuid}`);
    lines.push(...memoryLine(mig.memory));
    if (mig.contextBytes !== undefined) lines.push(`context_bytes ${n(mig.contextBytes)}`);
    lines.push(...processLines(mig.processes));
  }
  return lines;
}

/** Validates `scenario` and returns the file text; throws SCENARIO_INVALID with zod's message. */
export function formatScenario(scenario: Scenario): string {
  const parsed = validate(scenarioSchema, scenario);
  if (!parsed.ok) throw new GpuLayersError('SCENARIO_INVALID', `invalid mock scenario: ${parsed.message}`);
  const s = parsed.data;
  const lines = [MAGIC];
  if (s.driverVersion !== undefined) lines.push(`driver_version ${s.driverVersion}`);
  if (s.nvmlVersion !== undefined) lines.push(`nvml_version ${s.nvmlVersion}`);
  if (s.cudaDriverVersion !== undefined) lines.push(`cuda_driver_version ${s.cudaDriverVersion}`);
  if (s.nvmlInitRc !== undefined) lines.push(`nvml_init_rc ${s.nvmlInitRc}`);
  if (s.cudaInitRc !== undefined) lines.push(`cuda_init_rc ${s.cudaInitRc}`);
  if (s.processRowBytes !== undefined) lines.push(`process_row_bytes ${s.processRowBytes}`);
  for (const symbol of s.hide ?? []) lines.push(`hide ${symbol}`);
  for (const symbol of s.unterminated ?? []) lines.push(`unterminated ${symbol}`);
  for (const entry of s.rc ?? []) lines.push(`rc ${entry.symbol} ${entry.rc}${target(entry)}`);
  for (const entry of s.delay ?? []) lines.push(`delay ${entry.symbol} ${entry.ms}${target(entry)}`);
  for (const entry of s.count ?? []) lines.push(`count ${entry.symbol} ${entry.count}${target(entry)}`);
  if (s.grow !== undefined) {
    const calls = s.grow.calls === 'always' ? -1 : (s.grow.calls ?? 1);
    lines.push(`grow ${s.grow.processes} ${calls}`);
  }
  if (s.cudaOrder !== undefined && s.cudaOrder.length > 0) lines.push(`cuda_order ${s.cudaOrder.join(' ')}`);
  for (const device of s.devices) lines.push(...deviceLines(device));
  return lines.join('\n') + '\n';
}

/** Writes the scenario to `file` atomically; a mock sees it at the client's next pass. */
export function writeScenario(file: string, scenario: Scenario): void {
  writeFileAtomic(file, formatScenario(scenario));
}
