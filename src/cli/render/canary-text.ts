/**
 * `gpu-layers canary` for a person at 3 AM: what was run against what, one line per prompt
 * (same, noise at a near-tie with its margin, MISMATCH with the margin the reference token had),
 * then the verdict, the divergences that make a finding with both continuations, and the fix.
 */
import type { CanaryFinding, CanaryPromptResult, CanaryResult, CanaryRun } from '../../canary/canary-schema.js';
import { wrapText } from './findings-text.js';
import type { Style } from './style.js';

const MAX_DIVERGENCES_SHOWN = 5;

function quoted(token: string | null): string {
  return token === null ? '(end)' : JSON.stringify(token);
}

function nats(value: number): string {
  return `${value.toFixed(2)} nats`;
}

function where(run: CanaryRun): string {
  const d = run.divergence!;
  return `${d.unit === 'token' ? 'token' : 'character'} ${d.position} ${quoted(d.referenceToken)} -> ${quoted(d.loadedToken)}`;
}

function worstRun(prompt: CanaryPromptResult): CanaryRun | undefined {
  return prompt.runs.find((run) => run.outcome === prompt.outcome);
}

function promptLine(prompt: CanaryPromptResult, result: CanaryResult, style: Style): string {
  const runs = prompt.runs.length;
  const of = (outcome: CanaryRun['outcome']): string => `${prompt.runs.filter((r) => r.outcome === outcome).length} of ${runs} runs`;
  const run = worstRun(prompt);
  switch (prompt.outcome) {
    case 'not-run':
      return style.dim('not run under load (the duration or the budget ran out first)');
    case 'same':
      return `same (${runs} run${runs === 1 ? '' : 's'})`;
    case 'noise':
      return `noise at ${where(run!)}, margin ${nats(run!.divergence!.marginNats!)}: a near-tie (below ${nats(result.nearTieMarginNats)}), not a fault (${of('noise')})`;
    case 'unjudged':
      return style.warn(`differs at ${where(run!)}, margin unknown (no logprobs) (${of('unjudged')})`);
    case 'mismatch': {
      const d = run!.divergence!;
      const why =
        run!.reason === 'wide-margin'
          ? `the reference token led by ${nats(d.marginNats!)}`
          : run!.reason === 'degenerate'
            ? `then the output ${d.degenerate === 'repetition' ? 'loops' : 'stops saying anything'}${d.marginNats === null ? '' : ` (margin ${nats(d.marginNats)})`}`
            : 'any divergence is a bug on a batch-invariant server';
      return style.bold(style.warn(`MISMATCH at ${where(run!)}: ${why} (${of('mismatch')})`));
    }
  }
}

function loadLine(result: CanaryResult): string {
  const l = result.load;
  const api = result.api === null ? 'no API found' : `${result.api === 'completions' ? 'completions' : 'chat completions'} API`;
  const logprobs = result.logprobs > 0 ? `top-${result.logprobs} logprobs` : 'no logprobs';
  const stopped = l.stoppedBy === 'duration' ? ', cut short by --duration' : l.stoppedBy === 'budget' ? ', stopped by --budget' : '';
  return [
    `${result.endpoint}, model ${result.model} (${api}, ${logprobs}${result.batchInvariant ? ', batch-invariant' : ''})`,
    `${result.prompts.length} prompts alone, then ${l.probesRun} runs under load among ${l.fillersRun} other requests ` +
      `(concurrency ${l.concurrency}; ${l.requestsSent} of ${l.requestBudget} requests; ${(l.elapsedMs / 1000).toFixed(1)} s${stopped})`,
  ].join('\n');
}

function divergenceLines(finding: CanaryFinding, style: Style, width: number): string[] {
  const lines: string[] = [];
  // One per prompt first: five prompts say more than five runs of one.
  const firstOfPrompt = finding.divergences.filter((d, i, all) => all.findIndex((e) => e.promptId === d.promptId) === i);
  const shown = [...firstOfPrompt, ...finding.divergences.filter((d) => !firstOfPrompt.includes(d))].slice(0, MAX_DIVERGENCES_SHOWN);
  for (const d of shown) {
    const margin = d.marginNats === null ? 'margin unknown' : `margin ${nats(d.marginNats)}${d.runnerUp === null ? '' : ` over ${quoted(d.runnerUp)}`}`;
    lines.push(`  ${style.bold(d.promptId)} run ${d.run}, ${d.unit} ${d.position}: ${margin}${d.degenerate === null ? '' : `; under load it ${d.degenerate === 'repetition' ? 'loops' : 'goes empty'}`}`);
    if (d.context !== '') lines.push(`      after:      ${JSON.stringify(d.context)}`);
    lines.push(`      alone:      ${JSON.stringify(d.reference)}`);
    lines.push(`      under load: ${JSON.stringify(d.loaded)}`);
  }
  if (finding.divergences.length > MAX_DIVERGENCES_SHOWN) lines.push(`  ... and ${finding.divergences.length - MAX_DIVERGENCES_SHOWN} more (--json has them all)`);
  return lines;
}

const VERDICT_TEXT: Record<CanaryResult['verdict'], string> = {
  consistent: 'CONSISTENT: every run under load gave exactly the sequence its prompt gave alone.',
  noise: 'NOISE ONLY: some runs under load left their reference, each at a near-tie, where a different reduction order in a batch of another shape can flip the winner. A correct engine does this; nothing to fix.',
  mismatch: 'MISMATCH: the server gives different greedy output under load where the model was sure.',
  unjudged: 'UNJUDGED: runs under load left their reference, and without logprobs the canary cannot tell numeric noise from a fault.',
  inconclusive: 'INCONCLUSIVE: no prompt ran under load, so nothing was compared (raise --duration or --budget).',
};

export function renderCanary(result: CanaryResult, style: Style, width: number): string {
  const out: string[] = [style.bold(`gpu-layers canary: ${loadLine(result)}`), ''];
  const idWidth = Math.max(...result.prompts.map((p) => p.id.length));
  for (const prompt of result.prompts) out.push(`  ${prompt.id.padEnd(idWidth)}  ${promptLine(prompt, result, style)}`);
  out.push('');
  const verdict = VERDICT_TEXT[result.verdict];
  out.push(...wrapText(result.verdict === 'mismatch' || result.verdict === 'unjudged' ? style.bold(style.warn(verdict)) : style.bold(verdict), width, ''));
  for (const finding of result.findings) {
    out.push('');
    out.push(`${style.bold(style.warn(finding.severity.toUpperCase()))} ${finding.id} (confidence ${finding.confidence.toFixed(2)}): ${finding.title}`);
    out.push(...wrapText(finding.summary, width, '  '));
    out.push(...divergenceLines(finding, style, width));
    out.push(...wrapText(`Fix: ${finding.fix}`, width, '  '));
  }
  if (result.verdict === 'noise') out.push(...wrapText(`Margins are the reference token's logprob minus the runner-up's where the runs part; below ${nats(result.nearTieMarginNats)} it is a near-tie. On a server started with VLLM_BATCH_INVARIANT=1, pass --batch-invariant: then any divergence is a bug.`, width, '  '));
  for (const warning of result.warnings) out.push(...wrapText(`warning: ${warning}`, width, ''));
  return `${out.join('\n')}\n`;
}
