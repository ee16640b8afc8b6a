// One SIP call leg: what a webhook tells about it (docs/livekit-facts.md#telephony)
// and the call.* and SIP provider.* lines it causes. Pure functions over
// immutable records; the session step (reduceSession in sessions.ts) decides
// when they apply.
//
// Times are LiveKit's: the participant's joinedAtMs starts the call, an
// event's createdAt (whole seconds) answers or ends it. The receiver's
// clock never enters a duration, so a late or retried delivery does not
// stretch a call.

import type { ParticipantInfo, WebhookEvent } from '@livekit/protocol';
import { disconnectReasonName } from './enum-names.ts';
import { type LineFields, line, type ObsEvent } from './schema.ts';
import {
  ANSWERED_STATUSES,
  type AnswerSignal,
  type CallOutcome,
  type CallPhase,
  callOutcome,
  type Direction,
  type EndFacts,
  type SipProviderRule,
  sipProviderRule,
  UNANSWERED_STATUSES,
} from './transitions.ts';

/** A call leg, keyed by its participant SID (a reconnect is a new SID). JSON-serialisable. */
export interface CallRecord {
  readonly participantSid: string;
  readonly identity: string;
  readonly direction: Direction;
  /** Caller and callee numbers, the right way round for the direction. */
  readonly from?: string;
  readonly to?: string;
  readonly sipCallId?: string;
  readonly trunkId?: string;
  readonly phase: CallPhase;
  /** LiveKit time (ms) the leg joined the room; undefined when the webhooks never said. */
  readonly startedAtMs?: number;
  /** LiveKit time (ms) of the answer signal; undefined when unanswered or the time is unknown. */
  readonly answeredAtMs?: number;
  readonly answerSignal?: AnswerSignal;
}

/** The room a line belongs to. */
export interface RoomRef {
  readonly sid: string;
  readonly name: string;
}

export const SIP_ATTRIBUTES = {
  callId: 'sip.callID',
  trunkId: 'sip.trunkID',
  ruleId: 'sip.ruleID',
  phoneNumber: 'sip.phoneNumber',
  trunkPhoneNumber: 'sip.trunkPhoneNumber',
  callStatus: 'sip.callStatus',
} as const;

/** LiveKit leaves unknown strings empty (protojson omits defaults): an empty string is unknown. */
export const nonEmpty = (value: string | undefined): string | undefined => (value ? value : undefined);

/** The event's createdAt in ms, or undefined when the server left it out. */
export function eventTimeMs(event: WebhookEvent): number | undefined {
  return event.createdAt > 0n ? Number(event.createdAt) * 1000 : undefined;
}

/** When the participant joined, by LiveKit's clock: joinedAtMs, else joinedAt (s). */
export function joinedTimeMs(participant: ParticipantInfo): number | undefined {
  if (participant.joinedAtMs > 0n) return Number(participant.joinedAtMs);
  if (participant.joinedAt > 0n) return Number(participant.joinedAt) * 1000;
  return undefined;
}

/** The leg's `sip.callStatus` in this snapshot, if reported. */
export function sipCallStatus(participant: ParticipantInfo): string | undefined {
  return nonEmpty(participant.attributes[SIP_ATTRIBUTES.callStatus]);
}

/** Inbound legs come from a dispatch rule: `sip.ruleID` is set only for them (docs/livekit-facts.md#telephony). */
export function sipDirection(participant: ParticipantInfo): Direction {
  return participant.attributes[SIP_ATTRIBUTES.ruleId] ? 'inbound' : 'outbound';
}

/** A new leg (phase `started`) from the first snapshot of a SIP participant. */
export function callFromParticipant(participant: ParticipantInfo, eventMs: number | undefined): CallRecord {
  const attributes = participant.attributes;
  const direction = sipDirection(participant);
  const remote = nonEmpty(attributes[SIP_ATTRIBUTES.phoneNumber]);
  const ours = nonEmpty(attributes[SIP_ATTRIBUTES.trunkPhoneNumber]);
  const call: Record<string, unknown> = {
    participantSid: participant.sid,
    identity: participant.identity,
    direction,
    // Inbound: the caller (sip.phoneNumber) dialled our number; outbound: the reverse.
    from: direction === 'inbound' ? remote : ours,
    to: direction === 'inbound' ? ours : remote,
    sipCallId: nonEmpty(attributes[SIP_ATTRIBUTES.callId]),
    trunkId: nonEmpty(attributes[SIP_ATTRIBUTES.trunkId]),
    phase: 'started',
    startedAtMs: joinedTimeMs(participant) ?? eventMs,
  };
  return withoutUndefined(call) as unknown as CallRecord;
}

export function answeredCall(call: CallRecord, signal: AnswerSignal, atMs: number | undefined): CallRecord {
  // createdAt has whole seconds: never let the answer precede the start.
  const answeredAtMs = atMs === undefined ? undefined : Math.max(atMs, call.startedAtMs ?? atMs);
  return withoutUndefined({ ...call, phase: 'answered', answerSignal: signal, answeredAtMs }) as unknown as CallRecord;
}

export interface CallEnd {
  readonly record: CallRecord;
  readonly facts: EndFacts;
  readonly outcome: CallOutcome;
  readonly durationMs: number | undefined;
  readonly talkMs: number | undefined;
  /** An answer signal was seen but the final sip.callStatus says the leg never got past ringing. */
  readonly earlyMedia: boolean;
  readonly provider: SipProviderRule | undefined;
}

const span = (fromMs: number | undefined, toMs: number | undefined): number | undefined =>
  fromMs === undefined || toMs === undefined ? undefined : Math.max(0, toMs - fromMs);

/**
 * Ends a leg. `lastStatus` is the sip.callStatus of the ending snapshot
 * (undefined for room_finished, which carries no participant). A final
 * dialing/ringing overrides an earlier answer signal: that signal was early
 * media (an outbound call with play_dialtone publishes audio while ringing).
 */
export function endedCall(call: CallRecord, reason: string, lastStatus: string | undefined, endMs: number | undefined): CallEnd {
  const signalled = call.phase === 'answered';
  const earlyMedia = signalled && lastStatus !== undefined && UNANSWERED_STATUSES.has(lastStatus);
  const answered = signalled && !earlyMedia;
  const facts: EndFacts = { direction: call.direction, answered, reason, lastStatus };
  return {
    record: { ...call, phase: 'ended' },
    facts,
    outcome: callOutcome(facts),
    durationMs: span(call.startedAtMs, endMs),
    talkMs: answered ? span(call.answeredAtMs, endMs) : undefined,
    earlyMedia,
    provider: sipProviderRule(facts),
  };
}

/** The disconnect reason of an ending snapshot, lower snake case (`unknown_reason` when absent). */
export function endReason(participant: ParticipantInfo): string {
  return disconnectReasonName(participant);
}

/** Whether this snapshot shows the leg connected. */
export const showsAnswered = (status: string | undefined): boolean => status !== undefined && ANSWERED_STATUSES.has(status);

// ------------------------------------------------------------- lines

export function withoutUndefined<T extends Record<string, unknown>>(object: T): T {
  // A copy rather than `delete`: deleting turns an object into a slow dictionary.
  const defined: Record<string, unknown> = {};
  const keys = Object.keys(object);
  for (let index = 0; index < keys.length; index++) {
    const value = object[keys[index]!];
    if (value !== undefined) defined[keys[index]!] = value;
  }
  return defined as T;
}

function callIdentity(room: RoomRef, call: CallRecord, webhookId: string | undefined): LineFields {
  return {
    webhook_id: webhookId,
    room_name: nonEmpty(room.name),
    room_sid: room.sid,
    participant_identity: nonEmpty(call.identity),
    participant_sid: call.participantSid,
    direction: call.direction,
    from: call.from,
    to: call.to,
    sip_call_id: call.sipCallId,
    trunk_id: call.trunkId,
  };
}

/** A derived line with its unknown fields left out. */
export function derivedLine(level: ObsEvent['level'], eventType: ObsEvent['event_type'], sessionId: string | null, fields: LineFields): ObsEvent {
  return line(level, eventType, sessionId, fields);
}

export function callStartedLine(room: RoomRef, call: CallRecord, webhookId: string | undefined): ObsEvent {
  return derivedLine('info', 'call.started', room.sid, callIdentity(room, call, webhookId));
}

export function callAnsweredLine(room: RoomRef, call: CallRecord, webhookId: string | undefined): ObsEvent {
  return derivedLine('info', 'call.answered', room.sid, { ...callIdentity(room, call, webhookId), detail: call.answerSignal });
}

export function callEndedLine(room: RoomRef, end: CallEnd, webhookId: string | undefined): ObsEvent {
  return derivedLine('info', 'call.ended', room.sid, {
    ...callIdentity(room, end.record, webhookId),
    reason: end.facts.reason,
    outcome: end.outcome,
    answered: end.facts.answered,
    duration_ms: end.durationMs,
    talk_ms: end.talkMs,
    detail: end.earlyMedia ? `answer signal was early media: the leg ended with sip.callStatus ${end.facts.lastStatus}` : undefined,
  });
}

export function sipProviderLine(room: RoomRef, end: CallEnd, webhookId: string | undefined): ObsEvent | undefined {
  if (!end.provider) return undefined;
  return derivedLine('warn', 'provider.event', room.sid, {
    ...callIdentity(room, end.record, webhookId),
    provider: 'sip',
    reason: end.provider.reason,
    detail: end.provider.detail,
  });
}
