// An enum name this version does not know (a newer LiveKit server's) is
// written as it came, in lower snake case, as unknown numbers are written
// `unknown_<n>`; it is never read as the enum's default (README, "The
// lines"). protobuf-es's fromJson leaves such a field at 0, which for a
// participant's kind is STANDARD: an unknown kind must not connect a session.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DisconnectReason, EgressStatus, IngressState_Status, JobStatus, ParticipantInfo_Kind, RoomEndReason, TrackSource, TrackType, WebhookEvent } from '@livekit/protocol';
import { livekitLine } from '../../src/obs/livekit.ts';
import type { ObsEvent } from '../../src/obs/schema.ts';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import { envelope, type JsonObject, livekitId, participantJson, roomJson, standardParticipant } from '../../src/livekit/samples.ts';
import { decode, RoomScript, run, sipLeg, T0 } from './sessions.helpers.ts';

const line = (json: JsonObject): Record<string, unknown> => livekitLine(decode(json)) as unknown as Record<string, unknown>;

describe('the livekit.* line writes an unknown enum name as it came, in lower snake case', () => {
  const room = new RoomScript('enum-room');
  const alice = standardParticipant('alice', T0 * 1000);

  test('participant kind', () => {
    const json = room.joined({ ...alice, kind: 'NOPE' as never }, 1);
    assert.equal(line(json).participant_kind, 'nope');
  });

  test('disconnect reason', () => {
    assert.equal(line(room.left(alice, 5, 'NOT_A_REASON')).reason, 'not_a_reason');
    assert.equal(line(room.left(alice, 5)).reason, undefined, 'absent stays absent');
    assert.equal(line(room.left(alice, 5, 'CLIENT_INITIATED')).reason, 'client_initiated');
  });

  test('track type and source', () => {
    const json = envelope('track_published', { room: roomJson(room.room, false), participant: { sid: alice.sid, identity: alice.identity }, track: { sid: livekitId('TR'), type: 'HOLOGRAM', source: 'BRAIN_INTERFACE' } });
    const written = line(json);
    assert.equal(written.track_type, 'hologram');
    assert.equal(written.track_source, 'brain_interface');
  });

  test('egress status (its type prefix dropped as for known names), and no provider line for it', () => {
    const json = room.egress('egress_updated', 'EG_paused', 3, 'EGRESS_PAUSED');
    assert.equal(line(json).outcome, 'paused');
    const derived = run(new SessionStore(), [room.started(0), json]);
    assert.equal(derived.filter((entry) => entry.event_type === 'provider.event').length, 0, 'an unknown status is no provider trouble');
  });

  test('ingress status', () => {
    assert.equal(line(room.ingress('ingress_started', 'IN_waiting', 3, 'ENDPOINT_WAITING')).outcome, 'waiting');
  });

  test('agent job status', () => {
    const json = envelope('agent_job_ended', { job: { id: 'AJ_x', room: { sid: room.room.sid, name: room.room.name }, state: { status: 'JS_ORPHANED' } } });
    assert.equal(line(json).outcome, 'orphaned');
  });

  test('the default name itself, and known names, are unchanged', () => {
    assert.equal(line(room.joined({ ...alice, kind: 'STANDARD' as never }, 1)).participant_kind, 'standard');
    assert.equal(line(room.joined(alice, 1)).participant_kind, 'standard');
    assert.equal(line(room.egress('egress_started', 'EG_1', 1, 'EGRESS_STARTING')).outcome, 'starting');
  });

  test('also when the body uses the proto field names (disconnect_reason, egress_info)', () => {
    const left = envelope('participant_left', { room: roomJson(room.room), participant: { ...participantJson(alice, 'DISCONNECTED'), disconnect_reason: 'NOT_A_REASON' } });
    assert.equal(line(left).reason, 'not_a_reason');
    const egress = envelope('egress_updated', { room: roomJson(room.room, false), egress_info: { egress_id: 'EG_2', room_id: room.room.sid, status: 'EGRESS_PAUSED' } });
    assert.equal(line(egress).outcome, 'paused');
  });
});

describe('sessions and calls', () => {
  test('a participant of an unknown kind does not connect the session (it is not a standard participant)', () => {
    const room = new RoomScript('unknown-kind');
    const stranger = { ...standardParticipant('hologram-1', T0 * 1000), kind: 'HOLOGRAM' as never };
    const lines = run(new SessionStore(), [room.started(0), room.joined(stranger, 1), room.left(stranger, 5, 'CLIENT_INITIATED')]);
    const states = lines.filter((entry) => entry.event_type === 'session.state_changed').map((entry) => entry.to_state);
    assert.deepEqual(states, ['created'], 'never connected');
    // The same with a standard participant connects it.
    const known = run(new SessionStore(), [room.started(0), room.joined(standardParticipant('bob', T0 * 1000), 1)]);
    assert.deepEqual(known.filter((entry) => entry.event_type === 'session.state_changed').map((entry) => entry.to_state), ['created', 'connected']);
  });

  test('call.ended carries an unknown disconnect reason as it came', () => {
    const room = new RoomScript('unknown-reason');
    const leg = sipLeg('outbound', 1);
    const lines = run(new SessionStore(), [room.started(0), room.joined(leg, 1, 'dialing'), room.left(leg, 9, 'CARRIER_EXPLODED', 'dialing')]);
    const ended = lines.find((entry) => entry.event_type === 'call.ended') as ObsEvent & Record<string, unknown>;
    assert.equal(ended.reason, 'carrier_exploded');
    assert.equal(ended.outcome, 'failed');
  });

  test('session ended with an unknown room end reason writes it', () => {
    const room = new RoomScript('unknown-end');
    const lines = run(new SessionStore(), [room.started(0), room.finished(9, 'ROOM_END_SOLAR_FLARE')]);
    const ended = lines.find((entry) => entry.event_type === 'session.state_changed' && entry.to_state === 'ended') as ObsEvent & Record<string, unknown>;
    assert.equal(ended.reason, 'solar_flare');
  });
});

test('the enum names these tables hold are the names protojson writes: each decodes to its own number', () => {
  const cases: Array<[Record<string, string | number>, (name: string) => JsonObject, (event: WebhookEvent) => number | undefined]> = [
    [ParticipantInfo_Kind, (name) => ({ event: 'participant_joined', participant: { sid: 'PA_1', kind: name } }), (event) => event.participant?.kind],
    [DisconnectReason, (name) => ({ event: 'participant_left', participant: { sid: 'PA_1', disconnectReason: name } }), (event) => event.participant?.disconnectReason],
    [TrackType, (name) => ({ event: 'track_published', track: { sid: 'TR_1', type: name } }), (event) => event.track?.type],
    [TrackSource, (name) => ({ event: 'track_published', track: { sid: 'TR_1', source: name } }), (event) => event.track?.source],
    [EgressStatus, (name) => ({ event: 'egress_updated', egressInfo: { egressId: 'EG_1', status: name } }), (event) => event.egressInfo?.status],
    [IngressState_Status, (name) => ({ event: 'ingress_started', ingressInfo: { ingressId: 'IN_1', state: { status: name } } }), (event) => event.ingressInfo?.state?.status],
    [JobStatus, (name) => ({ event: 'agent_job_ended', job: { id: 'AJ_1', state: { status: name } } }), (event) => event.job?.state?.status],
    [RoomEndReason, (name) => ({ event: 'room_finished', roomEndReason: name }), (event) => event.roomEndReason],
  ];
  for (const [names, body, read] of cases) {
    for (const name of Object.keys(names).filter((key) => typeof names[key] === 'number')) {
      const decoded = decodeWebhook(Buffer.from(JSON.stringify(body(name))));
      assert.ok(decoded.ok, name);
      assert.equal(read(decoded.event), names[name], name);
    }
  }
});
