// The burst workloads: N unique signed webhooks grouped by room. LiveKit
// sends one room's events one at a time, in order, and different rooms in
// parallel (docs/livekit-facts.md#duplicates); the load generator reproduces that, so
// the session state machine sees real call life cycles, not shuffled noise.
//
//   sip-calls  (the default) replayed SIP calls handled by an agent, eight
//              webhooks per call: room_started, the agent's
//              participant_joined and track_published, the SIP
//              participant_joined with its `sip.*` attributes, its
//              track_published (the call is answered), its
//              participant_left, the agent's participant_left,
//              room_finished. Fresh ids for every call.
//   mixed      a telephony project's traffic when a wave of calls ends
//              (docs/livekit-facts.md#events, #telephony): answered and unanswered calls
//              in and out, some recorded (egress), 10% WebRTC meetings.
//
// Every event has its own id (dedup never short-cuts) and its own token,
// minted like the LiveKit server mints it. Bodies and tokens are built
// before the clock starts.

import type { KeyPair } from '../src/config.ts';
import {
  agentParticipant,
  encodeBody,
  envelope,
  livekitId,
  newRoom,
  participantJson,
  type JsonObject,
  type ParticipantSpec,
  roomJson,
  type RoomSpec,
  seededRandom,
  sipParticipant,
  standardParticipant,
} from '../src/livekit/samples.ts';
import { signWebhook } from '../src/livekit/sign.ts';

export const BENCH_KEY: KeyPair = { keyId: 'APIbenchkey', secret: 'bench-secret-that-is-long-enough-0123456789ab' };

export interface Webhook {
  readonly id: string;
  readonly event: string;
  readonly body: Buffer;
  readonly authorization: string;
}

/** One room's webhooks, in the order LiveKit sends them. */
export type RoomStream = readonly Webhook[];

export interface Workload {
  readonly rooms: readonly RoomStream[];
  readonly count: number;
  /** event name → count, for the report. */
  readonly mix: ReadonlyMap<string, number>;
  readonly meanBodyBytes: number;
}

/** How each call ends, with its share of calls (sums to 1). */
const CALL_ENDINGS = [
  { share: 0.34, direction: 'inbound', answered: true, reason: 'CLIENT_INITIATED', status: 'hangup' },
  { share: 0.3, direction: 'outbound', answered: true, reason: 'CLIENT_INITIATED', status: 'hangup' },
  { share: 0.05, direction: 'inbound', answered: true, reason: 'ROOM_DELETED', status: 'active' },
  { share: 0.05, direction: 'inbound', answered: false, reason: 'CLIENT_INITIATED', status: 'hangup' },
  { share: 0.12, direction: 'outbound', answered: false, reason: 'USER_UNAVAILABLE', status: 'ringing' },
  { share: 0.07, direction: 'outbound', answered: false, reason: 'USER_REJECTED', status: 'dialing' },
  { share: 0.04, direction: 'outbound', answered: false, reason: 'CLIENT_INITIATED', status: 'dialing' },
  { share: 0.03, direction: 'outbound', answered: false, reason: 'SIP_TRUNK_FAILURE', status: 'dialing' },
] as const;

/** Share of calls recorded with a room-composite egress. */
const RECORDED_SHARE = 0.3;
/** Share of rooms that are WebRTC meetings (two browser users), not phone calls. */
const MEETING_SHARE = 0.1;

function phoneNumber(random: () => number): string {
  let digits = '';
  for (let index = 0; index < 9; index++) digits += Math.floor(random() * 10);
  return `+1415${digits}`.slice(0, 12);
}

function track(source: string): JsonObject {
  return { sid: livekitId('TR'), name: source.toLowerCase(), source, mimeType: 'audio/opus', mid: '0', stream: source.toLowerCase() };
}

/** The events of one room, as [event name, body fields, createdAt seconds]. */
function mixedRoomEvents(random: () => number, startSeconds: number): Array<[string, JsonObject, number]> {
  const events: Array<[string, JsonObject, number]> = [];
  let clock = startSeconds;
  const at = (seconds: number): number => (clock += seconds);
  const push = (name: string, fields: JsonObject, seconds: number): void => {
    events.push([name, fields, at(seconds)]);
  };
  const brief = (room: RoomSpec) => roomJson(room, false);
  const trackOf = (participant: ParticipantSpec, trackJson: JsonObject) => ({ participant: { sid: participant.sid, identity: participant.identity }, track: trackJson });

  if (random() < MEETING_SHARE) {
    const room = newRoom(`meeting-${livekitId('R').slice(2)}`, clock);
    const alice = standardParticipant('alice', clock * 1000 + 800);
    const bob = standardParticipant('bob', clock * 1000 + 4_000);
    const aliceMic = track('MICROPHONE');
    const bobMic = track('MICROPHONE');
    push('room_started', { room: roomJson(room) }, 0);
    push('participant_joined', { room: roomJson(room), participant: participantJson(alice, 'ACTIVE') }, 1);
    push('track_published', { room: brief(room), ...trackOf(alice, aliceMic) }, 0);
    push('participant_joined', { room: roomJson(room), participant: participantJson(bob, 'ACTIVE') }, 3);
    push('track_published', { room: brief(room), ...trackOf(bob, bobMic) }, 1);
    push('track_unpublished', { room: brief(room), ...trackOf(bob, bobMic) }, 600);
    push('participant_left', { room: roomJson(room), participant: participantJson(bob, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED' }) }, 0);
    push('track_unpublished', { room: brief(room), ...trackOf(alice, aliceMic) }, 2);
    push('participant_left', { room: roomJson(room), participant: participantJson(alice, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED' }) }, 0);
    push('room_finished', { room: roomJson(room) }, 20);
    return events;
  }

  let pick = random();
  let ending: (typeof CALL_ENDINGS)[number] = CALL_ENDINGS[0];
  for (const candidate of CALL_ENDINGS) {
    ending = candidate;
    if ((pick -= candidate.share) < 0) break;
  }
  const remote = phoneNumber(random);
  const room = newRoom(`call_${remote}_${livekitId('R').slice(2, 8)}`, clock);
  const agent = agentParticipant(clock * 1000 + 300);
  const agentMic = track('MICROPHONE');
  const sip = sipParticipant(ending.direction, { remote, joinedAtMs: clock * 1000 + 1_200 });
  const sipMic = track('MICROPHONE');
  const egressId = livekitId('EG');
  const recorded = ending.answered && random() < RECORDED_SHARE;
  const egress = (status: string | undefined, extra: JsonObject = {}): JsonObject => ({
    room: brief(room),
    egressInfo: {
      egressId,
      roomId: room.sid,
      roomName: room.name,
      ...(status ? { status } : {}),
      startedAt: String(BigInt(clock) * 1_000_000_000n),
      roomComposite: { roomName: room.name, layout: 'speaker', audioOnly: true },
      ...extra,
    },
  });

  push('room_started', { room: roomJson(room) }, 0);
  push('participant_joined', { room: roomJson(room), participant: participantJson(agent, 'ACTIVE') }, 0);
  push('track_published', { room: brief(room), ...trackOf(agent, agentMic) }, 1);
  push('participant_joined', { room: roomJson(room), participant: participantJson(sip, 'ACTIVE') }, 1);
  if (ending.answered) {
    // The first RTP packet of the phone's track: the call was answered.
    push('track_published', { room: brief(room), ...trackOf(sip, sipMic) }, 2 + Math.floor(random() * 20));
    if (recorded) {
      push('egress_started', egress(undefined), 1);
      push('egress_updated', egress('EGRESS_ACTIVE'), 2);
    }
    push('track_unpublished', { room: brief(room), ...trackOf(sip, sipMic) }, 30 + Math.floor(random() * 400));
  }
  const left = ending.reason === 'ROOM_DELETED' ? 'participant_left' : random() < 0.05 && !ending.answered ? 'participant_connection_aborted' : 'participant_left';
  push(left, { room: roomJson(room), participant: participantJson(sip, 'DISCONNECTED', { disconnectReason: ending.reason, callStatus: ending.status }) }, ending.answered ? 0 : 5 + Math.floor(random() * 30));
  push('track_unpublished', { room: brief(room), ...trackOf(agent, agentMic) }, 1);
  push('participant_left', { room: roomJson(room), participant: participantJson(agent, 'DISCONNECTED', { disconnectReason: 'ROOM_CLOSED' }) }, 0);
  if (recorded) push('egress_ended', egress('EGRESS_COMPLETE', { endedAt: String(BigInt(clock + 1) * 1_000_000_000n) }), 1);
  push('room_finished', { room: roomJson(room) }, 20);
  return events;
}

/** One call as the `sip-calls` workload replays it: eight webhooks, answered, ended by the phone. */
function sipCallEvents(random: () => number, startSeconds: number): Array<[string, JsonObject, number]> {
  const events: Array<[string, JsonObject, number]> = [];
  let clock = startSeconds;
  const push = (name: string, fields: JsonObject, seconds: number): void => {
    events.push([name, fields, (clock += seconds)]);
  };
  const brief = (room: RoomSpec) => roomJson(room, false);
  const trackOf = (participant: ParticipantSpec, trackJson: JsonObject) => ({ participant: { sid: participant.sid, identity: participant.identity }, track: trackJson });
  const direction = random() < 0.5 ? 'inbound' : 'outbound';
  const remote = phoneNumber(random);
  const room = newRoom(`call_${remote}_${livekitId('R').slice(2, 8)}`, clock);
  const agent = agentParticipant(clock * 1000 + 300);
  const agentMic = track('MICROPHONE');
  const sip = sipParticipant(direction, { remote, joinedAtMs: clock * 1000 + 1_200 });
  const sipMic = track('MICROPHONE');
  push('room_started', { room: roomJson(room) }, 0);
  push('participant_joined', { room: roomJson(room), participant: participantJson(agent, 'ACTIVE') }, 0);
  push('track_published', { room: brief(room), ...trackOf(agent, agentMic) }, 1);
  push('participant_joined', { room: roomJson(room), participant: participantJson(sip, 'ACTIVE') }, 1);
  push('track_published', { room: brief(room), ...trackOf(sip, sipMic) }, 2 + Math.floor(random() * 20));
  push('participant_left', { room: roomJson(room), participant: participantJson(sip, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED', callStatus: 'hangup' }) }, 30 + Math.floor(random() * 400));
  push('participant_left', { room: roomJson(room), participant: participantJson(agent, 'DISCONNECTED', { disconnectReason: 'ROOM_CLOSED' }) }, 1);
  push('room_finished', { room: roomJson(room) }, 20);
  return events;
}

export const WORKLOADS = ['sip-calls', 'mixed'] as const;
export type WorkloadKind = (typeof WORKLOADS)[number];
/** Webhooks per call in the `sip-calls` workload. */
export const SIP_CALL_WEBHOOKS = 8;

export function describeWorkload(kind: WorkloadKind): string {
  return kind === 'sip-calls'
    ? 'replayed SIP calls (per call: room_started, the agent\'s participant_joined and track_published, the SIP participant_joined with its sip.* attributes, its track_published, participant_left, the agent leaving, room_finished; fresh ids per call)'
    : 'a telephony call mix (answered and unanswered calls in and out, 30% of answered calls recorded, 10% WebRTC meetings)';
}

export interface WorkloadOptions {
  readonly count: number;
  /** `sip-calls` (the default) or `mixed`. */
  readonly kind?: WorkloadKind;
  readonly key?: KeyPair;
  /** Signing time (Unix seconds); tokens are valid 5 min from it, like LiveKit's. */
  readonly issuedAt?: number;
  readonly seed?: number;
}

/** Builds `count` unique signed webhooks, grouped by room (the last room may be cut short). */
export function buildWorkload(options: WorkloadOptions): Workload {
  const key = options.key ?? BENCH_KEY;
  const random = seededRandom(options.seed ?? 20_260_901);
  const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const rooms: Webhook[][] = [];
  const mix = new Map<string, number>();
  let count = 0;
  let bodyBytes = 0;
  // Calls started over the last hour; they all end inside this burst.
  let start = issuedAt - 3600;
  while (count < options.count) {
    const stream: Webhook[] = [];
    for (const [name, fields, createdAt] of (options.kind === 'mixed' ? mixedRoomEvents : sipCallEvents)(random, start)) {
      if (count >= options.count) break;
      const event = envelope(name, fields, { createdAt: Math.min(createdAt, issuedAt) });
      const body = Buffer.from(encodeBody(event));
      stream.push({ id: String(event.id), event: name, body, authorization: signWebhook(body, key, { issuedAt }) });
      mix.set(name, (mix.get(name) ?? 0) + 1);
      bodyBytes += body.length;
      count++;
    }
    rooms.push(stream);
    start += 1 + Math.floor(random() * 3);
  }
  return { rooms, count, mix, meanBodyBytes: count === 0 ? 0 : bodyBytes / count };
}
