/**
 * The package's tarball as `npm pack` makes it for a release (prepack copies the node-gyp build
 * into prebuilds/), staged from the build the other tests use instead of rebuilding it under
 * them: a plain pack without scripts, prebuilds/ written into it by scripts/build/prebuilds.js,
 * packed again. An install from it picks the prebuilt addon and mock libraries, compiling nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';

/** Packs the package into `work` (a folder of the caller's) and returns the tarball's path. */
export function packWithPrebuilds(work: string): string {
  requireFile(path.join(repoRoot, 'dist/index.js'), 'build the package (npm ci)');
  requireFile(nodeGypBuild.addon, 'build the addon (npm ci)');
  const staging = path.join(work, 'staging');
  mkdirSync(staging);
  const plain = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['-xzf', path.join(work, plain), '-C', staging]);
  rmSync(path.join(work, plain));
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts/build/prebuilds.js'), '--out', path.join(staging, 'package/prebuilds')], { encoding: 'utf8', stdio: 'pipe' });
  const packed = path.join(work, 'packed');
  mkdirSync(packed);
  const name = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', packed], { cwd: path.join(staging, 'package'), encoding: 'utf8' }).trim().split('\n').pop()!;
  rmSync(staging, { recursive: true, force: true });
  return path.join(packed, name);
}
