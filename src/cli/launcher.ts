/**
 * The `gpu-layers` executable (dist/cli/gpu-layers.cjs): loads the CLI bundle (cli-main.cjs) with
 * the V8 code cache written at build time beside it.
 *
 * Why: on Node 20 compiling the 160 kB bundle and the functions a probe runs costs 5-10 ms of a
 * 55-65 ms `probe --json` (measured, BENCHMARKS.md), and Node 20 has no compile cache of its own
 * (module.enableCompileCache() arrived in 22.1). V8 checks its version and flags and rejects a
 * cache that does not fit, but it checks the source only by length and, in release builds, does
 * not checksum the cache: damaged bytes crash the process (seen in test/cli/code-cache.test.ts).
 * So the cache carries the SHA-256 of the bundle it was made for and of its own bytes, and is
 * ignored unless both match. Without a usable cache the bundle compiles as usual: the cache only
 * ever saves time.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

const MAGIC = 'gpu-layers-v8-code-cache 1';
const bundle = path.join(__dirname, 'cli-main.cjs');
const cacheFile = path.join(__dirname, 'cli-main.v8cache');

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Header line: magic, the bundle's hash, the cache bytes' hash, the Node version. */
function header(bundleHash: string, data: Buffer): Buffer {
  return Buffer.from(`${MAGIC} ${bundleHash} ${sha256(data)} ${process.version}\n`);
}

function usableCache(bundleHash: string): Buffer | undefined {
  let cache: Buffer;
  try {
    cache = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  const newline = cache.indexOf(0x0a);
  if (newline < 0) return undefined;
  const data = cache.subarray(newline + 1);
  return cache.subarray(0, newline + 1).equals(header(bundleHash, data)) ? data : undefined;
}

function readBundle(): Buffer {
  try {
    return readFileSync(bundle);
  } catch (error) {
    process.stderr.write(`gpu-layers: the CLI is not built (${(error as Error).message}); run \`npm run build\`\n`);
    return process.exit(3);
  }
}

function launch(): void {
  const source = readBundle();
  const bundleHash = sha256(source);
  const text = source.toString('utf8').replace(/^#!.*/, '');
  // The CommonJS wrapper Node itself would put around the file.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${text}\n})`, {
    filename: bundle,
    cachedData: usableCache(bundleHash),
  });

  // `npm run build` sets this to record the cache after a demo run: the compiled code then covers
  // the functions a probe runs, not only the top level.
  const recordTo = process.env.GPU_LAYERS_RECORD_CODE_CACHE;
  delete process.env.GPU_LAYERS_RECORD_CODE_CACHE; // not for the child processes a verb may start
  if (recordTo !== undefined && recordTo !== '') {
    process.on('exit', () => {
      const data = script.createCachedData();
      writeFileSync(recordTo, Buffer.concat([header(bundleHash, data), data]));
    });
  }

  const mainModule = { exports: {}, id: bundle, filename: bundle, loaded: false };
  (script.runInThisContext() as (...args: unknown[]) => void)(mainModule.exports, createRequire(bundle), mainModule, bundle, path.dirname(bundle));
}

launch();
