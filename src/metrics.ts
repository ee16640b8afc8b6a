// Counters, gauges and histograms in Prometheus text format (exposition
// format 0.0.4). Small on purpose: label sets are few and known (event
// names, outcomes, reasons), so each metric is a Map from the rendered
// label string to its value.

type Labels = Readonly<Record<string, string>>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function renderLabels(labels: Labels | undefined, extra?: string): string {
  const parts = labels ? Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`) : [];
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface Metric {
  readonly name: string;
  render(): string;
}

/** At most this many label sets per metric; beyond it new sets are folded into `other`, so hostile input cannot grow memory. */
const MAX_SERIES = 200;

function cappedKey(series: Map<string, unknown>, labels: Labels | undefined): string {
  const key = renderLabels(labels);
  if (series.has(key) || series.size < MAX_SERIES) return key;
  const folded: Record<string, string> = {};
  for (const name of Object.keys(labels ?? {})) folded[name] = 'other';
  return renderLabels(folded);
}

export class Counter implements Metric {
  private readonly series = new Map<string, number>();
  constructor(readonly name: string, private readonly help: string) {}

  inc(labels?: Labels, amount = 1): void {
    const key = cappedKey(this.series, labels);
    this.series.set(key, (this.series.get(key) ?? 0) + amount);
  }

  get(labels?: Labels): number {
    return this.series.get(renderLabels(labels)) ?? 0;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.series.size === 0) text += `${this.name} 0\n`;
    for (const [key, value] of this.series) text += `${this.name}${key} ${value}\n`;
    return text;
  }
}

/** A gauge whose value is read when scraped. */
export class Gauge implements Metric {
  constructor(readonly name: string, private readonly help: string, private readonly read: () => number) {}

  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${this.name} ${this.read()}\n`;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, private readonly help: string, private readonly buckets: readonly number[]) {}

  observe(value: number, labels?: Labels): void {
    const key = cappedKey(this.series, labels);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, entry);
    }
    for (let index = 0; index < this.buckets.length; index++) {
      if (value <= this.buckets[index]!) entry.counts[index]!++;
    }
    entry.sum += value;
    entry.count++;
  }

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [key, entry] of this.series) {
      const labels = key === '' ? '' : key.slice(1, -1);
      this.buckets.forEach((bound, index) => {
        text += `${this.name}_bucket{${labels ? labels + ',' : ''}le="${bound}"} ${entry.counts[index]}\n`;
      });
      text += `${this.name}_bucket{${labels ? labels + ',' : ''}le="+Inf"} ${entry.count}\n`;
      text += `${this.name}_sum${key} ${entry.sum}\n${this.name}_count${key} ${entry.count}\n`;
    }
    return text;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  register<T extends Metric>(metric: T): T {
    this.metrics.push(metric);
    return metric;
  }

  render(): string {
    return this.metrics.map((metric) => metric.render()).join('');
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const DELAY_BUCKETS = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300];

/** Every metric the daemon exports. The server updates them; GET /metrics renders them. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly webhooks = this.registry.register(new Counter('control_plane_webhooks_total', 'Webhooks answered, by LiveKit event and outcome (accepted, duplicate, rejected, output_error).'));
  readonly rejections = this.registry.register(new Counter('control_plane_rejections_total', 'Requests refused, by reason.'));
  readonly duplicates = this.registry.register(new Counter('control_plane_duplicates_total', 'Redelivered webhook ids answered 200 without new lines.'));
  readonly outputErrors = this.registry.register(new Counter('control_plane_output_errors_total', 'Writes to the output that failed (each answered 503), by error code.'));
  readonly rejectedLinesSuppressed = this.registry.register(new Counter('control_plane_rejected_lines_suppressed_total', 'webhook.rejected lines not written because of the per-reason rate limit.'));
  readonly requestDuration = this.registry.register(new Histogram('control_plane_request_duration_seconds', 'Time from request start to answer, webhook requests.', LATENCY_BUCKETS));
  readonly deliveryDelay = this.registry.register(new Histogram('control_plane_webhook_delivery_delay_seconds', "Time between a webhook's createdAt (LiveKit) and its arrival.", DELAY_BUCKETS));

  constructor(sources: { openSessions: () => number; openCalls: () => number; sinkRotations: () => number; outputHealthy: () => boolean }) {
    this.registry.register(new Gauge('control_plane_open_sessions', 'Sessions (rooms) not yet ended.', sources.openSessions));
    this.registry.register(new Gauge('control_plane_open_calls', 'SIP call legs not yet ended.', sources.openCalls));
    this.registry.register(new Gauge('control_plane_output_healthy', '1 when the last write to the output succeeded, 0 while degraded.', () => (sources.outputHealthy() ? 1 : 0)));
    this.registry.register(new Gauge('control_plane_log_rotations', 'Size-based rotations of the log file since start.', sources.sinkRotations));
    this.registry.register(new Gauge('control_plane_process_resident_memory_bytes', 'Resident set size of the process.', () => process.memoryUsage.rss()));
    this.registry.register(new Gauge('control_plane_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed));
    const startedAt = Date.now();
    this.registry.register(new Gauge('control_plane_uptime_seconds', 'Seconds since the process started.', () => (Date.now() - startedAt) / 1000));
  }
}
