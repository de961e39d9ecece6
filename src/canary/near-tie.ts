/**
 * Where numeric noise ends: the logprob margin, at the first diverging position, below which a
 * divergence under load is what a correct engine does and above which it is not.
 *
 * The margin is the reference token's logprob minus the runner-up's at that position, both from
 * the reference run's top_logprobs: the softmax's normaliser cancels, so it is the logit gap
 * itself, in nats.
 *
 * Why correct engines diverge at all: a batch of a different shape sums the same products in a
 * different order (matmul split-K tiles, attention and RMSNorm reductions), and floating-point
 * addition is not associative (Thinking Machines, "Defeating Nondeterminism in LLM Inference",
 * 2025; vLLM #5898, #9567). How far that moves a logit:
 * - bf16 keeps 8 significant bits, so a logit is rounded to steps of 1/128 of the power of two
 *   below it: 0.125 nats for logits in [16, 32), 0.25 in [32, 64), where the top logits of large
 *   models sit. A flip between two tokens one or two such steps apart is a rounding flip;
 *   vllm-rbln (PR #741) sets its near-tie tolerance to 0.3 for exactly this (one ULP is 0.25 at
 *   [32, 64)), "far below the >=~1 nat gap a real verify-path bug would show".
 * - Measured: vLLM's own batch-invariance test (PR #32480, bs=1 against bs=N) shows the same
 *   token's logprob moving by up to 0.067 nats, most by 1e-5 or less; in fp32, logits differ by
 *   up to 5e-4 between batch sizes (transformers #2401, pythia-160m). Batch-induced flips come
 *   on 0.3-1.3% of bf16 decode steps, and low top-1/top-2 logit margins carry the flip risk
 *   (MarginGate, arXiv 2605.30218). fp16 has three more significant bits than bf16, so its
 *   steps are 8 times finer.
 *
 * 0.5 nats is 4 bf16 steps at [16, 32) and 2 at [32, 64), more than 7 times the largest shift
 * vLLM measured, and half the ~1 nat where a genuine bug starts: a reference token that led by
 * more than this (a probability ratio above e^0.5 = 1.65 over the runner-up) did not lose to
 * rounding. With VLLM_BATCH_INVARIANT=1 (vLLM #27433) there is no rounding difference to forgive:
 * every divergence is a bug, whatever its margin (`batchInvariant`).
 */
export const NEAR_TIE_MARGIN_NATS = 0.5;

/** True below the threshold: a change of token there is numeric noise; at or above it, the reference token led by too much to lose to rounding. */
export function isNearTie(marginNats: number, thresholdNats: number = NEAR_TIE_MARGIN_NATS): boolean {
  return marginNats < thresholdNats;
}
