// Sessions and calls: the pure step that turns one of a room's webhooks
// into call.*, session.* and provider.* lines and the room's next state
// (docs/architecture.md, docs/contract.md).
//
// A session is a room SID. It moves only along SESSION_TRANSITIONS and each
// SIP leg in it only along CALL_TRANSITIONS (transitions.ts). Because an
// event for an ended session, a leg that already ended, or a room already
// created finds no row in the tables, a redelivered or late event writes no
// line twice, a session never goes back and a finished one is never
// revived. The state is one immutable, JSON-serialisable record per room,
// which a store keeps (src/store/) without interpreting it. Pure: the
// caller passes the time; it is used only for eviction, never in a
// duration.

import { ParticipantInfo_Kind, type WebhookEvent } from '@livekit/protocol';
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
  nonEmpty,
  type RoomRef,
  showsAnswered,
  sipCallStatus,
  sipProviderLine,
} from './calls.ts';
import { roomEndReasonName } from './enum-names.ts';
import { isPlainObject, isTimedKey } from './json-values.ts';
import type { ObsEvent } from './schema.ts';
import {
  type AnswerSignal,
  connectsSession,
  departureShowsAnswered,
  nextCallPhase,
  nextSessionState,
  REMEMBERED_TRACKS_PER_SESSION,
  type SessionState,
  type SessionTrigger,
  trackAnswers,
  UNANSWERED_STATUSES,
} from './transitions.ts';

/** An open session (created or connected). Immutable and JSON-serialisable: the state file stores it as is. */
export interface SessionRecord {
  readonly sid: string;
  readonly name: string;
  readonly state: Exclude<SessionState, 'ended'>;
  /** Its SIP legs, oldest first, ended ones included (so a late event cannot start them again). */
  readonly calls: readonly CallRecord[];
  /** The receiver's time of the last event (ms): for idle eviction only. */
  readonly touchedAtMs: number;
  /**
   * Track events of participants not known (yet) as SIP legs, oldest first,
   * at most REMEMBERED_TRACKS_PER_SESSION; absent when there are none (and
   * in snapshots written before it existed).
   */
  readonly pendingTracks?: readonly PendingTrack[];
}

/** A track_published remembered until its participant turns out to be a SIP leg (or not). */
export interface PendingTrack {
  readonly participantSid: string;
  /** LiveKit's time of the first such event (ms); absent when the server left createdAt out. */
  readonly atMs?: number;
}

/** The `sessions` member of a version 1 state file (read at start to upgrade it). */
export interface SessionSnapshot {
  readonly version: 1;
  /** Least recently active first. */
  readonly open: readonly SessionRecord[];
  /** [room SID, receiver time it ended (ms)], oldest first. */
  readonly ended: ReadonlyArray<readonly [string, number]>;
  /** [provider trouble key, receiver time reported (ms)], oldest first. */
  readonly providerKeys: ReadonlyArray<readonly [string, number]>;
}

/** Events of the room's own webhook queue (docs/livekit-facts.md): the only ones that create or change a session. */
export const ROOM_QUEUE_EVENTS: ReadonlySet<string> = new Set([
  'room_started',
  'room_finished',
  'participant_joined',
  'participant_left',
  'participant_connection_aborted',
  'track_published',
  'track_unpublished',
]);

/** A room whose session ended: remembered for a while so late events stay ignored. */
export const ENDED = 'ended' as const;

/** What is kept for a room SID: its open session, or the fact that it ended. */
export type RoomState = SessionRecord | typeof ENDED;

type Basis = RoomState | undefined;

interface Reduced {
  readonly next: SessionRecord | typeof ENDED | undefined;
  readonly calls: readonly ObsEvent[];
  readonly session: readonly ObsEvent[];
  readonly provider: readonly ObsEvent[];
}


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


/** One event's walk along the tables: the session's state and legs so far, and the lines written on the way. */
class SessionStep {
  readonly calls: ObsEvent[] = [];
  readonly session: ObsEvent[] = [];
  readonly provider: ObsEvent[] = [];
  state: SessionState | null;
  readonly room: RoomRef;
  readonly legs: CallRecord[];
  readonly pendingTracks: PendingTrack[];
  readonly webhookId: string | undefined;
  /** LiveKit's time of the event (durations use it, never the receiver's clock). */
  readonly atMs: number | undefined;

  constructor(basis: SessionRecord | undefined, sid: string, event: WebhookEvent) {
    this.state = basis?.state ?? null;
    this.room = { sid, name: basis?.name || event.room?.name || '' };
    this.legs = basis ? [...basis.calls] : [];
    this.pendingTracks = basis?.pendingTracks ? [...basis.pendingTracks] : [];
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

  /** Remembers a track event of a participant whose kind is not known: the earliest per SID, the newest SIDs kept. */
  rememberTrack(participantSid: string): void {
    const index = this.pendingTracks.findIndex((pending) => pending.participantSid === participantSid);
    if (index !== -1) {
      const known = this.pendingTracks[index]!;
      if (this.atMs !== undefined && (known.atMs === undefined || this.atMs < known.atMs)) this.pendingTracks[index] = { participantSid, atMs: this.atMs };
      return;
    }
    this.pendingTracks.push(this.atMs === undefined ? { participantSid } : { participantSid, atMs: this.atMs });
    if (this.pendingTracks.length > REMEMBERED_TRACKS_PER_SESSION) this.pendingTracks.shift();
  }

  /** Removes and returns the remembered track of a participant whose kind is now known. */
  takeTrack(participantSid: string): PendingTrack | undefined {
    const index = this.pendingTracks.findIndex((pending) => pending.participantSid === participantSid);
    return index === -1 ? undefined : this.pendingTracks.splice(index, 1)[0];
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
 * lines (grouped call, session, provider as docs/contract.md#the-lines-of-one-webhook orders them) and the
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
      // The participant's kind is known now: a track remembered for it either answers its leg or nothing.
      const remembered = step.takeTrack(participant.sid);
      if (participant.kind === ParticipantInfo_Kind.SIP) {
        let leg = step.leg(participant.sid);
        if (leg?.phase === 'ended') break;
        if (!leg && nextCallPhase(null, 'leg_seen')) {
          leg = callFromParticipant(participant, step.atMs);
          step.calls.push(callStartedLine(step.room, leg, step.webhookId));
        }
        if (!leg) break;
        const status = sipCallStatus(participant);
        if (!departed && showsAnswered(status)) leg = step.answer(leg, 'joined_active', step.atMs);
        // A leg that leaves still dialing or ringing was never answered: its remembered track was a dial tone.
        const stillRinging = departed && status !== undefined && UNANSWERED_STATUSES.has(status);
        if (remembered && !stillRinging) leg = step.answer(leg, 'track_published', remembered.atMs);
        if (departed && departureShowsAnswered(leg.direction, status)) leg = step.answer(leg, 'left_snapshot', undefined);
        if (departed) leg = step.end(leg, 'leg_left', endReason(participant), status);
        step.replace(leg);
      } else if (connectsSession(participant) && event.event !== 'participant_connection_aborted') {
        // participant_left is sent only for a participant that had become active.
        step.fire('participant_active');
      }
      break;
    }
    case 'track_published': {
      // Track events carry only the participant's sid and identity, not its
      // kind: they answer a leg already known by its SID; any other
      // participant's track is remembered until its kind is known.
      const sid = participant?.sid;
      if (!sid || !trackAnswers(sipCallStatus(participant))) break;
      const leg = step.leg(sid);
      if (leg) step.replace(step.answer(leg, 'track_published', step.atMs));
      else step.rememberTrack(sid);
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

  const state = step.state ?? 'created';
  const next: SessionRecord | typeof ENDED =
    state === 'ended'
      ? ENDED
      : step.pendingTracks.length === 0
        ? { sid, name: step.room.name, state, calls: step.legs, touchedAtMs: nowMs }
        : { sid, name: step.room.name, state, calls: step.legs, touchedAtMs: nowMs, pendingTracks: step.pendingTracks };
  return { next, calls: step.calls, session: step.session, provider: step.provider };
}

/** Legs kept per session; beyond it the oldest ended legs are forgotten. */
export const MAX_CALLS_PER_SESSION = 1_000;

/** The record with its oldest ended legs dropped beyond `maxCalls` (a room with a thousand call legs). */
export function trimCalls(record: SessionRecord, maxCalls = MAX_CALLS_PER_SESSION): SessionRecord {
  const excess = record.calls.length - maxCalls;
  if (excess <= 0) return record;
  let toDrop = excess;
  const calls = record.calls.filter((leg) => {
    if (leg.phase !== 'ended' || toDrop === 0) return true;
    toDrop--;
    return false;
  });
  return { ...record, calls };
}

// ------------------------------------------------------- snapshot checks

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const optional = (value: unknown, check: (v: unknown) => boolean): boolean => value === undefined || check(value);
const isString = (value: unknown): value is string => typeof value === 'string';

function isCallRecord(value: unknown): value is CallRecord {
  if (!isPlainObject(value)) return false;
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

function isPendingTrack(value: unknown): value is PendingTrack {
  return isPlainObject(value) && isString(value.participantSid) && value.participantSid !== '' && optional(value.atMs, isFiniteNumber);
}

/** Whether a value read back from storage (a state file, a shared store) is a session record. */
export function isSessionRecord(value: unknown): value is SessionRecord {
  if (!isPlainObject(value)) return false;
  return (
    isString(value.sid) &&
    value.sid !== '' &&
    isString(value.name) &&
    (value.state === 'created' || value.state === 'connected') &&
    Array.isArray(value.calls) &&
    value.calls.every(isCallRecord) &&
    isFiniteNumber(value.touchedAtMs) &&
    // Snapshots written before remembered tracks existed have none.
    optional(value.pendingTracks, (tracks) => Array.isArray(tracks) && tracks.every(isPendingTrack))
  );
}

/** Checks a parsed state-file member; an error says what is wrong (for the warning line). */
export function parseSessionSnapshot(value: unknown): { ok: true; snapshot: SessionSnapshot } | { ok: false; error: string } {
  if (!isPlainObject(value)) return { ok: false, error: 'sessions is not an object' };
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
