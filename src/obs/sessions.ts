// Sessions and calls: the state that turns LiveKit's webhooks into
// call.*, session.* and provider.* lines (SPEC §4, issue 3).
//
// A session is a room SID. It moves only along SESSION_TRANSITIONS and each
// SIP leg in it only along CALL_TRANSITIONS (transitions.ts). `observe`
// computes the lines and the next state of the one session an event touches
// without changing anything; `commit` installs that state once the lines
// are written. Because an event for an ended session, a leg that already
// ended, or a room already created finds no row in the tables, a redelivered
// or late event writes no line twice, a session never goes back and a
// finished one is never revived.
//
// Memory is bounded: ended sessions shrink to a tombstone (the SID and the
// time it ended) kept for a grace period so late events stay ignored; open
// sessions idle longer than the idle timeout (their room_finished was lost)
// are forgotten; and hard caps evict the least recently active sessions
// first (after each commit, or once after a group of commits:
// commitTogether, so no commit evicts what a later one was planned on). Pure: the caller passes the time; it is used only for eviction,
// never in a duration.

import { ParticipantInfo_Kind, type WebhookEvent } from '@livekit/protocol';
import type { SessionTracker } from '../pipeline/pipeline.ts';
import {
  answeredCall,
  type CallEnd,
  type CallRecord,
  callAnsweredLine,
  callEndedLine,
  callFromParticipant,
  callStartedLine,
  derivedLine,
  endedCall,
  endReason,
  eventTimeMs,
  type RoomRef,
  showsAnswered,
  sipCallStatus,
  sipProviderLine,
} from './calls.ts';
import { roomEndReasonName } from './enum-names.ts';
import { providerFindings } from './providers.ts';
import type { ObsEvent } from './schema.ts';
import { connectsSession, nextCallPhase, nextSessionState, type SessionState, type SessionTrigger } from './transitions.ts';

/** An open session (created or connected). Immutable and JSON-serialisable: the state file stores it as is. */
export interface SessionRecord {
  readonly sid: string;
  readonly name: string;
  readonly state: Exclude<SessionState, 'ended'>;
  /** Its SIP legs, oldest first, ended ones included (so a late event cannot start them again). */
  readonly calls: readonly CallRecord[];
  /** The receiver's time of the last event (ms): for idle eviction only. */
  readonly touchedAtMs: number;
}

export interface SessionStoreOptions {
  /** Open sessions kept at most; the least recently active are forgotten first. */
  readonly maxOpenSessions?: number;
  /** Call legs (open and ended) kept at most across all open sessions. */
  readonly maxCalls?: number;
  /** Legs kept per session; beyond it the oldest ended legs are forgotten. */
  readonly maxCallsPerSession?: number;
  /** Ended-session tombstones kept at most. */
  readonly maxEndedSessions?: number;
  /** How long an ended session is remembered, so late events for it stay ignored. */
  readonly endedGraceMs?: number;
  /** An open session with no event for this long is forgotten (its room_finished was lost). */
  readonly idleTimeoutMs?: number;
  /** Provider troubles remembered (so one egress failure reported twice is one line). */
  readonly maxProviderKeys?: number;
  readonly providerKeyWindowMs?: number;
}

export const SESSION_DEFAULTS: Required<SessionStoreOptions> = {
  maxOpenSessions: 100_000,
  maxCalls: 100_000,
  maxCallsPerSession: 1_000,
  maxEndedSessions: 100_000,
  endedGraceMs: 30 * 60_000,
  idleTimeoutMs: 24 * 60 * 60_000,
  maxProviderKeys: 10_000,
  providerKeyWindowMs: 60 * 60_000,
};

/** The state file's `sessions` member. */
export interface SessionSnapshot {
  readonly version: 1;
  /** Least recently active first. */
  readonly open: readonly SessionRecord[];
  /** [room SID, receiver time it ended (ms)], oldest first. */
  readonly ended: ReadonlyArray<readonly [string, number]>;
  /** [provider trouble key, receiver time reported (ms)], oldest first. */
  readonly providerKeys: ReadonlyArray<readonly [string, number]>;
}

/** Events of the room's own webhook queue (livekit-webhooks.md §3): the only ones that create or change a session. */
export const ROOM_QUEUE_EVENTS: ReadonlySet<string> = new Set([
  'room_started',
  'room_finished',
  'participant_joined',
  'participant_left',
  'participant_connection_aborted',
  'track_published',
  'track_unpublished',
]);

const ENDED = 'ended' as const;
type Basis = SessionRecord | typeof ENDED | undefined;

interface Plan {
  readonly sid: string | undefined;
  /** The state the plan was computed from; commit recomputes if it changed meanwhile. */
  readonly basis: Basis;
  /** The session's next state; undefined: unchanged. */
  readonly next: SessionRecord | typeof ENDED | undefined;
  readonly providerKeys: readonly string[];
  readonly events: readonly ObsEvent[];
}

interface Reduced {
  readonly next: SessionRecord | typeof ENDED | undefined;
  readonly calls: readonly ObsEvent[];
  readonly session: readonly ObsEvent[];
  readonly provider: readonly ObsEvent[];
}

const nonEmpty = (value: string | undefined): string | undefined => (value ? value : undefined);

function sessionLine(room: RoomRef, from: SessionState | null, to: SessionState, webhookId: string | undefined, reason?: string): ObsEvent {
  return derivedLine('info', 'session.state_changed', room.sid, {
    webhook_id: webhookId,
    room_name: nonEmpty(room.name),
    room_sid: room.sid,
    reason,
    from_state: from ?? undefined,
    to_state: to,
  });
}

type AnswerSignal = 'joined_active' | 'track_published' | 'left_snapshot';

/** One event's walk along the tables: the session's state and legs so far, and the lines written on the way. */
class SessionStep {
  readonly calls: ObsEvent[] = [];
  readonly session: ObsEvent[] = [];
  readonly provider: ObsEvent[] = [];
  state: SessionState | null;
  readonly room: RoomRef;
  readonly legs: CallRecord[];
  readonly webhookId: string | undefined;
  /** LiveKit's time of the event (durations use it, never the receiver's clock). */
  readonly atMs: number | undefined;

  constructor(basis: SessionRecord | undefined, sid: string, event: WebhookEvent) {
    this.state = basis?.state ?? null;
    this.room = { sid, name: basis?.name || event.room?.name || '' };
    this.legs = basis ? [...basis.calls] : [];
    this.webhookId = nonEmpty(event.id);
    this.atMs = eventTimeMs(event);
  }

  fire(trigger: SessionTrigger, reason?: string): void {
    const to = nextSessionState(this.state, trigger);
    if (!to) return;
    this.session.push(sessionLine(this.room, this.state, to, this.webhookId, reason));
    this.state = to;
  }

  leg(participantSid: string | undefined): CallRecord | undefined {
    return this.legs.find((candidate) => candidate.participantSid === participantSid);
  }

  replace(leg: CallRecord): void {
    const index = this.legs.findIndex((candidate) => candidate.participantSid === leg.participantSid);
    if (index === -1) this.legs.push(leg);
    else this.legs[index] = leg;
  }

  answer(leg: CallRecord, signal: AnswerSignal, answerMs: number | undefined): CallRecord {
    if (!nextCallPhase(leg.phase, 'answer_signal')) return leg;
    const answered = answeredCall(leg, signal, answerMs);
    this.calls.push(callAnsweredLine(this.room, answered, this.webhookId));
    this.fire('call_answered');
    return answered;
  }

  end(leg: CallRecord, trigger: 'leg_left' | 'room_finished', reason: string, lastStatus: string | undefined): CallRecord {
    if (!nextCallPhase(leg.phase, trigger)) return leg;
    const ended: CallEnd = endedCall(leg, reason, lastStatus, this.atMs);
    this.calls.push(callEndedLine(this.room, ended, this.webhookId));
    const trouble = sipProviderLine(this.room, ended, this.webhookId);
    if (trouble) this.provider.push(trouble);
    return ended.record;
  }
}

const NO_LINES: readonly ObsEvent[] = [];
/** What an event that does not touch a session reduces to. */
const UNCHANGED: Reduced = { next: undefined, calls: NO_LINES, session: NO_LINES, provider: NO_LINES };

/**
 * The pure step: one room-queue event applied to one session. Returns the
 * lines (grouped call, session, provider as SPEC §4 orders them) and the
 * session's next state. Never mutates `basis`.
 */
export function reduceSession(basis: Basis, event: WebhookEvent, nowMs: number): Reduced {
  const sid = event.room?.sid;
  if (!sid || !ROOM_QUEUE_EVENTS.has(event.event) || basis === ENDED) return UNCHANGED;
  const step = new SessionStep(basis, sid, event);

  step.fire('room_seen');

  const participant = event.participant;
  switch (event.event) {
    case 'participant_joined':
    case 'participant_left':
    case 'participant_connection_aborted': {
      if (!participant?.sid) break;
      const departed = event.event !== 'participant_joined';
      if (participant.kind === ParticipantInfo_Kind.SIP) {
        let leg = step.leg(participant.sid);
        if (leg?.phase === 'ended') break;
        if (!leg && nextCallPhase(null, 'leg_seen')) {
          leg = callFromParticipant(participant, step.atMs);
          step.calls.push(callStartedLine(step.room, leg, step.webhookId));
        }
        if (!leg) break;
        const status = sipCallStatus(participant);
        if (showsAnswered(status)) leg = step.answer(leg, departed ? 'left_snapshot' : 'joined_active', departed ? undefined : step.atMs);
        if (departed) leg = step.end(leg, 'leg_left', endReason(participant), status);
        step.replace(leg);
      } else if (connectsSession(participant) && event.event !== 'participant_connection_aborted') {
        // participant_left is sent only for a participant that had become active.
        step.fire('participant_active');
      }
      break;
    }
    case 'track_published': {
      // Track events carry only the participant's sid and identity (no kind):
      // they answer a leg already known by its SID, nothing else.
      const leg = step.leg(participant?.sid);
      if (leg) step.replace(step.answer(leg, 'track_published', step.atMs));
      break;
    }
    case 'room_finished': {
      for (const leg of [...step.legs]) step.replace(step.end(leg, 'room_finished', 'room_finished', undefined));
      step.fire('room_finished', roomEndReasonName(event));
      break;
    }
    default:
      break;
  }

  const next: SessionRecord | typeof ENDED =
    step.state === 'ended' ? ENDED : { sid, name: step.room.name, state: step.state ?? 'created', calls: step.legs, touchedAtMs: nowMs };
  return { next, calls: step.calls, session: step.session, provider: step.provider };
}

const liveLegs = (record: SessionRecord | undefined): number => (record ? record.calls.reduce((count, leg) => count + (leg.phase === 'ended' ? 0 : 1), 0) : 0);

export class SessionStore implements SessionTracker {
  private readonly options: Required<SessionStoreOptions>;
  /** Open sessions by room SID, least recently active first. */
  private open = new Map<string, SessionRecord>();
  /** Ended sessions: room SID → receiver time it ended, oldest first. */
  private ended = new Map<string, number>();
  /** Provider troubles already reported: key → receiver time, oldest first. */
  private reported = new Map<string, number>();
  private legRecords = 0;
  private liveCalls = 0;
  private evictedOpen = 0;
  /** Inside commitTogether: the latest commit time, pruned at once when it ends; null outside. */
  private heldPruneAtMs: number | null = null;

  constructor(options: SessionStoreOptions = {}) {
    this.options = { ...SESSION_DEFAULTS, ...options };
  }

  /** Sessions created or connected and not yet ended (for /metrics). */
  get openSessions(): number {
    return this.open.size;
  }

  /** Call legs started and not yet ended (for /metrics). */
  get openCalls(): number {
    return this.liveCalls;
  }

  /** Ended sessions still remembered. */
  get endedSessions(): number {
    return this.ended.size;
  }

  /** Open sessions forgotten by the idle timeout or a cap, without an ended line (for /metrics). */
  get evictedSessions(): number {
    return this.evictedOpen;
  }

  observe(event: WebhookEvent, nowMs: number): { readonly events: readonly ObsEvent[]; commit(): void } {
    const plan = this.plan(event, nowMs);
    const store = this;
    // A method rather than an arrow property: tsx (keepNames) would name the arrow at run time, per event.
    return {
      events: plan.events,
      commit() {
        store.apply(event, plan, nowMs);
      },
    };
  }

  commitTogether(commits: () => void): void {
    if (this.heldPruneAtMs !== null) return commits();
    this.heldPruneAtMs = Number.NEGATIVE_INFINITY;
    try {
      commits();
    } finally {
      const pruneAtMs = this.heldPruneAtMs;
      this.heldPruneAtMs = null;
      if (pruneAtMs !== Number.NEGATIVE_INFINITY) this.prune(pruneAtMs);
    }
  }

  private basisOf(sid: string | undefined): Basis {
    if (!sid) return undefined;
    if (this.ended.has(sid)) return ENDED;
    return this.open.get(sid);
  }

  private plan(event: WebhookEvent, nowMs: number): Plan {
    const sid = event.room?.sid || undefined;
    const basis = this.basisOf(sid);
    const reduced = reduceSession(basis, event, nowMs);
    const providerKeys: string[] = [];
    const providerLines: ObsEvent[] = [...reduced.provider];
    for (const finding of providerFindings(event)) {
      if (finding.key !== undefined) {
        if (this.reported.has(finding.key) || providerKeys.includes(finding.key)) continue;
        providerKeys.push(finding.key);
      }
      providerLines.push(finding.line);
    }
    return { sid, basis, next: reduced.next, providerKeys, events: [...reduced.calls, ...reduced.session, ...providerLines] };
  }

  private apply(event: WebhookEvent, planned: Plan, nowMs: number): void {
    // Another event may have committed to this session between observe and
    // commit; then step again from what is there now, so nothing is lost.
    const plan = this.basisOf(planned.sid) === planned.basis ? planned : this.plan(event, nowMs);
    const { sid, next } = plan;
    if (sid !== undefined && next !== undefined) {
      if (next === ENDED) {
        this.dropOpen(sid);
        this.ended.delete(sid);
        this.ended.set(sid, nowMs);
      } else {
        this.putOpen(this.trimCalls(next));
      }
    }
    for (const key of plan.providerKeys) this.reported.set(key, nowMs);
    if (this.heldPruneAtMs === null) this.prune(nowMs);
    else this.heldPruneAtMs = Math.max(this.heldPruneAtMs, nowMs);
  }

  private trimCalls(record: SessionRecord): SessionRecord {
    const excess = record.calls.length - this.options.maxCallsPerSession;
    if (excess <= 0) return record;
    let toDrop = excess;
    const calls = record.calls.filter((leg) => {
      if (leg.phase !== 'ended' || toDrop === 0) return true;
      toDrop--;
      return false;
    });
    return { ...record, calls };
  }

  private putOpen(record: SessionRecord): void {
    this.dropOpen(record.sid);
    this.open.set(record.sid, record);
    this.legRecords += record.calls.length;
    this.liveCalls += liveLegs(record);
  }

  private dropOpen(sid: string): void {
    const previous = this.open.get(sid);
    if (!previous) return;
    this.open.delete(sid);
    this.legRecords -= previous.calls.length;
    this.liveCalls -= liveLegs(previous);
  }

  /** Applies the idle timeout, the grace period and the caps. Called on every commit (once per commitTogether); call it also from a timer if you like. */
  prune(nowMs: number): void {
    const o = this.options;
    for (const [sid, record] of this.open) {
      if (this.open.size <= o.maxOpenSessions && this.legRecords <= o.maxCalls && nowMs - record.touchedAtMs < o.idleTimeoutMs) break;
      this.dropOpen(sid);
      this.evictedOpen++;
    }
    for (const [sid, endedAtMs] of this.ended) {
      if (this.ended.size <= o.maxEndedSessions && nowMs - endedAtMs < o.endedGraceMs) break;
      this.ended.delete(sid);
    }
    for (const [key, reportedAtMs] of this.reported) {
      if (this.reported.size <= o.maxProviderKeys && nowMs - reportedAtMs < o.providerKeyWindowMs) break;
      this.reported.delete(key);
    }
  }

  /** The state to save: plain data, safe to JSON.stringify. */
  snapshot(): SessionSnapshot {
    return { version: 1, open: [...this.open.values()], ended: [...this.ended], providerKeys: [...this.reported] };
  }

  /** Replaces the state with a saved one (validate it with parseSessionSnapshot first), then prunes at `nowMs`. */
  restore(snapshot: SessionSnapshot, nowMs: number): void {
    this.open = new Map();
    this.ended = new Map();
    this.reported = new Map();
    this.legRecords = 0;
    this.liveCalls = 0;
    for (const record of snapshot.open) this.putOpen(this.trimCalls(record));
    for (const [sid, endedAtMs] of snapshot.ended) {
      this.dropOpen(sid);
      this.ended.set(sid, endedAtMs);
    }
    for (const [key, reportedAtMs] of snapshot.providerKeys) this.reported.set(key, reportedAtMs);
    this.prune(nowMs);
  }
}

// ------------------------------------------------------- snapshot checks

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const optional = (value: unknown, check: (v: unknown) => boolean): boolean => value === undefined || check(value);
const isString = (value: unknown): value is string => typeof value === 'string';

function isCallRecord(value: unknown): value is CallRecord {
  if (!isObject(value)) return false;
  return (
    isString(value.participantSid) &&
    value.participantSid !== '' &&
    isString(value.identity) &&
    (value.direction === 'inbound' || value.direction === 'outbound') &&
    (value.phase === 'started' || value.phase === 'answered' || value.phase === 'ended') &&
    optional(value.from, isString) &&
    optional(value.to, isString) &&
    optional(value.sipCallId, isString) &&
    optional(value.trunkId, isString) &&
    optional(value.startedAtMs, isFiniteNumber) &&
    optional(value.answeredAtMs, isFiniteNumber) &&
    optional(value.answerSignal, (signal) => signal === 'joined_active' || signal === 'track_published' || signal === 'left_snapshot')
  );
}

function isSessionRecord(value: unknown): value is SessionRecord {
  if (!isObject(value)) return false;
  return (
    isString(value.sid) &&
    value.sid !== '' &&
    isString(value.name) &&
    (value.state === 'created' || value.state === 'connected') &&
    Array.isArray(value.calls) &&
    value.calls.every(isCallRecord) &&
    isFiniteNumber(value.touchedAtMs)
  );
}

const isTimedKey = (value: unknown): value is [string, number] =>
  Array.isArray(value) && value.length === 2 && isString(value[0]) && isFiniteNumber(value[1]);

/** Checks a parsed state-file member; an error says what is wrong (for the warning line). */
export function parseSessionSnapshot(value: unknown): { ok: true; snapshot: SessionSnapshot } | { ok: false; error: string } {
  if (!isObject(value)) return { ok: false, error: 'sessions is not an object' };
  if (value.version !== 1) return { ok: false, error: `unsupported sessions version ${JSON.stringify(value.version)}` };
  if (!Array.isArray(value.open)) return { ok: false, error: 'sessions.open is not a list' };
  const badOpen = value.open.findIndex((record) => !isSessionRecord(record));
  if (badOpen !== -1) return { ok: false, error: `sessions.open[${badOpen}] is not a session` };
  if (!Array.isArray(value.ended) || !value.ended.every(isTimedKey)) return { ok: false, error: 'sessions.ended is not a list of [sid, ms]' };
  if (!Array.isArray(value.providerKeys) || !value.providerKeys.every(isTimedKey)) {
    return { ok: false, error: 'sessions.providerKeys is not a list of [key, ms]' };
  }
  return { ok: true, snapshot: value as unknown as SessionSnapshot };
}
