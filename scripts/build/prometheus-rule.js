#!/usr/bin/env node
// Writes deploy/kubernetes/gpu-layers-prometheusrule.yaml: the rule groups of
// deploy/prometheus/gpu-layers.rules.yml (the one source of the rules, which promtool tests) inside
// a PrometheusRule object for the Prometheus Operator, their comments kept. Run it after every
// change to the rules file; `--check` exits 1 instead of writing when the checked-in object is
// out of date (test/deploy/prometheus-rule.test.ts runs the same comparison).
//
// A generated file rather than a kustomize generator: configMapGenerator and secretGenerator make
// only ConfigMaps and Secrets, and the PrometheusRule's labels (the ruleSelector's `release`) are
// set by deploy/kubernetes/kustomization.yaml like the ServiceMonitor's.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { isDeepStrictEqual } from 'node:util';

import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RULES_FILE = path.join(root, 'deploy/prometheus/gpu-layers.rules.yml');
export const PROMETHEUS_RULE_FILE = path.join(root, 'deploy/kubernetes/gpu-layers-prometheusrule.yaml');

const HEAD = `# Generated from deploy/prometheus/gpu-layers.rules.yml by scripts/build/prometheus-rule.js: edit
# the rules file and run \`node scripts/build/prometheus-rule.js\`, not this file. The labels that a
# Prometheus's ruleSelector asks for are added by kustomization.yaml.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: gpu-layers
  labels:
    app.kubernetes.io/name: gpu-layers
    app.kubernetes.io/component: exporter
spec:
`;

/**
 * The PrometheusRule's YAML for the text of a Prometheus rules file: the file indented under
 * `spec:` as it is, so that its comments, block scalars and line breaks stay as written. Indenting
 * every line alike keeps YAML's meaning; the parse below proves it for the file at hand.
 */
export function prometheusRuleYaml(rulesText) {
  const rules = parse(rulesText);
  if (rules === null || typeof rules !== 'object' || !Array.isArray(rules.groups) || Object.keys(rules).length !== 1) {
    throw new Error(`${RULES_FILE}: expected a rules file with \`groups:\` only`);
  }
  const body = rulesText.split('\n').map((line) => (line === '' ? line : `  ${line}`)).join('\n');
  const text = `${HEAD}${body.endsWith('\n') ? body : `${body}\n`}`;
  const object = parse(text);
  if (!isDeepStrictEqual(object.spec, rules)) throw new Error(`${RULES_FILE}: its rules read differently once indented under spec:`);
  return text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const generated = prometheusRuleYaml(readFileSync(RULES_FILE, 'utf8'));
  const relative = path.relative(root, PROMETHEUS_RULE_FILE);
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(PROMETHEUS_RULE_FILE, 'utf8');
    } catch {
      // A missing file is out of date like any other.
    }
    if (current !== generated) {
      console.error(`${relative} is out of date: run \`node scripts/build/prometheus-rule.js\``);
      process.exit(1);
    }
    console.log(`${relative} is up to date`);
  } else {
    writeFileSync(PROMETHEUS_RULE_FILE, generated);
    console.log(`wrote ${relative}`);
  }
}
