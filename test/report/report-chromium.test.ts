/**
 * The HTML report in a real headless Chromium, opened from disk (file://) as an engineer would
 * open it: no console error, no page error, no request leaving the file, every chart and
 * finding visible (with and without JavaScript), the hover tooltip working, the hostile command
 * shown as text. Leaves a full-page screenshot in test-artifacts/report.png.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { renderReportHtml } from '../../src/report/render-report.js';
import { repoRoot } from '../helpers/paths.js';
import { HOSTILE_COMMAND, incidentFindings, incidentSamples, recordingHeader } from '../helpers/report-recording.js';
import { testTool } from '../helpers/test-tools.js';

const artifacts = path.join(repoRoot, 'test-artifacts');
const findings = incidentFindings();

let browser: Browser;
let dir: string;
let url: string;

beforeAll(async () => {
  const executablePath = testTool('chromium');
  dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-report-'));
  const file = path.join(dir, 'report.html');
  writeFileSync(file, renderReportHtml({ header: recordingHeader(), samples: incidentSamples(), findings }));
  url = pathToFileURL(file).href;
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless', '--disable-gpu'] });
});

afterAll(async () => {
  await browser?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface Watched {
  page: Page;
  problems: string[];
}

/** A page that records console errors, page errors, dialogs and any request that is not the file itself. */
async function open(javaScriptEnabled: boolean): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (r) => {
    if (r.url() !== url && !r.url().startsWith('data:')) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, problems };
}

async function expectAllVisible(page: Page, selector: string, count: number): Promise<void> {
  const all = page.locator(selector);
  expect(await all.count(), selector).toBe(count);
  for (let i = 0; i < count; i++) {
    const item = all.nth(i);
    await item.scrollIntoViewIfNeeded();
    expect(await item.isVisible(), `${selector} #${i}`).toBe(true);
    const box = await item.boundingBox();
    expect(box !== null && box.width > 100 && box.height > 20, `${selector} #${i} has a size`).toBe(true);
  }
}

describe('the HTML report in Chromium', () => {
  it('loads from file:// cleanly, shows every chart and finding, and hovers', async () => {
    const { page, problems } = await open(true);
    try {
      const charts = await page.locator('svg[data-chart]').evaluateAll((svgs) => svgs.map((s) => s.getAttribute('data-chart')));
      expect(charts).toEqual(expect.arrayContaining(['device-0', 'device-1', 'process-0-4242', 'gaps-0-4242', 'host-0-4242', 'process-0-5151', 'process-1-4343']));
      await expectAllVisible(page, 'svg[data-chart]', charts.length);
      await expectAllVisible(page, 'article[data-finding-id]', findings.length);
      expect(await page.locator('article[data-finding-id]').evaluateAll((a) => a.map((e) => e.getAttribute('data-finding-id')))).toEqual(
        expect.arrayContaining(findings.map((f) => f.id)),
      );
      expect(await page.locator('svg[data-chart] g.marker[data-finding-id]').count()).toBeGreaterThanOrEqual(findings.length);
      expect(await page.locator('#process-0-5151 h3 code').textContent()).toBe(HOSTILE_COMMAND);

      const chart = page.locator('svg[data-chart="process-0-4242"]');
      await chart.scrollIntoViewIfNeeded();
      const box = (await chart.boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
      const tooltip = page.locator('.tooltip');
      expect(await tooltip.isVisible()).toBe(true);
      const text = (await tooltip.textContent()) ?? '';
      expect(text).toContain('UTC');
      expect(text).toContain('allocated (live tensors)');
      expect(text).toMatch(/\d+\.\d (MiB|GiB)/);
      await page.mouse.move(1, 1);

      mkdirSync(artifacts, { recursive: true });
      await page.evaluate('window.scrollTo(0, 0)');
      await page.screenshot({ path: path.join(artifacts, 'report.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it('is complete without JavaScript', async () => {
    const { page, problems } = await open(false);
    try {
      const charts = await page.locator('svg[data-chart]').count();
      expect(charts).toBeGreaterThan(0);
      await expectAllVisible(page, 'svg[data-chart]', charts);
      await expectAllVisible(page, 'article[data-finding-id]', findings.length);
      expect(await page.locator('.legend .figures').first().textContent()).toMatch(/last .+ · peak .+/);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});
