// decode.ts reads LiveKit's JSON with a reader compiled from the message
// descriptors, and falls back to WebhookEvent.fromJson (the reader of
// record) for anything it does not handle. Whatever it returns must be
// exactly what fromJson returns: same classes, same defaults, same values.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebhookEvent } from '@livekit/protocol';
import fc from 'fast-check';
import { readWebhookEvent } from '../../src/pipeline/compiled-reader.ts';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import { agentParticipant, encodeBody, envelope, newRoom, participantJson, roomJson, SAMPLE_EVENTS, sampleWebhook, sipParticipant } from '../../src/livekit/samples.ts';

const NOW_MS = 1_796_029_268_000;

function fromJson(json: unknown): WebhookEvent | Error {
  try {
    return WebhookEvent.fromJson(json as never, { ignoreUnknownFields: true });
  } catch (error) {
    return error as Error;
  }
}

/** The fast reader gives up, or agrees with fromJson exactly (and never accepts what fromJson refuses). */
function assertAgrees(json: unknown, label = ''): boolean {
  const fast = readWebhookEvent(json);
  if (fast === undefined) return false;
  const reference = fromJson(json);
  assert.ok(!(reference instanceof Error), `${label}: the fast reader accepted what fromJson refuses (${String(reference)})`);
  assert.ok(fast instanceof WebhookEvent, label);
  assert.deepStrictEqual(fast, reference, label);
  return true;
}

const callEvents = (): unknown[] => {
  const room = newRoom('call_+14155550123_k2Zq', NOW_MS / 1000 - 60);
  const inbound = sipParticipant('inbound', { joinedAtMs: NOW_MS - 30_000 });
  const outbound = sipParticipant('outbound', { joinedAtMs: NOW_MS - 20_000 });
  const agent = agentParticipant(NOW_MS - 40_000);
  return [
    envelope('participant_joined', { room: roomJson(room), participant: participantJson(inbound, 'ACTIVE') }),
    envelope('participant_left', { room: roomJson(room), participant: participantJson(inbound, 'DISCONNECTED', { disconnectReason: 'USER_UNAVAILABLE', callStatus: 'ringing' }) }),
    envelope('participant_left', { room: roomJson(room), participant: participantJson(outbound, 'DISCONNECTED', { disconnectReason: 'SIP_TRUNK_FAILURE' }) }),
    envelope('participant_joined', { room: roomJson(room), participant: participantJson(agent, 'ACTIVE') }),
  ];
};

/** Egress events whose oneofs (request, result, output, options) are set as LiveKit's egress service sets them. */
const egressEvents = (): unknown[] => {
  const room = newRoom('call_+14155550123_k2Zq', NOW_MS / 1000 - 60);
  const startedAt = String(BigInt(NOW_MS) * 1_000_000n);
  const egress = (extra: Record<string, unknown>) => ({ egressId: 'EG_oneof', roomId: room.sid, roomName: room.name, startedAt, ...extra });
  const file = { filename: 'call.ogg', startedAt, endedAt: startedAt, duration: '61000000000', size: '482133', location: 's3://bucket/call.ogg' };
  return [
    envelope('egress_started', {
      room: roomJson(room, false),
      egressInfo: egress({ roomComposite: { roomName: room.name, audioOnly: true, preset: 'H264_720P_30', file: { fileType: 'OGG', filepath: 'calls/{room_name}.ogg', s3: { bucket: 'calls', region: 'eu-west-1' } } } }),
    }),
    envelope('egress_updated', {
      room: roomJson(room, false),
      egressInfo: egress({ status: 'EGRESS_ACTIVE', roomComposite: { roomName: room.name, advanced: { width: 1280, height: 720, framerate: 30, audioCodec: 'OPUS' } }, stream: { info: [{ url: 'rtmp://x/live', status: 'ACTIVE' }] } }),
    }),
    envelope('egress_ended', {
      room: roomJson(room, false),
      egressInfo: egress({ status: 'EGRESS_COMPLETE', endedAt: startedAt, track: { roomName: room.name, trackId: 'TR_x', file: { filepath: 'track.ogg' } }, file, fileResults: [file] }),
    }),
  ];
};

describe('the compiled JSON reader agrees with WebhookEvent.fromJson', () => {
  test('on every sample event, compact and with ", " separators, on SIP call legs and on egress oneofs', () => {
    const samples = SAMPLE_EVENTS.map((name) => sampleWebhook(name, 'decode-room', NOW_MS));
    for (const json of [...samples, ...callEvents(), ...egressEvents()]) {
      for (const spaced of [false, true]) {
        const parsed = JSON.parse(encodeBody(json as Record<string, unknown>, spaced)) as unknown;
        const label = `${(json as { event: string }).event}${spaced ? ' (spaced)' : ''}`;
        // Every event LiveKit sends, egress oneofs included, takes the fast path.
        assert.ok(assertAgrees(parsed, label), `${label}: the fast reader gave up`);
      }
    }
  });

  test('a oneof given two members, or a null member, is left to fromJson (which refuses the first)', () => {
    const [started] = egressEvents() as Array<{ egressInfo: Record<string, unknown> }>;
    const twoRequests = { ...started!, egressInfo: { ...started!.egressInfo, web: { url: 'https://example.com' } } };
    assert.equal(readWebhookEvent(twoRequests), undefined);
    assert.ok(fromJson(twoRequests) instanceof Error);
    const decoded = decodeWebhook(Buffer.from(JSON.stringify(twoRequests)));
    assert.ok(!decoded.ok && decoded.reason === 'invalid_webhook_event', JSON.stringify(decoded));
    // fromJson skips a null scalar member (TrackEgressRequest's websocketUrl) as if absent; the fast reader leaves that to it.
    const nullMember = { ...started!, egressInfo: { ...started!.egressInfo, roomComposite: undefined, track: { trackId: 'TR_x', websocketUrl: null, file: { filepath: 'track.ogg' } } } };
    const json = JSON.parse(JSON.stringify(nullMember)) as unknown;
    assert.equal(readWebhookEvent(json), undefined);
    assert.ok(!(fromJson(json) instanceof Error), String(fromJson(json)));
  });

  test('decodeWebhook answers the same for the fast and the fromJson path', () => {
    for (const name of SAMPLE_EVENTS) {
      const body = Buffer.from(encodeBody(sampleWebhook(name, 'decode-room', NOW_MS)));
      const decoded = decodeWebhook(body);
      assert.ok(decoded.ok);
      assert.deepStrictEqual(decoded.event, fromJson(JSON.parse(body.toString())));
    }
  });

  // Odd values the fast reader must either handle exactly or leave to fromJson.
  const oddValues = fc.constantFrom<unknown>(
    { roomName: 'r' }, { url: 'https://example.com' }, 'H264_720P_30', 'EGRESS_ACTIVE', { bucket: 'b' },
    null, 0, -1, 1.5, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 1e21, '', ' 12', '12', '0x10', '-5', '9223372036854775808', '18446744073709551616',
    '\ud800', 'ok \ud83d\ude00', true, false, [], [null], ['x'], {}, { x: 1 }, 'CLIENT_INITIATED', 'SIP', 'NOT_AN_ENUM', 3, 'ACTIVE',
  );
  const oddKeys = fc.constantFrom('sid', 'name', 'identity', 'kind', 'state', 'joinedAt', 'joined_at', 'joinedAtMs', 'attributes', 'disconnectReason',
    'disconnect_reason', 'version', 'permission', 'tracks', 'creationTime', 'emptyTimeout', 'enabledCodecs', 'numParticipants', 'metadata',
    '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'futureField', 'type', 'source', 'muted', 'createdAt', 'created_at', 'id', 'event',
    'numDropped', 'roomEndReason', 'sip.callID', 'roomComposite', 'room_composite', 'web', 'track', 'file', 'stream', 'segments', 'preset', 'advanced',
    'fileResults', 'status', 'startedAt', 's3', 'gcp');

  type Path = readonly string[];
  const targets: readonly Path[] = [
    [], ['room'], ['participant'], ['participant', 'attributes'], ['participant', 'permission'], ['track'], ['room', 'version'],
    ['egressInfo'], ['egressInfo', 'roomComposite'], ['egressInfo', 'roomComposite', 'file'], ['egressInfo', 'track'], ['egressInfo', 'file'],
  ];

  test('on LiveKit events with odd values and keys planted anywhere (property)', () => {
    const base = [...SAMPLE_EVENTS.map((name) => sampleWebhook(name, 'r', NOW_MS)), ...callEvents(), ...egressEvents()];
    let fastCount = 0;
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.array(fc.tuple(fc.constantFrom(...targets), oddKeys, oddValues), { minLength: 1, maxLength: 3 }), (index, plants) => {
        const json = JSON.parse(JSON.stringify(base[index])) as Record<string, unknown>;
        for (const [path, key, value] of plants) {
          let target: unknown = json;
          for (const step of path) target = (target as Record<string, unknown> | undefined)?.[step];
          if (typeof target !== 'object' || target === null) continue;
          // defineProperty, so "__proto__" becomes an own key as JSON.parse makes it.
          Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
        }
        const reparsed = JSON.parse(JSON.stringify(json)) as unknown;
        if (assertAgrees(reparsed)) fastCount++;
        return true;
      }),
      { numRuns: 4000, seed: 11 },
    );
    assert.ok(fastCount > 500, `the fast reader took only ${fastCount} generated events`);
  });

  test('a "__proto__" key (own property, as JSON.parse makes it) goes to fromJson', () => {
    for (const text of ['{"event":"room_started","__proto__":{"sid":"x"}}', '{"event":"participant_joined","participant":{"attributes":{"__proto__":"x"}}}']) {
      const json = JSON.parse(text) as unknown;
      assert.equal(readWebhookEvent(json), undefined, text);
    }
  });
});
