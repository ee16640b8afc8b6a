// Counters, gauges and histograms in the Prometheus text exposition format
// (version 0.0.4). Small on purpose: every metric declares its label names
// up front, label sets are few and known (event names, outcomes, reasons),
// and each metric is a Map from the rendered label string to its value.
//
// Naming follows the Prometheus conventions: `control_plane_` prefix,
// counters end in `_total`, base units (`_seconds`, `_bytes`). The process
// metrics use the names every Prometheus client library exports
// (`process_resident_memory_bytes`, ...) so stock dashboards work.

import { readdirSync } from 'node:fs';
import type { StoreCounts } from './store/store.ts';

type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as Prometheus writes it (Go's ParseFloat syntax; `+Inf`, not `Infinity`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** At most this many label sets per metric; beyond it new sets are folded into `other`, so no input can grow memory. */
export const MAX_SERIES = 200;
export const OVERFLOW_LABEL_VALUE = 'other';

interface Metric {
  readonly name: string;
  render(): string;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

function checkNames(name: string, labelNames: readonly string[]): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
  for (const label of labelNames) {
    if (!LABEL_NAME.test(label) || label.startsWith('__') || label === 'le') throw new Error(`invalid label name ${JSON.stringify(label)} on ${name}`);
  }
  if (new Set(labelNames).size !== labelNames.length) throw new Error(`duplicate label name on ${name}`);
}

/**
 * Labelled series of one metric. The key is the rendered label set in the
 * declared label order (`event="x",outcome="y"`), so the same labels given
 * in another order are the same series.
 */
class SeriesMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly metric: string, private readonly labelNames: readonly string[]) {}

  /**
   * Rendered keys by label values (one nested Map level per label name), so
   * a known label set costs a few Map lookups instead of escaping and
   * concatenating on every inc/observe. Bounded like the series.
   */
  private readonly keyCache = new Map<string, unknown>();
  private cachedKeys = 0;

  key(labels: Labels | undefined): string {
    const names = this.labelNames;
    if (names.length === 0) return '';
    let level = this.keyCache;
    const last = names.length - 1;
    for (let index = 0; index < last; index++) {
      const value = labels?.[names[index]!];
      const next = value === undefined ? undefined : (level.get(value) as Map<string, unknown> | undefined);
      if (next === undefined) return this.cacheKey(labels);
      level = next;
    }
    const value = labels?.[names[last]!];
    const cached = value === undefined ? undefined : (level.get(value) as string | undefined);
    return cached ?? this.cacheKey(labels);
  }

  /** Renders the key (throws on a missing label) and remembers it while the cache is small. */
  private cacheKey(labels: Labels | undefined): string {
    const key = this.renderKey(labels);
    if (this.cachedKeys >= 4 * MAX_SERIES) return key;
    const names = this.labelNames;
    let level = this.keyCache;
    for (let index = 0; index < names.length - 1; index++) {
      const value = labels![names[index]!]!;
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(value, (next = new Map()));
      level = next;
    }
    level.set(labels![names[names.length - 1]!]!, key);
    this.cachedKeys++;
    return key;
  }

  private renderKey(labels: Labels | undefined): string {
    let key = '';
    for (const name of this.labelNames) {
      const value = labels?.[name];
      if (value === undefined) throw new Error(`${this.metric}: label ${name} missing`);
      key += `${key === '' ? '' : ','}${name}="${escapeLabelValue(value)}"`;
    }
    return key;
  }

  /** The entry for `labels`, created with `create` when new (folded into `other` past MAX_SERIES). */
  entry(labels: Labels | undefined, create: () => V): V {
    let key = this.key(labels);
    let value = this.map.get(key);
    if (value !== undefined) return value;
    if (this.map.size >= MAX_SERIES) {
      key = this.labelNames.map((name) => `${name}="${OVERFLOW_LABEL_VALUE}"`).join(',');
      value = this.map.get(key);
      if (value !== undefined) return value;
    }
    value = create();
    this.map.set(key, value);
    return value;
  }

  get(labels: Labels | undefined): V | undefined {
    return this.map.get(this.key(labels));
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
}

const braced = (key: string): string => (key === '' ? '' : `{${key}}`);

const newCount = (): { value: number } => ({ value: 0 });

/** A monotonically increasing count. */
export class Counter implements Metric {
  private readonly series: SeriesMap<{ value: number }>;

  constructor(readonly name: string, private readonly help: string, readonly labelNames: readonly string[] = []) {
    checkNames(name, labelNames);
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    this.series = new SeriesMap(name, labelNames);
  }

  inc(labels?: Labels, amount = 1): void {
    if (!(amount >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${amount})`);
    this.series.entry(labels, newCount).value += amount;
  }

  /** Makes the series exist at 0, so rate() and alerts see it before the first event. */
  init(labels?: Labels): void {
    this.series.entry(labels, newCount);
  }

  get(labels?: Labels): number {
    return this.series.get(labels)?.value ?? 0;
  }

  render(): string {
    let text = header(this.name, this.help, 'counter');
    if (this.labelNames.length === 0 && this.series.size === 0) text += `${this.name} 0\n`;
    for (const [key, entry] of this.series.entries()) text += `${this.name}${braced(key)} ${formatValue(entry.value)}\n`;
    return text;
  }
}

/** A value that goes up and down, set by the code that owns it. */
export class Gauge implements Metric {
  private value = 0;

  constructor(readonly name: string, private readonly help: string) {
    checkNames(name, []);
  }

  set(value: number): void {
    this.value = value;
  }

  inc(amount = 1): void {
    this.value += amount;
  }

  dec(amount = 1): void {
    this.value -= amount;
  }

  get(): number {
    return this.value;
  }

  render(): string {
    return `${header(this.name, this.help, 'gauge')}${this.name} ${formatValue(this.value)}\n`;
  }
}

/** A value read from its owner when scraped: a gauge, or a counter kept elsewhere (the sink's rotations). */
export class SampledMetric implements Metric {
  constructor(readonly name: string, private readonly help: string, private readonly type: 'gauge' | 'counter', private read: () => number) {
    checkNames(name, []);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
  }

  /** For a value whose owner is built after the metrics (the server's). */
  setSource(read: () => number): void {
    this.read = read;
  }

  render(): string {
    return `${header(this.name, this.help, this.type)}${this.name} ${formatValue(this.read())}\n`;
  }
}

export interface HistogramSnapshot {
  /** Cumulative counts per upper bound, `+Inf` last. */
  readonly buckets: ReadonlyArray<readonly [number, number]>;
  readonly sum: number;
  readonly count: number;
}

export class Histogram implements Metric {
  private readonly series: SeriesMap<{ counts: number[]; sum: number; count: number }>;
  private readonly bounds: readonly number[];

  constructor(readonly name: string, private readonly help: string, buckets: readonly number[], readonly labelNames: readonly string[] = []) {
    checkNames(name, labelNames);
    for (let index = 0; index < buckets.length; index++) {
      if (!Number.isFinite(buckets[index]) || (index > 0 && buckets[index]! <= buckets[index - 1]!)) throw new Error(`${name}: buckets must be finite and increasing`);
    }
    this.bounds = buckets;
    this.series = new SeriesMap(name, labelNames);
  }

  private create = () => ({ counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 });

  /** Records one observation; NaN is ignored (it would poison the sum forever). */
  observe(value: number, labels?: Labels): void {
    if (Number.isNaN(value)) return;
    const entry = this.series.entry(labels, this.create);
    // Counts are kept per bucket and accumulated when rendered: one increment per observation.
    let index = 0;
    while (index < this.bounds.length && value > this.bounds[index]!) index++;
    if (index < this.bounds.length) entry.counts[index]!++;
    entry.sum += value;
    entry.count++;
  }

  init(labels?: Labels): void {
    this.series.entry(labels, this.create);
  }

  get(labels?: Labels): HistogramSnapshot | undefined {
    const entry = this.series.get(labels);
    if (!entry) return undefined;
    let cumulative = 0;
    const buckets: Array<readonly [number, number]> = this.bounds.map((bound, index) => [bound, (cumulative += entry.counts[index]!)] as const);
    buckets.push([Infinity, entry.count]);
    return { buckets, sum: entry.sum, count: entry.count };
  }

  render(): string {
    let text = header(this.name, this.help, 'histogram');
    for (const [key, entry] of this.series.entries()) {
      const prefix = key === '' ? '' : `${key},`;
      let cumulative = 0;
      for (let index = 0; index < this.bounds.length; index++) {
        cumulative += entry.counts[index]!;
        text += `${this.name}_bucket{${prefix}le="${formatValue(this.bounds[index]!)}"} ${cumulative}\n`;
      }
      text += `${this.name}_bucket{${prefix}le="+Inf"} ${entry.count}\n`;
      text += `${this.name}_sum${braced(key)} ${formatValue(entry.sum)}\n${this.name}_count${braced(key)} ${entry.count}\n`;
    }
    return text;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  register<T extends Metric>(metric: T): T {
    if (this.metrics.some((existing) => existing.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }

  render(): string {
    let text = '';
    for (const metric of this.metrics) text += metric.render();
    return text;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Request latency, seconds: the target is milliseconds, LiveKit gives up at 30 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** createdAt → arrival, seconds. createdAt has one-second resolution; LiveKit drops events older than 30 s. */
export const DELAY_BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 900];

/** What the daemon's other parts report when scraped. */
export interface MetricSources {
  readonly store: () => StoreCounts;
  readonly sinkRotations: () => number;
  readonly outputHealthy: () => boolean;
}

function openFileDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the one readdir itself holds
  } catch {
    return undefined;
  }
}

/** Every metric the daemon exports. The server and main update them; GET /metrics renders them. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly webhooks = this.registry.register(
    new Counter('control_plane_webhooks_total', 'POST /webhook requests answered, by LiveKit event ("none" until verified and decoded) and outcome (accepted, duplicate, rejected, output_error).', ['event', 'outcome']),
  );
  readonly rejections = this.registry.register(new Counter('control_plane_rejections_total', 'Requests refused (every 4xx/5xx answer and every malformed or timed-out HTTP request), by reason.', ['reason']));
  readonly duplicates = this.registry.register(new Counter('control_plane_duplicates_total', 'Redelivered webhook ids answered 200 without new lines.'));
  readonly outputErrors = this.registry.register(new Counter('control_plane_output_errors_total', 'Writes to the output (stdout or the log file) that failed, by error code.', ['code']));
  readonly rejectedLinesSuppressed = this.registry.register(
    new Counter('control_plane_rejected_lines_suppressed_total', 'Rejection lines not written because of the per-reason rate limit, by reason.', ['reason']),
  );
  readonly requestDuration = this.registry.register(
    new Histogram('control_plane_request_duration_seconds', 'POST /webhook: time from the request headers to the answer, by outcome.', LATENCY_BUCKETS, ['outcome']),
  );
  readonly deliveryDelay = this.registry.register(
    new Histogram('control_plane_webhook_delivery_delay_seconds', "Accepted webhooks: time from the event's createdAt (LiveKit's clock) to its arrival (ours); 0 when LiveKit's clock is ahead.", DELAY_BUCKETS),
  );
  readonly openConnections = this.registry.register(new Gauge('control_plane_open_connections', 'HTTP connections open now.'));
  readonly connectionsEvicted = this.registry.register(
    new Counter('control_plane_connections_evicted_total', 'Connections closed to make room at --max-connections (the longest-waiting idle or unfinished ones).'),
  );
  readonly connectionsRefused = this.registry.register(new Counter('control_plane_connections_refused_total', 'Connections refused at --max-connections because every open one was busy.'));
  readonly storeErrors = this.registry.register(new Counter('control_plane_store_errors_total', 'Store reads or commits that failed or timed out (the webhooks answered 503), by reason.', ['reason']));
  readonly storeDuration = this.registry.register(
    new Histogram('control_plane_store_duration_seconds', 'Shared store (--store redis://…) round trips per group of webhooks, leases and waits included, by operation (read, commit).', LATENCY_BUCKETS, ['operation']),
  );
  readonly bodyMemoryRefusals = this.registry.register(
    new Counter('control_plane_body_budget_refusals_total', 'Webhooks answered 503 because the request bodies held at once would pass --max-body-memory.'),
  );
  readonly bodyBytesHeld = this.registry.register(new SampledMetric('control_plane_held_body_bytes', 'Request body bytes held in memory now, across all connections.', 'gauge', () => 0));
  readonly keyReloads = this.registry.register(new Counter('control_plane_key_reloads_total', 'Keys file reloads on SIGHUP, by result (success, failure: the previous keys stay in use).', ['result']));

  constructor(sources: MetricSources) {
    const sampled = (name: string, help: string, type: 'gauge' | 'counter', read: () => number) => this.registry.register(new SampledMetric(name, help, type, read));
    sampled('control_plane_open_sessions', 'Sessions (rooms) created and not yet ended.', 'gauge', () => sources.store().openSessions);
    sampled('control_plane_open_calls', 'SIP call legs started and not yet ended.', 'gauge', () => sources.store().openCalls);
    sampled('control_plane_ended_sessions_remembered', 'Ended sessions remembered so that late events for them stay ignored.', 'gauge', () => sources.store().endedSessions);
    sampled('control_plane_event_ids_remembered', 'Event ids remembered for dedup.', 'gauge', () => sources.store().rememberedIds);
    sampled('control_plane_sessions_evicted_total', 'Open sessions forgotten without an ended line (idle timeout or the store cap).', 'counter', () => sources.store().evictedSessions);
    sampled('control_plane_output_healthy', '1 when the last write to the output succeeded, 0 while degraded (/health answers 503).', 'gauge', () => (sources.outputHealthy() ? 1 : 0));
    sampled('control_plane_log_rotations_total', 'Size-based rotations of the log file.', 'counter', sources.sinkRotations);
    for (const result of ['success', 'failure']) this.keyReloads.init({ result });

    const startTimeSeconds = Math.round(Date.now() - process.uptime() * 1000) / 1000;
    sampled('process_start_time_seconds', 'Start time of the process since the Unix epoch.', 'gauge', () => startTimeSeconds);
    sampled('process_resident_memory_bytes', 'Resident memory size.', 'gauge', () => process.memoryUsage.rss());
    sampled('process_cpu_seconds_total', 'User and system CPU time spent.', 'counter', () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    });
    if (openFileDescriptors() !== undefined) sampled('process_open_fds', 'Open file descriptors (sockets included).', 'gauge', () => openFileDescriptors() ?? NaN);
    sampled('nodejs_heap_size_used_bytes', 'V8 heap in use.', 'gauge', () => process.memoryUsage().heapUsed);
    sampled('nodejs_external_memory_bytes', 'Memory outside the V8 heap held by JavaScript objects (buffers).', 'gauge', () => process.memoryUsage().external);
  }
}
