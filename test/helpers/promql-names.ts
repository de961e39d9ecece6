/**
 * Reads the names a PromQL expression uses, without evaluating it: the metrics it selects (with
 * their label matchers), the labels it groups or matches on, and the Grafana variables it refers
 * to. Enough to check queries against the exporter's metric list; promtool checks the syntax.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  /** null for a selector without a metric name, such as `{__name__=~"..."}`. */
  metric: string | null;
  matchers: Matcher[];
}

export interface PromqlNames {
  selectors: Selector[];
  /** Labels named by by, without, on, ignoring, group_left and group_right. */
  groupingLabels: string[];
  /** Labels that label_replace and label_join write. */
  createdLabels: string[];
  /** Grafana variables ($name, ${name}), in strings too; builtins such as $__rate_interval included. */
  variables: string[];
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

/** $name, ${name} or ${name:format}. */
const VARIABLE = /\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))/g;

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string };

function readString(src: string, start: number): { value: string; end: number } {
  const quote = src[start]!;
  let value = '';
  let i = start + 1;
  while (i < src.length && src[i] !== quote) {
    if (src[i] === '\\' && quote !== '`') {
      value += src[i + 1] ?? '';
      i += 2;
    } else {
      value += src[i++];
    }
  }
  if (i >= src.length) throw new Error(`unterminated string at ${start} in: ${src}`);
  return { value, end: i + 1 };
}

function tokenize(src: string, variables: string[]): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      const s = readString(src, i);
      for (const m of s.value.matchAll(VARIABLE)) variables.push(m[1] ?? m[2]!);
      tokens.push({ kind: 'string', text: s.value });
      i = s.end;
    } else if (c === '$') {
      const m = new RegExp(`^${VARIABLE.source}`).exec(src.slice(i));
      if (m === null) throw new Error(`bad variable at ${i} in: ${src}`);
      variables.push(m[1] ?? m[2]!);
      tokens.push({ kind: 'number', text: m[0] });
      i += m[0].length;
    } else if (c === '[') {
      // A range or subquery: durations and Grafana variables only.
      const end = src.indexOf(']', i);
      if (end < 0) throw new Error(`unterminated [ at ${i} in: ${src}`);
      for (const m of src.slice(i, end).matchAll(VARIABLE)) variables.push(m[1] ?? m[2]!);
      i = end + 1;
    } else if (/[0-9.]/.test(c)) {
      const m = /^(?:0x[0-9a-f]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?(?:[0-9]+[smhdwy]|ms)*[a-z]*)/i.exec(src.slice(i))!;
      tokens.push({ kind: 'number', text: m[0] });
      i += m[0].length;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(src.slice(i))!;
      tokens.push({ kind: 'ident', text: m[0] });
      i += m[0].length;
    } else {
      const m = /^(?:=~|!~|!=|==|<=|>=|[-+*/%^<>(){},=@])/.exec(src.slice(i));
      if (m === null) throw new Error(`unexpected ${JSON.stringify(c)} at ${i} in: ${src}`);
      tokens.push({ kind: 'punct', text: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

function readMatchers(tokens: Token[], start: number): { matchers: Matcher[]; end: number } {
  const matchers: Matcher[] = [];
  let i = start + 1;
  while (tokens[i]?.text !== '}') {
    const label = tokens[i];
    const op = tokens[i + 1];
    const value = tokens[i + 2];
    if (label?.kind !== 'ident' || op === undefined || !['=', '!=', '=~', '!~'].includes(op.text) || value?.kind !== 'string') {
      throw new Error(`bad label matcher near token ${i}`);
    }
    matchers.push({ label: label.text, op: op.text as Matcher['op'], value: value.text });
    i += 3;
    if (tokens[i]?.text === ',') i++;
  }
  return { matchers, end: i + 1 };
}

/** The first string argument after the vector argument of the call whose "(" is at `open`. */
function destinationLabel(tokens: Token[], open: number): string | undefined {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!.text;
    if (t === '(' || t === '{') depth++;
    else if (t === ')' || t === '}') depth--;
    else if (t === ',' && depth === 1) return tokens[i + 1]?.kind === 'string' ? tokens[i + 1]!.text : undefined;
    if (depth === 0) return undefined;
  }
  return undefined;
}

export function promqlNames(expr: string): PromqlNames {
  const variables: string[] = [];
  const tokens = tokenize(expr, variables);
  const selectors: Selector[] = [];
  const groupingLabels: string[] = [];
  const createdLabels: string[] = [];
  for (let i = 0; i < tokens.length; ) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t.kind === 'ident' && LABEL_LISTS.has(t.text)) {
      i++;
      if (tokens[i]?.text !== '(') continue; // group_left without a list
      i++;
      while (tokens[i] !== undefined && tokens[i]!.text !== ')') {
        if (tokens[i]!.kind === 'ident') groupingLabels.push(tokens[i]!.text);
        i++;
      }
      i++;
    } else if (t.kind === 'ident' && (t.text === 'label_replace' || t.text === 'label_join') && next?.text === '(') {
      const label = destinationLabel(tokens, i + 1);
      if (label !== undefined) createdLabels.push(label);
      i++;
    } else if (t.kind === 'ident' && (AGGREGATIONS.has(t.text) || next?.text === '(' || KEYWORDS.has(t.text.toLowerCase()))) {
      i++;
    } else if (t.kind === 'ident') {
      if (next?.text === '{') {
        const m = readMatchers(tokens, i + 1);
        selectors.push({ metric: t.text, matchers: m.matchers });
        i = m.end;
      } else {
        selectors.push({ metric: t.text, matchers: [] });
        i++;
      }
    } else if (t.text === '{') {
      const m = readMatchers(tokens, i);
      selectors.push({ metric: null, matchers: m.matchers });
      i = m.end;
    } else {
      i++;
    }
  }
  return { selectors, groupingLabels, createdLabels, variables };
}
