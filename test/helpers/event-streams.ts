// A fast-check world of LiveKit webhooks for the property tests: two rooms
// and a few participants (standard, inbound and outbound SIP, an agent), so
// that random sequences revisit the same sessions and calls, with ids that
// sometimes repeat (redeliveries) or are missing.

import fc from 'fast-check';
import {
  envelope,
  type JsonObject,
  livekitId,
  newRoom,
  participantJson,
  roomJson,
  SAMPLE_EVENTS,
  sampleWebhook,
  sipParticipant,
  standardParticipant,
} from '../../src/livekit/samples.ts';

/** Webhook JSON bodies around `nowMs` (the receiver's clock of the test). */
export function realishEvents(nowMs: number): fc.Arbitrary<JsonObject> {
  const nowS = Math.floor(nowMs / 1000);
  // A small world (two rooms, a few participants) so sequences revisit the same sessions and calls.
  const rooms = [newRoom('room-a', nowS - 600), newRoom('room-b', nowS - 600)];
  const participants = [
    standardParticipant('alice', nowMs - 500_000),
    sipParticipant('inbound', { joinedAtMs: nowMs - 400_000 }),
    sipParticipant('outbound', { joinedAtMs: nowMs - 300_000 }),
    { ...standardParticipant('agent', nowMs - 200_000), kind: 'AGENT' as const },
  ];
  const disconnectReasons = ['CLIENT_INITIATED', 'USER_UNAVAILABLE', 'USER_REJECTED', 'SIP_TRUNK_FAILURE', 'MEDIA_FAILURE', 'ROOM_DELETED', 'DUPLICATE_IDENTITY', 'UNKNOWN_REASON', 'JOIN_FAILURE'];
  const callStatuses = ['ringing', 'dialing', 'active', 'automation', 'hangup', 'bogus'];

  return fc
    .record({
      event: fc.constantFrom(...SAMPLE_EVENTS, 'participant_joined', 'participant_left', 'participant_connection_aborted', 'room_finished', 'sip_call_moved'),
      room: fc.constantFrom(...rooms),
      participant: fc.constantFrom(...participants),
      reason: fc.constantFrom(...disconnectReasons),
      callStatus: fc.constantFrom(...callStatuses),
      createdOffset: fc.integer({ min: -900, max: 120 }),
      id: fc.oneof(fc.constantFrom('EV_repeat00001', 'EV_repeat00002', ''), fc.constant(undefined)),
    })
    .map(({ event, room, participant, reason, callStatus, createdOffset, id }): JsonObject => {
      const options = { createdAt: nowS + createdOffset, id: id ?? livekitId('EV') };
      if (event.startsWith('participant_')) {
        const state = event === 'participant_joined' ? 'ACTIVE' : 'DISCONNECTED';
        return envelope(event, { room: roomJson(room), participant: participantJson(participant, state, { disconnectReason: state === 'DISCONNECTED' ? reason : undefined, callStatus }) }, options);
      }
      if (event === 'room_started' || event === 'room_finished') return envelope(event, { room: roomJson(room) }, options);
      const sample = sampleWebhook(event, room.name, nowMs + createdOffset * 1000);
      return { ...sample, room: roomJson(room, false), ...options, createdAt: String(options.createdAt) };
    });
}
