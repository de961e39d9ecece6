/**
 * Where the tests find the programs they drive: Debian's promtool, prometheus, chromium, valgrind
 * and kubectl, fetched into .cache/debian-tools by scripts/fixtures/fetch-test-tools.sh (`npm test`
 * runs it first), never the system's copy, so a run as root and one without root test the same tool.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

import { repoRoot } from './paths.js';

export type TestToolName = 'promtool' | 'prometheus' | 'chromium' | 'valgrind' | 'kubectl';

/** The Debian package each tool comes from. */
export const TEST_TOOL_PACKAGES: Record<TestToolName, string> = {
  promtool: 'prometheus',
  prometheus: 'prometheus',
  chromium: 'chromium',
  valgrind: 'valgrind',
  kubectl: 'kubernetes-client',
};

export const testToolsDir = path.join(repoRoot, '.cache/debian-tools');

/**
 * The absolute path of the tool's launcher, which runs the fetched copy with the environment it
 * needs (library path, valgrind's tool folder): call it like the program itself. A missing tool
 * fails the test that needs it, saying how to get it; no test skips for lack of one.
 */
export function testTool(name: TestToolName): string {
  const launcher = path.join(testToolsDir, 'bin', name);
  try {
    accessSync(launcher, constants.X_OK);
  } catch {
    throw new Error(`missing ${launcher}: run \`npm run fixtures\` (npm test does it first; no root needed) to fetch Debian's ${TEST_TOOL_PACKAGES[name]} package into ${testToolsDir}`);
  }
  return launcher;
}

/** "PACKAGE VERSION" lines the fetch wrote for what it unpacked, as a map. */
export function fetchedPackageVersions(): Map<string, string> {
  const text = readFileSync(path.join(testToolsDir, 'versions.txt'), 'utf8');
  return new Map(
    text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [name, version] = line.split(' ');
        return [name!, version!];
      }),
  );
}
