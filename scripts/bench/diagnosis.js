#!/usr/bin/env node
// Benchmark part "diagnosis": the diagnosis on its evaluation set (src/mock-host/evaluation-set.ts:
// hosts drawn from a model of a vLLM host, labelled with the findings they must give, and
// look-alikes that must give none). Per case what was found, missed and wrongly found; per
// finding id precision and recall; and every case sampled faster than 60 s (patterns and
// look-alikes) recorded again at 60 s (every 12th or fewer sample of the same host), which must
// give the same findings. Results as JSON (--json FILE).
import path from 'node:path';

import { emitResults, machineFacts, root } from './machine.js';

const { diagnose } = await import(path.join(root, 'dist/analysis.js'));
const { EVALUATION_SET, evaluationRecording, resampled, scoreFindings, scoresById } = await import(path.join(root, 'dist/mock.js'));

const cases = [];
const scores = [];
const findingKey = (f) => `${f.id}/${f.subject.deviceIndex}/${f.subject.pid}`;
let sameAtSixty = 0;
let comparedAtSixty = 0;
for (const testCase of EVALUATION_SET) {
  const recording = evaluationRecording(testCase);
  const started = performance.now();
  const findings = diagnose(recording.samples);
  const ms = performance.now() - started;
  const score = scoreFindings(testCase, recording, findings);
  scores.push(score);
  let atSixty = null;
  const factor = 60 / testCase.spec.intervalSeconds;
  if (Number.isInteger(factor) && factor > 1) {
    const coarse = diagnose(resampled(recording, factor).samples).map(findingKey).sort();
    atSixty = JSON.stringify(coarse) === JSON.stringify(findings.map(findingKey).sort());
    comparedAtSixty++;
    if (atSixty) sameAtSixty++;
  }
  cases.push({ ...score, intervalSeconds: testCase.spec.intervalSeconds, hours: testCase.spec.hours, samples: recording.samples.length, diagnoseMs: ms, sameFindingsAt60s: atSixty });
  console.log(
    `diagnosis: ${testCase.kind.padEnd(10)} ${testCase.name.padEnd(36)} ${score.found}/${score.expected}` +
      `${score.missed.length > 0 ? `  missed ${score.missed.join(', ')}` : ''}${score.falseFindings.length > 0 ? `  false ${score.falseFindings.join(', ')}` : ''}${atSixty === false ? '  (differs at 60 s)' : ''}`,
  );
}
const patterns = scores.filter((s) => s.kind === 'pattern');
const lookAlikes = scores.filter((s) => s.kind === 'look-alike');
const expected = patterns.reduce((n, s) => n + s.expected, 0);
const found = scores.reduce((n, s) => n + s.found, 0);
const falseFindings = scores.reduce((n, s) => n + s.falseFindings.length, 0);
const results = {
  machine: machineFacts(),
  cases,
  byId: scoresById(EVALUATION_SET, scores),
  patternCases: patterns.length,
  lookAlikeCases: lookAlikes.length,
  expected,
  found,
  falseFindings,
  silentLookAlikes: lookAlikes.filter((s) => s.falseFindings.length === 0).length,
  sameAtSixty,
  comparedAtSixty,
};
console.log(`diagnosis: ${found}/${expected} expected findings, ${falseFindings} false; ${results.silentLookAlikes}/${lookAlikes.length} look-alikes silent; ${sameAtSixty}/${comparedAtSixty} cases the same at 60 s`);
emitResults(results);
// Missing a target (every label found, nothing false, the same at 60 s) is a missed target, as in
// the other parts.
process.exitCode = found === expected && falseFindings === 0 && sameAtSixty === comparedAtSixty ? 0 : 1;
