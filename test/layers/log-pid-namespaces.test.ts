/** Log pid tags (container pids) re-keyed to the pids NVML and /proc use, through NSpid. */
import { describe, expect, it } from 'vitest';

import { rekeyLogPids } from '../../src/layers/log-pid-namespaces.js';

describe('rekeyLogPids', () => {
  const byPid = new Map([
    [123, 'tp0'],
    [124, 'tp1'],
    [7, 'clash'],
  ]);

  it('gives a worker the figures tagged with its in-container pid', () => {
    const rekeyed = rekeyLogPids(byPid, new Map([[45123, 123], [45124, 124]]));
    expect(rekeyed.get(45123)).toBe('tp0');
    expect(rekeyed.get(45124)).toBe('tp1');
    expect(rekeyed.get(123)).toBe('tp0');
  });

  it('leaves an inner pid two processes share, and a pid the log already names', () => {
    const rekeyed = rekeyLogPids(byPid, new Map([[50007, 7], [60007, 7], [124, 124]]));
    expect(rekeyed.has(50007)).toBe(false);
    expect(rekeyed.has(60007)).toBe(false);
    expect(rekeyed.get(124)).toBe('tp1');
    expect(rekeyLogPids(new Map([[45123, 'own'], [123, 'inner']]), new Map([[45123, 123]])).get(45123)).toBe('own');
  });
});
