// `control-plane report`, the pure half: OBS-00 lines in (as text, one at a
// time), a summary of the calls and sessions out. No I/O and no clock; the
// streaming reader (read.ts) feeds it and render.ts prints the result.
//
// Memory is bounded whatever the input: repeats are recognised within a
// window of recent lines, calls in progress and the counted labels (end
// reasons, trunks, instances) are capped, and the talk-time and duration
// distributions are kept as counts per second (per 1 % beyond an hour).

import type { CallOutcome, Direction } from '../obs/transitions.ts';
import { CALL_OUTCOMES } from '../obs/transitions.ts';

/** Counted lines remembered to recognise a repeat (same webhook_id, event_type and participant_sid). */
export const REPEAT_WINDOW = 100_000;
/** Calls started and not yet ended that are remembered (for their start time in --calls); the oldest are forgotten first. */
export const OPEN_CALLS_LIMIT = 100_000;
/** Distinct end reasons, trunks, providers and instances counted; further ones are counted as `other`. */
export const LABEL_LIMIT = 1_000;
/** Lines longer than this are not OBS-00 (the reader skips them without holding them). */
export const MAX_LINE_BYTES = 1024 * 1024;

export const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound'];

/** One call as --calls lists it. */
export interface CallRow {
  /** When the call started: its call.started line's ts, else its end's ts minus its duration. */
  readonly startedAt: string | undefined;
  readonly endedAt: string | undefined;
  readonly sessionId: string | null;
  readonly participantSid: string | undefined;
  readonly direction: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
  /** The call's outcome, or `open` for a call that had not ended by the end of the input. */
  readonly outcome: string;
  readonly reason: string | undefined;
  readonly answered: boolean | undefined;
  readonly durationMs: number | undefined;
  readonly talkMs: number | undefined;
}

export interface Distribution {
  readonly count: number;
  readonly meanSeconds: number | null;
  readonly p50Seconds: number | null;
  readonly p95Seconds: number | null;
}

export interface DirectionSummary {
  readonly total: number;
  readonly answered: number;
  /** answered / total; null without calls. */
  readonly answerRate: number | null;
  readonly outcomes: Readonly<Record<CallOutcome, number>>;
}

export interface ReportSummary {
  readonly span: { readonly first: string | null; readonly last: string | null; readonly seconds: number | null };
  readonly lines: { readonly read: number; readonly obs00: number; readonly skipped: number; readonly repeats: number };
  readonly webhooks: { readonly processed: number; readonly duplicates: number; readonly rejected: number };
  readonly calls: {
    readonly total: number;
    readonly answered: number;
    readonly answerRate: number | null;
    readonly byDirection: Readonly<Record<Direction, DirectionSummary>>;
    /** Started and not ended by the end of the input. */
    readonly stillOpen: number;
  };
  readonly talkTime: Distribution;
  readonly duration: Distribution;
  readonly endReasons: ReadonlyArray<{ readonly reason: string; readonly calls: number }>;
  readonly trunkFailures: { readonly total: number; readonly byTrunk: ReadonlyArray<{ readonly trunkId: string; readonly failures: number }> };
  readonly providerEvents: ReadonlyArray<{ readonly provider: string; readonly reason: string; readonly events: number }>;
  readonly sessions: { readonly created: number; readonly connected: number; readonly ended: number };
  readonly instances: readonly string[];
}

/** Counts per label, at most LABEL_LIMIT labels (then `other`). */
class LabelCounts {
  private readonly counts = new Map<string, number>();

  add(label: string): void {
    const key = this.counts.has(label) || this.counts.size < LABEL_LIMIT ? label : 'other';
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Most frequent first, then by name. */
  top(limit = Infinity): Array<[string, number]> {
    return [...this.counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, limit);
  }

  get size(): number {
    return this.counts.size;
  }
}

const EXACT_SECONDS = 3600;
const LOG_STEP = Math.log(1.01);

/** Durations as counts per whole second (per 1 % beyond an hour): bounded, exact to the second where it matters. */
class SecondsDistribution {
  private readonly buckets = new Map<number, number>();
  private count = 0;
  private sumSeconds = 0;

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const seconds = ms / 1000;
    this.count++;
    this.sumSeconds += seconds;
    const key = seconds < EXACT_SECONDS ? Math.floor(seconds) : EXACT_SECONDS + Math.floor(Math.log(seconds / EXACT_SECONDS) / LOG_STEP);
    this.buckets.set(key, (this.buckets.get(key) ?? 0) + 1);
  }

  private valueOf(key: number): number {
    return key < EXACT_SECONDS ? key : Math.round(EXACT_SECONDS * Math.exp((key - EXACT_SECONDS) * LOG_STEP));
  }

  /** Nearest rank: the smallest value with at least q of the observations at or below it. */
  private quantile(q: number, sorted: number[]): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const key of sorted) {
      seen += this.buckets.get(key)!;
      if (seen >= rank) return this.valueOf(key);
    }
    return this.valueOf(sorted.at(-1)!);
  }

  summary(): Distribution {
    const sorted = [...this.buckets.keys()].sort((a, b) => a - b);
    return {
      count: this.count,
      meanSeconds: this.count === 0 ? null : Math.round((this.sumSeconds / this.count) * 10) / 10,
      p50Seconds: this.quantile(0.5, sorted),
      p95Seconds: this.quantile(0.95, sorted),
    };
  }
}

interface OpenCall {
  readonly startedAt: string;
  readonly direction: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly sessionId: string | null;
  readonly participantSid: string | undefined;
}

type Line = Record<string, unknown> & { readonly ts: string; readonly event_type: string };

const PRIORITY_PREFIX = /^<\d{1,3}>/;
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const number = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** One OBS-00 line parsed, or undefined when the text is not one (journald's own lines, other programs, a torn line). */
export function parseObsLine(raw: string): Line | undefined {
  let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  // Under journald without `-o cat` (or with SyslogLevelPrefix off) a line keeps its <N> priority.
  if (line.startsWith('<')) line = line.replace(PRIORITY_PREFIX, '');
  if (!line.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const candidate = parsed as Record<string, unknown>;
  if (candidate.component !== 'control_plane' || typeof candidate.event_type !== 'string' || typeof candidate.ts !== 'string') return undefined;
  return candidate as Line;
}

function isoMinus(ts: string, ms: number | undefined): string | undefined {
  const at = Date.parse(ts);
  if (Number.isNaN(at) || ms === undefined) return undefined;
  return new Date(at - ms).toISOString();
}

export class ReportAggregator {
  private readonly onCall: ((row: CallRow) => void) | undefined;
  private linesRead = 0;
  private obs00 = 0;
  private repeats = 0;
  private first: string | null = null;
  private last: string | null = null;
  private readonly recent = new Set<string>();
  private readonly open = new Map<string, OpenCall>();
  /** Calls ended without their call.started seen yet (inputs out of order): their start, if it comes, opens nothing. */
  private readonly endedFirst = new Set<string>();
  private readonly outcomes = new Map<string, number>();
  private readonly answered = new Map<Direction, number>();
  private readonly talk = new SecondsDistribution();
  private readonly durations = new SecondsDistribution();
  private readonly reasons = new LabelCounts();
  private readonly trunks = new LabelCounts();
  private readonly providers = new LabelCounts();
  private readonly instanceNames = new LabelCounts();
  private trunkFailures = 0;
  private readonly sessionStates = new Map<string, number>();
  private processed = 0;
  private duplicates = 0;
  private rejected = 0;

  /** `onCall` hears of each call as it ends (for --calls), and of the calls still open at finish(). */
  constructor(onCall?: (row: CallRow) => void) {
    this.onCall = onCall;
  }

  /** Counts a line that the reader skipped without handing it over (longer than MAX_LINE_BYTES). */
  skipLine(): void {
    this.linesRead++;
  }

  line(raw: string): void {
    this.linesRead++;
    const line = parseObsLine(raw);
    if (!line) return;
    this.obs00++;
    if (this.first === null || line.ts < this.first) this.first = line.ts;
    if (this.last === null || line.ts > this.last) this.last = line.ts;
    const instance = text(line.instance);
    if (instance !== undefined) this.instanceNames.add(instance);

    const type = line.event_type;
    switch (type) {
      case 'webhook.rejected':
        this.rejected++;
        return;
      case 'webhook.processing':
      case 'webhook.duplicate':
      case 'call.started':
      case 'call.ended':
      case 'session.state_changed':
      case 'provider.event':
        if (this.isRepeat(line)) {
          this.repeats++;
          return;
        }
        break;
      default:
        return;
    }
    if (type === 'webhook.processing') this.processed++;
    else if (type === 'webhook.duplicate') this.duplicates++;
    else if (type === 'call.started') this.callStarted(line);
    else if (type === 'call.ended') this.callEnded(line);
    else if (type === 'session.state_changed') {
      const state = text(line.to_state);
      if (state) this.sessionStates.set(state, (this.sessionStates.get(state) ?? 0) + 1);
    } else this.providerEvent(line);
  }

  /** A repeat: the same webhook's same line again (a retry after a crash between write and commit, or another instance's copy). */
  private isRepeat(line: Line): boolean {
    const webhookId = text(line.webhook_id);
    if (webhookId === undefined) return false;
    // to_state, provider and reason tell apart the lines of one webhook that share a type (created and connected, say).
    const key = `${webhookId}\u0000${line.event_type}\u0000${text(line.participant_sid) ?? ''}\u0000${text(line.to_state) ?? ''}\u0000${text(line.provider) ?? ''}\u0000${text(line.reason) ?? ''}`;
    if (this.recent.has(key)) return true;
    this.recent.add(key);
    if (this.recent.size > REPEAT_WINDOW) this.recent.delete(this.recent.values().next().value!);
    return false;
  }

  private callKey(line: Line): string {
    return `${text(line.session_id) ?? ''}\u0000${text(line.participant_sid) ?? ''}`;
  }

  private callStarted(line: Line): void {
    const key = this.callKey(line);
    if (this.open.has(key) || this.endedFirst.delete(key)) return;
    this.open.set(key, {
      startedAt: line.ts,
      direction: text(line.direction) ?? 'unknown',
      from: text(line.from),
      to: text(line.to),
      sessionId: text(line.session_id) ?? null,
      participantSid: text(line.participant_sid),
    });
    if (this.open.size > OPEN_CALLS_LIMIT) this.open.delete(this.open.keys().next().value!);
  }

  private callEnded(line: Line): void {
    const key = this.callKey(line);
    const started = this.open.get(key);
    if (started) this.open.delete(key);
    else {
      this.endedFirst.add(key);
      if (this.endedFirst.size > OPEN_CALLS_LIMIT) this.endedFirst.delete(this.endedFirst.values().next().value!);
    }
    const direction = text(line.direction) ?? started?.direction ?? 'unknown';
    const outcome = text(line.outcome) ?? 'unknown';
    const answered = line.answered === true;
    const durationMs = number(line.duration_ms);
    const talkMs = number(line.talk_ms);
    const reason = text(line.reason);

    this.outcomes.set(`${direction}\u0000${outcome}`, (this.outcomes.get(`${direction}\u0000${outcome}`) ?? 0) + 1);
    if (answered && (direction === 'inbound' || direction === 'outbound')) this.answered.set(direction, (this.answered.get(direction) ?? 0) + 1);
    if (durationMs !== undefined) this.durations.add(durationMs);
    if (answered && talkMs !== undefined) this.talk.add(talkMs);
    if (reason !== undefined) this.reasons.add(reason);

    this.onCall?.({
      startedAt: started?.startedAt ?? isoMinus(line.ts, durationMs),
      endedAt: line.ts,
      sessionId: text(line.session_id) ?? null,
      participantSid: text(line.participant_sid),
      direction,
      from: text(line.from) ?? started?.from,
      to: text(line.to) ?? started?.to,
      outcome,
      reason,
      answered,
      durationMs,
      talkMs,
    });
  }

  private providerEvent(line: Line): void {
    const provider = text(line.provider) ?? 'unknown';
    const reason = text(line.reason) ?? 'unknown';
    this.providers.add(`${provider}\u0000${reason}`);
    if (provider === 'sip' && reason === 'sip_trunk_failure') {
      this.trunkFailures++;
      this.trunks.add(text(line.trunk_id) ?? 'unknown');
    }
  }

  /** The summary; also hands the calls still open to `onCall` (outcome `open`). */
  finish(): ReportSummary {
    for (const call of this.open.values()) {
      this.onCall?.({ ...call, endedAt: undefined, outcome: 'open', reason: undefined, answered: undefined, durationMs: undefined, talkMs: undefined });
    }
    const byDirection = {} as Record<Direction, DirectionSummary>;
    let total = 0;
    let answered = 0;
    for (const direction of DIRECTIONS) {
      const outcomes = {} as Record<CallOutcome, number>;
      let own = 0;
      for (const outcome of CALL_OUTCOMES) {
        outcomes[outcome] = this.outcomes.get(`${direction}\u0000${outcome}`) ?? 0;
        own += outcomes[outcome];
      }
      const ownAnswered = this.answered.get(direction) ?? 0;
      byDirection[direction] = { total: own, answered: ownAnswered, answerRate: own === 0 ? null : ownAnswered / own, outcomes };
      total += own;
      answered += ownAnswered;
    }
    const firstMs = this.first === null ? NaN : Date.parse(this.first);
    const lastMs = this.last === null ? NaN : Date.parse(this.last);
    return {
      span: { first: this.first, last: this.last, seconds: Number.isNaN(firstMs) || Number.isNaN(lastMs) ? null : (lastMs - firstMs) / 1000 },
      lines: { read: this.linesRead, obs00: this.obs00, skipped: this.linesRead - this.obs00, repeats: this.repeats },
      webhooks: { processed: this.processed, duplicates: this.duplicates, rejected: this.rejected },
      calls: { total, answered, answerRate: total === 0 ? null : answered / total, byDirection, stillOpen: this.open.size },
      talkTime: this.talk.summary(),
      duration: this.durations.summary(),
      endReasons: this.reasons.top(10).map(([reason, calls]) => ({ reason, calls })),
      trunkFailures: { total: this.trunkFailures, byTrunk: this.trunks.top(10).map(([trunkId, failures]) => ({ trunkId, failures })) },
      providerEvents: this.providers.top().map(([key, events]) => {
        const [provider, reason] = key.split('\u0000') as [string, string | undefined];
        return { provider, reason: reason ?? 'other', events };
      }),
      sessions: { created: this.sessionStates.get('created') ?? 0, connected: this.sessionStates.get('connected') ?? 0, ended: this.sessionStates.get('ended') ?? 0 },
      instances: this.instanceNames.top(100).map(([name]) => name),
    };
  }
}
