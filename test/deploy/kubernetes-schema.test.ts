/**
 * Every object that the kustomizations in deploy/ render, checked against the schemas of its API:
 * Kubernetes' own (kubernetes-models) and the Prometheus Operator's CRDs
 * (@kubernetes-models/prometheus-operator), both generated from the upstream API definitions.
 * Their validators check types, required fields, enums and patterns but, like an API server that
 * is not asked for strict validation, let unknown fields through; a misspelt field would then be
 * dropped silently by the cluster. So every field is also probed: replaced by a value no schema
 * accepts, it must make the validator complain at its own path, which it does only for a field
 * the schema knows.
 */
import { describe, expect, it } from 'vitest';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Service } from 'kubernetes-models/v1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

import { find, kustomize, type KubeObject } from './kustomize-build.js';

interface SchemaError {
  instancePath: string;
  message?: string;
}

const models: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1 DaemonSet': DaemonSet,
  'v1 Service': Service,
  'networking.k8s.io/v1 NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1 ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1 PrometheusRule': PrometheusRule,
};

/** The schema's complaints about an object (none when it is valid). */
function schemaErrors(object: KubeObject): SchemaError[] {
  const Model = models[`${object.apiVersion} ${object.kind}`];
  if (Model === undefined) return [{ instancePath: '', message: `no schema for ${object.apiVersion} ${object.kind}` }];
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: SchemaError[] }).errors;
    if (errors === undefined) throw error;
    return errors;
  }
}

/** JSON Pointer of a path of keys (RFC 6901: `~` and `/` escaped), as the validator reports it. */
const pointer = (keys: (string | number)[]): string => keys.map((k) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** Every path to an object field (not to array items: the schema's items cover each of them). */
function fieldPaths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((item, i) => fieldPaths(item, [...at, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => [[...at, key], ...fieldPaths(child, [...at, key])]);
}

/**
 * The fields the schema does not know: replaced by a symbol (no type accepts one), no complaint
 * there. The fields inside an unknown one are not named again.
 */
function unknownFields(object: KubeObject): string[] {
  const unknown: string[] = [];
  for (const keys of fieldPaths(object)) {
    if (keys.length === 1 && (keys[0] === 'apiVersion' || keys[0] === 'kind')) continue;
    const at = pointer(keys);
    if (unknown.some((u) => at.startsWith(`${u}/`))) continue;
    const probe = structuredClone(object) as any;
    let parent = probe;
    for (const key of keys.slice(0, -1)) parent = parent[key];
    parent[keys[keys.length - 1]!] = Symbol('not a value');
    if (!schemaErrors(probe).some((e) => e.instancePath === at || e.instancePath.startsWith(`${at}/`))) unknown.push(at);
  }
  return unknown;
}

for (const folder of ['deploy/kubernetes', 'deploy/kubernetes-overlay']) {
  describe(`kubectl kustomize ${folder}`, () => {
    const objects = kustomize(folder);
    for (const object of objects) {
      it(`${object.kind} ${object.metadata.name}: valid, every field known to its schema`, () => {
        expect(schemaErrors(object).map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);
        expect(unknownFields(object)).toEqual([]);
      });
    }
  });
}

describe('the schema check itself', () => {
  const objects = kustomize('deploy/kubernetes');

  it('names a misspelt field, at any depth, and nothing else', () => {
    const daemonSet = structuredClone(find(objects, 'DaemonSet'));
    const sc = daemonSet.spec.template.spec.containers[0].securityContext;
    sc.readOnlyRootFilesytem = sc.readOnlyRootFilesystem;
    delete sc.readOnlyRootFilesystem;
    const rule = structuredClone(find(objects, 'PrometheusRule'));
    rule.spec.groups[0].rules[0].labls = { severity: 'warning' };
    expect(unknownFields(daemonSet)).toEqual(['/spec/template/spec/containers/0/securityContext/readOnlyRootFilesytem']);
    expect(unknownFields(rule)).toEqual(['/spec/groups/0/rules/0/labls']);
  });

  it('refuses a wrong type, a missing required field and a malformed duration', () => {
    const daemonSet = structuredClone(find(objects, 'DaemonSet'));
    daemonSet.spec.template.spec.containers[0].ports[0].containerPort = '9843';
    expect(schemaErrors(daemonSet).map((e) => e.instancePath)).toContain('/spec/template/spec/containers/0/ports/0/containerPort');
    const selectorless = structuredClone(find(objects, 'DaemonSet'));
    delete selectorless.spec.selector;
    expect(schemaErrors(selectorless)).toContainEqual(expect.objectContaining({ instancePath: '/spec', params: { missingProperty: 'selector' } }));
    const rule = structuredClone(find(objects, 'PrometheusRule'));
    rule.spec.groups[1].rules[0].for = '5 minutes';
    expect(schemaErrors(rule).map((e) => e.instancePath)).toContain('/spec/groups/1/rules/0/for');
  });
});
