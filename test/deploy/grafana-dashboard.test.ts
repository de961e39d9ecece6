/**
 * The Grafana dashboard in deploy/grafana: valid JSON of a current schema, unique panel ids, no
 * two panels on the same cells, the data source taken from the ${datasource} variable
 * everywhere, the template variables defined and used, and every query reading only the
 * exporter's metrics and labels (and parsing: promtool checks each one as a recording rule).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';
import { ALL_LABELS, METRICS, TARGET_LABELS } from '../helpers/gpu-layers-metrics.js';
import { promqlNames } from '../helpers/promql-names.js';
import { testTool } from '../helpers/test-tools.js';

const file = path.join(repoRoot, 'deploy/grafana/gpu-layers.dashboard.json');

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  repeat?: string;
  fieldConfig?: { defaults?: { custom?: { stacking?: { mode?: string } } } };
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  definition?: string;
  datasource?: { type?: string; uid?: string };
}

const text = readFileSync(file, 'utf8');
const dashboard = JSON.parse(text) as { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: Variable[] } };
/** Every panel, the ones inside collapsed rows too. */
const panels: Panel[] = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = panels.filter((p) => p.type !== 'row');
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));
const variables = dashboard.templating.list;
const queryVariables = variables.filter((v) => v.type === 'query');
const variableQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? ''));
/** The series selector inside label_values(selector, label). */
const variableSelector = (v: Variable): { selector: string; label: string } => {
  const m = /^label_values\((.*),\s*(\w+)\)$/s.exec(variableQuery(v).trim());
  if (m === null) throw new Error(`variable ${v.name}: not a label_values() query: ${variableQuery(v)}`);
  return { selector: m[1]!, label: m[2]! };
};

function checkQuery(where: string, expr: string): void {
  const names = promqlNames(expr);
  expect(names.selectors.length, `${where}: no metric`).toBeGreaterThan(0);
  for (const s of names.selectors) {
    const family = s.metric === null ? undefined : METRICS[s.metric];
    expect(family, `${where}: ${s.metric} is not a gpu-layers metric`).toBeDefined();
    for (const m of s.matchers) {
      expect([...TARGET_LABELS, ...family!.labels], `${where}: ${s.metric} has no label ${m.label}`).toContain(m.label);
      const allowed = family!.values?.[m.label];
      if (allowed === undefined) continue;
      // Equality and plain alternatives (a|b) must name values the exporter writes.
      const values = m.op === '=' ? [m.value] : m.op === '=~' && /^[\w|-]+$/.test(m.value) ? m.value.split('|') : [];
      for (const v of values) expect(allowed, `${where}: ${s.metric}{${m.label}="${v}"}`).toContain(v);
    }
  }
  for (const label of names.groupingLabels) expect(ALL_LABELS.has(label), `${where}: label ${label}`).toBe(true);
}

describe('the Grafana dashboard', () => {
  it('is JSON of schema version 38 or later, with a uid and a title', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.title).toContain('gpu-layers');
  });

  it('gives every panel its own id', () => {
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('places no two panels on the same cells, within the 24 columns', () => {
    const top = dashboard.panels;
    for (const p of top) {
      expect(p.gridPos.x + p.gridPos.w, `${p.title}: wider than the grid`).toBeLessThanOrEqual(24);
      expect(p.gridPos.w * p.gridPos.h, `${p.title}: empty`).toBeGreaterThan(0);
    }
    for (let i = 0; i < top.length; i++) {
      for (let j = i + 1; j < top.length; j++) {
        const a = top[i]!.gridPos;
        const b = top[j]!.gridPos;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `"${top[i]!.title}" and "${top[j]!.title}" overlap`).toBe(false);
      }
    }
  });

  it('takes the data source from the ${datasource} variable, a Prometheus one', () => {
    const ds = variables.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const p of queryPanels) expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    for (const { panel, target } of targets) expect(target.datasource, `${panel.title} ${target.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    for (const v of queryVariables) expect(v.datasource, v.name).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(text).not.toMatch(/"uid":\s*"(?!\$\{datasource\}|-- Grafana --|gpu-layers")/);
  });

  it('defines the instance, gpu and pid variables from gpu-layers metrics, and every variable it uses', () => {
    expect(queryVariables.map((v) => v.name)).toEqual(['instance', 'gpu', 'pid']);
    const defined = new Set(variables.map((v) => v.name));
    for (const v of queryVariables) {
      const { selector, label } = variableSelector(v);
      expect(label).toBe(v.name);
      checkQuery(`variable ${v.name}`, selector);
      for (const used of promqlNames(selector).variables) expect(defined.has(used), `variable ${v.name} uses $${used}`).toBe(true);
    }
    const used = new Set<string>();
    for (const { panel, target } of targets) {
      for (const name of promqlNames(target.expr).variables) {
        if (!name.startsWith('__')) expect(defined.has(name), `${panel.title}: $${name} is not defined`).toBe(true);
        used.add(name);
      }
    }
    for (const p of panels) {
      for (const m of p.title.matchAll(/\$(\w+)/g)) expect(defined.has(m[1]!), `${p.title}: ${m[0]}`).toBe(true);
      if (p.repeat !== undefined) expect(defined.has(p.repeat), `${p.title}: repeats by ${p.repeat}`).toBe(true);
    }
    for (const v of queryVariables) expect(used.has(v.name), `$${v.name} is never used in a query`).toBe(true);
  });

  it('queries only gpu-layers metrics, with labels and label values they have', () => {
    expect(targets.length).toBeGreaterThan(10);
    for (const { panel, target } of targets) {
      checkQuery(`${panel.title} ${target.refId}`, target.expr);
      for (const m of (target.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
        expect(ALL_LABELS.has(m[1]!), `${panel.title} ${target.refId}: legend {{${m[1]}}}`).toBe(true);
      }
    }
  });

  it('shows every gpu-layers metric somewhere', () => {
    const shown = new Set(targets.flatMap(({ target }) => promqlNames(target.expr).selectors.map((s) => s.metric)));
    for (const metric of Object.keys(METRICS)) expect(shown.has(metric), metric).toBe(true);
  });

  it('has the panels an incident needs', () => {
    const titles = queryPanels.map((p) => p.title.toLowerCase());
    for (const want of ['memory', 'by owner', 'gaps', 'fragmentation', 'host memory', 'requests', 'findings', 'collection']) {
      expect(titles.some((t) => t.includes(want)), want).toBe(true);
    }
    const stacked = queryPanels.find((p) => p.title.toLowerCase().includes('by owner'));
    expect(stacked?.type).toBe('timeseries');
    expect(stacked?.fieldConfig?.defaults?.custom?.stacking?.mode).toBe('normal');
    expect(queryPanels.some((p) => p.type === 'table' || p.type === 'state-timeline')).toBe(true);
  });

  it('has queries promtool parses', () => {
    // Variables become what "All" sends (.*); each query is then checked as a recording rule.
    const concrete = (expr: string): string => expr.replace(/\$\{?\w+\}?/g, (v) => (v === '$__rate_interval' ? '1m' : '.*'));
    const rules = [
      ...targets.map(({ target }) => target.expr),
      ...queryVariables.map((v) => variableSelector(v).selector),
    ].map((expr, i) => ({ record: `dashboard:query_${i}`, expr: concrete(expr) }));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-dashboard-'));
    try {
      const rulesFile = path.join(dir, 'dashboard.rules.json');
      writeFileSync(rulesFile, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = spawnSync(testTool('promtool'), ['check', 'rules', rulesFile], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
