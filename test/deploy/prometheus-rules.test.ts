/**
 * The Prometheus rules in deploy/prometheus, through a real promtool: the rules file is valid,
 * its unit tests pass, every alert has a test where it fires and one where it stays silent, and
 * every query names only the exporter's metrics and labels. promtool comes with Debian's
 * prometheus package (fetched into .cache by `npm run fixtures`); without it these tests fail
 * rather than skip.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { repoRoot } from '../helpers/paths.js';
import { ALL_LABELS, METRICS, TARGET_LABELS } from '../helpers/gpu-layers-metrics.js';
import { promqlNames } from '../helpers/promql-names.js';
import { testTool } from '../helpers/test-tools.js';

const dir = path.join(repoRoot, 'deploy/prometheus');
const rulesFile = path.join(dir, 'gpu-layers.rules.yml');
const testFile = path.join(dir, 'gpu-layers.rules.test.yml');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[] | null;
}
interface UnitTest {
  name?: string;
  input_series: { series: string; values: string }[];
  alert_rule_test?: AlertTest[];
}

const rules: Rule[] = (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert !== undefined);
const records = rules.filter((r) => r.record !== undefined);
const unitTests = parse(readFileSync(testFile, 'utf8')) as { rule_files: string[]; tests: UnitTest[] };

/** Runs promtool in the rules' folder; a missing promtool fails the test that needs it. */
function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(testTool('promtool'), args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('promtool', () => {
  it('accepts the rules file and counts every rule in it', () => {
    const r = run(['check', 'rules', rulesFile]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('passes the unit tests', () => {
    const r = run(['test', 'rules', testFile]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });
});

describe('the rules file', () => {
  it("has the project's ten alerts, the write-up's two as written, and their recording rules", () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'GPULayersAllocatorFragmentation',
      'GPULayersCUDAGraphCreep',
      'GPULayersCanaryFailing',
      'GPULayersCollectFailing',
      'GPULayersGPUDown',
      'GPULayersHostHeapLeak',
      'GPULayersMemoryGrowingWhileIdle',
      'GPULayersNonKVCacheMemoryHigh',
      'GPULayersOutOfMemory',
      'GPULayersSchedulerStateMismatch',
      'VLLMFragmentationSpikeOnIdle',
      'VLLMHighFragmentationRatio',
    ]);
    for (const r of records) expect(r.record).toMatch(/^gpu_layers:[a-z_]+(:[a-z0-9_]+)?$/);
  });

  it.each(alerts.map((a) => [a.alert!, a] as const))('%s has a for, a severity, a summary, a description and a runbook hint', (_name, alert) => {
    expect(alert.for).toMatch(/^\d+[smh]$/);
    expect(alert.labels?.severity).toBeTruthy();
    expect(Object.keys(alert.annotations ?? {}).sort()).toEqual(['description', 'runbook', 'summary']);
  });

  it('queries only the exporter\'s metrics, its recording rules and up, with labels those have', () => {
    const recorded = new Set(records.map((r) => r.record!));
    for (const rule of rules) {
      const names = promqlNames(rule.expr);
      for (const s of names.selectors) {
        const where = `${rule.alert ?? rule.record}: ${s.metric ?? '{...}'}`;
        expect(s.metric, where).not.toBeNull();
        if (s.metric === 'up' || recorded.has(s.metric!)) continue;
        const family = METRICS[s.metric!];
        expect(family, `${where}: not a gpu-layers metric`).toBeDefined();
        for (const m of s.matchers) {
          expect([...TARGET_LABELS, ...family!.labels], `${where}: label ${m.label}`).toContain(m.label);
          const allowed = family!.values?.[m.label];
          if (allowed !== undefined && m.op === '=') expect(allowed, `${where}: ${m.label}="${m.value}"`).toContain(m.value);
        }
      }
      for (const label of names.groupingLabels) {
        expect(ALL_LABELS.has(label) || names.createdLabels.includes(label), `${rule.alert ?? rule.record}: label ${label}`).toBe(true);
      }
    }
  });
});

describe('the unit tests', () => {
  it('load the rules file next to them', () => {
    expect(unitTests.rule_files).toEqual(['gpu-layers.rules.yml']);
  });

  const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);

  it.each(alerts.map((a) => [a.alert!, a] as const))('cover %s firing and not firing', (name, alert) => {
    const mine = cases.filter((c) => c.alertname === name);
    const firing = mine.filter((c) => (c.exp_alerts ?? []).length > 0);
    const silent = mine.filter((c) => (c.exp_alerts ?? []).length === 0);
    expect(firing.length, `${name}: no test case where it fires`).toBeGreaterThan(0);
    expect(silent.length, `${name}: no test case where it stays silent`).toBeGreaterThan(0);
    // Every firing case pins the severity and every annotation, so that the templates are tested.
    for (const c of firing) {
      for (const a of c.exp_alerts!) {
        expect(a.exp_labels?.severity, `${name} at ${c.eval_time}: exp_labels.severity`).toBeTruthy();
        expect(Object.keys(a.exp_annotations ?? {}).sort(), `${name} at ${c.eval_time}: exp_annotations`).toEqual(Object.keys(alert.annotations!).sort());
      }
    }
  });

  it('feed every alert series that do not fire it next to those that do', () => {
    // A firing case with a single input process would not show the alert telling cases apart.
    for (const t of unitTests.tests) {
      for (const c of t.alert_rule_test ?? []) {
        const fired = (c.exp_alerts ?? []).length;
        if (fired === 0) continue;
        const sources = new Set(t.input_series.map((s) => /instance="([^"]*)"/.exec(s.series)?.[1] + '/' + (/pid="([^"]*)"/.exec(s.series)?.[1] ?? '')));
        expect(sources.size, `${t.name}: ${c.alertname} at ${c.eval_time}`).toBeGreaterThan(fired);
      }
    }
  });
});
