// A strict parser for the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), written
// for the tests: it throws on anything a Prometheus server would reject or
// that the format leaves to convention (HELP/TYPE after samples, a family
// split in two, duplicate series, histograms whose buckets do not add up).

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: MetricType;
  help: string | undefined;
  readonly samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parseFloatStrict(text: string, where: string): number {
  if (!FLOAT.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a float`);
  if (text === 'NaN') return NaN;
  if (/^[+]?Inf$/.test(text)) return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** The family a sample name belongs to: histograms and summaries own `_bucket`, `_sum`, `_count`. */
function familyOf(sampleName: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sampleName);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket'))) return family;
  }
  return undefined;
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let rest = text.slice(1); // after '{'
  for (;;) {
    if (rest.startsWith('}')) return { labels, rest: rest.slice(1) };
    const name = LABEL_NAME.exec(rest)?.[0];
    if (!name) throw new Error(`${where}: bad label name at ${JSON.stringify(rest.slice(0, 20))}`);
    if (name.startsWith('__')) throw new Error(`${where}: reserved label name ${name}`);
    if (name in labels) throw new Error(`${where}: duplicate label ${name}`);
    rest = rest.slice(name.length);
    if (!rest.startsWith('="')) throw new Error(`${where}: expected =" after ${name}`);
    rest = rest.slice(2);
    let value = '';
    for (;;) {
      const char = rest[0];
      if (char === undefined) throw new Error(`${where}: unterminated label value`);
      if (char === '"') break;
      if (char === '\\') {
        const escaped = rest[1];
        if (escaped === '\\') value += '\\';
        else if (escaped === '"') value += '"';
        else if (escaped === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${escaped}`);
        rest = rest.slice(2);
        continue;
      }
      if (char === '\n') throw new Error(`${where}: raw newline in a label value`);
      value += char;
      rest = rest.slice(1);
    }
    labels[name] = value;
    rest = rest.slice(1);
    if (rest.startsWith(',')) rest = rest.slice(1);
    else if (!rest.startsWith('}')) throw new Error(`${where}: expected , or } after a label`);
  }
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  const closed = new Set<string>();
  let current: Family | undefined;
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '') throw new Error(`${where}: empty line`);
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) ([^ ]+)(?: ([^\n]*))?$/.exec(line);
      if (!match) return; // a plain comment
      const [, keyword, name, rest] = match;
      if (!METRIC_NAME.test(name!) || METRIC_NAME.exec(name!)![0] !== name) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name!);
      if (family && family !== current) throw new Error(`${where}: ${name} is described again after other metrics`);
      if (family && family.samples.length > 0) throw new Error(`${where}: ${keyword} for ${name} after its samples`);
      if (!family) {
        if (closed.has(name!)) throw new Error(`${where}: ${name} reopened`);
        if (current) closed.add(current.name);
        family = { name: name!, type: 'untyped', help: undefined, samples: [] };
        families.set(name!, family);
        current = family;
      }
      if (keyword === 'TYPE') {
        if (!TYPES.has(rest ?? '')) throw new Error(`${where}: unknown type ${rest}`);
        if (family.type !== 'untyped' && family.type !== rest) throw new Error(`${where}: ${name} typed twice`);
        family.type = rest as MetricType;
      } else {
        if (family.help !== undefined) throw new Error(`${where}: HELP for ${name} given twice`);
        if ((rest ?? '').replace(/\\[\\n]/g, '').includes('\\')) throw new Error(`${where}: bad escape in HELP`);
        family.help = (rest ?? '').replace(/\\(\\|n)/g, (_, char: string) => (char === 'n' ? '\n' : '\\'));
      }
      return;
    }
    const name = METRIC_NAME.exec(line)?.[0];
    if (!name) throw new Error(`${where}: no metric name in ${JSON.stringify(line.slice(0, 40))}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where));
    const fields = rest.split(' ');
    if (fields[0] !== '' || fields.length < 2 || fields.length > 3) throw new Error(`${where}: expected " value [timestamp]" in ${JSON.stringify(line)}`);
    const value = parseFloatStrict(fields[1]!, where);
    if (fields[2] !== undefined && !/^-?\d+$/.test(fields[2])) throw new Error(`${where}: bad timestamp`);
    let family = familyOf(name, families);
    if (!family) {
      if (closed.has(name) || families.has(name)) throw new Error(`${where}: ${name} reopened`);
      if (current) closed.add(current.name);
      family = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, family);
    }
    if (current && family !== current) {
      if (closed.has(family.name)) throw new Error(`${where}: samples of ${family.name} are not contiguous`);
      closed.add(current.name);
    }
    current = family;
    const key = seriesKey(name, labels);
    if (seenSeries.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seenSeries.add(key);
    if (family.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) throw new Error(`${where}: bucket without le`);
    if (family.type === 'counter' && (value < 0 || Number.isNaN(value))) throw new Error(`${where}: counter ${name} is ${value}`);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) {
    if (family.type === 'histogram') checkHistogram(family);
  }
  return families;
}

/** Buckets cumulative and ending in +Inf, equal to _count, with a _sum, for every label set. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name === `${family.name}_bucket`) group.buckets.push([parseFloatStrict(le!, `${family.name} le`), sample.value]);
    else if (sample.name === `${family.name}_sum`) group.sum = sample.value;
    else if (sample.name === `${family.name}_count`) group.count = sample.value;
    else throw new Error(`${family.name}: unexpected sample ${sample.name} in a histogram`);
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    if (group.sum === undefined || group.count === undefined) throw new Error(`${where}: _sum or _count missing`);
    const last = group.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${where}: the last bucket is not le="+Inf"`);
    if (last[1] !== group.count) throw new Error(`${where}: +Inf bucket ${last[1]} != _count ${group.count}`);
    for (let index = 1; index < group.buckets.length; index++) {
      const [bound, count] = group.buckets[index]!;
      const [previousBound, previousCount] = group.buckets[index - 1]!;
      if (!(bound > previousBound)) throw new Error(`${where}: bucket bounds not increasing`);
      if (count < previousCount) throw new Error(`${where}: bucket counts not cumulative`);
    }
  }
}

/** The value of one series; undefined when absent. Labels must match exactly. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name === name && seriesKey(name, sample.labels) === seriesKey(name, labels)) return sample.value;
    }
  }
  return undefined;
}

/** Sum over every series of `name` whose labels include `match`. */
export function sumValues(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(match).every(([label, value]) => sample.labels[label] === value)) total += sample.value;
    }
  }
  return total;
}

/**
 * GET /metrics on a connection of its own (under attack an idle keep-alive
 * connection may be the one evicted), checked for status and content type,
 * then parsed.
 */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, Family>> {
  const { Client } = await import('undici');
  const client = new Client(baseUrl, { pipelining: 0 });
  try {
    const response = await client.request({ path: '/metrics', method: 'GET' });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`/metrics answered ${response.statusCode}: ${text.slice(0, 200)}`);
    if (response.headers['content-type'] !== 'text/plain; version=0.0.4; charset=utf-8') throw new Error(`/metrics content type ${String(response.headers['content-type'])}`);
    return parsePrometheusText(text);
  } finally {
    await client.destroy();
  }
}
