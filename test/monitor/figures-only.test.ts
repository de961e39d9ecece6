/** figuresOnly: the exporter's window copy keeps every figure and drops every reason. */
import { describe, expect, it } from 'vitest';

import { figuresOnly } from '../../src/monitor/figures-only.js';
import { joinLayers } from '../../src/layers/join.js';
import { inputs, processOf, sample } from '../helpers/layered-fixtures.js';

/** Every `errors` map in a value, wherever it sits. */
function errorMaps(value: unknown, found: object[] = []): object[] {
  if (value !== null && typeof value === 'object') {
    for (const [key, field] of Object.entries(value)) {
      if (key === 'errors' && field !== null && typeof field === 'object') found.push(field);
      else errorMaps(field, found);
    }
  }
  return found;
}

describe('figuresOnly', () => {
  const layered = () => joinLayers(sample(), inputs());

  it('empties every errors map and keeps everything else as it was', () => {
    const original = layered();
    // pid 20 has no companion file: its allocator layer and gaps carry reasons.
    expect(Object.keys(processOf(original, 20).errors ?? {}).length).toBeGreaterThan(0);
    const copy = figuresOnly(original);
    const maps = errorMaps(copy);
    expect(maps.length).toBe(errorMaps(original).length);
    for (const map of maps) expect(map).toEqual({});
    const withEmptyReasons = JSON.parse(JSON.stringify(original), (key, value) => (key === 'errors' ? {} : value));
    expect(JSON.parse(JSON.stringify(copy))).toEqual(withEmptyReasons);
  });

  it('leaves the original untouched and shares no figure with it', () => {
    const original = layered();
    const before = structuredClone(original);
    const copy = figuresOnly(original);
    expect(original).toEqual(before);
    processOf(copy, 10).layers.driverBytes = 1;
    copy.devices[0]!.memory.usedBytes = 1;
    expect(original).toEqual(before);
  });

  it('the shared empty map cannot be written through a copy', () => {
    const copy = figuresOnly(layered());
    expect(() => {
      processOf(copy, 20).errors!.gaps = { code: 'INPUT_MISSING', nvmlReturn: null, message: 'x' };
    }).toThrow(TypeError);
    expect(processOf(figuresOnly(layered()), 20).errors).toEqual({});
  });
});
