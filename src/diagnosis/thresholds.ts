/**
 * The limits the rules judge a window by. Growth is counted in bytes rather than percent because
 * the incidents are about absolute headroom: 256 MiB is the smallest change the postmortems'
 * alerts could act on and well above the driver's own jitter between samples.
 */
const MiB = 2 ** 20;

export const THRESHOLDS = {
  /** A series needs this many known readings before any rule looks at it. */
  minSamples: 6,
  /** Changes between two readings smaller than this are jitter. */
  noiseBytes: 8 * MiB,
  /** The smallest growth (or step) that makes a finding. */
  growthBytes: 256 * MiB,
  /** R² a growing series must reach to count as a trend. */
  fit: 0.6,
  /** A leak grows steadily: a better fit, and almost no falls. */
  leakFit: 0.8,
  leakMonotonic: 0.8,
  /** Growth in fewer separate rises than this is a step, not creep. */
  minRises: 3,
  /** "Few requests": mean requests running at or under this. */
  lowLoadRunning: 2,
  /** A series counts as flat against another's growth when it moves less than this share of it. */
  flatShare: 0.25,
} as const;
