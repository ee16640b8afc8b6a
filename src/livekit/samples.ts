// Realistic webhook bodies, shaped like the LiveKit server's protojson
// output (docs/livekit-facts.md#body-encoding, #events, #telephony): lowerCamelCase names, int64 as
// strings, enums by name, zero values omitted. `control-plane send` posts
// them; tests and benchmarks build their scenarios from them.

import { randomBytes } from 'node:crypto';
import { LIVEKIT_EVENT_TYPES } from '../obs/livekit.ts';

const BASE57 = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A LiveKit-style id: prefix + 12 base57 characters (`EV_mEWEa6xpaNRg`). */
export function livekitId(prefix: string): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const byte of bytes) id += BASE57[byte % BASE57.length];
  return `${prefix}_${id}`;
}

export type JsonObject = { [key: string]: unknown };

export interface RoomSpec {
  readonly sid: string;
  readonly name: string;
  /** Unix seconds. */
  readonly creationTime: number;
}

export function newRoom(name = 'demo-room', creationTime = Math.floor(Date.now() / 1000)): RoomSpec {
  return { sid: livekitId('RM'), name, creationTime };
}

export function roomJson(room: RoomSpec, full = true): JsonObject {
  if (!full) return { sid: room.sid, name: room.name };
  return {
    sid: room.sid,
    name: room.name,
    emptyTimeout: 300,
    departureTimeout: 20,
    creationTime: String(room.creationTime),
    creationTimeMs: String(room.creationTime * 1000),
    // A TURN credential, present in real webhooks: it must never reach the output.
    turnPassword: 'turn-secret-never-logged',
    enabledCodecs: [{ mime: 'audio/opus' }, { mime: 'video/VP8' }],
  };
}

export type SipDirection = 'inbound' | 'outbound';

export interface ParticipantSpec {
  readonly sid: string;
  readonly identity: string;
  readonly kind?: 'SIP' | 'AGENT' | 'EGRESS' | 'INGRESS';
  readonly joinedAtMs: number;
  readonly attributes?: Record<string, string>;
}

export function standardParticipant(identity = 'alice', joinedAtMs = Date.now()): ParticipantSpec {
  return { sid: livekitId('PA'), identity, joinedAtMs };
}

export function agentParticipant(joinedAtMs = Date.now()): ParticipantSpec {
  return { sid: livekitId('PA'), identity: `agent-${livekitId('AJ')}`, kind: 'AGENT', joinedAtMs };
}

/**
 * A SIP call leg. Inbound: the caller `remote` dialled our `trunkNumber`
 * (dispatch rule present). Outbound: we dialled `remote` from `trunkNumber`.
 */
export function sipParticipant(
  direction: SipDirection,
  options: { remote?: string; trunkNumber?: string; callStatus?: string; joinedAtMs?: number } = {},
): ParticipantSpec {
  const remote = options.remote ?? '+14155550123';
  const trunkNumber = options.trunkNumber ?? '+31201234589';
  const attributes: Record<string, string> = {
    'sip.callID': livekitId('SCL'),
    'sip.callStatus': options.callStatus ?? (direction === 'inbound' ? 'ringing' : 'dialing'),
    'sip.phoneNumber': remote,
    'sip.trunkID': livekitId('ST'),
    'sip.trunkPhoneNumber': trunkNumber,
  };
  if (direction === 'inbound') attributes['sip.ruleID'] = livekitId('SDR');
  return {
    sid: livekitId('PA'),
    identity: `sip_${remote}`,
    kind: 'SIP',
    joinedAtMs: options.joinedAtMs ?? Date.now(),
    attributes: Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b))),
  };
}

export function participantJson(
  participant: ParticipantSpec,
  state: 'ACTIVE' | 'DISCONNECTED',
  extra: { disconnectReason?: string; callStatus?: string } = {},
): JsonObject {
  const attributes = participant.attributes ? { ...participant.attributes } : undefined;
  if (attributes && extra.callStatus) attributes['sip.callStatus'] = extra.callStatus;
  const json: JsonObject = {
    sid: participant.sid,
    identity: participant.identity,
    state,
    joinedAt: String(Math.floor(participant.joinedAtMs / 1000)),
    joinedAtMs: String(participant.joinedAtMs),
    name: participant.kind === 'SIP' ? `Phone ${participant.identity.slice(4)}` : participant.identity,
    version: 3,
    permission: { canSubscribe: true, canPublish: true, canPublishData: true },
    isPublisher: true,
  };
  if (participant.kind) json.kind = participant.kind;
  if (attributes) json.attributes = attributes;
  if (extra.disconnectReason) json.disconnectReason = extra.disconnectReason;
  return json;
}

export interface EnvelopeOptions {
  /** Unix seconds of the event (LiveKit's `createdAt`). */
  readonly createdAt?: number;
  readonly id?: string;
}

export function envelope(event: string, fields: JsonObject, options: EnvelopeOptions = {}): JsonObject {
  return {
    event,
    ...fields,
    id: options.id ?? livekitId('EV'),
    createdAt: String(options.createdAt ?? Math.floor(Date.now() / 1000)),
  };
}

/**
 * Serialises like Go protojson. `spaced` reproduces the builds that put
 * `", "` between fields (docs/livekit-facts.md#body-encoding): the bytes differ, and the
 * signature must be checked on the bytes received.
 */
export function encodeBody(event: JsonObject, spaced = false): string {
  const compact = JSON.stringify(event);
  if (!spaced) return compact;
  // Insert a space after every comma that separates JSON members or items
  // (not commas inside strings).
  let out = '';
  let inString = false;
  for (let index = 0; index < compact.length; index++) {
    const char = compact[index]!;
    out += char;
    if (char === '"' && compact[index - 1] !== '\\') inString = !inString;
    else if (char === ',' && !inString) out += ' ';
  }
  return out;
}

/** The event names `control-plane send` knows: every event this version maps (one list, in livekit.ts). */
export const SAMPLE_EVENTS: readonly string[] = Object.keys(LIVEKIT_EVENT_TYPES);

/** One sample webhook of `event` for the room named `roomName` (a fresh room SID each time). */
export function sampleWebhook(event: string, roomName = 'demo-room', nowMs = Date.now()): JsonObject {
  const createdAt = Math.floor(nowMs / 1000);
  const room = newRoom(roomName, createdAt - 60);
  const participant = standardParticipant('alice', nowMs - 30_000);
  const egressId = livekitId('EG');
  const ingressId = livekitId('IN');
  const options = { createdAt };
  switch (event) {
    case 'room_started':
    case 'room_finished':
      return envelope(event, { room: roomJson(room) }, options);
    case 'participant_joined':
      return envelope(event, { room: roomJson(room), participant: participantJson(participant, 'ACTIVE') }, options);
    case 'participant_left':
    case 'participant_connection_aborted':
      return envelope(event, { room: roomJson(room), participant: participantJson(participant, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED' }) }, options);
    case 'track_published':
    case 'track_unpublished':
      return envelope(event, {
        room: roomJson(room, false),
        participant: { sid: participant.sid, identity: participant.identity },
        track: { sid: livekitId('TR'), name: 'microphone', source: 'MICROPHONE', mimeType: 'audio/opus', mid: '0', stream: 'microphone' },
      }, options);
    case 'egress_started':
    case 'egress_updated':
    case 'egress_ended':
      return envelope(event, {
        room: roomJson(room, false),
        egressInfo: {
          egressId,
          roomId: room.sid,
          roomName: room.name,
          status: event === 'egress_started' ? undefined : event === 'egress_updated' ? 'EGRESS_ACTIVE' : 'EGRESS_COMPLETE',
          startedAt: String(BigInt(createdAt) * 1_000_000_000n),
          ...(event === 'egress_ended' ? { endedAt: String(BigInt(createdAt) * 1_000_000_000n) } : {}),
          roomComposite: { roomName: room.name, layout: 'speaker' },
        },
      }, options);
    case 'ingress_started':
    case 'ingress_ended':
      return envelope(event, {
        room: { name: room.name },
        ingressInfo: {
          ingressId,
          name: 'obs-stream',
          // A stream credential, present in real webhooks: never logged.
          streamKey: 'stream-key-never-logged',
          url: 'rtmp://ingress.example/live',
          roomName: room.name,
          participantIdentity: 'streamer',
          state: { status: event === 'ingress_started' ? 'ENDPOINT_PUBLISHING' : 'ENDPOINT_COMPLETE', roomId: room.sid },
        },
      }, options);
    case 'agent_job_started':
    case 'agent_job_ended':
      return envelope(event, {
        room: roomJson(room, false),
        job: {
          id: livekitId('AJ'),
          dispatchId: livekitId('AD'),
          type: 'JT_ROOM',
          room: { sid: room.sid, name: room.name },
          agentName: 'voice-agent',
          state: { status: event === 'agent_job_started' ? 'JS_RUNNING' : 'JS_SUCCESS', startedAt: String(BigInt(nowMs) * 1_000_000n) },
        },
      }, options);
    default:
      return envelope(event, { room: roomJson(room) }, options);
  }
}

/**
 * A small deterministic random source (mulberry32): the mixes of the
 * benchmarks and the random streams of the tests repeat with their seed, so
 * a failing seed can be replayed.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
