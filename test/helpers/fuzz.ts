/**
 * What the fuzz files share: the run counts (GPU_LAYERS_FUZZ_RUNS, as the snapshot fuzz reads
 * it), mutations of bytes and of JSON documents, the hostile values every reader of outside input
 * meets sooner or later, and a clock for "returns within a bound". Not a test file itself.
 *
 * CI runs each property its small default count; GPU_LAYERS_FUZZ_RUNS=N runs every property N
 * times with no time cut (GPU_LAYERS_FUZZ_SEED replays a failure fast-check reported).
 */
import fc from 'fast-check';

const envRuns = process.env.GPU_LAYERS_FUZZ_RUNS;
const envSeed = process.env.GPU_LAYERS_FUZZ_SEED;

/** True for a long local run (GPU_LAYERS_FUZZ_RUNS set). */
export const LONG_RUN = envRuns !== undefined && envRuns !== '';

/** fast-check parameters: the CI default count, or GPU_LAYERS_FUZZ_RUNS. */
export function fuzzParams<T>(ciRuns: number): fc.Parameters<T> {
  return {
    numRuns: LONG_RUN ? Number(envRuns) : ciRuns,
    ...(envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {}),
  };
}

/** The vitest timeout of a fuzz test: generous in CI, none worth the name in a long run. */
export const FUZZ_TIMEOUT_MS = LONG_RUN ? 24 * 3600_000 : 60_000;

/**
 * The CPU time one parser call may take on inputs of up to a few hundred KiB. Linear parsers take
 * milliseconds; the adversarial inputs are sized so that quadratic backtracking takes far longer.
 * CPU time, not wall time: this machine's cores are shared, and a loaded machine must not make a
 * fuzz test fail (nor a slow parser pass).
 */
export const CALL_BOUND_MS = 1_000;

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** The call's value and the CPU milliseconds this process spent on it. */
export function timed<T>(call: () => T): { value: T; cpuMs: number } {
  const start = process.cpuUsage();
  const value = call();
  return { value, cpuMs: cpuMsSince(start) };
}

/**
 * The slowest call of `parse` over every prefix + pump repeated to `length` characters + suffix
 * (the inputs that make a backtracking pattern go quadratic), with the input named; an error
 * thrown by `parse` names its input too.
 */
export function slowestOnPumpedInputs(
  parts: { prefixes: readonly string[]; pumps: readonly string[]; suffixes: readonly string[] },
  length: number,
  parse: (text: string) => void,
): { ms: number; input: string } {
  let slowest = { ms: 0, input: '' };
  for (const prefix of parts.prefixes) {
    for (const pump of parts.pumps) {
      for (const suffix of parts.suffixes) {
        const text = prefix + pump.repeat(Math.ceil(length / pump.length)) + suffix;
        const input = `${JSON.stringify(prefix)} + ${JSON.stringify(pump)} x n + ${JSON.stringify(suffix)}`;
        const { cpuMs } = timed(() => {
          try {
            parse(text);
          } catch (error) {
            throw new Error(`on ${input}: ${(error as Error).message}`);
          }
        });
        if (cpuMs > slowest.ms) slowest = { ms: cpuMs, input };
      }
    }
  }
  return slowest;
}

/**
 * What becomes of one file in a mutated tree on disk: missing (null), empty, or (mostly) the
 * mutated bytes the test supplies (undefined).
 */
export const treeFileCase: fc.Arbitrary<null | Buffer | undefined> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 6, arbitrary: fc.constant(undefined) },
);

export async function timedAsync<T>(call: () => Promise<T>): Promise<{ value: T; cpuMs: number }> {
  const start = process.cpuUsage();
  const value = await call();
  return { value, cpuMs: cpuMsSince(start) };
}

// ---------------------------------------------------------------------------------------------
// Hostile values

/** Number tokens as JSON text: JSON.parse reads 1e309 as Infinity and -0 as -0. */
export const HOSTILE_NUMBER_TOKENS = [
  '1e309',
  '-1e309',
  '-0',
  '0',
  '-1',
  '0.5',
  '1e-400',
  '4.9e-324',
  '1.7976931348623157e308',
  '9007199254740991',
  '9007199254740993',
  '18446744073709551615',
  '1e15',
  '-9007199254740993',
  '9'.repeat(400),
];

/** Whole JSON values that stand where a number, a string or an object was expected. */
export const HOSTILE_JSON_TOKENS = [
  ...HOSTILE_NUMBER_TOKENS,
  'null',
  'true',
  '""',
  '"NaN"',
  '"Infinity"',
  '"1e309"',
  '"\\u0000"',
  '"\\ud800"',
  '"\\ufeff"',
  '[]',
  '{}',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '["__proto__"]',
  `"${'x'.repeat(100_000)}"`,
  `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
  `${'{"a":'.repeat(2_000)}1${'}'.repeat(2_000)}`,
];

/** Keys that are trouble on a plain object or in a lookup table. */
export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', '\u0000', 'a'.repeat(10_000)];

/** Byte sequences a text file can hold: invalid UTF-8, BOMs, NUL, CR, long runs. */
export const HOSTILE_BYTES: Buffer[] = [
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xef, 0xbb, 0xbf]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0x00]),
  Buffer.from('\r\n'),
  Buffer.from('\r'),
  Buffer.from('\n\n\n'),
  Buffer.from('\u2028\u2029'),
  Buffer.from('\u001b[31m'),
  Buffer.alloc(70_000, 0x41),
  Buffer.alloc(20_000, 0x20),
  Buffer.alloc(20_000, 0x39),
];

// ---------------------------------------------------------------------------------------------
// Byte mutations

export type ByteMutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'hostile'; at: number; which: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'cut'; at: number };

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('hostile' as const), at: fc.nat(), which: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);

export function mutateBytes(seed: Buffer, mutations: readonly ByteMutation[]): Buffer {
  let bytes = Buffer.from(seed);
  for (const m of mutations) {
    const at = m.at % Math.max(1, bytes.length);
    if (m.kind === 'set') {
      if (bytes.length > 0) bytes[at] = m.byte;
    } else if (m.kind === 'insert' || m.kind === 'hostile') {
      const insert = m.kind === 'insert' ? Buffer.from(m.bytes) : HOSTILE_BYTES[m.which % HOSTILE_BYTES.length]!;
      bytes = Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
    } else if (m.kind === 'duplicate') {
      bytes = Buffer.concat([bytes.subarray(0, at + m.length), bytes.subarray(at)]);
    } else if (m.kind === 'delete') {
      bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
    } else {
      bytes = bytes.subarray(0, at);
    }
  }
  return bytes;
}

/** Mutated seeds (the usual case), or random bytes with no seed at all. */
export function mutatedOrRandom(seeds: readonly Buffer[], maxMutations = 4): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.nat(), fc.array(byteMutation, { minLength: 1, maxLength: maxMutations })).map(([which, ms]) => mutateBytes(seeds[which % seeds.length]!, ms)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 512 }).map((s) => Buffer.from(s)) },
  );
}

// ---------------------------------------------------------------------------------------------
// JSON document mutations: a tree that can hold duplicate keys and raw number tokens, which
// JSON.stringify cannot write.

type Tree = null | boolean | number | string | Tree[] | { entries: [string, Tree][] } | { raw: string };

function isEntries(node: Tree): node is { entries: [string, Tree][] } {
  return typeof node === 'object' && node !== null && !Array.isArray(node) && 'entries' in node;
}

function toTree(value: unknown): Tree {
  if (Array.isArray(value)) return value.map(toTree);
  if (typeof value === 'object' && value !== null) return { entries: Object.entries(value).map(([k, v]) => [k, toTree(v)]) };
  return value as Tree;
}

function serialize(node: Tree): string {
  if (Array.isArray(node)) return `[${node.map(serialize).join(',')}]`;
  if (isEntries(node)) return `{${node.entries.map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(',')}}`;
  if (typeof node === 'object' && node !== null) return node.raw;
  return JSON.stringify(node);
}

/** Where a node sits: an item of an array, or the value of an object's entry. */
type Slot = { array: Tree[]; index: number } | { object: { entries: [string, Tree][] }; entry: [string, Tree] };

function slots(root: Tree[]): Slot[] {
  const found: Slot[] = [];
  const walk = (node: Tree): void => {
    if (Array.isArray(node)) {
      node.forEach((child, index) => {
        found.push({ array: node, index });
        walk(child);
      });
    } else if (isEntries(node)) {
      for (const entry of node.entries) {
        found.push({ object: node, entry });
        walk(entry[1]);
      }
    }
  };
  walk(root);
  return found;
}

const read = (slot: Slot): Tree => ('array' in slot ? slot.array[slot.index]! : slot.entry[1]);
function write(slot: Slot, value: Tree): void {
  if ('array' in slot) slot.array[slot.index] = value;
  else slot.entry[1] = value;
}

export type JsonMutation =
  | { kind: 'replace'; at: number; token: number }
  | { kind: 'replaceRandom'; at: number; value: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'duplicateKey'; at: number; token: number }
  | { kind: 'addKey'; at: number; key: number; token: number }
  | { kind: 'nest'; at: number; depth: number };

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), token: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replaceRandom' as const), at: fc.nat(), value: fc.jsonValue({ maxDepth: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicateKey' as const), at: fc.nat(), token: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('addKey' as const), at: fc.nat(), key: fc.nat(), token: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nest' as const), at: fc.nat(), depth: fc.integer({ min: 1, max: 3000 }) }) },
);

/**
 * JSON text of `document` with each mutation applied at a node picked by its index: a value
 * replaced by a hostile token or a random value, an entry or item deleted, a key repeated, a
 * hostile key added, a value buried under deep nesting.
 */
export function mutateJson(document: unknown, mutations: readonly JsonMutation[]): string {
  const root: Tree[] = [toTree(document)];
  for (const m of mutations) {
    const all = slots(root);
    const slot = all[m.at % all.length]!;
    const node = read(slot);
    const token: Tree = { raw: HOSTILE_JSON_TOKENS[('token' in m ? m.token : 0) % HOSTILE_JSON_TOKENS.length]! };
    if (m.kind === 'replace') write(slot, token);
    else if (m.kind === 'replaceRandom') write(slot, toTree(m.value));
    else if (m.kind === 'nest') write(slot, { raw: `${'['.repeat(m.depth)}${serialize(node)}${']'.repeat(m.depth)}` });
    else if (m.kind === 'delete') {
      if ('array' in slot) {
        if (slot.array !== root) slot.array.splice(slot.index, 1);
      } else {
        slot.object.entries.splice(slot.object.entries.indexOf(slot.entry), 1);
      }
    } else if (isEntries(node)) {
      const keys = node.entries.map(([k]) => k);
      if (m.kind === 'duplicateKey' && keys.length > 0) node.entries.push([keys[m.at % keys.length]!, token]);
      if (m.kind === 'addKey') node.entries.push([HOSTILE_KEYS[m.key % HOSTILE_KEYS.length]!, token]);
    }
  }
  return serialize(root[0]!);
}

/** A document, mutated as JSON and then, sometimes, as bytes (a torn or damaged write). */
export function mutatedJsonText(documents: readonly unknown[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat(), fc.array(jsonMutation, { minLength: 1, maxLength: 4 }), fc.array(byteMutation, { maxLength: 2 }))
    .map(([which, jsonMutations, byteMutations]) => {
      const text = mutateJson(documents[which % documents.length], jsonMutations);
      return byteMutations.length === 0 ? text : mutateBytes(Buffer.from(text), byteMutations).toString('utf8');
    });
}

/** The prototype of plain objects must come out of any parse untouched. */
export function assertNoPollution(): void {
  if ((Object.prototype as Record<string, unknown>).polluted !== undefined || ({} as Record<string, unknown>).polluted !== undefined) {
    throw new Error('Object.prototype was polluted');
  }
}
