// Builders for the session and call tests: LiveKit-shaped webhook bodies
// (src/livekit/samples.ts) decoded the way the daemon decodes them, and a
// driver that feeds them to a SessionStore and collects the derived lines.

import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../../src/obs/schema.ts';
import type { SessionStore } from '../../src/obs/sessions.ts';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import {
  agentParticipant,
  encodeBody,
  envelope,
  type JsonObject,
  livekitId,
  newRoom,
  type ParticipantSpec,
  participantJson,
  type RoomSpec,
  roomJson,
  sipParticipant,
  standardParticipant,
} from '../../src/livekit/samples.ts';

/** 2026-12-01T12:00:00Z, in Unix seconds: every scenario's room opens here. */
export const T0 = 1_796_126_400;
/** The receiver's clock in these tests: deliberately far from LiveKit's times, which durations must use. */
export const RECEIVER_NOW_MS = 1_900_000_000_000;

export function decode(json: JsonObject): WebhookEvent {
  const decoded = decodeWebhook(Buffer.from(encodeBody(json)));
  if (!decoded.ok) throw new Error(`sample did not decode: ${decoded.reason} ${decoded.detail}`);
  return decoded.event;
}

/** Builds one room's webhooks with LiveKit's timestamps (seconds after T0). */
export class RoomScript {
  readonly room: RoomSpec;

  constructor(name = 'support-room', room?: RoomSpec) {
    this.room = room ?? newRoom(name, T0);
  }

  private at(event: string, fields: JsonObject, seconds: number, id?: string): JsonObject {
    return envelope(event, fields, { createdAt: T0 + seconds, ...(id ? { id } : {}) });
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
    return this.at(
      'participant_left',
      { room: roomJson(this.room), participant: participantJson(participant, 'DISCONNECTED', { disconnectReason, callStatus }) },
      seconds,
    );
  }

  aborted(participant: ParticipantSpec, seconds: number, disconnectReason?: string, callStatus?: string): JsonObject {
    return this.at(
      'participant_connection_aborted',
      { room: roomJson(this.room), participant: participantJson(participant, 'DISCONNECTED', { disconnectReason, callStatus }) },
      seconds,
    );
  }

  /** `callStatus`: a participant snapshot that carries sip.callStatus (LiveKit's track events usually carry only sid and identity). */
  trackPublished(participant: ParticipantSpec, seconds: number, callStatus?: string): JsonObject {
    return this.at(
      'track_published',
      {
        room: roomJson(this.room, false),
        participant: { sid: participant.sid, identity: participant.identity, ...(callStatus ? { attributes: { 'sip.callStatus': callStatus } } : {}) },
        track: { sid: livekitId('TR'), name: 'audio', source: 'MICROPHONE', mimeType: 'audio/opus', mid: '0' },
      },
      seconds,
    );
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
          startedAt: String(BigInt(T0) * 1_000_000_000n),
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

export { agentParticipant, sipParticipant, standardParticipant };

/** A SIP leg that joined the room `secondsAfterT0` after T0 (LiveKit's joinedAtMs). */
export function sipLeg(direction: 'inbound' | 'outbound', secondsAfterT0: number, remote = '+14155550123', trunkNumber = '+31201234589'): ParticipantSpec {
  return sipParticipant(direction, { remote, trunkNumber, joinedAtMs: (T0 + secondsAfterT0) * 1000 });
}

/** Feeds the events one by one (observe, then commit) and returns all derived lines. */
export function run(store: SessionStore, events: readonly JsonObject[], nowMs = RECEIVER_NOW_MS): ObsEvent[] {
  const lines: ObsEvent[] = [];
  for (const json of events) {
    const observed = store.observe(decode(json), nowMs);
    lines.push(...observed.events);
    observed.commit();
  }
  return lines;
}

/** The fields a scenario table compares: what an auditor reads on each line. */
export const COMPARED_FIELDS = ['event_type', 'level', 'direction', 'from', 'to', 'from_state', 'to_state', 'reason', 'outcome', 'answered', 'duration_ms', 'talk_ms', 'provider', 'detail'] as const;

export function project(line: ObsEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of COMPARED_FIELDS) {
    const value = (line as unknown as Record<string, unknown>)[field];
    if (value !== undefined) out[field] = value;
  }
  return out;
}
