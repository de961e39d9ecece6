/**
 * The HTML report of a recording: one self-contained page with a chart per device and process,
 * the findings listed and marked on their subject's charts, the last sample's table, every
 * string from the data escaped, nothing fetched from the network, unknown values left as gaps.
 */
import { describe, expect, it } from 'vitest';

import { formatBytes } from '../../src/format-bytes.js';
import { GpuLayersError } from '../../src/errors.js';
import { layeredSampleSchema, type LayeredSample } from '../../src/layers/schema.js';
import { renderReportHtml } from '../../src/report/render-report.js';
import { attributeValues, chartSvg, chartTip, finalRow, seriesPath } from '../helpers/report-markup.js';
import {
  COMPANION_MISSING,
  GiB,
  HOSTILE_ALIVE,
  HOSTILE_COMMAND,
  INTERVAL_MS,
  MiB,
  SAMPLES,
  START_MS,
  UUID0,
  incidentFindings,
  incidentSamples,
  layeredDevice,
  layeredProcess,
  layeredSample,
  recordingHeader,
} from '../helpers/report-recording.js';

const header = recordingHeader();
const samples = incidentSamples();
const findings = incidentFindings();
const html = renderReportHtml({ header, samples, findings });

function signedBytes(v: number | null): string {
  if (v === null) return 'n/a';
  return v < 0 ? `-${formatBytes(-v)}` : formatBytes(v);
}

// Boolean checks: a failing toContain on a whole report would print megabytes.
function expectIn(text: string, part: string): void {
  expect(text.includes(part), `expected to find ${JSON.stringify(part)}`).toBe(true);
}

function expectNotIn(text: string, part: string): void {
  expect(text.includes(part), `expected not to find ${JSON.stringify(part)}`).toBe(false);
}

function expectNoMatch(text: string, pattern: RegExp): void {
  expect(pattern.exec(text)?.[0] ?? null, `expected no match of ${pattern}`).toBeNull();
}

function segments(d: string): number {
  return (d.match(/M/g) ?? []).length;
}

function series(tip: ReturnType<typeof chartTip>, label: string): (number | null)[] {
  const found = tip.s.find((s) => s.l === label);
  if (found === undefined) throw new Error(`no series ${label} in ${tip.s.map((s) => s.l).join(', ')}`);
  return found.v;
}

describe('renderReportHtml', () => {
  it('the fixtures are real documents', () => {
    for (const sample of samples) expect(layeredSampleSchema.safeParse(sample).success).toBe(true);
    expect(samples).toHaveLength(SAMPLES);
  });

  it('writes one complete document with its own style and script and nothing else', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html.match(/<script\b/g)).toHaveLength(1);
    expect(html.match(/<style\b/g)).toHaveLength(1);
    expectNoMatch(html, /NaN|Infinity|="undefined"|>undefined</);
  });

  it('says the host, versions, time span, sample count and findings by severity in its header', () => {
    const top = html.slice(0, html.indexOf('</header>'));
    expectIn(top, 'gpu-node-17');
    expectIn(top, header.gpuLayersVersion);
    expectIn(top, '550.127.05');
    expectIn(top, 'CUDA 12.4');
    expectIn(top, '2026-11-26 02:00:00 UTC');
    expectIn(top, '59 min 50 s');
    expectIn(top, `${SAMPLES} every 10 s`);
    expectIn(top, `${findings.length} findings`);
    for (const severity of ['critical', 'warning', 'info'] as const) {
      const count = findings.filter((f) => f.severity === severity).length;
      expectIn(top, `<b>${count}</b> ${severity}`);
    }
  });

  it('draws a chart per device and per process, gaps and host memory where known', () => {
    const charts = attributeValues(html, 'data-chart');
    const expected = new Set<string>();
    for (const sample of samples) {
      for (const device of sample.devices) {
        expected.add(`device-${device.index}`);
        for (const p of device.processes ?? []) {
          expected.add(`process-${device.index}-${p.pid}`);
          if (p.gaps.outsideAllocatorBytes !== null) expected.add(`gaps-${device.index}-${p.pid}`);
          if (p.host !== null) expected.add(`host-${device.index}-${p.pid}`);
        }
      }
    }
    expect(new Set(charts)).toEqual(expected);
    expect(charts).toHaveLength(expected.size);
    expectIn(html, 'No gap figures');
    expectIn(html, 'No host readings');
  });

  it('labels axes in binary units and UTC clock times, with a legend', () => {
    const device = chartSvg(html, 'device-0');
    for (const tick of ['>0<', '>20 GiB<', '>40 GiB<', '>60 GiB<', '>80 GiB<', '>02:00<', '>02:30<', '>UTC<']) expectIn(device, tick);
    const figure = html.slice(html.indexOf('data-chart="process-0-4242"'));
    const legend = figure.slice(figure.indexOf('<ul class="legend">'), figure.indexOf('</ul>'));
    for (const label of ['allocated (live tensors)', 'CUDA graph pools', 'allocator cached', 'outside allocator', 'CUDA context', 'driver total (NVML)']) expectIn(legend, label);
  });

  it('uses the same colour for a layer in every chart and legend', () => {
    const colourOf = (chart: string, key: string) => new RegExp(`data-series="${key}" (?:fill|stroke)="(#[0-9A-Fa-f]{6})"`).exec(chartSvg(html, chart))?.[1];
    expect(colourOf('process-0-4242', 'outside-allocator')).toBe(colourOf('gaps-0-4242', 'gap-outside-allocator'));
    expect(colourOf('process-0-4242', 'allocator-cached')).toBe(colourOf('gaps-0-4242', 'gap-allocator-cached'));
    expect(colourOf('process-0-4242', 'allocated')).toBe(colourOf('process-1-4343', 'allocated'));
  });

  it('lists every finding by id with severity, confidence, evidence and fix', () => {
    for (const f of findings) {
      const start = html.indexOf(`<article class="finding sev-${f.severity}"`, html.indexOf(`data-finding-id="${f.id}"`) - 80);
      const article = html.slice(start, html.indexOf('</article>', start));
      expectIn(article, `data-finding-id="${f.id}"`);
      expectIn(article, f.title);
      expectIn(article, f.summary);
      expectIn(article, f.fix);
      expectIn(article, `${Math.round(f.confidence * 100)}%`);
      for (const e of f.evidence) {
        expectIn(article, e.series);
        expectIn(article, e.note);
        if (e.unit === 'bytes') expectIn(article, `${formatBytes(e.first)} → ${formatBytes(e.last)}`);
        if (e.fit !== null) expectIn(article, e.fit.toFixed(2));
      }
    }
    // Most severe first.
    const order = [...html.matchAll(/<article class="finding sev-(\w+)"/g)].map((m) => m[1]);
    expect(order).toEqual(['critical', 'warning', 'warning', 'info']);
  });

  it('marks each finding at its time on the charts of its subject, and only there', () => {
    const markersOf = (chart: string) => attributeValues(chartSvg(html, chart), 'data-finding-id');
    expect(markersOf('process-0-4242')).toEqual(['cuda-graph-creep']);
    expect(markersOf('gaps-0-4242')).toEqual(['cuda-graph-creep']);
    expect(markersOf('device-0')).toEqual(['idle-growth']);
    expect(markersOf('process-1-4343').sort()).toEqual(['allocator-fragmentation', 'host-heap-leak']);
    expect(markersOf('device-1')).toEqual([]);
    expect(markersOf('process-0-5151')).toEqual([]);

    const svg = chartSvg(html, 'process-0-4242');
    const tip = chartTip(html, 'process-0-4242');
    const x = Number(/<g class="marker" data-finding-id="cuda-graph-creep">.*?<line x1="([\d.]+)"/.exec(svg)![1]);
    const at = Date.parse(findings.find((f) => f.id === 'cuda-graph-creep')!.at);
    expect(x).toBeCloseTo(tip.x0 + ((at - tip.d0) / (tip.d1 - tip.d0)) * (tip.x1 - tip.x0), 0);
  });

  it('tabulates the last sample per device and process', () => {
    const last = samples[samples.length - 1]!;
    let rows = 0;
    for (const device of last.devices) {
      for (const p of device.processes ?? []) {
        rows++;
        expect(finalRow(html, device.index, p.pid)).toEqual({
          driver: formatBytes(p.layers.driverBytes),
          context: formatBytes(p.layers.contextBytes),
          reserved: formatBytes(p.layers.allocator?.reservedBytes ?? null),
          allocated: formatBytes(p.layers.allocator?.allocatedBytes ?? null),
          outside: signedBytes(p.gaps.outsideAllocatorBytes),
          'cuda-graphs': signedBytes(p.gaps.cudaGraphs.totalEstimateBytes),
          'kv-cache': formatBytes(p.layers.framework?.kvCacheBytes ?? null),
          'host-rss': formatBytes(p.host?.rssBytes ?? null),
        });
      }
    }
    expect(html.match(/data-final-row=/g)).toHaveLength(rows);
    // The hostile process left before the end: not in the table.
    expectNotIn(html, 'data-final-row="0-5151"');
  });

  it('escapes every string from the data', () => {
    expectNotIn(html, HOSTILE_COMMAND);
    expectIn(html, '&lt;script&gt;alert(1)&lt;/script&gt;');
    const hostile = renderReportHtml({
      header: recordingHeader({ host: '"><img src=x onerror=alert(2)>' }),
      samples: samples.slice(0, 3),
      findings: [{ ...findings[0]!, title: '<b>bold</b>', summary: "it's <i>", fix: '</script><script>alert(3)</script>', subject: { ...findings[0]!.subject, command: '<svg onload=alert(4)>' } }],
      title: '<title>x</title>',
    });
    expectNoMatch(hostile, /<img|<b>bold|<i>|<svg onload|<title>x|alert\(3\)<\/script>/);
    expect(hostile.match(/<script\b/g)).toHaveLength(1);
    expectIn(hostile, '&lt;b&gt;bold&lt;/b&gt;');
  });

  it('references nothing on the network (no http(s) resource, no import)', () => {
    for (const value of [...attributeValues(html, 'src'), ...attributeValues(html, 'href')]) expect(value).toMatch(/^(#|data:)/);
    expectNoMatch(html, /https?:\/\//);
    expectNoMatch(html, /@import|url\(/);
    expectNoMatch(html, /\bsrc\s*=/);
  });

  it('leaves unknown values as gaps, not zeros', () => {
    const gaps = chartTip(html, 'gaps-0-4242');
    const outside = series(gaps, 'outside allocator');
    for (let i = 0; i < SAMPLES; i++) {
      const missing = i >= COMPANION_MISSING.from && i < COMPANION_MISSING.to;
      expect(outside[i] === null, `sample ${i}`).toBe(missing);
    }
    expect(segments(seriesPath(html, 'gaps-0-4242', 'gap-outside-allocator'))).toBe(2);

    // Without the allocator layer the stack is the driver figure alone, not zero tensors.
    const layers = chartTip(html, 'process-0-4242');
    const inGap = COMPANION_MISSING.from + 1;
    expect(series(layers, 'allocated (live tensors)')[inGap]).toBeNull();
    expect(series(layers, 'driver (no allocator layer)')[inGap]).toBe(samples[inGap]!.devices[0]!.processes![0]!.layers.driverBytes);

    // A process that comes and goes: unknown outside its lifetime, one stretch of area.
    const hostile = series(chartTip(html, 'process-0-5151'), 'driver total (NVML)');
    expect(hostile.slice(0, HOSTILE_ALIVE.from).every((v) => v === null)).toBe(true);
    expect(hostile.slice(HOSTILE_ALIVE.from, HOSTILE_ALIVE.to).every((v) => v === 1536 * MiB)).toBe(true);
    expect(hostile.slice(HOSTILE_ALIVE.to).every((v) => v === null)).toBe(true);
    expect(segments(seriesPath(html, 'process-0-5151', 'driver-only'))).toBe(1);
    // And its legend in the device chart says n/a at the last reading, not 0.
    const device = html.slice(html.indexOf('data-chart="device-0"'));
    const item = /<li data-series="pid-0-5151"[^]*?<\/li>/.exec(device)![0];
    expectIn(item, 'last <b>n/a</b>');
    expectIn(item, 'peak 1.5 GiB');
  });

  it('breaks lines where the recorder stopped', () => {
    const gapped = [...samples.slice(0, 50), ...samples.slice(200, 260)];
    const out = renderReportHtml({ header, samples: gapped, findings: [] });
    expect(segments(seriesPath(out, 'process-1-4343', 'driver'))).toBe(2);
    expect(segments(seriesPath(out, 'host-1-4343', 'host-anon'))).toBe(2);
  });

  it('draws at most ~600 points per chart for a long recording and keeps the peak', () => {
    const count = 5000;
    const spikeAt = 3217;
    const long: LayeredSample[] = [];
    for (let i = 0; i < count; i++) {
      const driver = i === spikeAt ? 30 * GiB : 10 * GiB + (i % 7) * MiB;
      const p = layeredProcess({ pid: 77, command: 'python3 train.py', driverBytes: driver, contextBytes: 512 * MiB, allocator: { reserved: 8 * GiB, allocated: 6 * GiB, privatePools: 0, inactiveSplit: 0 }, host: null });
      long.push(layeredSample(START_MS + i * 2000, [layeredDevice(0, UUID0, [p], 0)]));
    }
    const out = renderReportHtml({ header: recordingHeader({ intervalMs: 2000 }), samples: long, findings: [] });
    const lineOf: Record<string, string> = { 'device-0': 'used', 'process-0-77': 'driver', 'gaps-0-77': 'gap-outside-allocator' };
    for (const [chart, line] of Object.entries(lineOf)) {
      const tip = chartTip(out, chart);
      expect(tip.t.length).toBeLessThanOrEqual(600);
      expect(tip.t.length).toBeGreaterThan(500);
      expect(tip.t.map((t) => t + tip.d0)).toContain(START_MS + spikeAt * 2000);
      const d = seriesPath(out, chart, line);
      expect((d.match(/[ML]/g) ?? []).length).toBeLessThanOrEqual(600);
      // One stretch: picking samples must not be mistaken for the recorder stopping.
      expect(segments(d)).toBe(1);
    }
    expectIn(out, 'peak 30.0 GiB');
    expect(out.length).toBeLessThan(1_000_000);
  });

  it('says "No findings" clearly when there are none', () => {
    const out = renderReportHtml({ header, samples: samples.slice(0, 10), findings: [] });
    expectIn(out, 'No findings');
    expectNotIn(out, 'data-finding-id');
  });

  it('tells a reused pid apart by its start time', () => {
    const reading = (ticks: number) =>
      layeredProcess({ pid: 7000, command: 'python3 serve.py', driverBytes: GiB, contextBytes: null, allocator: null, host: { anon: MiB, file: MiB, shmem: 0, driverMapped: 0, startTimeTicks: ticks } });
    const reused = [0, 1, 2, 3].map((i) => layeredSample(START_MS + i * INTERVAL_MS, [layeredDevice(0, UUID0, [reading(i < 2 ? 100 : 900)], 0)]));
    const out = renderReportHtml({ header, samples: reused, findings: [] });
    expect(attributeValues(out, 'data-chart').filter((c) => c.startsWith('process-'))).toEqual(['process-0-7000', 'process-0-7000-2']);
  });

  it('renders a single sample', () => {
    const out = renderReportHtml({ header, samples: samples.slice(0, 1), findings });
    expectNoMatch(out, /NaN|Infinity/);
    expect(attributeValues(out, 'data-chart')).toContain('process-0-4242');
    expectIn(chartSvg(out, 'device-0'), '>02:00:00<');
  });

  it('draws the request phase as a band under the memory chart, one rectangle per run of a phase, with its share of the time', () => {
    // 30 samples: 10 idle, 10 prefill-heavy, 10 decode, 10 s apart.
    const phases = ['idle', 'prefill-heavy', 'decode'] as const;
    const withLoad = structuredClone(samples.slice(0, 30)).map((sample, i) => {
      for (const p of sample.devices.flatMap((d) => d.processes ?? [])) {
        if (p.layers.framework === null) continue;
        p.layers.framework.load = {
          source: 'metrics',
          promptTokensPerSecond: i >= 10 && i < 20 ? 2_000 : 0,
          generationTokensPerSecond: i >= 20 ? 700 : 0,
          requestsFinishedPerSecond: 0,
          phase: phases[Math.floor(i / 10)]!,
          sinceLastPrefillSeconds: null,
          lastPrefillBurstTokens: null,
          idleBeforeLastBurstSeconds: null,
        };
      }
      return sample;
    });
    const out = renderReportHtml({ header, samples: withLoad, findings: [] });
    const band = /<figure class="chart load-band"[\s\S]*?<\/figure>/.exec(out)?.[0];
    expect(band).toBeDefined();
    expect(attributeValues(band!, 'data-phase').filter((_, i, all) => i < all.length - 3)).toEqual(['idle', 'prefill-heavy', 'decode']);
    // Each phase holds from its first reading to the next phase's: 100 s of the 290 s drawn (the last run ends at its last reading).
    expect(band).toContain(`prefill-heavy</span><span class="figures">${Math.round((100 / 290) * 100)}% of the time`);
    expect(band).toContain('2,000 prompt · 700 generated tokens/s');
    // A recording without load figures draws no band.
    expect(html).not.toContain('load-band');
  });

  it('refuses a recording with no samples', () => {
    let error: unknown;
    try {
      renderReportHtml({ header, samples: [], findings: [] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GpuLayersError);
    expect((error as GpuLayersError).code).toBe('RECORDING_INVALID');
  });
});
