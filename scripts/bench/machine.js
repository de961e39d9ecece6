// What every benchmark part records about where it ran, and the order statistics they share.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export function machineFacts() {
  const pythonVersion = spawnSync(python, ['--version'], { encoding: 'utf8' });
  return {
    date: new Date().toISOString().slice(0, 10),
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    python: pythonVersion.status === 0 ? pythonVersion.stdout.trim().replace(/^Python /, '') : null,
  };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** The value after `--flag`, or the fallback. */
export function flagValue(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}

/** Writes a part's results where `--json FILE` says (the orchestrator), else prints them. */
export function emitResults(results) {
  const file = flagValue('--json', null);
  const text = `${JSON.stringify(results, null, 2)}\n`;
  if (file === null) process.stdout.write(text);
  else writeFileSync(file, text);
}

/**
 * The soaks' memory figures at their start and end readings (after a forced full GC), as the
 * flat fields of their results: RSS, the young generation's resident pages, RSS outside it, the
 * V8 heap and external memory, each with its growth where the report uses it.
 */
export function memoryGrowthFields(start, end) {
  return {
    rssStartBytes: start.rss,
    rssEndBytes: end.rss,
    rssGrowthBytes: end.rss - start.rss,
    youngGenerationStartBytes: start.young,
    youngGenerationEndBytes: end.young,
    rssOutsideYoungGenerationStartBytes: start.settled,
    rssOutsideYoungGenerationEndBytes: end.settled,
    rssOutsideYoungGenerationGrowthBytes: end.settled - start.settled,
    heapUsedStartBytes: start.heapUsed,
    heapUsedEndBytes: end.heapUsed,
    heapUsedGrowthBytes: end.heapUsed - start.heapUsed,
    heapTotalStartBytes: start.heapTotal,
    heapTotalEndBytes: end.heapTotal,
    externalStartBytes: start.external,
    externalEndBytes: end.external,
    externalGrowthBytes: end.external - start.external,
  };
}
