/*
 * Reads the XML valgrind memcheck wrote for scripts/hardening/valgrind-samples.js and decides the run: Node
 * and V8 are not built for valgrind and report their own noise, so an error counts only when one
 * of its stack frames lies in a gpu-layers binary (the addon or a mock library). Every error is
 * still counted by kind and printed in the totals, so nothing is hidden, only not blamed.
 *
 *   node scripts/hardening/valgrind-summary.js <memcheck.xml>
 *
 * Exits 1 on any attributable error other than a "possibly lost" leak (reported, not failed: a
 * pointer into the middle of a block is how std::string and V8 keep memory, so it is not proof of
 * a leak), and exits 2 when the XML is missing or valgrind did not finish.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const OURS = /(^|\/)(gpu_layers\.node|libnvidia-ml\.so\.1|libcuda\.so\.1)$/;

const file = process.argv[2];
let xml;
try {
  xml = readFileSync(file, 'utf8');
} catch (error) {
  console.error(`valgrind-summary: cannot read ${file}: ${error.message}`);
  process.exit(2);
}
if (!/<state>FINISHED<\/state>/.test(xml)) {
  console.error(`valgrind-summary: ${file} has no FINISHED status: valgrind did not run to the end`);
  process.exit(2);
}

const unescape = (text) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
const tag = (text, name) => {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(text);
  return match === null ? undefined : unescape(match[1].trim());
};

// The XML lists each distinct error (same kind and stack) once; <errorcounts> says how often each
// occurred. Leaks are listed once per loss record and not counted there.
const errorcounts = tag(xml, 'errorcounts') ?? '';
const occurrences = new Map([...errorcounts.matchAll(/<count>(\d+)<\/count>\s*<unique>([^<]+)<\/unique>/g)].map(([, n, id]) => [id, Number(n)]));
const totals = new Map();
const attributable = [];
for (const [block] of xml.matchAll(/<error>[\s\S]*?<\/error>/g)) {
  const kind = tag(block, 'kind') ?? 'unknown';
  const total = totals.get(kind) ?? { distinct: 0, times: 0 };
  total.distinct += 1;
  total.times += occurrences.get(tag(block, 'unique') ?? '') ?? 1;
  totals.set(kind, total);
  // The error's own stack, then (for heap errors) where the block was allocated or freed.
  const stacks = [...block.matchAll(/<stack>([\s\S]*?)<\/stack>/g)].map(([, stack]) =>
    [...stack.matchAll(/<frame>([\s\S]*?)<\/frame>/g)].map(([, frame]) => ({
      obj: tag(frame, 'obj') ?? '',
      fn: tag(frame, 'fn') ?? '??',
      where: tag(frame, 'file') !== undefined ? `${tag(frame, 'file')}:${tag(frame, 'line')}` : '',
    })),
  );
  if (!stacks.flat().some((frame) => OURS.test(frame.obj))) continue;
  const what = tag(block, 'what') ?? tag(tag(block, 'xwhat') ?? '', 'text') ?? kind;
  const bytes = Number(tag(tag(block, 'xwhat') ?? '', 'leakedbytes') ?? 0);
  attributable.push({ kind, what, bytes, stacks, auxwhat: tag(block, 'auxwhat') });
}
const suppressed = [...xml.matchAll(/<pair>\s*<count>(\d+)<\/count>\s*<name>([^<]*)<\/name>/g)].map(([, count, name]) => `${name} ${count}`);

const isPossibleLeak = (e) => e.kind === 'Leak_PossiblyLost';
const failing = attributable.filter((e) => !isPossibleLeak(e));
const leaks = attributable.filter((e) => e.kind === 'Leak_DefinitelyLost' || e.kind === 'Leak_IndirectlyLost');
const possible = attributable.filter(isPossibleLeak);

const all = [...totals.values()].reduce((a, b) => a + b.distinct, 0);
const byKind = [...totals].map(([kind, t]) => `${kind} ${t.distinct}${t.times !== t.distinct ? ` (${t.times} times)` : ''}`).join(', ') || 'none';
console.log(`valgrind: ${all} distinct errors reported in all (${byKind}); suppressed as Node/V8 (times): ${suppressed.join(', ') || 'none'}`);
console.log(
  `valgrind: attributable to gpu-layers binaries: ${failing.length - leaks.length} memory errors, ` +
    `${leaks.length} definite/indirect leaks (${leaks.reduce((a, e) => a + e.bytes, 0)} bytes), ` +
    `${possible.length} possible leaks (${possible.reduce((a, e) => a + e.bytes, 0)} bytes, not failed)`,
);
const SHOWN = 10;
for (const error of attributable.slice(0, SHOWN)) {
  console.log(`\n  ${error.kind}: ${error.what}`);
  error.stacks.forEach((frames, i) => {
    if (i > 0) console.log(`   ${error.auxwhat ?? 'and'}:`);
    for (const frame of frames.slice(0, 12)) {
      console.log(`    ${frame.fn}  (${path.basename(frame.obj)}${frame.where ? ` ${frame.where}` : ''})`);
    }
  });
}
if (attributable.length > SHOWN) console.log(`\n  ... and ${attributable.length - SHOWN} more (all in the XML)`);
process.exitCode = failing.length > 0 ? 1 : 0;
