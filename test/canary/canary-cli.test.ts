/**
 * `gpu-layers canary` through main(), in-process (the spawned CLI runs from dist/): exit 1 on a
 * scheduler-state-mismatch at or above --fail-on (critical by default), 0 on noise or a clean
 * run, 2 on a usage error; --json is the result document; the text has one line per prompt, the
 * verdict and the fix.
 */
import { describe, expect, it } from 'vitest';

import { canaryResultSchema } from '../../src/canary/canary-schema.js';
import { main } from '../../src/cli/main.js';
import { MAIN_HELP } from '../../src/cli/usage.js';
import type { FakeOpenAiServerOptions } from '../../src/mock-host/fake-openai-server.js';
import { capturedIo, QUICK_FLAGS, TOY_MODEL, withServer } from '../helpers/canary.js';

async function canaryCli(server: FakeOpenAiServerOptions, args: string[] = []) {
  return withServer(server, async (s) => {
    const captured = capturedIo();
    const exit = await main(['canary', '--openai', s.url, '--model', TOY_MODEL, ...QUICK_FLAGS, ...args], captured.io);
    return { exit, stdout: captured.stdout(), stderr: captured.stderr() };
  });
}

describe('gpu-layers canary', () => {
  it('A: exit 1, a MISMATCH line per caught prompt, the verdict, both continuations and the fix', async () => {
    const run = await canaryCli({ engine: 'wrong-sequence-state' });
    expect(run.exit).toBe(1);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^gpu-layers canary: http:\/\/127\.0\.0\.1:\d+\/v1, model toy-recurrent \(completions API, top-5 logprobs\)$/);
    expect(lines.filter((l) => /^ {2}[a-z-]+ +MISMATCH at token \d+ ".*" -> ".*": the reference token led by \d+\.\d\d nats/.test(l)).length).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/^MISMATCH: /m);
    expect(run.stdout).toMatch(/CRITICAL scheduler-state-mismatch \(confidence 0\.\d\d\)/);
    expect(run.stdout).toMatch(/ {6}alone: {6}".+"\n {6}under load: ".+"/);
    expect(run.stdout).toMatch(/Fix: [\s\S]*VLLM_BATCH_INVARIANT=1/);
  });

  it('B: exit 0, noise lines with their margins; C: exit 0, every prompt the same', async () => {
    const b = await canaryCli({ engine: 'near-tie-noise' });
    expect(b.exit).toBe(0);
    expect(b.stdout).toMatch(/noise at token \d+ ".*" -> ".*", margin 0\.\d\d nats: a near-tie \(below 0\.50 nats\)/);
    expect(b.stdout).toMatch(/^NOISE ONLY/m);
    expect(b.stdout).not.toMatch(/MISMATCH/);
    const c = await canaryCli({ engine: 'exact' });
    expect(c.exit).toBe(0);
    expect(c.stdout.split('\n').filter((l) => /^ {2}[a-z-]+ +same \(2 runs\)$/.test(l))).toHaveLength(12);
    expect(c.stdout).toMatch(/^CONSISTENT/m);
  });

  it('--json is the result document, valid against its schema; the exit code follows the findings', async () => {
    const run = await canaryCli({ engine: 'wrong-sequence-state' }, ['--json']);
    expect(run.exit).toBe(1);
    const document = JSON.parse(run.stdout);
    expect(canaryResultSchema.safeParse(document).success).toBe(true);
    expect(document.verdict).toBe('mismatch');
    expect(document.findings[0].id).toBe('scheduler-state-mismatch');
  });

  it('--fail-on: unjudged divergences (no logprobs) are a warning, exit 0 by default and 1 with --fail-on warning', async () => {
    const server = { engine: 'wrong-sequence-state', misbehave: { kind: 'no-logprobs' } } as const;
    const byDefault = await canaryCli(server, ['--json']);
    const findings = JSON.parse(byDefault.stdout).findings as { severity: string }[];
    expect(findings.some((f) => f.severity === 'warning')).toBe(true);
    expect(byDefault.exit).toBe(findings.some((f) => f.severity === 'critical') ? 1 : 0);
    expect((await canaryCli(server, ['--fail-on', 'warning'])).exit).toBe(1);
  });

  it('--batch-invariant makes B exit 1', async () => {
    expect((await canaryCli({ engine: 'near-tie-noise' }, ['--batch-invariant'])).exit).toBe(1);
  });

  it.each([
    [[], /needs --openai/],
    [['--openai', 'http://127.0.0.1:1'], /needs --model/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--concurrency', '0'], /--concurrency expects a whole number/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--prompt-words', '9-3'], /--prompt-words expects MIN-MAX/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--fail-on', 'sometimes'], /--fail-on expects one of/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--near-tie=-1'], /--near-tie expects a margin/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--prompts', '13'], /--prompts must be between 1 and 12/],
    [['--openai', 'http://127.0.0.1:1', '--model', 'm', '--budget', '5'], /budget of 5 requests is too small/],
    [['--openai', 'http://u:p@127.0.0.1:1', '--model', 'm'], /must not carry credentials/],
  ])('usage error, exit 2: %j', async (args, message) => {
    const { io, stderr } = capturedIo();
    expect(await main(['canary', ...args], io)).toBe(2);
    expect(stderr()).toMatch(message);
  });

  it('--help, and the verb in the main help', async () => {
    const { io, stdout } = capturedIo();
    expect(await main(['canary', '--help'], io)).toBe(0);
    expect(stdout()).toMatch(/GPU_LAYERS_CANARY_TOKEN/);
    expect(stdout()).toMatch(/--fail-on <level>/);
    expect(MAIN_HELP).toMatch(/gpu-layers canary --openai URL --model NAME/);
  });
});
