import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';

const decode = (text: string) => decodeWebhook(Buffer.from(text));

test('decodes a LiveKit body; int64 fields are bigint and enums are numbers', () => {
  const result = decode(encodeBody(sampleWebhook('participant_left', 'r', 1_796_029_268_000), true));
  assert.equal(result.ok, true);
  if (!result.ok) return;
  assert.equal(result.event.event, 'participant_left');
  assert.equal(typeof result.event.createdAt, 'bigint');
  assert.equal(result.event.participant?.disconnectReason, 1);
});

test('ignores unknown fields and unknown enum names, as LiveKit SDKs do', () => {
  const result = decode('{"event":"participant_joined","participant":{"sid":"PA_1","kind":"HOLOGRAM","futureField":{"x":1}},"brandNew":true}');
  assert.equal(result.ok, true);
  if (result.ok) assert.equal(result.event.participant?.sid, 'PA_1');
});

test('keeps an event name it does not know (mapped to livekit.event.unknown later)', () => {
  const result = decode('{"event":"room_exploded","id":"EV_x"}');
  assert.equal(result.ok && result.event.event, 'room_exploded');
});

const refusals: Array<[string, string, string]> = [
  ['not JSON', '{"event":', 'body_not_json'],
  ['an empty body', '', 'body_not_json'],
  ['a JSON array', '[1,2]', 'not_a_webhook_event'],
  ['a JSON string', '"room_started"', 'not_a_webhook_event'],
  ['null', 'null', 'not_a_webhook_event'],
  ['an object without event', '{"id":"EV_1"}', 'not_a_webhook_event'],
  ['a numeric event', '{"event":5}', 'not_a_webhook_event'],
  ['an empty event name', '{"event":""}', 'not_a_webhook_event'],
  ['a field of the wrong type', '{"event":"room_started","room":5}', 'invalid_webhook_event'],
  ['an int64 that is not a number', '{"event":"room_started","createdAt":"soon"}', 'invalid_webhook_event'],
];
for (const [name, text, reason] of refusals) {
  test(`refuses ${name} with ${reason}`, () => {
    const result = decode(text);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.reason, reason);
  });
}

test('refuses bytes that are not UTF-8', () => {
  const result = decodeWebhook(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
  assert.equal(!result.ok && result.reason, 'body_not_json');
});
