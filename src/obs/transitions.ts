// The session and call state machines as data (docs/architecture.md: one source
// of truth). The session step (reduceSession in sessions.ts) moves only along these rows, the
// tests walk the same rows, and README's "How calls and sessions are
// derived" is written from them. Nothing here reads a clock or does I/O.
//
// Facts behind the rules: docs/livekit-facts.md#events (what each webhook
// means), #fields (DisconnectReason) and #telephony (SIP attributes,
// sip.callStatus, how SIP outcomes reach disconnectReason in both server
// generations).

import { type ParticipantInfo, ParticipantInfo_Kind } from '@livekit/protocol';
import { hasKnownKind } from './enum-names.ts';

// ---------------------------------------------------------------- sessions

export const SESSION_STATES = ['created', 'connected', 'ended'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export type SessionTrigger = 'room_seen' | 'participant_active' | 'call_answered' | 'room_finished';

export interface SessionTransition {
  /** null: the room SID is not known yet. */
  readonly from: SessionState | null;
  readonly on: SessionTrigger;
  readonly to: SessionState;
  readonly when: string;
}

/**
 * Every allowed session transition. A trigger with no row for the current
 * state changes nothing: that is how a session never goes back and an ended
 * session is never revived.
 */
export const SESSION_TRANSITIONS: readonly SessionTransition[] = [
  { from: null, on: 'room_seen', to: 'created', when: 'room_started, or the first room, participant or track event of a room SID not seen before' },
  { from: 'created', on: 'participant_active', to: 'connected', when: 'a standard (or connector) participant joined, or left and so had joined' },
  { from: 'created', on: 'call_answered', to: 'connected', when: 'a SIP call leg in the room was answered' },
  { from: 'created', on: 'room_finished', to: 'ended', when: 'room_finished' },
  { from: 'connected', on: 'room_finished', to: 'ended', when: 'room_finished' },
];

export function nextSessionState(from: SessionState | null, on: SessionTrigger): SessionState | undefined {
  return SESSION_TRANSITIONS.find((row) => row.from === from && row.on === on)?.to;
}

/**
 * Participant kinds whose joining connects a session. SIP legs connect it
 * when answered instead; agents, egress, ingress and RTSP bridges never do.
 */
export const CONNECTING_KINDS: ReadonlySet<ParticipantInfo_Kind> = new Set([ParticipantInfo_Kind.STANDARD, ParticipantInfo_Kind.CONNECTOR]);

/**
 * Whether this participant's joining connects a session: a CONNECTING_KINDS
 * kind that this version knows. A kind name it does not know decodes as 0
 * (STANDARD) but is no standard participant.
 */
export function connectsSession(participant: ParticipantInfo): boolean {
  return CONNECTING_KINDS.has(participant.kind) && hasKnownKind(participant);
}

// ------------------------------------------------------------------- calls

export const CALL_PHASES = ['started', 'answered', 'ended'] as const;
export type CallPhase = (typeof CALL_PHASES)[number];

export type CallTrigger = 'leg_seen' | 'answer_signal' | 'leg_left' | 'room_finished';

export interface CallTransition {
  /** null: the participant SID is not known yet. */
  readonly from: CallPhase | null;
  readonly on: CallTrigger;
  readonly to: CallPhase;
  /** The line the transition writes. */
  readonly line: 'call.started' | 'call.answered' | 'call.ended';
  readonly when: string;
}

export const CALL_TRANSITIONS: readonly CallTransition[] = [
  { from: null, on: 'leg_seen', to: 'started', line: 'call.started', when: 'participant_joined, participant_left or participant_connection_aborted of a SIP participant SID not seen before' },
  { from: 'started', on: 'answer_signal', to: 'answered', line: 'call.answered', when: 'one of ANSWER_SIGNALS' },
  { from: 'started', on: 'leg_left', to: 'ended', line: 'call.ended', when: 'participant_left or participant_connection_aborted' },
  { from: 'answered', on: 'leg_left', to: 'ended', line: 'call.ended', when: 'participant_left or participant_connection_aborted' },
  { from: 'started', on: 'room_finished', to: 'ended', line: 'call.ended', when: 'room_finished with the leg still up (reason room_finished)' },
  { from: 'answered', on: 'room_finished', to: 'ended', line: 'call.ended', when: 'room_finished with the leg still up (reason room_finished)' },
];

export function nextCallPhase(from: CallPhase | null, on: CallTrigger): CallTransition | undefined {
  return CALL_TRANSITIONS.find((row) => row.from === from && row.on === on);
}

// ------------------------------------------------------ SIP call status

/** `sip.callStatus` values that mean the call was connected (docs/livekit-facts.md#telephony). */
export const ANSWERED_STATUSES: ReadonlySet<string> = new Set(['active', 'automation']);
/** `sip.callStatus` values that mean the call never got past dialing or ringing. */
export const UNANSWERED_STATUSES: ReadonlySet<string> = new Set(['dialing', 'ringing']);

export type AnswerSignal = 'joined_active' | 'track_published' | 'left_snapshot';

/** What makes a call answered; the signal is written as `detail` on `call.answered`. */
export const ANSWER_SIGNALS: ReadonlyArray<{ readonly signal: AnswerSignal; readonly when: string; readonly answerTime: string }> = [
  { signal: 'joined_active', when: 'participant_joined whose sip.callStatus is active or automation', answerTime: "that event's createdAt" },
  {
    signal: 'track_published',
    when:
      "the first track_published of the leg's participant SID (phone audio flows only once connected), also when it arrived before the leg's participant_joined or without one: " +
      'it is remembered (REMEMBERED_TRACKS_PER_SESSION) and applied when the participant turns out to be a SIP leg, at its join or its leave',
    answerTime: "that track event's createdAt",
  },
  {
    signal: 'left_snapshot',
    when: 'the leaving snapshot proves it (DEPARTURE_ANSWER_RULES), with no earlier signal',
    answerTime: 'unknown: call.answered is written at the end, and call.ended has no talk_ms',
  },
];

export interface DepartureAnswerRule {
  readonly when: string;
  readonly matches: (direction: Direction, status: string | undefined) => boolean;
}

/** When the sip.callStatus a leg leaves with proves it was answered (docs/livekit-facts.md#telephony). */
export const DEPARTURE_ANSWER_RULES: readonly DepartureAnswerRule[] = [
  {
    when: 'active or automation, either direction: the call was connected and the room side ended it',
    matches: (_direction, status) => status !== undefined && ANSWERED_STATUSES.has(status),
  },
  {
    when: "outbound, hangup: LiveKit's SIP bridge sets hangup on an outbound leg only after the callee answered (or for a transfer)",
    matches: (direction, status) => direction === 'outbound' && status === 'hangup',
  },
];

export function departureShowsAnswered(direction: Direction, status: string | undefined): boolean {
  return DEPARTURE_ANSWER_RULES.some((rule) => rule.matches(direction, status));
}

/** What looks like an answer and is not. */
export const NOT_AN_ANSWER: readonly string[] = [
  'a track event whose participant snapshot shows sip.callStatus dialing or ringing: a dial tone (outbound calls with play_dialtone publish audio before the answer)',
  'any earlier signal, when the leg leaves still dialing or ringing: it was early media, the call was never answered (call.ended says so in detail)',
  'an inbound leg leaving with hangup: a caller who gives up while it rings ends as hangup too',
];

/** Whether a track event is an answer signal, by the sip.callStatus of its participant snapshot (LiveKit usually sends none: then it is). */
export const trackAnswers = (status: string | undefined): boolean => status === undefined || !UNANSWERED_STATUSES.has(status);

/**
 * Track events remembered per session for participants not known (yet) as
 * SIP legs, one per participant SID; beyond it the oldest is dropped. A
 * participant event that shows another kind drops its entry.
 */
export const REMEMBERED_TRACKS_PER_SESSION = 16;

// ---------------------------------------------------------- outcomes

export const CALL_OUTCOMES = ['completed', 'no_answer', 'rejected', 'failed', 'cancelled'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export type Direction = 'inbound' | 'outbound';

/** What is known when a call leg ends. */
export interface EndFacts {
  readonly direction: Direction;
  /** After the final-status check: a leg whose last sip.callStatus is dialing/ringing was not answered. */
  readonly answered: boolean;
  /** LiveKit's disconnect reason in lower snake case, or `room_finished`. */
  readonly reason: string;
  /** The leg's last sip.callStatus, when the ending event carried one. */
  readonly lastStatus: string | undefined;
}

const neverPastRinging = (facts: EndFacts): boolean => facts.lastStatus === undefined || UNANSWERED_STATUSES.has(facts.lastStatus);

export interface OutcomeRule {
  readonly outcome: CallOutcome;
  readonly when: string;
  readonly matches: (facts: EndFacts) => boolean;
}

/** The outcome table of docs/contract.md#outcomes; the first matching row wins. */
export const OUTCOME_RULES: readonly OutcomeRule[] = [
  {
    outcome: 'completed',
    when: 'answered, then any end (including the room finishing, and a cold transfer: SIP REFER looks exactly like a hang-up in webhooks)',
    matches: (f) => f.answered,
  },
  { outcome: 'no_answer', when: 'user_unavailable', matches: (f) => f.reason === 'user_unavailable' },
  { outcome: 'rejected', when: 'user_rejected', matches: (f) => f.reason === 'user_rejected' },
  { outcome: 'failed', when: 'sip_trunk_failure or media_failure', matches: (f) => f.reason === 'sip_trunk_failure' || f.reason === 'media_failure' },
  {
    outcome: 'failed',
    when: 'outbound, never answered, client_initiated (how servers up to 2026-08 report a trunk failure)',
    matches: (f) => f.direction === 'outbound' && f.reason === 'client_initiated',
  },
  {
    outcome: 'cancelled',
    when: 'inbound, never answered, client_initiated or unknown_reason, last sip.callStatus hangup or not reported: the caller hung up while it rang',
    matches: (f) =>
      f.direction === 'inbound' &&
      (f.reason === 'client_initiated' || f.reason === 'unknown_reason') &&
      (f.lastStatus === undefined || f.lastStatus === 'hangup'),
  },
  { outcome: 'failed', when: 'anything else unanswered', matches: () => true },
];

export function callOutcome(facts: EndFacts): CallOutcome {
  // The last row matches everything, so find() always succeeds.
  return OUTCOME_RULES.find((rule) => rule.matches(facts))!.outcome;
}

// ------------------------------------------------------ provider events

export type Provider = 'sip' | 'egress' | 'ingress' | 'livekit';

export interface SipProviderRule {
  readonly reason: string;
  readonly detail: string;
  readonly when: string;
  readonly matches: (facts: EndFacts) => boolean;
}

/** Trouble on the carrier's or the bridge's side of a SIP leg; at most one row per leg. */
export const SIP_PROVIDER_RULES: readonly SipProviderRule[] = [
  {
    reason: 'sip_trunk_failure',
    detail: 'the leg left with sip_trunk_failure',
    when: 'the leg left with sip_trunk_failure (servers from 2026-09)',
    matches: (f) => f.reason === 'sip_trunk_failure',
  },
  {
    reason: 'sip_trunk_failure',
    detail: 'outbound leg ended client_initiated before it was answered: how servers up to 2026-08 report a trunk failure',
    when: 'outbound, never answered, client_initiated, last sip.callStatus dialing/ringing or not reported (servers up to 2026-08)',
    matches: (f) => f.direction === 'outbound' && !f.answered && f.reason === 'client_initiated' && neverPastRinging(f),
  },
  {
    reason: 'media_failure',
    detail: 'the leg left with media_failure',
    when: 'the leg left with media_failure',
    matches: (f) => f.reason === 'media_failure',
  },
];

export function sipProviderRule(facts: EndFacts): SipProviderRule | undefined {
  return SIP_PROVIDER_RULES.find((rule) => rule.matches(facts));
}

/** Egress statuses (egressStatusName) that are the provider's trouble. */
export const EGRESS_PROVIDER_STATUSES: ReadonlySet<string> = new Set(['failed', 'aborted', 'limit_reached']);
/** Ingress statuses (ingressStatusName) that are the provider's trouble. */
export const INGRESS_PROVIDER_STATUSES: ReadonlySet<string> = new Set(['error']);
