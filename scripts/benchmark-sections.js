// The benchmark scripts' shared writer: replaces their own marked sections of BENCHMARKS.md
// (<!-- bench:NAME:start --> ... <!-- bench:NAME:end -->), appending a section not there yet, and
// leaves the rest of the file (other scripts' sections, hand-written ones) as it is.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeBenchmarkSections(root, sections) {
  const file = path.join(root, 'BENCHMARKS.md');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nFigures written by `npm run bench`; each run rewrites its own section.\n';
  for (const [name, body] of Object.entries(sections)) {
    const pattern = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*<!-- bench:${name}:end -->`);
    text = pattern.test(text) ? text.replace(pattern, body) : `${text.trimEnd()}\n\n${body}\n`;
  }
  writeFileSync(file, text);
  console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
}
