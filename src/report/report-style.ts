/** The report's stylesheet, inlined into the page: system fonts, light cards, tabular figures. */
import { SEVERITY_COLORS } from './report-palette.js';

export const REPORT_CSS = `
:root{--fg:#1b1f24;--muted:#57606a;--border:#d0d7de;--panel:#ffffff;--page:#eef1f4;--accent:#0b5394;
--critical:${SEVERITY_COLORS.critical};--critical-bg:#fdecea;--warning:${SEVERITY_COLORS.warning};--warning-bg:#fff4d6;--info:${SEVERITY_COLORS.info};--info-bg:#e8f1fb;--ok:#1a7f37;--ok-bg:#e9f7ee}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--page);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
code,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:.9em}
a{color:var(--accent)}
a:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
.top{background:#1b1f24;color:#f0f3f6;padding:20px 0 16px}
.top a{color:#9ecbff}
.wrap{max-width:1240px;margin:0 auto;padding:0 24px}
.top h1{margin:0 0 10px;font-size:1.55rem;font-weight:650;letter-spacing:.005em;overflow-wrap:anywhere}
.facts{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0;padding:0}
.facts div{display:flex;flex-direction:column;min-width:0}
.facts dt{font-size:.72rem;text-transform:uppercase;letter-spacing:.06em;color:#9da7b1}
.facts dd{margin:0;font-weight:560;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.summary-findings{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin:14px 0 0;font-size:1rem}
.summary-findings > a{font-weight:650;margin-right:6px}
.summary-findings.none > a{color:#7ee2a0}
.count{display:inline-block;padding:1px 10px;border-radius:999px;font-size:.85rem;border:1px solid transparent}
.count.sev-critical{background:var(--critical-bg);color:var(--critical)}
.count.sev-warning{background:var(--warning-bg);color:var(--warning)}
.count.sev-info{background:var(--info-bg);color:var(--info)}
.count.zero{background:transparent;color:#9da7b1;border-color:#444c56}
nav.toc{margin-top:12px;font-size:.88rem;display:flex;flex-wrap:wrap;gap:4px 14px}
main.wrap{padding-top:20px;padding-bottom:40px}
.card{background:var(--panel);border:1px solid var(--border);border-radius:10px;padding:18px 22px;margin:0 0 20px}
h2{font-size:1.2rem;margin:0 0 12px;font-weight:650}
h2 .muted,h3 .muted{font-weight:400;font-size:.92rem}
h3{font-size:1.02rem;margin:0;font-weight:620}
h4{font-size:.8rem;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:600}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-size:.72rem;font-weight:700;text-transform:uppercase;letter-spacing:.06em;color:#fff;vertical-align:middle}
.badge.sev-critical{background:var(--critical)}
.badge.sev-warning{background:var(--warning)}
.badge.sev-info{background:var(--info)}
.finding{border:1px solid var(--border);border-left:6px solid var(--info);border-radius:8px;padding:12px 16px;margin:0 0 14px}
.finding.sev-critical{border-left-color:var(--critical)}
.finding.sev-warning{border-left-color:var(--warning)}
.finding header{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px}
.finding h3{flex:1 1 auto}
.finding-id{color:var(--muted)}
.confidence{font-size:.88rem;color:var(--muted)}
.confidence b{color:var(--fg)}
.subject,.window{margin:6px 0 0;font-size:.9rem;color:var(--muted);overflow-wrap:anywhere}
.finding-summary{margin:8px 0}
.fix{margin:10px 0 0;padding:8px 12px;background:var(--ok-bg);border-radius:6px}
.fix-label{font-weight:700;color:var(--ok);margin-right:6px;text-transform:uppercase;font-size:.75rem;letter-spacing:.06em}
.no-findings{margin:0;padding:12px 16px;background:var(--ok-bg);color:var(--ok);border-radius:8px;font-weight:600}
.table-scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
thead th{font-size:.74rem;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600;border-bottom:1px solid var(--border);vertical-align:bottom}
thead th.num{white-space:normal}
.num{text-align:right;white-space:nowrap}
td.unknown{color:#8c959f}
tr.device-row th{background:#f6f8fa;font-weight:650;padding-top:8px}
td.command{max-width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.evidence{margin-top:6px}
.device > .meta,.process > .meta{margin:2px 0 6px;font-size:.88rem;color:var(--muted);overflow-wrap:anywhere}
.process{border-top:1px solid var(--border);margin-top:18px;padding-top:14px}
.process h3 code{font-weight:500;overflow-wrap:anywhere}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:4px 24px}
.chart{margin:0}
.chart-svg{display:block;width:100%;height:auto;overflow:visible}
.chart-svg .grid{stroke:#e4e8ec;stroke-width:1}
.chart-svg .grid.zero,.chart-svg .axis{stroke:#8c959f;stroke-width:1}
.chart-svg .tick-mark{stroke:#8c959f}
.chart-svg .tick{fill:#57606a;font-variant-numeric:tabular-nums}
.chart-svg .tick.date{font-weight:600}
.chart-svg .area{stroke:none}
.chart-svg .line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.chart-svg .marker line{stroke-width:1.5;stroke-dasharray:4 3}
.chart-svg .marker text{font-weight:700;font-size:11px}
.chart-svg .guide{stroke:#1b1f24;stroke-width:1;stroke-dasharray:2 2;pointer-events:none}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:2px 18px;margin:6px 0 0 64px;padding:0;font-size:.83rem}
.legend li{display:flex;align-items:center;gap:6px;min-width:0}
.legend .swatch{flex:none}
.legend .figures{color:var(--muted);font-variant-numeric:tabular-nums;white-space:nowrap}
.legend .figures b{color:var(--fg);font-weight:600}
.chart-note,.no-data{font-size:.8rem;color:var(--muted);margin:4px 0 0 64px}
.no-data{margin-left:0;padding:10px 12px;background:#f6f8fa;border-radius:6px}
.tooltip{position:absolute;z-index:10;pointer-events:none;background:#1b1f24;color:#f0f3f6;border-radius:6px;padding:8px 10px;font-size:12.5px;line-height:1.45;box-shadow:0 4px 14px rgba(0,0,0,.25);max-width:420px}
.tooltip .when{font-weight:650;margin-bottom:3px}
.tooltip .row{display:flex;align-items:center;gap:8px;white-space:nowrap}
.tooltip .row i{display:inline-block;width:10px;height:10px;border-radius:2px;flex:none;box-shadow:0 0 0 1px #8c959f}
.tooltip .row span{flex:1 1 auto;overflow:hidden;text-overflow:ellipsis}
.tooltip .row b{font-weight:600;font-variant-numeric:tabular-nums;margin-left:12px}
footer{color:var(--muted);font-size:.8rem;text-align:center;padding:0 0 24px}
@media print{body{background:#fff}.top{background:#fff;color:#000}.card{border:none;padding:0}.tooltip{display:none}}
`;
