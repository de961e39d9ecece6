/** Reading the report's HTML in tests without a DOM: one chart, its tooltip data, a row of the last-sample table. */
export interface ChartTip {
  x0: number;
  x1: number;
  d0: number;
  d1: number;
  /** ms after d0 */
  t: number[];
  s: { l: string; c: string; h: number; v: (number | null)[] }[];
}

export function unescapeHtml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The `<svg data-chart="id">...</svg>` element (charts do not nest). */
export function chartSvg(html: string, id: string): string {
  const start = html.indexOf(`<svg class="chart-svg" data-chart="${id}"`);
  if (start === -1) throw new Error(`no chart ${id}`);
  return html.slice(start, html.indexOf('</svg>', start) + '</svg>'.length);
}

export function chartTip(html: string, id: string): ChartTip {
  const match = /data-tip="([^"]*)"/.exec(chartSvg(html, id));
  if (match === null) throw new Error(`chart ${id} has no data-tip`);
  return JSON.parse(unescapeHtml(match[1]!)) as ChartTip;
}

/** The `d` of the chart's path for one series. */
export function seriesPath(html: string, id: string, series: string): string {
  const match = new RegExp(`<path [^>]*data-series="${series}"[^>]* d="([^"]*)"`).exec(chartSvg(html, id));
  if (match === null) throw new Error(`chart ${id} has no path for ${series}`);
  return match[1]!;
}

/** Cell texts by data-col of the last-sample table's row for a process. */
export function finalRow(html: string, deviceIndex: number, pid: number): Record<string, string> {
  const start = html.indexOf(`<tr data-final-row="${deviceIndex}-${pid}">`);
  if (start === -1) throw new Error(`no final row for ${deviceIndex}-${pid}`);
  const row = html.slice(start, html.indexOf('</tr>', start));
  const cells: Record<string, string> = {};
  for (const m of row.matchAll(/<td [^>]*data-col="([^"]+)"[^>]*>([^<]*)<\/td>/g)) cells[m[1]!] = unescapeHtml(m[2]!);
  return cells;
}

export function attributeValues(html: string, name: string): string[] {
  return [...html.matchAll(new RegExp(`\\s${name}\\s*=\\s*["']?([^"'\\s>]*)`, 'gi'))].map((m) => m[1]!);
}
