/**
 * The demo's bundled recording (assets/overnight.recording.jsonl.gz) is the "overnight"
 * incident of the scenario library recorded through the pipeline: it must diagnose as the
 * incident expects, and exactly as a fresh recording does, so a change to the pipeline, the
 * rules or the incident cannot leave a stale demo behind. UPDATE_DEMO_RECORDING=1 rewrites it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { demoRecordingPath } from '../../src/cli/commands/demo-command.js';
import { packageVersion } from '../../src/cli/version.js';
import { diagnose } from '../../src/diagnosis/diagnose.js';
import { incidentNamed } from '../../src/mock-host/incidents.js';
import { recordIncident } from '../../src/mock-host/record-incident.js';
import { readRecording } from '../../src/recording/read-recording.js';

const overnight = incidentNamed('overnight')!;
let work: string;
let fresh: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-demo-recording-'));
  fresh = path.join(work, 'overnight.jsonl');
  await recordIncident(overnight, fresh, { host: 'gpu-node-17', gpuLayersVersion: packageVersion() });
  if (process.env.UPDATE_DEMO_RECORDING === '1') writeFileSync(demoRecordingPath(), gzipSync(readFileSync(fresh), { level: 9 }));
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('the bundled recording diagnoses as the overnight incident, exactly as a fresh recording does', async () => {
  const bundled = await readRecording(demoRecordingPath());
  expect(bundled.warnings).toEqual([]);
  expect(bundled.samples).toHaveLength(overnight.steps);
  const findings = diagnose(bundled.samples);
  expect(findings.map((f) => f.id).sort()).toEqual([...overnight.expect].sort());
  expect(findings, 'stale demo recording: run UPDATE_DEMO_RECORDING=1 npx vitest run test/mock-host/demo-recording.test.ts').toEqual(
    diagnose((await readRecording(fresh)).samples),
  );
});
