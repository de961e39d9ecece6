/**
 * VllmLogFollower: a vLLM log read again and again parses only what was appended, and every read
 * equals parseVllmLog of the whole file as it is then, through unfinished lines, rotation,
 * truncation, rewrites in place, deletion and concurrent reads.
 */
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { MAX_LOG_LINE_BYTES, parseVllmLog, VllmLogFollower } from '../../src/sources/vllm-log.js';

const GiB = 2 ** 30;
const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-log-follower-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let files = 0;
const fresh = (content: string) => {
  const file = path.join(work, `vllm-${files++}.log`);
  writeFileSync(file, content);
  return file;
};

const START = 'INFO 11-26 03:00:01 [gpu_model_runner.py:1234] Model loading took 14.99 GiB and 6.2 seconds\n';
const KV = (gib: string) => `INFO 11-26 03:00:09 [gpu_worker.py:298] Available KV cache memory: ${gib} GiB\n`;
const NOISE = 'INFO 11-26 03:10:00 [loggers.py:123] Engine 000: Avg prompt throughput: 812.4 tokens/s, Running: 18 reqs\n';

describe('VllmLogFollower', () => {
  it('reads the whole file first, then only the bytes appended', async () => {
    const file = fresh(START + NOISE.repeat(1000));
    const follower = new VllmLogFollower(file);
    const first = await follower.read();
    expect(first.untagged.weightsBytes).toBe(Math.round(14.99 * GiB));
    const size = Buffer.byteLength(START + NOISE.repeat(1000));
    expect(follower.bytesRead).toBe(size);
    appendFileSync(file, KV('30.15'));
    const second = await follower.read();
    expect(follower.bytesRead).toBe(size + Buffer.byteLength(KV('30.15')));
    expect(second).toEqual(parseVllmLog(START + NOISE.repeat(1000) + KV('30.15')));
    expect(second.untagged.kvCacheBytes).toBe(Math.round(30.15 * GiB));
    await follower.read();
    expect(follower.bytesRead).toBe(size + Buffer.byteLength(KV('30.15')));
  });

  it('a line not yet ended counts in each read and only once when it ends', async () => {
    const file = fresh(START);
    const follower = new VllmLogFollower(file);
    appendFileSync(file, KV('30.15').trimEnd());
    expect(await follower.read()).toEqual(parseVllmLog(START + KV('30.15').trimEnd()));
    appendFileSync(file, '\n');
    const ended = await follower.read();
    expect(ended.matchedLines).toBe(2);
    expect(ended).toEqual(parseVllmLog(START + KV('30.15')));
    // Cut inside the figure: "30.1" then "5 GiB": the figure is the whole line's.
    const cut = fresh(START);
    const again = new VllmLogFollower(cut);
    appendFileSync(cut, KV('30.15').slice(0, -7));
    expect((await again.read()).untagged.kvCacheBytes).toBeNull();
    appendFileSync(cut, KV('30.15').slice(-7));
    expect((await again.read()).untagged.kvCacheBytes).toBe(Math.round(30.15 * GiB));
  });

  it('a rotated log (another file at the path) is read from its start', async () => {
    const file = fresh(START + KV('30.15'));
    const follower = new VllmLogFollower(file);
    await follower.read();
    renameSync(file, `${file}.1`);
    writeFileSync(file, KV('20.00') + NOISE.repeat(50));
    expect(await follower.read()).toEqual(parseVllmLog(KV('20.00') + NOISE.repeat(50)));
  });

  it('a truncated log (copytruncate), even once it has grown past the old length, is read from its start', async () => {
    const file = fresh(START + KV('30.15'));
    const follower = new VllmLogFollower(file);
    await follower.read();
    truncateSync(file, 0);
    expect(await follower.read()).toEqual(parseVllmLog(''));
    const follower2 = new VllmLogFollower(fresh(START + KV('30.15')));
    await follower2.read();
    truncateSync(follower2.file, 0);
    appendFileSync(follower2.file, NOISE.repeat(3) + KV('20.00'));
    expect(await follower2.read()).toEqual(parseVllmLog(NOISE.repeat(3) + KV('20.00')));
  });

  it('a rotated log that begins and ends like the old one at the old length is still another file', async () => {
    const file = fresh(START + KV('30.15') + NOISE);
    const follower = new VllmLogFollower(file);
    await follower.read();
    renameSync(file, `${file}.1`);
    writeFileSync(file, START + KV('20.00') + NOISE + NOISE);
    expect(await follower.read()).toEqual(parseVllmLog(START + KV('20.00') + NOISE + NOISE));
  });

  it('a truncated log regrown with the same last line at the old length is read from its start', async () => {
    const file = fresh(START + KV('30.15') + NOISE);
    const follower = new VllmLogFollower(file);
    await follower.read();
    truncateSync(file, 0);
    // A restarted server's log: its first line has another time (what the follower compares).
    const regrown = START.replace('03:00:01', '04:00:01').replace('14.99', '12.50') + KV('20.00') + NOISE + KV('21.00');
    appendFileSync(file, regrown);
    expect(await follower.read()).toEqual(parseVllmLog(regrown));
  });

  it('a log rewritten in place, as long, is read from its start', async () => {
    const file = fresh(START + KV('30.15'));
    const follower = new VllmLogFollower(file);
    await follower.read();
    writeFileSync(file, START + KV('20.00')); // same inode, same length, another figure
    expect((await follower.read()).untagged.kvCacheBytes).toBe(Math.round(20 * GiB));
  });

  it('a deleted log rejects, and is read whole once it is back', async () => {
    const file = fresh(START);
    const follower = new VllmLogFollower(file);
    await follower.read();
    rmSync(file);
    await expect(follower.read()).rejects.toMatchObject({ code: 'ENOENT' });
    writeFileSync(file, KV('20.00'));
    expect(await follower.read()).toEqual(parseVllmLog(KV('20.00')));
  });

  it('reads at the same time run one after the other and agree', async () => {
    const file = fresh(START + NOISE.repeat(200) + KV('30.15'));
    const follower = new VllmLogFollower(file, { chunkBytes: 512 });
    const [a, b, c] = await Promise.all([follower.read(), follower.read(), follower.read()]);
    const expected = parseVllmLog(START + NOISE.repeat(200) + KV('30.15'));
    expect([a, b, c]).toEqual([expected, expected, expected]);
    expect(follower.bytesRead).toBe(Buffer.byteLength(START + NOISE.repeat(200) + KV('30.15')));
    // Each result is the caller's: changing one leaves the next read as it was.
    a.untagged.kvCacheBytes = 1;
    a.byPid.set(1, a.untagged);
    expect(await follower.read()).toEqual(expected);
  });

  it('a line longer than the limit, spread over reads, is skipped and the next one read', async () => {
    const file = fresh(START);
    const follower = new VllmLogFollower(file, { chunkBytes: 4096 });
    appendFileSync(file, `Available KV cache memory: 9.00 GiB ${'x'.repeat(MAX_LOG_LINE_BYTES)}`);
    expect((await follower.read()).untagged.kvCacheBytes).toBeNull();
    appendFileSync(file, `${'y'.repeat(1000)}\n${KV('30.15')}`);
    const read = await follower.read();
    expect(read.untagged.kvCacheBytes).toBe(Math.round(30.15 * GiB));
    expect(read.matchedLines).toBe(2);
  });
});
