// decode.ts reads LiveKit's JSON with a reader compiled from the message
// descriptors, and falls back to WebhookEvent.fromJson (the reader of
// record) for anything it does not handle. Whatever it returns must be
// exactly what fromJson returns: same classes, same defaults, same values.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebhookEvent } from '@livekit/protocol';
import fc from 'fast-check';
import { decodeWebhook, readWebhookEvent } from '../../src/webhook/decode.ts';
import { agentParticipant, encodeBody, envelope, newRoom, participantJson, roomJson, SAMPLE_EVENTS, sampleWebhook, sipParticipant } from '../../src/webhook/samples.ts';

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

describe('the compiled JSON reader agrees with WebhookEvent.fromJson', () => {
  test('on every sample event, compact and with ", " separators, and on SIP call legs', () => {
    let fast = 0;
    const samples = SAMPLE_EVENTS.map((name) => sampleWebhook(name, 'decode-room', NOW_MS));
    for (const json of [...samples, ...callEvents()]) {
      for (const spaced of [false, true]) {
        const parsed = JSON.parse(encodeBody(json as Record<string, unknown>, spaced)) as unknown;
        if (assertAgrees(parsed, `${(json as { event: string }).event}${spaced ? ' (spaced)' : ''}`)) fast++;
      }
    }
    // Room, participant, track, ingress and agent-job events take the fast
    // path; egress events (oneof fields) go to fromJson.
    assert.ok(fast >= 2 * (SAMPLE_EVENTS.length - 3), `fast path taken ${fast} times`);
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
    null, 0, -1, 1.5, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 1e21, '', ' 12', '12', '0x10', '-5', '9223372036854775808', '18446744073709551616',
    '\ud800', 'ok \ud83d\ude00', true, false, [], [null], ['x'], {}, { x: 1 }, 'CLIENT_INITIATED', 'SIP', 'NOT_AN_ENUM', 3, 'ACTIVE',
  );
  const oddKeys = fc.constantFrom('sid', 'name', 'identity', 'kind', 'state', 'joinedAt', 'joined_at', 'joinedAtMs', 'attributes', 'disconnectReason',
    'disconnect_reason', 'version', 'permission', 'tracks', 'creationTime', 'emptyTimeout', 'enabledCodecs', 'numParticipants', 'metadata',
    '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'futureField', 'type', 'source', 'muted', 'createdAt', 'created_at', 'id', 'event',
    'numDropped', 'roomEndReason', 'sip.callID');

  type Path = readonly string[];
  const targets: readonly Path[] = [[], ['room'], ['participant'], ['participant', 'attributes'], ['participant', 'permission'], ['track'], ['room', 'version']];

  test('on LiveKit events with odd values and keys planted anywhere (property)', () => {
    const base = [...SAMPLE_EVENTS.map((name) => sampleWebhook(name, 'r', NOW_MS)), ...callEvents()];
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
