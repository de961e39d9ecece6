/**
 * Every limit the rules judge by, in one table, each with its reason (docs/diagnosis.md prints
 * them). None counts readings: a limit in time or in noise means the same at 5 s and at 60 s.
 * The shape method's own constants (buckets, pieces, penalty) are in series-shape.ts.
 * Growth is judged against what it runs on (the GPU or MIG slice, the process's own resident
 * memory); bytes appear only as floors under which nothing is a change at all.
 */
const MiB = 2 ** 20;
const MINUTE = 60_000;

export const THRESHOLDS = {
  /** Fewer readings than this make no series: too little to tell noise from anything. */
  minSamples: 6,
  /** The smallest change of device or host memory that can be a finding: drivers and allocators
   * move by a few MiB on their own, and an operator cannot act on less. */
  floorBytes: 32 * MiB,
  /** A bucket's noise is never taken as less than this: byte figures are whole MiB at best. */
  noiseFloorBytes: 1 * MiB,
  /** A change is one when it exceeds this many times the series' own noise (six standard
   * deviations: about one false call in a billion for Gaussian noise, and room for the fat tails
   * of real jitter). */
  significance: 6,
  /** A piece of the curve rises or falls, a jump between pieces counts, and an end is a new high,
   * beyond this many standard deviations of one bucket (a line through several buckets averages
   * their noise down, so two is well clear of it; a piece shorter than `pauseMs` must fall by
   * `significance` to count as falling). */
  levelSigmas: 2,
  /** Device growth that matters: this share of the GPU or MIG slice the process runs on ... */
  deviceShare: 0.01,
  /** ... or growth at which the device's free memory runs out within this time. */
  timeToFullMs: 7 * 24 * 60 * MINUTE,
  /** Device growth is critical when the device's free memory runs out within this time at its
   * rate: before the next working day, so a night shift acts on it. */
  criticalWithinMs: 24 * 60 * MINUTE,
  /** Host memory growth that matters: this share of the series' level before it rose (the heap, the RSS). */
  hostShare: 0.05,
  /** Growth has to go on this long to be called growth rather than a step or a burst. */
  minGrowthMs: 30 * MINUTE,
  /** A flat stretch shorter than this inside growth, or at its end, does not end it: growth in
   * captures comes in steps minutes apart, and the last few minutes cannot tell a plateau. */
  pauseMs: 15 * MINUTE,
  /** A series counts as flat against another's growth when it moves less than this share of it. */
  flatShare: 0.25,
  /** A part of a sum "carries" the sum's growth when it has at least this share of it. */
  carryShare: 0.5,
  /** A step is a rise completed within this time (or two sampling intervals, if longer): a
   * library initialising takes seconds to a minute. */
  stepWithinMs: 2 * MINUTE,
  /** The series must be flat this long on each side of a step. */
  stepFlatMs: 10 * MINUTE,
  /** A process first seen this long (or two sampling intervals) after the window began started
   * inside it: the recorder's own first samples can miss it by a scrape. */
  startedInWindowMs: 1 * MINUTE,
  /** A process's settled level is its median driver figure over this part of its life: after
   * start-up and graph capture, before a day's slow growth moves it ... */
  settledFromMs: 30 * MINUTE,
  settledToMs: 90 * MINUTE,
  /** After a process's first reading in the window, its start-up ends when the driver figure
   * first reaches this share of its later typical level ... */
  startupLevelShare: 0.95,
  /** ... plus this settling time (vLLM's graph capture and first cache warm-up). */
  startupSettleMs: 5 * MINUTE,
  /** A process present from the first sample counts as starting up when its driver figure rose
   * by this share of its later level within the first `startupFastMs` (a recording begun mid-start). */
  startupFastShare: 0.3,
  startupFastMs: 15 * MINUTE,
  /** "Few requests": mean requests running at or under this. */
  lowLoadRunning: 2,
  /** A prefill comes "after idle" when none came for this long before it: far longer than a
   * request takes, so the cache the last ones left has sat unused (the write-up's 3 AM pattern). */
  burstAfterIdleMs: 5 * MINUTE,
  /** Fragmentation stays: the trapped memory at the end is at least this share of its peak. */
  fragmentationKeptShare: 0.75,
  /** A layer counts as measured over a window when it is known for at least this share of it. */
  knownShare: 0.5,
  /** What grew before an OOM kill is looked for in this much of the process's life before it. */
  beforeKillMs: 60 * MINUTE,
  /** Idle, by the write-up's alert: fewer requests than this finishing per second ... */
  idleRequestsPerSecond: 0.01,
  /** ... over this trailing window (the alert's [15m]) ... */
  idleWindowMs: 15 * MINUTE,
  /** ... and fewer requests than this in flight on average over it (long generations that finish
   * nothing for minutes are not idle). Without vLLM's counters: no request running or waiting. */
  idleMeanRunning: 1,
  /** Growth is "while idle" when at least this share of it came while idle. */
  idleShare: 0.5,
  /** ... and it rose while idle in at least this much idle time. */
  minIdleRisingMs: 30 * MINUTE,
} as const;
