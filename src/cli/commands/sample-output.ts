/** Writes one sample the way `probe` and `demo` both do: JSON, or the readable table. */
import type { LayeredSample } from '../../layers/schema.js';
import type { Sample } from '../../sample/schema.js';
import { useColor, type CliIo } from '../cli-io.js';
import { renderProbeTable } from '../render/probe-table.js';
import { makeStyle } from '../render/style.js';
import { packageVersion } from '../version.js';

export function writeSample(sample: Sample | LayeredSample, json: boolean, io: CliIo, preface?: string): void {
  if (json) {
    io.stdout.write(JSON.stringify(sample, null, 2) + '\n');
    return;
  }
  const style = makeStyle(useColor(io));
  if (preface !== undefined) io.stdout.write(style.dim(preface) + '\n');
  io.stdout.write(renderProbeTable(sample, { style, width: io.stdout.columns || 120, version: packageVersion() }));
}
