// Whole calls as LiveKit sends them: each scenario is one room's webhooks
// in the order LiveKit's room queue delivers them, with LiveKit's own
// times (createdAt, joinedAtMs) spaced as a real call is, and the call.ended
// an auditor must read for each SIP leg. `control-plane simulate` sends
// them to a running daemon; the tests and the property tests play the same
// scenarios (shuffled, duplicated and lossy there).
//
// The timings follow docs/livekit-facts.md#telephony: an inbound leg joins ringing
// and is answered once it hears the agent; an outbound leg joins dialing,
// before the INVITE, and its audio starts at the answer; a participant's
// tracks are unpublished just before it leaves; the room finishes when its
// departure timeout (20 s) runs out after the last participant left.

import { randomBytes } from 'node:crypto';
import type { CallOutcome, Direction } from '../obs/transitions.ts';
import {
  agentParticipant,
  envelope,
  type JsonObject,
  livekitId,
  type ParticipantSpec,
  participantJson,
  type RoomSpec,
  roomJson,
  sipParticipant,
  standardParticipant,
} from './samples.ts';

/** Builds one room's webhooks with LiveKit's timestamps: `seconds` after `startS` (Unix seconds). */
export class RoomTimeline {
  private readonly trackSids = new Map<string, string>();

  constructor(
    readonly room: RoomSpec,
    readonly startS: number,
  ) {}

  /** One webhook at `seconds` after the start. */
  at(event: string, fields: JsonObject, seconds: number, id?: string): JsonObject {
    return envelope(event, fields, { createdAt: this.startS + seconds, ...(id ? { id } : {}) });
  }

  started(seconds = 0): JsonObject {
    return this.at('room_started', { room: roomJson(this.room) }, seconds);
  }

  finished(seconds: number, roomEndReason?: string): JsonObject {
    return this.at('room_finished', { room: roomJson(this.room), ...(roomEndReason ? { roomEndReason } : {}) }, seconds);
  }

  joined(participant: ParticipantSpec, seconds: number, callStatus?: string): JsonObject {
    return this.at('participant_joined', { room: roomJson(this.room), participant: participantJson(participant, 'ACTIVE', { callStatus }) }, seconds);
  }

  left(participant: ParticipantSpec, seconds: number, disconnectReason?: string, callStatus?: string): JsonObject {
    return this.at('participant_left', { room: roomJson(this.room), participant: participantJson(participant, 'DISCONNECTED', { disconnectReason, callStatus }) }, seconds);
  }

  aborted(participant: ParticipantSpec, seconds: number, disconnectReason?: string, callStatus?: string): JsonObject {
    return this.at(
      'participant_connection_aborted',
      { room: roomJson(this.room), participant: participantJson(participant, 'DISCONNECTED', { disconnectReason, callStatus }) },
      seconds,
    );
  }

  private track(event: 'track_published' | 'track_unpublished', participant: ParticipantSpec, seconds: number, callStatus?: string): JsonObject {
    let trackSid = this.trackSids.get(participant.sid);
    if (trackSid === undefined) this.trackSids.set(participant.sid, (trackSid = livekitId('TR')));
    return this.at(
      event,
      {
        // Track events carry the room's sid and name only, and the participant's sid and identity only.
        room: roomJson(this.room, false),
        participant: { sid: participant.sid, identity: participant.identity, ...(callStatus ? { attributes: { 'sip.callStatus': callStatus } } : {}) },
        track: { sid: trackSid, name: 'audio', source: 'MICROPHONE', mimeType: 'audio/opus', mid: '0' },
      },
      seconds,
    );
  }

  /** `callStatus`: a participant snapshot that carries sip.callStatus (LiveKit's track events usually carry only sid and identity). */
  trackPublished(participant: ParticipantSpec, seconds: number, callStatus?: string): JsonObject {
    return this.track('track_published', participant, seconds, callStatus);
  }

  trackUnpublished(participant: ParticipantSpec, seconds: number): JsonObject {
    return this.track('track_unpublished', participant, seconds);
  }

  egress(event: 'egress_started' | 'egress_updated' | 'egress_ended', egressId: string, seconds: number, status?: string, error?: string): JsonObject {
    return this.at(
      event,
      {
        room: roomJson(this.room, false),
        egressInfo: {
          egressId,
          roomId: this.room.sid,
          roomName: this.room.name,
          ...(status ? { status } : {}),
          ...(error ? { error } : {}),
          startedAt: String(BigInt(this.startS) * 1_000_000_000n),
          roomComposite: { roomName: this.room.name },
        },
      },
      seconds,
    );
  }

  ingress(event: 'ingress_started' | 'ingress_ended', ingressId: string, seconds: number, status: string, error?: string): JsonObject {
    return this.at(
      event,
      {
        room: { name: this.room.name },
        ingressInfo: {
          ingressId,
          name: 'camera',
          streamKey: 'stream-key-never-logged',
          roomName: this.room.name,
          participantIdentity: 'camera-1',
          state: { status, ...(error ? { error } : {}), roomId: this.room.sid, resourceId: 'RS_1' },
        },
      },
      seconds,
    );
  }
}

/** What an auditor must read on one SIP leg's call.ended. */
export interface ExpectedCall {
  readonly participantSid: string;
  readonly direction: Direction;
  readonly outcome: CallOutcome;
  readonly answered: boolean;
  /** LiveKit's disconnect reason, lower snake case. */
  readonly reason: string;
  readonly durationMs: number;
  /** Absent when the call was not answered. */
  readonly talkMs?: number;
  /** Whether a `provider.event` (sip, sip_trunk_failure) is written too. */
  readonly trunkFailure: boolean;
}

/** One scenario played once: its room, its webhooks in LiveKit's order, and the calls they must produce. */
export interface ScenarioRun {
  readonly room: RoomSpec;
  /** Unix seconds of the room's start: each webhook's createdAt is this plus its offset. */
  readonly startS: number;
  readonly webhooks: readonly JsonObject[];
  readonly calls: readonly ExpectedCall[];
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  build(options: { readonly startS: number; readonly roomName?: string }): ScenarioRun;
}

/** Rooms of simulated calls are named `simulated-<scenario>-<random>`, so they are easy to tell apart in a real daemon's output. */
export const SIMULATED_ROOM_PREFIX = 'simulated-';

export function simulatedRoomName(scenario: string): string {
  return `${SIMULATED_ROOM_PREFIX}${scenario}-${randomBytes(3).toString('hex')}`;
}

// Participants join a fraction of a second before the event second that
// reports it (joinedAtMs has milliseconds, createdAt whole seconds).
const JOIN_LEAD_MS = 400;

interface LegPlan {
  readonly direction: Direction;
  readonly joinAt: number;
  readonly remote?: string;
}

function leg(startS: number, plan: LegPlan): ParticipantSpec {
  return sipParticipant(plan.direction, { remote: plan.remote ?? '+14155550123', trunkNumber: '+31201234589', joinedAtMs: (startS + plan.joinAt) * 1000 - JOIN_LEAD_MS });
}

function expected(participant: ParticipantSpec, startS: number, fields: Omit<ExpectedCall, 'participantSid' | 'durationMs' | 'talkMs'> & { endAt: number; answerAt?: number }): ExpectedCall {
  const { endAt, answerAt, ...rest } = fields;
  const endMs = (startS + endAt) * 1000;
  return {
    participantSid: participant.sid,
    ...rest,
    durationMs: endMs - participant.joinedAtMs,
    ...(answerAt !== undefined ? { talkMs: endMs - (startS + answerAt) * 1000 } : {}),
  };
}

/** A room with an agent, one SIP leg and the room's own start and finish; `middle` adds the leg's part. */
function callRoom(
  options: { startS: number; roomName?: string },
  name: string,
  plan: LegPlan,
  middle: (timeline: RoomTimeline, sip: ParticipantSpec, agent: ParticipantSpec) => { webhooks: JsonObject[]; lastAt: number; call: ExpectedCall },
  withAgent = true,
): ScenarioRun {
  const startS = options.startS;
  const room: RoomSpec = { sid: livekitId('RM'), name: options.roomName ?? simulatedRoomName(name), creationTime: startS };
  const timeline = new RoomTimeline(room, startS);
  const agent = agentParticipant((startS + 2) * 1000 - JOIN_LEAD_MS);
  const sip = leg(startS, plan);
  const { webhooks, lastAt, call } = middle(timeline, sip, agent);
  const agentLeaves = withAgent ? [timeline.trackUnpublished(agent, lastAt + 1), timeline.left(agent, lastAt + 1, 'CLIENT_INITIATED')] : [];
  return {
    room,
    startS,
    webhooks: [timeline.started(0), ...webhooks, ...agentLeaves, timeline.finished(lastAt + 1 + 20)],
    calls: [call],
  };
}

/** An agent that joined at 2 s and published its audio at 3 s. */
const agentArrives = (timeline: RoomTimeline, agent: ParticipantSpec): JsonObject[] => [timeline.joined(agent, 2), timeline.trackPublished(agent, 3)];

/** An outbound leg that rings and then ends with `reason`, its status still `statusAtEnd`. */
function unansweredOutbound(name: string, summary: string, endAt: number, reason: string, statusAtEnd: string, outcome: CallOutcome, trunkFailure: boolean): Scenario {
  return {
    name,
    summary,
    build: (options) =>
      callRoom(options, name, { direction: 'outbound', joinAt: 4 }, (timeline, sip, agent) => ({
        webhooks: [...agentArrives(timeline, agent), timeline.joined(sip, 4, 'dialing'), timeline.left(sip, endAt, reason, statusAtEnd)],
        lastAt: endAt,
        call: expected(sip, options.startS, { direction: 'outbound', outcome, answered: false, reason: reason.toLowerCase(), trunkFailure, endAt }),
      })),
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'inbound-answered',
    summary: 'a caller dials in, the agent answers, the caller hangs up after a minute',
    build: (options) =>
      callRoom(options, 'inbound-answered', { direction: 'inbound', joinAt: 1 }, (timeline, sip, agent) => ({
        webhooks: [
          timeline.joined(sip, 1, 'ringing'),
          ...agentArrives(timeline, agent),
          // The bridge answers once it hears the agent: the caller's audio starts.
          timeline.trackPublished(sip, 4),
          timeline.trackUnpublished(sip, 65),
          timeline.left(sip, 65, 'CLIENT_INITIATED', 'hangup'),
        ],
        lastAt: 65,
        call: expected(sip, options.startS, { direction: 'inbound', outcome: 'completed', answered: true, reason: 'client_initiated', trunkFailure: false, endAt: 65, answerAt: 4 }),
      })),
  },
  {
    name: 'inbound-abandoned',
    summary: 'a caller dials in and hangs up after 8 s of ringing, before the agent is there',
    build: (options) =>
      callRoom(
        options,
        'inbound-abandoned',
        { direction: 'inbound', joinAt: 1 },
        (timeline, sip) => ({
          webhooks: [timeline.joined(sip, 1, 'ringing'), timeline.left(sip, 9, 'CLIENT_INITIATED', 'hangup')],
          lastAt: 9,
          call: expected(sip, options.startS, { direction: 'inbound', outcome: 'cancelled', answered: false, reason: 'client_initiated', trunkFailure: false, endAt: 9 }),
        }),
        false,
      ),
  },
  {
    name: 'inbound-transfer',
    summary: 'a caller is answered, and after 40 s the agent cold-transfers the call (SIP REFER: looks exactly like a hang-up)',
    build: (options) =>
      callRoom(options, 'inbound-transfer', { direction: 'inbound', joinAt: 1 }, (timeline, sip, agent) => ({
        webhooks: [
          timeline.joined(sip, 1, 'ringing'),
          ...agentArrives(timeline, agent),
          timeline.trackPublished(sip, 4),
          timeline.trackUnpublished(sip, 44),
          timeline.left(sip, 44, 'CLIENT_INITIATED', 'hangup'),
        ],
        lastAt: 44,
        call: expected(sip, options.startS, { direction: 'inbound', outcome: 'completed', answered: true, reason: 'client_initiated', trunkFailure: false, endAt: 44, answerAt: 4 }),
      })),
  },
  {
    name: 'inbound-pin',
    summary: 'a caller dials in through a PIN rule: the leg joins already active, talks 50 s, and the agent removes it',
    build: (options) =>
      callRoom(options, 'inbound-pin', { direction: 'inbound', joinAt: 9 }, (timeline, sip, agent) => ({
        webhooks: [
          ...agentArrives(timeline, agent),
          // The caller typed the PIN before the bridge joined the room: the leg is connected from the start.
          timeline.joined(sip, 9, 'active'),
          timeline.trackPublished(sip, 10),
          timeline.trackUnpublished(sip, 59),
          timeline.left(sip, 59, 'PARTICIPANT_REMOVED', 'active'),
        ],
        lastAt: 59,
        call: expected(sip, options.startS, { direction: 'inbound', outcome: 'completed', answered: true, reason: 'participant_removed', trunkFailure: false, endAt: 59, answerAt: 9 }),
      })),
  },
  {
    name: 'outbound-answered',
    summary: 'the agent dials out, the callee answers after 7 s and hangs up after a minute and a half',
    build: (options) =>
      callRoom(options, 'outbound-answered', { direction: 'outbound', joinAt: 4 }, (timeline, sip, agent) => ({
        webhooks: [
          ...agentArrives(timeline, agent),
          // The bridge joins while it dials; the callee's audio starts at the answer.
          timeline.joined(sip, 4, 'dialing'),
          timeline.trackPublished(sip, 11),
          timeline.trackUnpublished(sip, 98),
          timeline.left(sip, 98, 'CLIENT_INITIATED', 'hangup'),
        ],
        lastAt: 98,
        call: expected(sip, options.startS, { direction: 'outbound', outcome: 'completed', answered: true, reason: 'client_initiated', trunkFailure: false, endAt: 98, answerAt: 11 }),
      })),
  },
  {
    name: 'outbound-dial-tone',
    summary: 'the agent dials out with a dial tone (audio before any answer); nobody answers within 30 s',
    build: (options) =>
      callRoom(options, 'outbound-dial-tone', { direction: 'outbound', joinAt: 4 }, (timeline, sip, agent) => ({
        webhooks: [
          ...agentArrives(timeline, agent),
          timeline.joined(sip, 4, 'dialing'),
          timeline.trackPublished(sip, 5),
          timeline.trackUnpublished(sip, 35),
          timeline.left(sip, 35, 'USER_UNAVAILABLE', 'ringing'),
        ],
        lastAt: 35,
        call: expected(sip, options.startS, { direction: 'outbound', outcome: 'no_answer', answered: false, reason: 'user_unavailable', trunkFailure: false, endAt: 35 }),
      })),
  },
  unansweredOutbound('outbound-no-answer', 'the agent dials out; it rings for 30 s and nobody answers', 34, 'USER_UNAVAILABLE', 'ringing', 'no_answer', false),
  unansweredOutbound('outbound-busy', 'the agent dials out; the callee is busy', 6, 'USER_REJECTED', 'ringing', 'rejected', false),
  unansweredOutbound('trunk-failure', 'the agent dials out; the carrier answers 503 (servers from 2026-09: sip_trunk_failure)', 5, 'SIP_TRUNK_FAILURE', 'dialing', 'failed', true),
  unansweredOutbound(
    'trunk-failure-legacy',
    'the agent dials out; the carrier answers 503 (servers up to 2026-08: client_initiated before the answer)',
    5,
    'CLIENT_INITIATED',
    'dialing',
    'failed',
    true,
  ),
  {
    name: 'trunk-failure-fast',
    summary: 'the agent dials out; the carrier fails at once, before the leg is connected to the room (connection aborted, servers up to 2026-08)',
    build: (options) =>
      callRoom(options, 'trunk-failure-fast', { direction: 'outbound', joinAt: 4 }, (timeline, sip, agent) => ({
        webhooks: [...agentArrives(timeline, agent), timeline.aborted(sip, 4, 'CLIENT_INITIATED', 'dialing')],
        lastAt: 4,
        call: expected(sip, options.startS, { direction: 'outbound', outcome: 'failed', answered: false, reason: 'client_initiated', trunkFailure: true, endAt: 4 }),
      })),
  },
  {
    name: 'conference',
    summary: 'a caller dials into a meeting of two WebRTC participants and stays 4.5 minutes',
    build: (options) => {
      const startS = options.startS;
      const room: RoomSpec = { sid: livekitId('RM'), name: options.roomName ?? simulatedRoomName('conference'), creationTime: startS };
      const timeline = new RoomTimeline(room, startS);
      const alice = standardParticipant('alice', (startS + 1) * 1000 - JOIN_LEAD_MS);
      const bob = standardParticipant('bob', (startS + 5) * 1000 - JOIN_LEAD_MS);
      const sip = leg(startS, { direction: 'inbound', joinAt: 10, remote: '+14155550177' });
      return {
        room,
        startS,
        webhooks: [
          timeline.started(0),
          timeline.joined(alice, 1),
          timeline.trackPublished(alice, 2),
          timeline.joined(bob, 5),
          timeline.trackPublished(bob, 6),
          timeline.joined(sip, 10, 'ringing'),
          timeline.trackPublished(sip, 11),
          timeline.trackUnpublished(sip, 281),
          timeline.left(sip, 281, 'CLIENT_INITIATED', 'hangup'),
          timeline.trackUnpublished(alice, 290),
          timeline.left(alice, 290, 'CLIENT_INITIATED'),
          timeline.trackUnpublished(bob, 291),
          timeline.left(bob, 291, 'CLIENT_INITIATED'),
          timeline.finished(311),
        ],
        calls: [expected(sip, startS, { direction: 'inbound', outcome: 'completed', answered: true, reason: 'client_initiated', trunkFailure: false, endAt: 281, answerAt: 11 })],
      };
    },
  },
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((scenario) => scenario.name === name);
}
