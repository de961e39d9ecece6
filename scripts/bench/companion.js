#!/usr/bin/env node
// Benchmark part "companion": one write of the Python companion's allocator file (8 devices,
// scripts/bench/companion_write_bench.py) against a plain write of the same document, on this machine's
// temporary folder and on tmpfs (/dev/shm) where there is one. The write includes the host part
// (glibc malloc and Python figures); the malloc read's own cost and the whole host part's are
// reported beside it (mallocReadMicros is null, with the reason, without mallinfo2). Results as
// JSON (--json FILE).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { emitResults, machineFacts, median, percentile, python, root } from './machine.js';

const DEVICES = 8;
const WRITES = 3000;

function filesystemOf(folder) {
  const df = spawnSync('df', ['--output=fstype', folder], { encoding: 'utf8' });
  return df.status === 0 ? df.stdout.trim().split('\n').pop().trim() : 'unknown filesystem';
}

const folders = [];
for (const parent of [os.tmpdir(), '/dev/shm']) {
  if (!existsSync(parent)) continue;
  const run = spawnSync(python, [path.join(root, 'scripts/bench/companion_write_bench.py'), String(DEVICES), String(WRITES), parent], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`companion bench failed: ${run.stderr}`);
  const { writeMicros, floorMicros, bytes, mallocReadMicros, hostReadMicros, mallocUnknownBecause, arenaCount } = JSON.parse(run.stdout);
  folders.push({
    folder: parent,
    filesystem: filesystemOf(parent),
    writeMicrosMedian: median(writeMicros),
    writeMicrosP99: percentile(writeMicros, 0.99),
    floorMicrosMedian: median(floorMicros),
    mallocReadMicrosMedian: mallocReadMicros === null ? null : median(mallocReadMicros),
    mallocReadMicrosP99: mallocReadMicros === null ? null : percentile(mallocReadMicros, 0.99),
    mallocUnknownBecause,
    arenaCount,
    hostReadMicrosMedian: median(hostReadMicros),
    hostReadMicrosP99: percentile(hostReadMicros, 0.99),
    bytes,
  });
}

emitResults({ machine: machineFacts(), devices: DEVICES, writes: WRITES, intervalSeconds: 2, folders });
