/** The readable table: colour only when asked, n/a with the reason, bytes for people. */
import { describe, expect, it } from 'vitest';

import { useColor } from '../../src/cli/cli-io.js';
import { formatBytes } from '../../src/format-bytes.js';
import { renderProbeTable } from '../../src/cli/render/probe-table.js';
import { makeStyle } from '../../src/cli/render/style.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { context, rawDevice, rawSample } from '../helpers/raw-readings.js';

describe('formatBytes', () => {
  it.each([
    [null, 'n/a'],
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536 * 1024 * 1024, '1.5 GiB'],
    [85_520_809_984, '79.6 GiB'],
  ])('%s -> %s', (bytes, text) => expect(formatBytes(bytes)).toBe(text));
});

describe('useColor', () => {
  const tty = { write: () => true, isTTY: true };
  it('only on a terminal without NO_COLOR', () => {
    expect(useColor({ stdout: tty, stderr: tty, env: {} })).toBe(true);
    expect(useColor({ stdout: tty, stderr: tty, env: { NO_COLOR: '1' } })).toBe(false);
    expect(useColor({ stdout: { write: () => true }, stderr: tty, env: {} })).toBe(false);
  });
});

describe('renderProbeTable', () => {
  const device = rawDevice(0, { bar1: null, rc: { ...rawDevice(0).rc, bar1: 3 } });
  const sample = buildSample(rawSample([device]), context());

  it('shows n/a with the reason for what could not be read', () => {
    const text = renderProbeTable(sample, { style: makeStyle(false), width: 100, version: '9.9.9' });
    expect(text).toMatch(/^gpu-layers 9\.9\.9 {2}driver 550\.54\.15 {2}NVML 12\.550\.54\.15 {2}CUDA 12\.4/);
    expect(text).toContain('bar1 n/a');
    expect(text).toContain('n/a bar1: not supported by this device or driver (NVML_ERROR_NOT_SUPPORTED)');
    expect(text).not.toMatch(/\u001b\[/);
  });

  it('colours with ANSI codes when the style has colour', () => {
    expect(renderProbeTable(sample, { style: makeStyle(true), width: 100, version: '9.9.9' })).toMatch(/\u001b\[1m/);
  });
});
