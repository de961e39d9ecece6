/**
 * From the compared runs to the canary's verdict and its findings. A divergence at a near-tie is
 * numeric noise: counted and shown with its margin, never a finding. A divergence where the
 * reference token led by a wide margin, or after which the output degenerates, is a
 * scheduler-state-mismatch (critical). Divergences whose margins are unknown (the server gave no
 * logprobs) are a finding of their own, a warning with low confidence, worded as what it is:
 * changed output that cannot be judged. Pure.
 */
import type { Evidence } from '../diagnosis/finding-schema.js';
import type { CanaryFinding, CanaryPromptResult, CanaryRun, CanaryVerdict } from './canary-schema.js';

export interface VerdictContext {
  endpoint: string;
  model: string;
  startedAt: string;
  finishedAt: string;
  nearTieMarginNats: number;
  batchInvariant: boolean;
}

export interface CanaryJudgement {
  counts: { same: number; noise: number; mismatch: number; unjudged: number };
  verdict: CanaryVerdict;
  findings: CanaryFinding[];
}

/** A wide margin is sure at 2 nats (the reference token 7 times likelier than the runner-up). */
const SURE_MARGIN_NATS = 2;

const MISMATCH_FIX =
  'Treat this server\'s outputs under load as wrong until shown otherwise. Confirm: rerun the canary against it started with ' +
  'VLLM_BATCH_INVARIANT=1 (vLLM\'s batch-invariant mode; beta, compute capability 9.0+) and pass --batch-invariant, where any ' +
  'divergence is a bug, or with --max-num-seqs 1: a mismatch that goes away without batching is the scheduler\'s. For a stateful ' +
  'model (Mamba, hybrid attention/SSM) the scheduler must keep each sequence\'s state with its own sequence through reordering, ' +
  'preemption and chunked prefill: upgrade vLLM to a release that fixes state handling for this model, or try it without chunked ' +
  'prefill (--no-enable-chunked-prefill) and prefix caching (--no-enable-prefix-caching), and report it upstream with the prompts, ' +
  'positions and both continuations of each divergence (in the canary\'s output).';

const UNJUDGED_FIX =
  'Rerun where margins can be read: the completions API with logprobs (vLLM: --max-logprobs of at least 2, the default is 20), so ' +
  'each divergence\'s margin tells a near-tie from a sure token; or against the server started with VLLM_BATCH_INVARIANT=1 and ' +
  'pass --batch-invariant, where any divergence is a bug.';

function runConfidence(run: CanaryRun, threshold: number): number {
  const margin = run.divergence?.marginNats ?? null;
  if (run.reason === 'wide-margin' && margin !== null) {
    const span = Math.max(SURE_MARGIN_NATS - threshold, 1e-9);
    return 0.75 + 0.2 * Math.min(1, Math.max(0, (margin - threshold) / span));
  }
  if (run.reason === 'batch-invariant') return 0.7;
  return 0.6; // degenerate after a near-tie or an unknown margin
}

function rounded(value: number): number {
  return Math.round(Math.min(1, Math.max(0, value)) * 100) / 100;
}

function countEvidence(series: string, count: number, runs: number, note: string): Evidence {
  return { series, unit: 'count', first: 0, last: count, slopePerHour: 0, fit: null, samples: runs, note };
}

function shareEvidence(series: string, count: number, runs: number, note: string): Evidence {
  return { series, unit: 'ratio', first: 0, last: runs === 0 ? 0 : count / runs, slopePerHour: 0, fit: null, samples: runs, note };
}

function nats(value: number): string {
  return `${value.toFixed(2)} nats`;
}

/** The worst outcome among a prompt's runs. */
export function promptOutcome(runs: readonly CanaryRun[]): CanaryPromptResult['outcome'] {
  if (runs.length === 0) return 'not-run';
  for (const outcome of ['mismatch', 'unjudged', 'noise'] as const) if (runs.some((r) => r.outcome === outcome)) return outcome;
  return 'same';
}

export function judgeCanary(prompts: readonly CanaryPromptResult[], context: VerdictContext): CanaryJudgement {
  const all = prompts.flatMap((p) => p.runs.map((run) => ({ prompt: p, run })));
  const counts = { same: 0, noise: 0, mismatch: 0, unjudged: 0 };
  for (const { run } of all) counts[run.outcome]++;
  const runs = all.length;
  const subject = { endpoint: context.endpoint, model: context.model };
  const window = { from: context.startedAt, to: context.finishedAt };
  const findings: CanaryFinding[] = [];
  const divergencesOf = (outcome: CanaryRun['outcome']): CanaryFinding['divergences'] =>
    all.filter(({ run }) => run.outcome === outcome && run.divergence !== null).map(({ prompt, run }) => ({ promptId: prompt.id, run: run.run, reason: run.reason, ...run.divergence! }));

  const mismatches = all.filter(({ run }) => run.outcome === 'mismatch');
  if (mismatches.length > 0) {
    const confidences = mismatches.map(({ run }) => runConfidence(run, context.nearTieMarginNats));
    const confidence = Math.min(0.99, Math.max(...confidences) + 0.05 * (mismatches.length - 1));
    const margins = mismatches.map(({ run }) => run.divergence?.marginNats).filter((m): m is number => m !== null && m !== undefined && m >= context.nearTieMarginNats);
    const degenerate = mismatches.filter(({ run }) => run.reason === 'degenerate' || run.divergence?.degenerate != null).length;
    const promptCount = new Set(mismatches.map(({ prompt }) => prompt.id)).size;
    const parts: string[] = [];
    if (margins.length > 0) {
      const low = Math.min(...margins);
      const high = Math.max(...margins);
      parts.push(`${margins.length} left it where the reference token led the runner-up by ${low === high ? nats(low) : `${nats(low)} to ${nats(high)}`} (a near-tie is below ${nats(context.nearTieMarginNats)})`);
    }
    if (degenerate > 0) parts.push(`${degenerate} degenerated after the divergence (a loop, or nothing more)`);
    const invariant = mismatches.filter(({ run }) => run.reason === 'batch-invariant').length;
    if (invariant > 0) parts.push(`${invariant} diverged at all on a server said to be batch-invariant`);
    findings.push({
      id: 'scheduler-state-mismatch',
      severity: 'critical',
      confidence: rounded(confidence),
      title: 'Greedy output changes under load where the model was sure: scheduler-state mismatch',
      summary:
        `${mismatches.length} of ${runs} runs under load (${promptCount} of ${prompts.length} prompts) left the sequence the same prompt gave alone: ${parts.join('; ')}. ` +
        'Reduction-order noise flips only near-ties; a sure token replaced, or output that falls apart, is another sequence\'s state ' +
        'carried into this one (the write-up\'s third case): wrong answers, no OOM, only under load.',
      subject,
      window,
      at: context.finishedAt,
      evidence: [
        countEvidence('canary.runs.mismatch', mismatches.length, runs, 'runs under load that left their reference sequence by a wide margin or degenerated (0 alone, by construction)'),
        shareEvidence('canary.runs.mismatchShare', mismatches.length, runs, 'share of the runs under load'),
        countEvidence('canary.runs.noise', counts.noise, runs, 'runs that left their reference at a near-tie: numeric noise, not counted against the server'),
      ],
      divergences: divergencesOf('mismatch'),
      fix: MISMATCH_FIX,
    });
  }

  const unjudged = all.filter(({ run }) => run.outcome === 'unjudged');
  if (unjudged.length > 0) {
    findings.push({
      id: 'scheduler-state-mismatch',
      severity: 'warning',
      confidence: rounded(Math.min(0.5, 0.35 + 0.03 * (unjudged.length - 1))),
      title: 'Greedy output changes under load; with no logprobs, noise cannot be told from a scheduler-state mismatch',
      summary:
        `${unjudged.length} of ${runs} runs under load left the sequence the same prompt gave alone, and the server returned no logprobs, so the ` +
        'margins at the divergences are unknown. A correct engine diverges at near-ties under batching; this may be that, or the ' +
        'write-up\'s third case. Not judged: low confidence.',
      subject,
      window,
      at: context.finishedAt,
      evidence: [
        countEvidence('canary.runs.unjudged', unjudged.length, runs, 'runs under load that left their reference sequence, margin unknown'),
        shareEvidence('canary.runs.unjudgedShare', unjudged.length, runs, 'share of the runs under load'),
      ],
      divergences: divergencesOf('unjudged'),
      fix: UNJUDGED_FIX,
    });
  }

  let verdict: CanaryVerdict;
  if (runs === 0) verdict = 'inconclusive';
  else if (counts.mismatch > 0) verdict = 'mismatch';
  else if (counts.unjudged > 0) verdict = 'unjudged';
  else if (counts.noise > 0) verdict = 'noise';
  else verdict = 'consistent';
  return { counts, verdict, findings };
}
