/** The PromQL name reader the deploy tests rely on. */
import { describe, expect, it } from 'vitest';

import { promqlNames } from '../helpers/promql-names.js';

describe('promqlNames', () => {
  it('reads selectors, matchers, grouping labels and Grafana variables', () => {
    const n = promqlNames(`
      sum without (pid, command) (max_over_time(gpu_layers_process_requests{instance=~"$instance", state="running"}[$__rate_interval]))
      / on (instance) group_left ()
      gpu_layers_host_memory_bytes{kind="available"} offset 15m > 0.25 * 1e9
      and ignoring (layer) deriv(gpu_layers:process_allocator_unallocated_bytes[15m]) * 15 * 60 > 64 * 1024
      or up{job="gpu-layers"} == bool 0
      or {__name__="x", gpu!~"\\"1\\""}
      or time() - timestamp(gpu_layers_last_collect_timestamp_seconds{instance="\${instance}"})`);
    expect(n.selectors).toEqual([
      { metric: 'gpu_layers_process_requests', matchers: [{ label: 'instance', op: '=~', value: '$instance' }, { label: 'state', op: '=', value: 'running' }] },
      { metric: 'gpu_layers_host_memory_bytes', matchers: [{ label: 'kind', op: '=', value: 'available' }] },
      { metric: 'gpu_layers:process_allocator_unallocated_bytes', matchers: [] },
      { metric: 'up', matchers: [{ label: 'job', op: '=', value: 'gpu-layers' }] },
      { metric: null, matchers: [{ label: '__name__', op: '=', value: 'x' }, { label: 'gpu', op: '!~', value: '"1"' }] },
      { metric: 'gpu_layers_last_collect_timestamp_seconds', matchers: [{ label: 'instance', op: '=', value: '${instance}' }] },
    ]);
    expect(n.groupingLabels).toEqual(['pid', 'command', 'instance', 'layer']);
    expect(n.variables).toEqual(['instance', '__rate_interval', 'instance']);
    expect(n.createdLabels).toEqual([]);
  });

  it('names the label that label_replace writes', () => {
    const n = promqlNames('label_replace(rate(x{a="b"}[5m]), "reason", "$1", "a", "(.*)") or ignoring (reason) y');
    expect(n.createdLabels).toEqual(['reason']);
    expect(n.variables).toEqual([]);
    expect(n.groupingLabels).toEqual(['reason']);
    expect(n.selectors.map((s) => s.metric)).toEqual(['x', 'y']);
  });

  it('throws on what it cannot read', () => {
    expect(() => promqlNames('x{a="b"')).toThrow();
    expect(() => promqlNames('x{a="b}')).toThrow(/unterminated string/);
  });
});
