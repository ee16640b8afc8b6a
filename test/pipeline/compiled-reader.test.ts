// The compiled reader (src/pipeline/compiled-reader.ts) reads protobuf-es
// v1's runtime descriptors, which are not a stable API. These tests fail
// loudly when an upgrade of @livekit/protocol or @bufbuild/protobuf changes
// what it relies on: every message type it compiles is checked, and the
// checker itself is shown to catch each kind of change.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EgressInfo, ParticipantInfo, WebhookEvent } from '@livekit/protocol';
import { compiledMessageTypes, messageShapeProblems, readWebhookEvent } from '../../src/pipeline/compiled-reader.ts';
import { SAMPLE_EVENTS, sampleWebhook } from '../../src/livekit/samples.ts';
import { decodeWebhook, decodeWebhookWith } from '../../src/pipeline/decode.ts';

const typeName = (type: unknown): string => String((type as { typeName: string }).typeName);

test('every message type the reader compiles has the descriptor shape it relies on', () => {
  const types = compiledMessageTypes();
  const names = types.map(typeName);
  for (const expected of ['livekit.WebhookEvent', 'livekit.Room', 'livekit.ParticipantInfo', 'livekit.TrackInfo', 'livekit.EgressInfo', 'livekit.IngressInfo', 'livekit.Job']) {
    assert.ok(names.includes(expected), `${expected} is compiled (compiled: ${names.length} types)`);
  }
  const problems = types.flatMap((type) => messageShapeProblems(type));
  assert.deepEqual(problems, [], `protobuf-es descriptors changed; the compiled reader does not read them as before:\n${problems.join('\n')}`);
});

test('the reader is in use: every sample event takes it, and decodes as fromJson alone does', () => {
  for (const name of SAMPLE_EVENTS) {
    const json = sampleWebhook(name, 'shape-room', 1_796_029_268_000);
    const fast = readWebhookEvent(JSON.parse(JSON.stringify(json)));
    assert.ok(fast instanceof WebhookEvent, `${name}: the compiled reader gave up (it would fall back to fromJson silently)`);
    const body = Buffer.from(JSON.stringify(json));
    const withReader = decodeWebhookWith(body, true);
    const fromJsonOnly = decodeWebhookWith(body, false);
    assert.ok(withReader.ok && fromJsonOnly.ok);
    assert.deepStrictEqual(withReader.event, fromJsonOnly.event, name);
    assert.deepStrictEqual(decodeWebhook(body), withReader);
  }
});

/** A class that behaves like `base` but whose descriptors or instances are changed by `change`. */
function altered(base: unknown, change: { field?: string; descriptor?: (field: Record<string, unknown>) => Record<string, unknown>; instance?: (instance: Record<string, unknown>) => void; type?: Record<string, unknown> }): unknown {
  const original = base as { new (): object; typeName: string; fields: { list(): readonly Record<string, unknown>[] }; runtime: unknown; prototype: object };
  const list = original.fields.list().map((field) => (change.descriptor && field.name === change.field ? change.descriptor({ ...field }) : field));
  function Altered(this: unknown): object {
    const instance = new original() as Record<string, unknown>;
    change.instance?.(instance);
    return instance;
  }
  Altered.prototype = original.prototype;
  Object.assign(Altered, { typeName: original.typeName, runtime: original.runtime, fields: { list: () => list } }, change.type ?? {});
  return Altered;
}

test('the check catches each change the reader could not survive', () => {
  assert.deepEqual(messageShapeProblems(ParticipantInfo), []);
  assert.deepEqual(messageShapeProblems(EgressInfo), []);
  const cases: Array<[string, unknown, RegExp]> = [
    ['not a class', { typeName: 'x' }, /not a protobuf-es message class/],
    ['no fields.list()', altered(ParticipantInfo, { type: { fields: {} } }), /fields\.list/],
    ['proto2', altered(ParticipantInfo, { type: { runtime: { syntax: 'proto2' } } }), /not proto3/],
    ['a renamed descriptor property', altered(ParticipantInfo, { field: 'identity', descriptor: ({ jsonName: _jsonName, ...rest }) => rest }), /ParticipantInfo\.identity: a field needs no, name, localName and jsonName/],
    ['a new field kind', altered(ParticipantInfo, { field: 'identity', descriptor: (field) => ({ ...field, kind: 'list' }) }), /identity: kind list/],
    ['a scalar type that is not a number', altered(ParticipantInfo, { field: 'identity', descriptor: (field) => ({ ...field, T: 'string' }) }), /identity: scalar T string/],
    ['an enum type without values', altered(ParticipantInfo, { field: 'kind', descriptor: (field) => ({ ...field, T: {} }) }), /kind: enum T has no values/],
    ['a message type that is not a class', altered(ParticipantInfo, { field: 'permission', descriptor: (field) => ({ ...field, T: 'livekit.ParticipantPermission' }) }), /permission: message T is not a message class/],
    ['a map without V', altered(ParticipantInfo, { field: 'attributes', descriptor: ({ V: _value, ...rest }) => rest }), /attributes: map without V/],
    ['repeated not a boolean', altered(ParticipantInfo, { field: 'tracks', descriptor: (field) => ({ ...field, repeated: 1 }) }), /tracks: repeated is not a boolean/],
    ['a repeated field that starts unset', altered(ParticipantInfo, { instance: (instance) => delete instance.tracks }), /tracks: a repeated field starts as an empty array/],
    ['a map that starts as a Map', altered(ParticipantInfo, { instance: (instance) => (instance.attributes = new Map()) }), /attributes: a map starts as an empty object/],
    ['an enum that starts unset', altered(ParticipantInfo, { instance: (instance) => delete instance.kind }), /kind: an enum field starts at 0/],
    ['a 64-bit field that starts as a number', altered(ParticipantInfo, { instance: (instance) => (instance.joinedAt = 0) }), /joined_at: starts at 0 \(number\), not 0 \(bigint\)/],
    ['a oneof stored another way', altered(EgressInfo, { instance: (instance) => (instance.request = undefined) }), /a oneof member, but the instance holds no \{ case: undefined \}/],
  ];
  for (const [name, type, pattern] of cases) {
    const problems = messageShapeProblems(type);
    assert.ok(problems.some((problem) => pattern.test(problem)), `${name}: ${JSON.stringify(problems)}`);
  }
});
