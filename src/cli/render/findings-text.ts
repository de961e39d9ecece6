/**
 * The readable findings of `gpu-layers diagnose` (and of the demo): per finding its severity,
 * id and subject, what was seen, the evidence series with their slopes and fits, and the fix,
 * wrapped to the terminal.
 */
import type { Evidence, Finding } from '../../diagnosis/finding-schema.js';
import { formatBytes, formatChange } from '../../format-bytes.js';
import type { Style } from './style.js';

/** Words of `text` in lines of at most `width` columns, each after `indent`. */
export function wrapText(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

function evidenceValue(e: Evidence, value: number): string {
  return e.unit === 'bytes' ? formatBytes(Math.round(value)) : e.unit === 'ratio' ? value.toFixed(2) : String(Math.round(value * 10) / 10);
}

function evidenceLine(e: Evidence): string {
  const slope = e.unit === 'bytes' ? `${formatChange(e.slopePerHour)}/h` : `${e.slopePerHour >= 0 ? '+' : ''}${e.slopePerHour.toFixed(1)}/h`;
  const fit = e.fit === null ? 'constant' : `R² ${e.fit.toFixed(2)}`;
  return `${e.series}: ${evidenceValue(e, e.first)} → ${evidenceValue(e, e.last)}, ${slope}, ${fit}, ${e.samples} samples — ${e.note}`;
}

export function severityLabel(finding: Finding, style: Style): string {
  const label = finding.severity.toUpperCase();
  return finding.severity === 'info' ? style.dim(label) : finding.severity === 'critical' ? style.bold(style.warn(label)) : style.warn(label);
}

/** "GPU 0 pid 4242 (vllm serve ...)": the command cut at 48 characters, control characters blanked. */
export function subjectText(finding: Finding): string {
  const { deviceIndex, pid, command } = finding.subject;
  if (pid === null) return `GPU ${deviceIndex}`;
  if (command === null) return `GPU ${deviceIndex} pid ${pid}`;
  const shown = command.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return `GPU ${deviceIndex} pid ${pid} (${shown.length > 48 ? `${shown.slice(0, 47)}…` : shown})`;
}

export function renderFindings(findings: readonly Finding[], style: Style, width: number): string {
  const lines: string[] = [];
  for (const finding of findings) {
    lines.push(`${severityLabel(finding, style)} ${style.bold(finding.id)}  ${subjectText(finding)}  confidence ${finding.confidence.toFixed(2)}`);
    lines.push(`  ${style.bold(finding.title)} (from ${finding.at})`);
    lines.push(...wrapText(finding.summary, width, '  '));
    lines.push('  evidence:');
    for (const e of finding.evidence) lines.push(...wrapText(evidenceLine(e), width, '    ').map((l, i) => (i === 0 ? l : `  ${l}`)));
    lines.push(...wrapText(`fix: ${finding.fix}`, width, '  '));
    lines.push('');
  }
  return lines.join('\n');
}
