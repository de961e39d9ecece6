/**
 * The objects `kubectl kustomize` renders from a folder of deploy/, with Debian 12's kubectl (1.20,
 * kustomize v2.0: the oldest the kustomizations are written for), parsed.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { parseAllDocuments } from 'yaml';

import { repoRoot } from '../helpers/paths.js';
import { testTool } from '../helpers/test-tools.js';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: any;
}

export function kustomize(folder: string): KubeObject[] {
  const run = spawnSync(testTool('kubectl'), ['kustomize', path.join(repoRoot, folder)], { encoding: 'utf8', timeout: 60_000 });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${folder} exited ${run.status}: ${run.stderr}`);
  return parseAllDocuments(run.stdout).map((document) => {
    if (document.errors.length > 0) throw new Error(`kubectl kustomize ${folder}: ${document.errors[0]!.message}`);
    return document.toJS() as KubeObject;
  });
}

export function find(objects: KubeObject[], kind: string): KubeObject {
  const matches = objects.filter((o) => o.kind === kind);
  if (matches.length !== 1) throw new Error(`${matches.length} ${kind} objects, not 1`);
  return matches[0]!;
}
