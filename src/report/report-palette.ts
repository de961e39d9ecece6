/**
 * The report's colours: one fixed colour per memory layer (the same in every chart and legend),
 * a categorical palette for processes, and the severities. Layer colours come from the Okabe-Ito
 * palette and process colours from Paul Tol's "muted" one, both chosen to stay distinguishable
 * for colour-blind readers; lines also differ by dash pattern so colour is never the only cue.
 */
export const LAYER_COLORS = {
  allocated: '#0072B2',
  privatePools: '#CC79A7',
  allocatorCached: '#56B4E9',
  outsideAllocator: '#E69F00',
  context: '#B8B8B8',
  driverOnly: '#7A7A7A',
  driverTotal: '#1B1F24',
  unattributed: '#D9D9D9',
  deviceTotal: '#1B1F24',
  deviceUsed: '#57606A',
  hostRss: '#57606A',
  hostAnon: '#D55E00',
  hostFile: '#009E73',
  hostShmem: '#882255',
  hostDriverMapped: '#1B1F24',
  hostMalloc: '#0072B2',
  hostOutsideMalloc: '#E69F00',
} as const;

const PROCESS_COLORS = ['#44AA99', '#DDCC77', '#332288', '#CC6677', '#88CCEE', '#117733', '#AA4499', '#999933', '#882255'];

export function processColor(position: number): string {
  return PROCESS_COLORS[position % PROCESS_COLORS.length]!;
}

export const DASH = {
  solid: '',
  dashed: '6 3',
  dotted: '2 3',
  dashDot: '8 3 2 3',
  long: '12 4',
} as const;

export const SEVERITY_COLORS = {
  critical: '#B3261E',
  warning: '#8A5A00',
  info: '#1F5FA8',
} as const;

/** The request phases of the load band: warm for prefill, cool for decode, pale for idle. */
export const PHASE_COLORS = {
  'prefill-heavy': '#CC6677',
  decode: '#44AA99',
  idle: '#E4E4E4',
} as const;
