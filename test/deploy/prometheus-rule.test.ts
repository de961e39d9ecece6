/**
 * deploy/kubernetes/gpu-layers-prometheusrule.yaml is generated from the rules file that promtool
 * tests (scripts/build/prometheus-rule.js): the checked-in object is what the generator makes of
 * the rules file now, and the generator keeps the rules as they are.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { repoRoot } from '../helpers/paths.js';
import { PROMETHEUS_RULE_FILE, RULES_FILE, prometheusRuleYaml } from '../../scripts/build/prometheus-rule.js';

const rulesText = readFileSync(RULES_FILE, 'utf8');
const script = path.join(repoRoot, 'scripts/build/prometheus-rule.js');

describe('the generated PrometheusRule', () => {
  it('is up to date with deploy/prometheus/gpu-layers.rules.yml (else: node scripts/build/prometheus-rule.js)', () => {
    expect(readFileSync(PROMETHEUS_RULE_FILE, 'utf8')).toBe(prometheusRuleYaml(rulesText));
    const check = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });

  it('holds the rule groups as the rules file has them, with their comments', () => {
    const object = parse(prometheusRuleYaml(rulesText));
    expect(object).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'gpu-layers' } });
    expect(object.spec).toEqual(parse(rulesText));
    const firstComment = rulesText.split('\n').find((line) => /^\s+#\s*\S/.test(line))!;
    expect(prometheusRuleYaml(rulesText)).toContain(`  ${firstComment}\n`);
  });

  it('follows a change of the rules file, which the check then reports', () => {
    const changed = rulesText.replace(/for: 5m/, 'for: 6m');
    expect(changed).not.toBe(rulesText);
    const object = parse(prometheusRuleYaml(changed));
    expect(JSON.stringify(object.spec)).toContain('"for":"6m"');
    expect(prometheusRuleYaml(changed)).not.toBe(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'));
  });

  it('refuses a file that is not a rules file', () => {
    expect(() => prometheusRuleYaml('rule_files: [a.yml]\n')).toThrow(/groups/);
    expect(() => prometheusRuleYaml(`${rulesText}\nextra: 1\n`)).toThrow(/groups/);
  });
});
