/**
 * scripts/build/with-node-headers.sh: native builds use the headers of the Node.js that runs them
 * when npm names none, so `npm ci` builds the addon without reaching nodejs.org for any user.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';

const script = path.join(repoRoot, 'scripts/build/with-node-headers.sh');
const prefix = path.resolve(process.execPath, '..', '..');

/** npm_config_nodedir as the wrapped command sees it, started with `nodedir` set or (undefined) unset. */
function nodedirSeen(nodedir?: string): string {
  const env = { ...process.env };
  delete env.npm_config_nodedir;
  if (nodedir !== undefined) env.npm_config_nodedir = nodedir;
  return execFileSync('sh', [script, process.execPath, '-p', 'process.env.npm_config_nodedir ?? ""'], { env, encoding: 'utf8' }).trim();
}

describe('with-node-headers.sh', () => {
  it("points node-gyp and cmake-js at this Node.js's own headers when npm names none", () => {
    // The machines the project builds on ship Node.js with its headers (npm is set to use them).
    expect(existsSync(path.join(prefix, 'include/node/node.h'))).toBe(true);
    expect(nodedirSeen()).toBe(prefix);
  });

  it('leaves a headers folder npm names alone', () => {
    expect(nodedirSeen('/opt/node-headers')).toBe('/opt/node-headers');
  });
});
