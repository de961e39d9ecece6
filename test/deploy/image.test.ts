/**
 * The Dockerfile, read statically (scripts/build/image-check.sh builds and runs it with buildah;
 * that takes minutes and root, so it is CI's step, not a unit test): two stages on the same Debian
 * release, compilers in the first only, a uid of its own in the image, and the command, folder and
 * environment the DaemonSet runs it with. And .dockerignore: the sources in the build context, the
 * checkout's build outputs and .git out of it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';
import { find, kustomize } from './kustomize-build.js';

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined and comments left out. */
function instructions(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [, keyword, args] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
      return { keyword: keyword!.toUpperCase(), args: args!.replace(/\s+/g, ' ') };
    });
}

const dockerfile = instructions(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'));
const stages: Instruction[][] = [];
for (const instruction of dockerfile) {
  if (instruction.keyword === 'FROM') stages.push([]);
  stages.at(-1)?.push(instruction);
}
const [buildStage, runtimeStage] = stages;
const args = Object.fromEntries(dockerfile.filter((i) => i.keyword === 'ARG').map((i) => i.args.split('=') as [string, string]));
const last = (stage: Instruction[], keyword: string): string | undefined => stage.filter((i) => i.keyword === keyword).at(-1)?.args;
/** ENV lines' assignments (KEY=VALUE pairs). */
const envOf = (stage: Instruction[]): Record<string, string> =>
  Object.fromEntries(stage.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])));

const container = find(kustomize('deploy/kubernetes'), 'DaemonSet').spec.template.spec.containers[0];

describe('the Dockerfile', () => {
  it('has a build stage and a runtime stage, on Node 20 images of the same Debian release', () => {
    expect(stages).toHaveLength(2);
    expect(buildStage![0]!.args).toBe('${BUILD_IMAGE} AS build');
    expect(runtimeStage![0]!.args).toBe('${RUNTIME_IMAGE}');
    const engines = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const major = /\d+/.exec(engines)![0];
    const release = (image: string): string => /-(\w+)(?:-slim)?$/.exec(image)![1]!;
    expect(args.BUILD_IMAGE).toBe(`node:${major}-${release(args.BUILD_IMAGE!)}`);
    expect(args.RUNTIME_IMAGE).toBe(`node:${major}-${release(args.BUILD_IMAGE!)}-slim`);
  });

  it('builds and packs in the first stage, and takes only the installed package into the second', () => {
    expect(buildStage!.some((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.args) && /npm pack\b/.test(i.args) && /npm install --omit=dev\b/.test(i.args))).toBe(true);
    const copies = runtimeStage!.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copies.map((i) => i.args)).toEqual(['--from=build /app /app']);
    for (const run of runtimeStage!.filter((i) => i.keyword === 'RUN')) expect(run.args).not.toMatch(/apt-get|npm (ci|install)|node-gyp/);
  });

  it('runs as a numeric uid of its own, not root, not the node image\'s user, not nobody', () => {
    const user = last(runtimeStage!, 'USER')!;
    expect(user).toMatch(/^\d+:\d+$/);
    const uid = Number(user.split(':')[0]);
    expect([0, 1000, 65534]).not.toContain(uid);
    // The only folder it writes without a volume: the cache, made for that uid.
    expect(runtimeStage!.some((i) => i.keyword === 'RUN' && i.args.includes(`chown ${user} ${envOf(runtimeStage!).GPU_LAYERS_CACHE_DIR}`))).toBe(true);
  });

  it('starts what the DaemonSet starts, where it starts it, with the same NVIDIA and cache settings', () => {
    expect(JSON.parse(last(runtimeStage!, 'ENTRYPOINT')!)).toEqual(container.command);
    expect(last(runtimeStage!, 'WORKDIR')).toBe(container.workingDir);
    const daemonSetEnv = Object.fromEntries((container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    const imageEnv = envOf(runtimeStage!);
    for (const name of ['NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'GPU_LAYERS_CACHE_DIR']) expect(imageEnv[name], name).toBe(daemonSetEnv[name]);
    // Without arguments: one probe, no listening socket.
    expect(JSON.parse(last(runtimeStage!, 'CMD')!)).toEqual(['probe']);
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  // Docker's rules for these patterns: relative to the context's root, `*` within one name, `**`
  // across folders, and a folder's pattern covering what is inside it. (No `!` lines here.)
  const regexes = patterns.map((p) => {
    expect(p.startsWith('!'), p).toBe(false);
    const body = p
      .split('**/')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
      .join('(?:.*/)?');
    return new RegExp(`^${body}(?:/.*)?$`);
  });
  const ignored = (file: string): boolean => regexes.some((r) => r.test(file));

  it('keeps every tracked file but the tests in the build context', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter((f) => f !== '');
    expect(tracked).toContain('package-lock.json');
    expect(tracked.filter((f) => ignored(f) && !f.startsWith('test/'))).toEqual([]);
  });

  it('leaves out .git and the checkout\'s build outputs', () => {
    for (const file of ['.git/HEAD', 'node_modules/zod/package.json', 'build/Release/gpu_layers.node', 'build-cmake/Release/gpu_layers.node', 'dist/index.js', 'prebuilds/linux-x64/gpu-layers.napi.glibc.node', 'gpu-layers-0.1.0.tgz', 'python/gpu_layers_companion/__pycache__/x.pyc']) {
      expect(ignored(file), file).toBe(true);
    }
  });
});
