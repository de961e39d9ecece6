/**
 * The streaming scan that keeps only the families read: however the body is cut into chunks
 * (a line, a name, "\r\n" split across two), it keeps what a plain reading of the whole text
 * keeps: the complete lines, trimmed, whose sample name is a family asked for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { FamilyLineFilter, FamilyLinesError } from '../../src/sources/prometheus-family-lines.js';
import { fuzzParams } from '../helpers/fuzz.js';

const FAMILIES = new Set(['vllm:num_requests_running', 'vllm:cache_config_info']);
const LIMITS = { maxLineChars: 200, maxKeptChars: 10_000 };

/** The oracle: split the whole text, drop the unterminated last line, keep the families' lines. */
function plainReading(text: string): string[] {
  const lines = text.split('\n').slice(0, -1);
  return lines.map((line) => line.trim()).filter((line) => FAMILIES.has(/^[^{ \t]*/.exec(line)![0]) && !line.startsWith('#'));
}

function scanInPieces(text: string, cuts: number[]): FamilyLineFilter {
  const filter = new FamilyLineFilter(FAMILIES, LIMITS);
  let at = 0;
  for (const cut of [...cuts.filter((c) => c < text.length)].sort((a, b) => a - b)) {
    filter.push(text.slice(at, cut));
    at = cut;
  }
  filter.push(text.slice(at));
  return filter;
}

describe('FamilyLineFilter', () => {
  const line = fc.oneof(
    fc.constantFrom(
      'vllm:num_requests_running{engine="0"} 3',
      '  vllm:num_requests_running 4\r',
      'vllm:num_requests_running_total 9',
      'vllm:cache_config_info{block_size="16"} 1',
      '# TYPE vllm:num_requests_running gauge',
      '#vllm:num_requests_running 1',
      'python_info 1',
      '',
      '   ',
      'vllm:num_requests_running',
      `other ${'x'.repeat(300)}`,
    ),
    fc.string({ maxLength: 20 }),
  );

  it('keeps what a reading of the whole text keeps, however it is cut', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), fc.boolean(), fc.array(fc.nat({ max: 600 }), { maxLength: 12 }), (lines, endsWithNewline, cuts) => {
        const text = lines.join('\n') + (endsWithNewline ? '\n' : '');
        let expected: string[] | 'too long';
        try {
          expected = plainReading(text);
          if (expected.some((l) => l.length > LIMITS.maxLineChars)) expected = 'too long';
        } catch {
          expected = 'too long';
        }
        if (expected === 'too long') return;
        expect(scanInPieces(text, cuts).kept).toEqual(expected);
      }),
      fuzzParams(500),
    );
  });

  it('the first visible character and the other families, across pieces', () => {
    const filter = scanInPieces('\n  \n  <html>\npython_a 1\npython_a 2\npython_b 1\n# HELP x y\nvllm:num_requests_running 1\npython_a 3\n', [1, 3, 5, 20]);
    expect(filter.firstVisible).toBe('<');
    // python_a (twice in a row: one family), python_b, then python_a again after a line read.
    expect(filter.otherFamilies).toBe(4);
    expect(filter.kept).toEqual(['vllm:num_requests_running 1']);
  });

  it('a line of a family read past the limit fails as soon as its piece arrives, before its end', () => {
    const filter = new FamilyLineFilter(FAMILIES, LIMITS);
    filter.push('vllm:cache_config_info{a="');
    expect(() => filter.push('x'.repeat(LIMITS.maxLineChars))).toThrow(FamilyLinesError);
  });

  it('a name longer than any read is dropped unread, however long its line', () => {
    const filter = new FamilyLineFilter(FAMILIES, LIMITS);
    for (let i = 0; i < 100; i++) filter.push('vllm:'.repeat(1000));
    filter.push(' 1\nvllm:num_requests_running 2\n');
    expect(filter.kept).toEqual(['vllm:num_requests_running 2']);
  });
});
