// Turns raw results into the tables (stdout and bench/results/<date>.md),
// the verdict against the targets, and SVG charts of the latency
// distribution. Every ratio is taken inside one repeat (same machine state)
// and the median over the repeats is reported.

import type { BurstResult, Target } from './burst.ts';
import { percentile } from './burst.ts';

export interface MicroResult {
  readonly group: string;
  readonly name: string;
  readonly opsPerSecond: number;
  /** Relative margin of error of the mean, %. */
  readonly rme: number;
}

export interface StartupResult {
  readonly target: string;
  /** ms, sorted. */
  readonly samples: readonly number[];
}

export interface TargetSummary {
  readonly target: Target;
  readonly runs: readonly BurstResult[];
  readonly requestsPerSecond: number;
  readonly vsBare: number | null;
  /** Against bare node:http run with control-plane's runtime flags (like for like). */
  readonly vsBareSameFlags: number | null;
  readonly vsSdk: number | null;
  readonly p50: number;
  readonly p99: number;
  readonly p99VsBare: number | null;
  readonly max: number;
  readonly peakRssBytes: number;
  readonly cpuMicrosPerRequest: number;
  readonly mainThreadCpuMicrosPerRequest: number;
  readonly sent: number;
  readonly accepted: number;
  readonly failures: Readonly<Record<string, number>>;
  /** null when the server writes no output to check. */
  readonly missing: number | null;
  readonly written: number | null;
  readonly seqContiguous: boolean | null;
  /** All measured latencies of all repeats, sorted. */
  readonly latencies: Float64Array;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function ratioMedian(runs: readonly BurstResult[], others: readonly BurstResult[] | undefined, value: (run: BurstResult) => number): number | null {
  if (!others || others.length === 0) return null;
  const ratios: number[] = [];
  for (const run of runs) {
    const other = others.find((candidate) => candidate.repeat === run.repeat);
    if (other) ratios.push(value(run) / value(other));
  }
  return ratios.length ? median(ratios) : null;
}

function mergeSorted(runs: readonly BurstResult[]): Float64Array {
  const total = runs.reduce((sum, run) => sum + run.latencies.length, 0);
  const merged = new Float64Array(total);
  let offset = 0;
  for (const run of runs) {
    merged.set(run.latencies, offset);
    offset += run.latencies.length;
  }
  return merged.sort();
}

export function summarise(
  targets: readonly Target[],
  results: readonly BurstResult[],
  bareFor: ReadonlyMap<string, string>,
  bareSameFlagsFor: ReadonlyMap<string, string>,
  sdkName: string,
): TargetSummary[] {
  const byTarget = new Map<string, BurstResult[]>();
  for (const result of results) byTarget.set(result.target, [...(byTarget.get(result.target) ?? []), result]);
  const summaries: TargetSummary[] = [];
  for (const target of targets) {
    const runs = byTarget.get(target.name) ?? [];
    if (runs.length === 0) continue;
    const bareName = bareFor.get(target.name);
    const bare = bareName ? byTarget.get(bareName) : undefined;
    const sameFlagsName = bareSameFlagsFor.get(target.name);
    const sameFlags = sameFlagsName ? byTarget.get(sameFlagsName) : undefined;
    const sdk = target.name === sdkName ? undefined : byTarget.get(sdkName);
    const failures: Record<string, number> = {};
    for (const run of runs) for (const [status, count] of Object.entries(run.failures)) failures[status] = (failures[status] ?? 0) + count;
    const checked = runs.filter((run) => run.output !== null);
    summaries.push({
      target,
      runs,
      requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
      vsBare: bareName && bareName !== target.name ? ratioMedian(runs, bare, (run) => run.requestsPerSecond) : null,
      vsBareSameFlags: ratioMedian(runs, sameFlags, (run) => run.requestsPerSecond),
      vsSdk: ratioMedian(runs, sdk, (run) => run.requestsPerSecond),
      p50: median(runs.map((run) => percentile(run.latencies, 0.5))),
      p99: median(runs.map((run) => percentile(run.latencies, 0.99))),
      p99VsBare: bareName && bareName !== target.name ? ratioMedian(runs, bare, (run) => percentile(run.latencies, 0.99)) : null,
      max: Math.max(...runs.map((run) => percentile(run.latencies, 1))),
      peakRssBytes: Math.max(...runs.map((run) => run.peakRssBytes)),
      cpuMicrosPerRequest: median(runs.map((run) => run.cpuMicrosPerRequest)),
      mainThreadCpuMicrosPerRequest: median(runs.map((run) => run.mainThreadCpuMicrosPerRequest)),
      sent: runs.reduce((sum, run) => sum + run.sent, 0),
      accepted: runs.reduce((sum, run) => sum + run.accepted, 0),
      failures,
      missing: checked.length ? checked.reduce((sum, run) => sum + run.output!.missing, 0) : null,
      written: checked.length ? checked.reduce((sum, run) => sum + run.output!.written, 0) : null,
      seqContiguous: checked.length && checked[0]!.output!.seqContiguous !== null ? checked.every((run) => run.output!.seqContiguous) : null,
      latencies: mergeSorted(runs),
    });
  }
  return summaries;
}

const fixed = (value: number | null, digits: number): string => (value === null || !Number.isFinite(value) ? '—' : value.toFixed(digits));
const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');
const megabytes = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);

function linesCell(summary: TargetSummary): string {
  if (summary.missing === null) return 'n/a (writes nothing)';
  const ok = summary.missing === 0 && summary.seqContiguous !== false;
  const seq = summary.seqContiguous === null ? '' : summary.seqContiguous ? ', seq gap-free' : ', seq GAP';
  return ok ? `yes, 0 missing${seq}` : `NO: ${summary.missing} missing${seq}`;
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((side) => (side === 'r' ? '---:' : ':---'))), ...rows.map(line)].join('\n');
}

export function burstTable(summaries: readonly TargetSummary[]): string {
  const header = ['server', 'runtime', 'req/s', '× bare', '× bare, same flags', '× SDK', 'p50 ms', 'p99 ms', 'p99 × bare', 'max ms', 'peak RSS MB', 'server CPU µs/req (all threads / main)', 'lines written == accepted'];
  const rows = summaries.map((summary) => [
    summary.target.name,
    summary.target.runtime,
    thousands(summary.requestsPerSecond),
    fixed(summary.vsBare, 2),
    fixed(summary.vsBareSameFlags, 2),
    fixed(summary.vsSdk, 2),
    fixed(summary.p50, 2),
    fixed(summary.p99, 2),
    fixed(summary.p99VsBare, 2),
    fixed(summary.max, 1),
    megabytes(summary.peakRssBytes),
    `${fixed(summary.cpuMicrosPerRequest, 0)} / ${fixed(summary.mainThreadCpuMicrosPerRequest, 0)}`,
    linesCell(summary),
  ]);
  return markdownTable(header, rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']);
}

/** Every burst, in the order run: the spread behind the medians (a shared VM is noisy). */
export function repeatsTable(results: readonly BurstResult[]): string {
  return markdownTable(
    ['repeat', 'server', 'req/s', 'p99 ms', 'peak RSS MB', 'server CPU µs/req', 'missing'],
    results.map((result) => [
      String(result.repeat + 1),
      result.target,
      Math.round(result.requestsPerSecond).toLocaleString('en-US'),
      percentile(result.latencies, 0.99).toFixed(2),
      megabytes(result.peakRssBytes),
      result.cpuMicrosPerRequest.toFixed(0),
      result.output ? String(result.output.missing) : 'n/a',
    ]),
    ['r', 'l', 'r', 'r', 'r', 'r', 'r'],
  );
}

export function microTable(results: readonly MicroResult[]): string {
  const firstOfGroup = new Map<string, number>();
  for (const result of results) if (!firstOfGroup.has(result.group)) firstOfGroup.set(result.group, result.opsPerSecond);
  const rows = results.map((result) => [
    result.group,
    result.name,
    thousands(result.opsPerSecond),
    (1e6 / result.opsPerSecond).toFixed(2),
    `±${result.rme.toFixed(1)}%`,
    `${(result.opsPerSecond / firstOfGroup.get(result.group)!).toFixed(2)}×`,
  ]);
  return markdownTable(['step', 'candidate', 'ops/s', 'µs/op', 'rme', 'vs first of step'], rows, ['l', 'l', 'r', 'r', 'r', 'r']);
}

export function startupTable(results: readonly StartupResult[]): string {
  const rows = results.map((result) => [
    result.target,
    String(result.samples.length),
    fixed(result.samples[0] ?? Number.NaN, 0),
    fixed(median(result.samples), 0),
    fixed(result.samples[result.samples.length - 1] ?? Number.NaN, 0),
  ]);
  return markdownTable(['program', 'starts', 'min ms', 'median ms', 'max ms'], rows, ['l', 'r', 'r', 'r', 'r']);
}

export interface Verdict {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

/** The burst's targets. Ratios are against bare node:http on the row's own runtime. */
export const BURST_TARGETS = {
  /** req/s at least this share of bare node:http's. */
  throughputVsBare: 0.8,
  /** p99 at most this multiple of bare node:http's p99. */
  p99VsBare: 1.25,
  /** req/s at least this multiple of the SDK receiver's. */
  throughputVsSdk: 2,
  /** The executable's peak RSS. */
  peakRssMegabytes: 85,
  /** exec → /health 200, the executable. */
  startupMs: 150,
} as const;

/** The targets, judged for every control-plane row (memory and start-up: the executables only). */
export function verdicts(summaries: readonly TargetSummary[], startup: readonly StartupResult[], controlPlaneNames: readonly string[], executableNames: readonly string[]): Verdict[] {
  const out: Verdict[] = [];
  const t = BURST_TARGETS;
  const rows = summaries.filter((summary) => controlPlaneNames.includes(summary.target.name));
  const judge = (
    target: string,
    pick: (summary: TargetSummary) => number | null,
    test: (value: number) => boolean,
    format: (value: number) => string,
    aside: (summary: TargetSummary) => string = () => '',
  ): void => {
    const parts = rows.map((summary) => ({ name: summary.target.name, value: pick(summary), aside: aside(summary) }));
    const known = parts.filter((part): part is { name: string; value: number; aside: string } => part.value !== null && Number.isFinite(part.value));
    out.push({
      target,
      measured: parts.map((part) => `${part.name}: ${part.value === null ? '—' : format(part.value)}${part.aside}`).join('; '),
      met: known.length ? known.every((part) => test(part.value)) : null,
    });
  };
  judge(`throughput ≥ ${t.throughputVsBare}× bare node:http (same runtime)`, (s) => s.vsBare, (v) => v >= t.throughputVsBare, (v) => `${v.toFixed(2)}×`, (s) => (s.vsBareSameFlags === null ? '' : ` (${s.vsBareSameFlags.toFixed(2)}× bare with the same flags)`));
  judge(`p99 ≤ ${t.p99VsBare}× bare node:http's p99 (same runtime)`, (s) => s.p99VsBare, (v) => v <= t.p99VsBare, (v) => `${v.toFixed(2)}×`);
  judge(`throughput ≥ ${t.throughputVsSdk}× the SDK receiver`, (s) => s.vsSdk, (v) => v >= t.throughputVsSdk, (v) => `${v.toFixed(2)}×`);
  // Memory is judged on what ships: the sources run under tsx, whose
  // loader and esbuild service add their own memory (shown, not judged).
  const shipped = rows.filter((summary) => executableNames.includes(summary.target.name));
  const sources = rows.filter((summary) => !executableNames.includes(summary.target.name));
  out.push({
    target: `peak RSS ≤ ${t.peakRssMegabytes} MB (the executable)`,
    measured: [
      shipped.length ? shipped.map((summary) => `${summary.target.name}: ${megabytes(summary.peakRssBytes)} MB`).join('; ') : 'no executable',
      ...sources.map((summary) => `(${summary.target.name} under tsx: ${megabytes(summary.peakRssBytes)} MB)`),
    ].join(' '),
    met: shipped.length ? shipped.every((summary) => summary.peakRssBytes <= t.peakRssMegabytes * 1024 * 1024) : null,
  });
  const executable = startup.find((result) => executableNames.includes(result.target));
  out.push({
    target: `the executable is healthy ≤ ${t.startupMs} ms after exec`,
    measured: executable ? `median ${median(executable.samples).toFixed(0)} ms, max ${executable.samples[executable.samples.length - 1]!.toFixed(0)} ms over ${executable.samples.length} starts` : 'not measured (no dist/control-plane, or --starts 0)',
    met: executable ? median(executable.samples) <= t.startupMs : null,
  });
  judge('zero accepted webhooks missing from the output', (s) => s.missing, (v) => v === 0, (v) => `${v} missing`);
  return out;
}

export function verdictTable(list: readonly Verdict[]): string {
  return markdownTable(
    ['target', 'measured', 'met'],
    list.map((verdict) => [verdict.target, verdict.measured, verdict.met === null ? 'n/a' : verdict.met ? 'yes' : '**no**']),
    ['l', 'l', 'l'],
  );
}

// ---------------------------------------------------------------- SVG chart

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * Latency by percentile, one line per server (HdrHistogram style): the x
 * axis counts "nines" (50%, 90%, 99%, 99.9%, 99.99%), so the tail that
 * matters under a burst gets as much room as the median.
 */
export function latencyChart(summaries: readonly TargetSummary[], title: string): string {
  const width = 860;
  const height = 460;
  const margin = { left: 64, right: 230, top: 44, bottom: 56 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const maxNines = 4;
  const ninesOf = (fraction: number) => Math.min(maxNines, -Math.log10(1 - fraction));
  const yMax = niceCeiling(Math.max(...summaries.map((summary) => percentile(summary.latencies, 0.9999))));
  const x = (nines: number) => margin.left + (nines / maxNines) * plotWidth;
  const y = (ms: number) => margin.top + plotHeight - (Math.min(ms, yMax) / yMax) * plotHeight;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${margin.left}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  // Grid and axes.
  for (let tick = 0; tick <= 5; tick++) {
    const ms = (yMax * tick) / 5;
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 8}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end">${Number(ms.toPrecision(3))}</text>`);
  }
  const xTicks: Array<[number, string]> = [[0, '0%'], [Math.log10(2), '50%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%']];
  for (const [nines, label] of xTicks) {
    parts.push(`<line x1="${x(nines).toFixed(1)}" x2="${x(nines).toFixed(1)}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x(nines).toFixed(1)}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${label}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${margin.left + plotWidth / 2}" y="${height - 12}" text-anchor="middle">percentile of requests</text>`);
  parts.push(`<text transform="translate(16 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">latency (ms)</text>`);

  summaries.forEach((summary, index) => {
    const colour = COLOURS[index % COLOURS.length]!;
    const points: string[] = [];
    const steps = 240;
    for (let step = 0; step <= steps; step++) {
      const nines = (step / steps) * maxNines;
      const fraction = 1 - 10 ** -nines;
      points.push(`${x(ninesOf(fraction)).toFixed(1)},${y(percentile(summary.latencies, Math.max(fraction, 1 / summary.latencies.length))).toFixed(1)}`);
    }
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(' ')}"/>`);
    const legendY = margin.top + 10 + index * 40;
    parts.push(`<line x1="${width - margin.right + 16}" x2="${width - margin.right + 40}" y1="${legendY}" y2="${legendY}" stroke="${colour}" stroke-width="3"/>`);
    parts.push(`<text x="${width - margin.right + 46}" y="${legendY + 4}">${escapeXml(summary.target.name)}</text>`);
    parts.push(
      `<text x="${width - margin.right + 46}" y="${legendY + 19}" fill="#555" font-size="11">p50 ${summary.p50.toFixed(1)} · p99 ${summary.p99.toFixed(1)} · max ${summary.max.toFixed(0)} ms</text>`,
    );
  });
  parts.push(`<text x="${margin.left + plotWidth}" y="${margin.top - 8}" text-anchor="end" fill="#555" font-size="11">values above ${yMax} ms are drawn at the top edge</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

// ------------------------------------------------------ SVG chart: RSS over a run

export interface RssSeries {
  readonly name: string;
  /** [webhooks answered so far, RSS bytes], in order. */
  readonly samples: ReadonlyArray<readonly [number, number]>;
}

/**
 * RSS over a sustained run, one line per series, drawn like the latency
 * chart. The x axis counts webhooks answered (the server idles while the
 * next chunk is generated, so the wall clock would only stretch the gaps);
 * light lines mark the chunks, dashed ones the `marks`.
 */
export function rssChart(series: readonly RssSeries[], options: { title: string; chunkSize: number; total: number; marks: ReadonlyArray<{ at: number; label: string }> }): string {
  const width = 860;
  const height = 460;
  const margin = { left: 64, right: 230, top: 44, bottom: 56 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const toMb = (bytes: number) => bytes / 1024 / 1024;
  const yMax = niceCeiling(Math.max(1, ...series.flatMap((line) => line.samples.map(([, rss]) => toMb(rss)))) * 1.1);
  const xMax = Math.max(1, options.total);
  const x = (webhooks: number) => margin.left + (Math.min(webhooks, xMax) / xMax) * plotWidth;
  const y = (megabytes: number) => margin.top + plotHeight - (Math.min(megabytes, yMax) / yMax) * plotHeight;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${margin.left}" y="24" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`);
  for (let tick = 0; tick <= 5; tick++) {
    const megabytes = (yMax * tick) / 5;
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${y(megabytes).toFixed(1)}" y2="${y(megabytes).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 8}" y="${(y(megabytes) + 4).toFixed(1)}" text-anchor="end">${Number(megabytes.toPrecision(3))}</text>`);
  }
  for (let at = 0; at <= xMax; at += options.chunkSize) {
    parts.push(`<line x1="${x(at).toFixed(1)}" x2="${x(at).toFixed(1)}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x(at).toFixed(1)}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${Number((at / 1e6).toPrecision(3))}</text>`);
  }
  for (const mark of options.marks) {
    if (mark.at <= 0 || mark.at >= xMax) continue;
    parts.push(`<line x1="${x(mark.at).toFixed(1)}" x2="${x(mark.at).toFixed(1)}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#555" stroke-dasharray="5 4"/>`);
    parts.push(`<text x="${(x(mark.at) + 4).toFixed(1)}" y="${margin.top + 14}" fill="#555" font-size="11">${escapeXml(mark.label)}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${margin.left + plotWidth / 2}" y="${height - 12}" text-anchor="middle">webhooks answered (millions); a light line per chunk</text>`);
  parts.push(`<text transform="translate(16 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">RSS (MB)</text>`);
  series.forEach((line, index) => {
    const colour = COLOURS[index % COLOURS.length]!;
    const points = line.samples.map(([webhooks, rss]) => `${x(webhooks).toFixed(1)},${y(toMb(rss)).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points.join(' ')}"/>`);
    const legendY = margin.top + 10 + index * 40;
    const peak = Math.max(...line.samples.map(([, rss]) => toMb(rss)));
    const last = line.samples.length ? toMb(line.samples[line.samples.length - 1]![1]) : Number.NaN;
    parts.push(`<line x1="${width - margin.right + 16}" x2="${width - margin.right + 40}" y1="${legendY}" y2="${legendY}" stroke="${colour}" stroke-width="3"/>`);
    parts.push(`<text x="${width - margin.right + 46}" y="${legendY + 4}">${escapeXml(line.name)}</text>`);
    parts.push(`<text x="${width - margin.right + 46}" y="${legendY + 19}" fill="#555" font-size="11">highest sample ${peak.toFixed(0)} MB · at the end ${last.toFixed(0)} MB</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
