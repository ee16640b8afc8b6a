// Forwarding the derived events (call.*, session.*, provider.* by default)
// to the operator's backend (docs/contract.md, "Forwarding"). LiveKit sends
// no call-status webhook; this is one, signed exactly as LiveKit signs its
// webhooks (HS256 JWT in Authorization, iss = key id, sha256 of the body),
// so a backend verifies it with the LiveKit server SDK it already uses.
//
// Never in the way: events are taken after their webhook was acknowledged,
// appended to the spool (spool.ts) and delivered in the background; a
// backend that is slow, failing or down never delays or fails an answer to
// LiveKit, and the audit output is complete whatever it does.
//
// Delivery, per destination: at least once, in order per session (events
// of one session share a lane; lanes are delivered in parallel, one request
// in flight each), with exponential backoff and jitter, Retry-After
// honoured, and a 4xx other than 408/429 given up with a line saying so.
// `ndjson` sends batches of lines in spool order instead.
//
// The client is node:http(s) with keep-alive connections: nothing to bundle,
// and the least CPU per delivery.

import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KeyPair } from '../config.ts';
import { signWebhook } from '../livekit/sign.ts';
import type { ObsEvent } from '../obs/schema.ts';
import { Spool, type SpoolRecord } from './spool.ts';

export type ForwardFormat = 'json' | 'ndjson';

export interface ForwardOptions {
  readonly urls: readonly string[];
  /** Globs over event_type (`call.*`, `provider.event`, `*`). */
  readonly events: readonly string[];
  readonly format: ForwardFormat;
  readonly key: KeyPair;
  readonly spoolDirectory: string;
  readonly spoolMaxBytes: number;
  /** ndjson: lines per request, and how long a partial batch waits for more. */
  readonly batchSize: number;
  readonly lingerMs: number;
  /** This instance's name, sent with every delivery (several instances forward their own events). */
  readonly instance: string;
  /** Lines about forwarding itself (an event given up, events dropped from a full spool). */
  readonly warn: (detail: string) => void;
  readonly clock?: () => number;
  /**
   * Whether ingestion is busy right now (webhooks in flight). Delivery then
   * keeps one request in flight per destination, so that a burst of
   * webhooks is answered at full speed; the spool drains right after.
   */
  readonly ingestionBusy?: () => boolean;
  /** Backoff bounds (tests shorten them). */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

/** What /metrics and /health show of one destination. */
export interface DestinationStatus {
  readonly url: string;
  readonly state: 'ok' | 'retrying' | 'idle';
  readonly queued: number;
  readonly delivered: number;
  readonly failedAttempts: number;
  readonly givenUp: number;
  readonly dropped: number;
  /** Age of the oldest undelivered event (s), 0 when none. */
  readonly oldestAgeSeconds: number;
}

export interface ForwardObserver {
  delivered(url: string, seconds: number): void;
}

/** Lanes per destination for the one-event-per-request format: sessions spread over them. */
const LANES = 8;
const REQUEST_TIMEOUT_MS = 10_000;
/** While ingestion is busy, how often delivery looks whether it may use every lane again. */
const YIELD_RECHECK_MS = 50;
/** Delivery waits for a burst of webhooks at most this long (then one lane per destination goes on). */
const MAX_YIELD_MS = 2_000;
const PERSIST_INTERVAL_MS = 1_000;
const DEFAULT_RETRY_BASE_MS = 500;
const DEFAULT_RETRY_MAX_MS = 60_000;
/** The longest Retry-After honoured: a backend must not park a lane for hours. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/** A glob over event types: `*` matches any run of characters. */
export function eventMatcher(globs: readonly string[]): (eventType: string) => boolean {
  const patterns = globs.map((glob) => new RegExp(`^${glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (eventType) => patterns.some((pattern) => pattern.test(eventType));
}

/**
 * The id a receiver deduplicates by: the same for a redelivery of the same
 * spool record and for a repeat of the same webhook's lines (a retried
 * webhook after a crash, another instance), different for every distinct
 * event.
 */
export function forwardEventId(event: ObsEvent): string {
  const identity = [event.webhook_id, event.event_type, event.session_id, event.participant_sid, event.to_state, event.provider, event.reason, event.detail].map((part) => String(part ?? '')).join('\u0000');
  return `fw_${createHash('sha256').update(identity).digest('base64url').slice(0, 22)}`;
}

/** A destination's short, stable name for its cursor file. */
export function destinationName(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/** The URL without credentials or query, for labels and lines. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return 'invalid-url';
  }
}

interface Queued {
  readonly record: SpoolRecord;
  readonly queuedAtMs: number;
}

class Destination {
  readonly url: string;
  readonly label: string;
  readonly name: string;
  /** json: one FIFO per lane; ndjson: lane 0 only. */
  readonly lanes: Queued[][];
  readonly busy: boolean[];
  readonly retryAt: number[];
  readonly attempts: number[];
  delivered = 0;
  failedAttempts = 0;
  givenUp = 0;
  dropped = 0;
  /** Seqs delivered while an older one in another lane is still pending. */
  readonly doneAbove = new Set<number>();
  lingerTimer: NodeJS.Timeout | null = null;

  constructor(url: string, lanes: number) {
    this.url = url;
    this.label = describeUrl(url);
    this.name = destinationName(url);
    this.lanes = Array.from({ length: lanes }, () => []);
    this.busy = Array.from({ length: lanes }, () => false);
    this.retryAt = Array.from({ length: lanes }, () => 0);
    this.attempts = Array.from({ length: lanes }, () => 0);
  }

  get queued(): number {
    return this.lanes.reduce((sum, lane) => sum + lane.length, 0);
  }

  /** When the oldest waiting event was queued (Infinity when none waits). */
  oldestQueuedAtMs(): number {
    let oldest = Infinity;
    for (const lane of this.lanes) if (lane.length > 0 && lane[0]!.queuedAtMs < oldest) oldest = lane[0]!.queuedAtMs;
    return oldest;
  }

  /** The highest seq with everything at or below it delivered, given `lastSeq` appended. */
  watermark(lastSeq: number): number {
    let lowestPending = Infinity;
    for (const lane of this.lanes) if (lane.length > 0) lowestPending = Math.min(lowestPending, lane[0]!.record.seq);
    return lowestPending === Infinity ? lastSeq : lowestPending - 1;
  }
}

function laneOf(key: string, lanes: number): number {
  let hash = 0;
  for (let index = 0; index < key.length; index++) hash = (Math.imul(hash, 31) + key.charCodeAt(index)) | 0;
  return Math.abs(hash) % lanes;
}

export class Forwarder {
  private readonly options: ForwardOptions;
  private readonly spool: Spool;
  private readonly destinations: Destination[];
  private readonly matches: (eventType: string) => boolean;
  /** Aborts the requests in flight at stop. */
  private readonly stopping = new AbortController();
  private readonly clock: () => number;
  private lastSeq = 0;
  private persistTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private observer: ForwardObserver | null = null;

  constructor(options: ForwardOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.matches = eventMatcher(options.events);
    const lanes = options.format === 'json' ? LANES : 1;
    this.destinations = options.urls.map((url) => new Destination(url, lanes));
    this.spool = new Spool({ directory: options.spoolDirectory, maxBytes: options.spoolMaxBytes, destinations: this.destinations.map((destination) => destination.name) });
  }

  observe(observer: ForwardObserver): void {
    this.observer = observer;
  }

  /** Loads the spool and starts delivering what it holds; returns warnings for lines. Throws when the spool directory is unusable. */
  start(): string[] {
    const opened = this.spool.open();
    const now = this.clock();
    for (const destination of this.destinations) {
      for (const record of opened.pending.get(destination.name) ?? []) {
        destination.lanes[laneOf(record.lane, destination.lanes.length)]!.push({ record, queuedAtMs: now });
        this.lastSeq = Math.max(this.lastSeq, record.seq);
      }
    }
    this.persistTimer = setInterval(() => {
      this.syncCursors();
      this.spool.persist();
    }, PERSIST_INTERVAL_MS);
    this.persistTimer.unref();
    this.pump();
    const restored = this.destinations.reduce((sum, destination) => sum + destination.queued, 0);
    return [...opened.warnings, ...(restored > 0 ? [`forwarding: ${restored} event(s) from the spool still to deliver`] : [])];
  }

  /**
   * Takes the acknowledged lines of one group (encoded as they were
   * written), keeps those forwarded, and spools them. Never throws: a spool
   * that cannot take them drops them with a line.
   */
  accept(lines: ReadonlyArray<{ readonly event: ObsEvent; readonly json: () => string }>): void {
    if (this.stopped) return;
    const entries: Array<Omit<SpoolRecord, 'seq'>> = [];
    for (const line of lines) {
      if (!this.matches(line.event.event_type)) continue;
      entries.push({ lane: line.event.session_id ?? '', eventId: forwardEventId(line.event), body: line.json() });
    }
    if (entries.length === 0) return;
    let records: SpoolRecord[];
    try {
      records = this.spool.append(entries);
    } catch (error) {
      for (const destination of this.destinations) destination.dropped += entries.length;
      this.options.warn(`forwarding: ${entries.length} event(s) not spooled (${(error as NodeJS.ErrnoException).code ?? String(error)}); they are in the output but will not be forwarded`);
      return;
    }
    const now = this.clock();
    for (const destination of this.destinations) {
      for (const record of records) destination.lanes[laneOf(record.lane, destination.lanes.length)]!.push({ record, queuedAtMs: now });
    }
    this.lastSeq = records.at(-1)!.seq;
    this.enforceLimit();
    this.pump();
  }

  status(): DestinationStatus[] {
    const now = this.clock();
    return this.destinations.map((destination) => {
      let oldest = Infinity;
      for (const lane of destination.lanes) if (lane.length > 0) oldest = Math.min(oldest, lane[0]!.queuedAtMs);
      const retrying = destination.attempts.some((attempts) => attempts > 0);
      return {
        url: destination.label,
        state: retrying ? 'retrying' : destination.queued > 0 ? 'ok' : 'idle',
        queued: destination.queued,
        delivered: destination.delivered,
        failedAttempts: destination.failedAttempts,
        givenUp: destination.givenUp,
        dropped: destination.dropped,
        oldestAgeSeconds: oldest === Infinity ? 0 : Math.max(0, (now - oldest) / 1000),
      };
    });
  }

  get spoolBytes(): number {
    return this.spool.bytes;
  }

  /** Resolves when every destination's queue is empty (tests, benchmarks). */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = this.clock() + timeoutMs;
    while (this.destinations.some((destination) => destination.queued > 0)) {
      if (this.clock() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  /** Stops delivering and saves the cursors; what is left is delivered after the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.persistTimer) clearInterval(this.persistTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const destination of this.destinations) if (destination.lingerTimer) clearTimeout(destination.lingerTimer);
    this.syncCursors();
    this.spool.close();
    this.stopping.abort();
  }

  private enforceLimit(): void {
    const { undelivered } = this.spool.enforceLimit((through) => {
      let count = 0;
      for (const destination of this.destinations) {
        for (const lane of destination.lanes) {
          while (lane.length > 0 && lane[0]!.record.seq <= through && !destination.busy[destination.lanes.indexOf(lane)]) {
            lane.shift();
            destination.dropped++;
            count++;
          }
        }
      }
      return count;
    });
    if (undelivered > 0) {
      this.spool.droppedUnreported = 0;
      this.options.warn(`forwarding: the spool passed --forward-spool-max; ${undelivered} undelivered event(s) dropped, oldest first`);
    }
  }

  private syncCursors(): void {
    for (const destination of this.destinations) this.spool.advance(destination.name, destination.watermark(this.lastSeq));
  }

  /**
   * Starts a request on every lane that is free, has work and is not
   * waiting out a backoff; while ingestion is busy, on one lane at most per
   * destination (and looks again shortly).
   */
  private pump(): void {
    if (this.stopped) return;
    const now = this.clock();
    let nextWake = Infinity;
    const yielding = this.options.ingestionBusy?.() ?? false;
    for (const destination of this.destinations) {
      let inFlight = destination.busy.reduce((count, busy) => count + (busy ? 1 : 0), 0);
      // While webhooks are coming in, delivery waits; if they keep coming for long, one lane goes on regardless.
      const allowed = !yielding ? Infinity : now - destination.oldestQueuedAtMs() < MAX_YIELD_MS ? 0 : 1;
      for (let lane = 0; lane < destination.lanes.length; lane++) {
        if (destination.busy[lane] || destination.lanes[lane]!.length === 0) continue;
        if (inFlight >= allowed) {
          nextWake = Math.min(nextWake, now + YIELD_RECHECK_MS);
          break;
        }
        if (destination.retryAt[lane]! > now) {
          nextWake = Math.min(nextWake, destination.retryAt[lane]!);
          continue;
        }
        if (this.options.format === 'ndjson') {
          // A partial batch waits a little for more lines, unless it is retrying.
          const queue = destination.lanes[lane]!;
          if (queue.length < this.options.batchSize && destination.attempts[lane] === 0 && now - queue[0]!.queuedAtMs < this.options.lingerMs) {
            nextWake = Math.min(nextWake, queue[0]!.queuedAtMs + this.options.lingerMs);
            continue;
          }
        }
        inFlight++;
        void this.send(destination, lane);
      }
    }
    if (nextWake !== Infinity) this.wakeAt(nextWake);
  }

  private wakeAt(atMs: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.pump();
    }, Math.max(1, atMs - this.clock()));
    this.wakeTimer.unref();
  }

  private async send(destination: Destination, lane: number): Promise<void> {
    const queue = destination.lanes[lane]!;
    const batch = this.options.format === 'ndjson' ? queue.slice(0, this.options.batchSize) : [queue[0]!];
    const body = this.options.format === 'ndjson' ? `${batch.map((item) => item.record.body).join('\n')}\n` : batch[0]!.record.body;
    const headers: Record<string, string> = {
      authorization: signWebhook(body, this.options.key),
      'content-type': this.options.format === 'ndjson' ? 'application/x-ndjson' : 'application/webhook+json',
      'user-agent': 'control-plane',
      'x-control-plane-instance': this.options.instance,
    };
    if (this.options.format === 'json') headers['x-control-plane-event-id'] = batch[0]!.record.eventId;
    else headers['x-control-plane-event-ids'] = batch.map((item) => item.record.eventId).join(',');
    destination.busy[lane] = true;
    const started = this.clock();
    let status = 0;
    let retryAfterMs: number | undefined;
    try {
      const answer = await post(destination.url, body, headers, this.stopping.signal);
      status = answer.status;
      retryAfterMs = parseRetryAfter(answer.retryAfter, this.clock());
    } catch {
      status = 0;
    }
    destination.busy[lane] = false;
    if (this.stopped) return;
    if (status >= 200 && status < 300) {
      queue.splice(0, batch.length);
      destination.delivered += batch.length;
      destination.attempts[lane] = 0;
      destination.retryAt[lane] = 0;
      this.observer?.delivered(destination.label, (this.clock() - started) / 1000);
    } else if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      // The backend says it will never take these: give up on them, say so, go on.
      queue.splice(0, batch.length);
      destination.givenUp += batch.length;
      destination.attempts[lane] = 0;
      destination.retryAt[lane] = 0;
      this.options.warn(`forwarding: ${destination.label} refused ${batch.length} event(s) with ${status}; not retried (event id ${batch[0]!.record.eventId})`);
    } else {
      destination.failedAttempts++;
      const attempt = ++destination.attempts[lane]!;
      const base = this.options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
      const backoff = Math.min(this.options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS, base * 2 ** Math.min(attempt - 1, 20));
      // Full jitter, so a backend coming back is not hit by every lane at once.
      const wait = retryAfterMs ?? backoff / 2 + Math.random() * (backoff / 2);
      destination.retryAt[lane] = this.clock() + Math.min(wait, MAX_RETRY_AFTER_MS);
    }
    this.pump();
  }
}

/** Keep-alive connections per destination, one per lane. */
const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: LANES });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: LANES });

/**
 * One POST with node:http(s) on keep-alive connections: the lightest client
 * the runtime has (its fetch costs several times the CPU per request, which
 * a burst of deliveries takes from ingestion). Resolves with the status
 * (0: no answer within REQUEST_TIMEOUT_MS, or the connection failed) and
 * Retry-After.
 */
function post(url: string, body: string, headers: Record<string, string>, stopping: AbortSignal): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve) => {
    const bytes = Buffer.from(body, 'utf8');
    const secure = url.startsWith('https:');
    const request = (secure ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(bytes.length) },
      agent: secure ? httpsAgent : httpAgent,
      timeout: REQUEST_TIMEOUT_MS,
      signal: stopping,
    });
    request.on('response', (response) => {
      const retryAfter = response.headers['retry-after'];
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter }));
      response.on('error', () => resolve({ status: 0, retryAfter: undefined }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve({ status: 0, retryAfter: undefined }));
    request.end(bytes);
  });
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, nowMs: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
