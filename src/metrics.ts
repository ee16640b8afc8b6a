// Counters, gauges and histograms in the Prometheus text exposition format
// (version 0.0.4). Small on purpose: every metric declares its label names
// up front, label sets are few and known (event names, outcomes, reasons),
// and each metric is a Map from the rendered label string to its value.
// Every label of the daemon's metrics takes values from a known list
// (LabelValues): what comes from outside (an event name, an error code) is
// counted under `unknown`/`other`, so no input can bloat /metrics or use up
// the room the product's own label sets need.
//
// Naming follows the Prometheus conventions: `control_plane_` prefix,
// counters end in `_total`, base units (`_seconds`, `_bytes`). The process
// metrics use the names every Prometheus client library exports
// (`process_resident_memory_bytes`, ...) so stock dashboards work.

import { readdirSync, readFileSync } from 'node:fs';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { DestinationStatus } from './forward/forwarder.ts';
import { STORE_ERROR_REASONS, type StoreCounts } from './store/store.ts';
import type { ObsEvent } from './obs/schema.ts';
import { CALL_OUTCOMES, EGRESS_PROVIDER_STATUSES, INGRESS_PROVIDER_STATUSES, SIP_PROVIDER_RULES } from './obs/transitions.ts';
import { LIVEKIT_EVENT_TYPES } from './obs/livekit.ts';

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

/**
 * The values one label may take. Anything else is counted under
 * `otherwise`, so a value that comes from outside (an event name, an error
 * code) can neither make a series of its own nor use up MAX_SERIES: the
 * product's own label sets always have room. init() on a metric declares
 * more values (the server declares every rejection reason that way).
 */
export class LabelValues {
  private readonly known: Set<string>;
  constructor(known: Iterable<string>, readonly otherwise: string) {
    this.known = new Set(known);
    this.known.add(otherwise);
  }

  declare(value: string): void {
    this.known.add(value);
  }

  /** The value itself when known, `otherwise` when not. */
  canonical(value: string): string {
    return this.known.has(value) ? value : this.otherwise;
  }
}

type LabelDomains = Readonly<Record<string, LabelValues>>;

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
  constructor(private readonly metric: string, private readonly labelNames: readonly string[], private readonly domains: LabelDomains = {}) {
    for (const name of Object.keys(domains)) if (!labelNames.includes(name)) throw new Error(`${metric}: values given for label ${name}, which it does not have`);
  }

  /** Declares the values of `labels` for the labels that have a LabelValues (init()). */
  declare(labels: Labels | undefined): void {
    for (const [name, domain] of Object.entries(this.domains)) {
      const value = labels?.[name];
      if (value !== undefined) domain.declare(value);
    }
  }

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

  /**
   * Renders the key (throws on a missing label), with every value a label
   * does not know replaced by its fallback, and remembers it while the
   * cache is small. Only label sets of known values are remembered, so the
   * cache lookup in key() never needs to check values.
   */
  private cacheKey(labels: Labels | undefined): string {
    let known = true;
    if (labels !== undefined) {
      for (const name in this.domains) {
        const value = labels[name];
        if (value === undefined) continue;
        const canonical = this.domains[name]!.canonical(value);
        if (canonical !== value) {
          if (known) labels = { ...labels };
          known = false;
          (labels as Record<string, string>)[name] = canonical;
        }
      }
    }
    const key = this.renderKey(labels);
    if (!known || this.cachedKeys >= 4 * MAX_SERIES) return key;
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

  constructor(readonly name: string, private readonly help: string, readonly labelNames: readonly string[] = [], domains: LabelDomains = {}) {
    checkNames(name, labelNames);
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    this.series = new SeriesMap(name, labelNames, domains);
  }

  inc(labels?: Labels, amount = 1): void {
    if (!(amount >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${amount})`);
    this.series.entry(labels, newCount).value += amount;
  }

  /** Makes the series exist at 0, so rate() and alerts see it before the first event; declares its label values. */
  init(labels?: Labels): void {
    this.series.declare(labels);
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

/** A metric read when scraped, one sample per value of one label (per forwarding destination, ...). */
export class SampledFamily implements Metric {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: 'gauge' | 'counter',
    private readonly label: string,
    private readonly read: () => ReadonlyArray<readonly [string, number]>,
  ) {
    checkNames(name, [label]);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
  }

  render(): string {
    const samples = this.read().slice(0, MAX_SERIES);
    let text = header(this.name, this.help, this.type);
    for (const [value, sample] of samples) text += `${this.name}{${this.label}="${escapeLabelValue(value)}"} ${formatValue(sample)}\n`;
    return text;
  }
}

/** A constant 1 whose labels carry the facts, Prometheus's `_info` idiom (`control_plane_build_info{version=...}`). */
export class InfoMetric implements Metric {
  private readonly text: string;

  constructor(readonly name: string, help: string, labels: Labels) {
    checkNames(name, Object.keys(labels));
    const rendered = Object.entries(labels)
      .map(([label, value]) => `${label}="${escapeLabelValue(value)}"`)
      .join(',');
    this.text = `${header(name, help, 'gauge')}${name}{${rendered}} 1\n`;
  }

  render(): string {
    return this.text;
  }
}

/** monitorEventLoopDelay's default sampling period. */
const LAG_RESOLUTION_MS = 10;

/**
 * How late the event loop runs timers (perf_hooks.monitorEventLoopDelay,
 * sampled every LAG_RESOLUTION_MS): a loop blocked by a long synchronous
 * step (a big state file, a full stdout pipe) delays every webhook behind
 * it. Three gauges over the time since the previous scrape (the histogram
 * starts afresh at each), in seconds, as prom-client names them.
 */
export class EventLoopLag implements Metric {
  readonly name = 'nodejs_eventloop_lag_seconds';
  private readonly histogram: IntervalHistogram;

  constructor(resolutionMs = LAG_RESOLUTION_MS) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  render(): string {
    const histogram = this.histogram;
    const empty = histogram.count === 0;
    const seconds = (nanoseconds: number): string => formatValue(empty ? 0 : nanoseconds / 1e9);
    const text =
      `${header('nodejs_eventloop_lag_p50_seconds', 'Event loop lag, median since the previous scrape.', 'gauge')}nodejs_eventloop_lag_p50_seconds ${seconds(histogram.percentile(50))}\n` +
      `${header('nodejs_eventloop_lag_p99_seconds', 'Event loop lag, 99th percentile since the previous scrape.', 'gauge')}nodejs_eventloop_lag_p99_seconds ${seconds(histogram.percentile(99))}\n` +
      `${header('nodejs_eventloop_lag_max_seconds', 'Event loop lag, the largest since the previous scrape.', 'gauge')}nodejs_eventloop_lag_max_seconds ${seconds(histogram.max)}\n`;
    histogram.reset();
    return text;
  }

  close(): void {
    this.histogram.disable();
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

  constructor(readonly name: string, private readonly help: string, buckets: readonly number[], readonly labelNames: readonly string[] = [], domains: LabelDomains = {}) {
    checkNames(name, labelNames);
    for (let index = 0; index < buckets.length; index++) {
      if (!Number.isFinite(buckets[index]) || (index > 0 && buckets[index]! <= buckets[index - 1]!)) throw new Error(`${name}: buckets must be finite and increasing`);
    }
    this.bounds = buckets;
    this.series = new SeriesMap(name, labelNames, domains);
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
    this.series.declare(labels);
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

/** Call duration and talk time, seconds: from a failed dial (about a second) to calls of hours. */
export const CALL_SECONDS_BUCKETS = [1, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200];

const CALL_DIRECTIONS = ['inbound', 'outbound'] as const;
const PROVIDERS = ['sip', 'egress', 'ingress', 'livekit'] as const;
/** Every reason a provider.event line can carry (transitions.ts and providers.ts). */
const PROVIDER_REASONS = [...new Set([...SIP_PROVIDER_RULES.map((rule) => rule.reason), ...EGRESS_PROVIDER_STATUSES, ...INGRESS_PROVIDER_STATUSES, 'events_dropped'])];

/** What the daemon's other parts report when scraped. */
export interface MetricSources {
  readonly store: () => StoreCounts;
  readonly sinkRotations: () => number;
  readonly outputHealthy: () => boolean;
  /** Opens the output refused because the name was a symbolic link (the sink's stats.symlinksRefused; 0 when not given). */
  readonly outputSymlinksRefused?: () => number;
  /** The program's version, for control_plane_build_info (registered only when given). */
  readonly version?: string;
}

const labelOf = (value: unknown): string => (typeof value === 'string' ? value : 'unknown');

function openFileDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the one readdir itself holds
  } catch {
    return undefined;
  }
}

/** How a POST /webhook was answered (the `outcome` label). */
export const WEBHOOK_OUTCOMES = ['accepted', 'duplicate', 'rejected', 'output_error', 'store_error'] as const;
/** The `event` label before the event is known (not verified or not decoded). */
export const NO_EVENT = 'none';
/**
 * Error codes a write to the output can fail with (errno names, and the
 * stdout sink's EAGAIN after a stall); any other code is counted as `other`.
 */
export const OUTPUT_ERROR_CODES = [
  'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EPIPE', 'EAGAIN', 'EBADF', 'EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EEXIST',
  'EMFILE', 'ENFILE', 'ENXIO', 'EINVAL', 'ENOMEM', 'ESTALE', 'ENAMETOOLONG', 'ECONNRESET', 'ETIMEDOUT', 'EINTR',
] as const;
/** The soft limit on open files (`Max open files` in /proc/self/limits), or undefined where there is none to read. */
export function maxFileDescriptors(limits: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits());
    if (!match) return undefined;
    return match[1] === 'unlimited' ? Infinity : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** Every metric the daemon exports. The server and main update them; GET /metrics renders them. */
export class DaemonMetrics {
  readonly registry = new Registry();
  /** Rejection reasons: declared by the server (rejections.init), shared by both reason-labelled counters. */
  private readonly reasons = new LabelValues([], OVERFLOW_LABEL_VALUE);
  private readonly outcomes = new LabelValues(WEBHOOK_OUTCOMES, OVERFLOW_LABEL_VALUE);
  readonly webhooks = this.registry.register(
    new Counter(
      'control_plane_webhooks_total',
      'POST /webhook requests answered, by LiveKit event ("none" until verified and decoded, "unknown" for a name this version does not know) and outcome (accepted, duplicate, rejected, output_error).',
      ['event', 'outcome'],
      { event: new LabelValues([...Object.keys(LIVEKIT_EVENT_TYPES), NO_EVENT], 'unknown'), outcome: this.outcomes },
    ),
  );
  readonly rejections = this.registry.register(
    new Counter('control_plane_rejections_total', 'Requests refused (every 4xx/5xx answer and every malformed or timed-out HTTP request), by reason.', ['reason'], { reason: this.reasons }),
  );
  readonly duplicates = this.registry.register(new Counter('control_plane_duplicates_total', 'Redelivered webhook ids answered 200 without new lines.'));
  readonly outputErrors = this.registry.register(
    new Counter('control_plane_output_errors_total', 'Writes to the output (stdout or the log file) that failed, by error code.', ['code'], { code: new LabelValues(OUTPUT_ERROR_CODES, OVERFLOW_LABEL_VALUE) }),
  );
  readonly rejectedLinesSuppressed = this.registry.register(
    new Counter('control_plane_rejected_lines_suppressed_total', 'Rejection lines not written because of the per-reason rate limit, by reason.', ['reason'], { reason: this.reasons }),
  );
  readonly requestDuration = this.registry.register(
    new Histogram('control_plane_request_duration_seconds', 'POST /webhook: time from the request headers to the answer, by outcome.', LATENCY_BUCKETS, ['outcome'], { outcome: this.outcomes }),
  );
  readonly deliveryDelay = this.registry.register(
    new Histogram('control_plane_webhook_delivery_delay_seconds', "Accepted webhooks: time from the event's createdAt (LiveKit's clock) to its arrival (ours); 0 when LiveKit's clock is ahead.", DELAY_BUCKETS),
  );
  readonly openConnections = this.registry.register(new Gauge('control_plane_open_connections', 'HTTP connections open now.'));
  readonly connectionsEvicted = this.registry.register(
    new Counter('control_plane_connections_evicted_total', 'Connections closed to make room at --max-connections (the longest-waiting idle or unfinished ones).'),
  );
  readonly connectionsRefused = this.registry.register(new Counter('control_plane_connections_refused_total', 'Connections refused at --max-connections because every open one was busy.'));
  readonly storeErrors = this.registry.register(
    new Counter('control_plane_store_errors_total', 'Store reads or commits that failed or timed out (the webhooks answered 503), by reason.', ['reason'], {
      reason: new LabelValues(STORE_ERROR_REASONS, OVERFLOW_LABEL_VALUE),
    }),
  );
  readonly storeDuration = this.registry.register(
    new Histogram('control_plane_store_duration_seconds', 'Shared store (--store redis://…) round trips per group of webhooks, leases and waits included, by operation (read, commit).', LATENCY_BUCKETS, ['operation'], {
      operation: new LabelValues(['read', 'commit'], OVERFLOW_LABEL_VALUE),
    }),
  );
  readonly bodyMemoryRefusals = this.registry.register(
    new Counter('control_plane_body_budget_refusals_total', 'Webhooks answered 503 because the request bodies held at once would pass --max-body-memory.'),
  );
  readonly bodyBytesHeld = this.registry.register(new SampledMetric('control_plane_held_body_bytes', 'Request body bytes held in memory now, across all connections.', 'gauge', () => 0));
  readonly keyReloads = this.registry.register(
    new Counter('control_plane_key_reloads_total', 'Keys file reloads on SIGHUP, by result (success, failure: the previous keys stay in use).', ['result'], { result: new LabelValues(['success', 'failure'], OVERFLOW_LABEL_VALUE) }),
  );
  private readonly directions = new LabelValues(CALL_DIRECTIONS, 'unknown');
  readonly calls = this.registry.register(
    new Counter('control_plane_calls_total', 'SIP call legs ended (call.ended lines written), by direction and outcome.', ['direction', 'outcome'], {
      direction: this.directions,
      outcome: new LabelValues(CALL_OUTCOMES, 'unknown'),
    }),
  );
  readonly callDuration = this.registry.register(
    new Histogram('control_plane_call_duration_seconds', "Ended SIP call legs: from the leg joining to its end, by LiveKit's clock (duration_ms), by direction.", CALL_SECONDS_BUCKETS, ['direction'], { direction: this.directions }),
  );
  readonly callTalkTime = this.registry.register(
    new Histogram('control_plane_call_talk_time_seconds', 'Answered SIP call legs whose answer time is known: from the answer to the end (talk_ms), by direction.', CALL_SECONDS_BUCKETS, ['direction'], { direction: this.directions }),
  );
  readonly providerEvents = this.registry.register(
    new Counter('control_plane_provider_events_total', 'provider.event lines written (trouble on the provider side), by provider and reason, e.g. sip / sip_trunk_failure.', ['provider', 'reason'], {
      provider: new LabelValues(PROVIDERS, OVERFLOW_LABEL_VALUE),
      reason: new LabelValues(PROVIDER_REASONS, OVERFLOW_LABEL_VALUE),
    }),
  );
  private readonly eventLoopLag = new EventLoopLag();

  constructor(sources: MetricSources) {
    const sampled = (name: string, help: string, type: 'gauge' | 'counter', read: () => number) => this.registry.register(new SampledMetric(name, help, type, read));
    sampled('control_plane_open_sessions', 'Sessions (rooms) created and not yet ended.', 'gauge', () => sources.store().openSessions);
    sampled('control_plane_open_calls', 'SIP call legs started and not yet ended.', 'gauge', () => sources.store().openCalls);
    sampled('control_plane_ended_sessions_remembered', 'Ended sessions remembered so that late events for them stay ignored.', 'gauge', () => sources.store().endedSessions);
    sampled('control_plane_event_ids_remembered', 'Event ids remembered for dedup.', 'gauge', () => sources.store().rememberedIds);
    sampled('control_plane_sessions_evicted_total', 'Open sessions forgotten without an ended line (idle timeout or the store cap).', 'counter', () => sources.store().evictedSessions);
    sampled('control_plane_output_healthy', '1 when the last write to the output succeeded, 0 while degraded (/health answers 503).', 'gauge', () => (sources.outputHealthy() ? 1 : 0));
    sampled('control_plane_log_rotations_total', 'Size-based rotations of the log file.', 'counter', sources.sinkRotations);
    sampled(
      'control_plane_output_symlinks_refused_total',
      'Opens of the log file or of a rotated file refused because the name was a symbolic link (never written through).',
      'counter',
      sources.outputSymlinksRefused ?? (() => 0),
    );
    for (const result of ['success', 'failure']) this.keyReloads.init({ result });
    for (const direction of CALL_DIRECTIONS) {
      for (const outcome of CALL_OUTCOMES) this.calls.init({ direction, outcome });
      this.callDuration.init({ direction });
      this.callTalkTime.init({ direction });
    }
    for (const reason of ['sip_trunk_failure', 'media_failure']) this.providerEvents.init({ provider: 'sip', reason });

    const startTimeSeconds = Math.round(Date.now() - process.uptime() * 1000) / 1000;
    sampled('process_start_time_seconds', 'Start time of the process since the Unix epoch.', 'gauge', () => startTimeSeconds);
    sampled('process_resident_memory_bytes', 'Resident memory size.', 'gauge', () => process.memoryUsage.rss());
    sampled('process_cpu_seconds_total', 'User and system CPU time spent.', 'counter', () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    });
    if (openFileDescriptors() !== undefined) sampled('process_open_fds', 'Open file descriptors (sockets included).', 'gauge', () => openFileDescriptors() ?? NaN);
    if (maxFileDescriptors() !== undefined) sampled('process_max_fds', 'Maximum number of open file descriptors (the soft limit).', 'gauge', () => maxFileDescriptors() ?? NaN);
    sampled('nodejs_heap_size_used_bytes', 'V8 heap in use.', 'gauge', () => process.memoryUsage().heapUsed);
    sampled('nodejs_external_memory_bytes', 'Memory outside the V8 heap held by JavaScript objects (buffers).', 'gauge', () => process.memoryUsage().external);
    this.registry.register(this.eventLoopLag);
    if (sources.version !== undefined) {
      this.registry.register(new InfoMetric('control_plane_build_info', 'The running version and its Node.js runtime; always 1.', { version: sources.version, node: process.version }));
    }
  }

  /** Stops sampling the event loop (at shutdown; the sampler never keeps the process alive). */
  close(): void {
    this.eventLoopLag.close();
  }

  /** The forwarding metrics, per destination (registered only when --forward-url is set). */
  registerForwarding(forwarder: { status(): readonly DestinationStatus[]; readonly spoolBytes: number; observe(observer: { delivered(url: string, seconds: number): void }): void }): void {
    const family = (name: string, help: string, type: 'gauge' | 'counter', read: (status: DestinationStatus) => number) =>
      this.registry.register(new SampledFamily(name, help, type, 'destination', () => forwarder.status().map((status) => [status.url, read(status)] as const)));
    family('control_plane_forward_queued', 'Derived events waiting for delivery, per destination.', 'gauge', (status) => status.queued);
    family('control_plane_forward_delivered_total', 'Derived events delivered (2xx), per destination.', 'counter', (status) => status.delivered);
    family('control_plane_forward_failed_attempts_total', 'Delivery attempts that failed and will be retried (5xx, 408, 429, connection errors), per destination.', 'counter', (status) => status.failedAttempts);
    family('control_plane_forward_given_up_total', 'Derived events the destination refused with a 4xx other than 408/429: not retried.', 'counter', (status) => status.givenUp);
    family('control_plane_forward_dropped_total', 'Derived events dropped undelivered because the spool was full (or could not take them).', 'counter', (status) => status.dropped);
    family('control_plane_forward_oldest_undelivered_age_seconds', 'Age of the oldest event waiting for delivery (0 when none).', 'gauge', (status) => status.oldestAgeSeconds);
    this.registry.register(new SampledMetric('control_plane_forward_spool_bytes', 'Bytes in the forwarding spool on disk.', 'gauge', () => forwarder.spoolBytes));
    const latency = this.registry.register(new Histogram('control_plane_forward_delivery_duration_seconds', 'Delivery requests that succeeded: time to the answer, per destination.', LATENCY_BUCKETS, ['destination']));
    forwarder.observe({ delivered: (url, seconds) => latency.observe(seconds, { destination: url }) });
  }

  /**
   * Counts the call.ended and provider.event lines of webhooks whose lines
   * are written and whose state is committed (a failed write counts nothing,
   * and LiveKit's retry is counted once it succeeds).
   */
  observeWrittenLines(events: readonly ObsEvent[]): void {
    for (let index = 0; index < events.length; index++) {
      const line = events[index]!;
      if (line.event_type === 'call.ended') {
        const direction = labelOf(line.direction);
        this.calls.inc({ direction, outcome: labelOf(line.outcome) });
        if (typeof line.duration_ms === 'number') this.callDuration.observe(line.duration_ms / 1000, { direction });
        if (typeof line.talk_ms === 'number') this.callTalkTime.observe(line.talk_ms / 1000, { direction });
      } else if (line.event_type === 'provider.event') {
        this.providerEvents.inc({ provider: labelOf(line.provider), reason: labelOf(line.reason) });
      }
    }
  }
}
