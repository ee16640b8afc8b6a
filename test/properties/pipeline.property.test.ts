// fast-check properties over the pure core (verify → decode → dedup → map):
// whatever bytes, headers or JSON arrive, processWebhook never throws,
// answers 200, 400 or 401 with well-formed OBS-00 lines, and a signed
// webhook that was tampered with is never accepted unless the tampering
// changed nothing.
//
// Runs per property are set so that the whole file checks well over 10 000
// cases in a few seconds (PROPERTY_RUNS_SCALE multiplies them for a longer
// local soak).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { base64url } from 'jose';
import { type ObsEvent, encodeLine, EVENT_TYPES, FIELD_ORDER } from '../../src/obs/schema.ts';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { newContext, type PipelineContext, planOne, processWebhook, type WebhookOutcome } from '../helpers/pipeline-driver.ts';
import {
  type JsonObject,
  encodeBody,
  SAMPLE_EVENTS,
  sampleWebhook,
} from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { DECODE_REASONS } from '../../src/pipeline/decode.ts';
import { KeyRing, VERIFY_REASONS } from '../../src/pipeline/verify.ts';
import { OTHER_KEY, TEST_KEY } from '../helpers/daemon.ts';
import { realishEvents } from '../helpers/event-streams.ts';

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

const SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? '1');
const runs = (count: number): number => Math.max(1, Math.round(count * SCALE));

const NOW_MS = Date.UTC(2026, 10, 30, 12, 0, 0);
const NOW_S = Math.floor(NOW_MS / 1000);
const keys = new KeyRing([TEST_KEY]);

function context(insecureSkipVerify = false): PipelineContext {
  return newContext(keys, insecureSkipVerify);
}

const COMMON_FIELDS = ['ts', 'seq', 'level', 'component', 'event_type', 'session_id'];
const KNOWN_FIELDS = new Set<string>([...COMMON_FIELDS, ...FIELD_ORDER]);
const KNOWN_TYPES = new Set<string>(EVENT_TYPES);
const REJECT_REASONS = new Set<string>([...VERIFY_REASONS, ...DECODE_REASONS]);

/** Every line encodes to one JSON object of known, flat fields. */
function assertWellFormedLines(events: readonly ObsEvent[]): void {
  assert.ok(events.length >= 2, 'at least webhook.received and one more line');
  events.forEach((event, index) => {
    const text = encodeLine(event, index + 1, NOW_MS);
    assert.ok(text.endsWith('}\n') && text.indexOf('\n') === text.length - 1, 'one line, newline-terminated');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed).slice(0, 6), COMMON_FIELDS);
    assert.ok(KNOWN_TYPES.has(String(parsed.event_type)), `event_type ${String(parsed.event_type)}`);
    for (const [name, value] of Object.entries(parsed)) {
      assert.ok(KNOWN_FIELDS.has(name), `unknown field ${name}`);
      const flat = (item: unknown) => item === null || ['string', 'number', 'boolean'].includes(typeof item);
      assert.ok(flat(value) || (Array.isArray(value) && value.every((item) => typeof item === 'string')), `${name} is not flat`);
    }
  });
  assert.equal(events[0]!.event_type, 'webhook.received');
}

function assertOutcomeShape(outcome: WebhookOutcome): void {
  assert.ok([200, 400, 401].includes(outcome.status), `status ${outcome.status}`);
  assertWellFormedLines(outcome.events);
  if (outcome.status === 200) {
    assert.equal(outcome.reason, undefined);
    assert.ok(['webhook.processing', 'webhook.duplicate'].includes(outcome.events[1]!.event_type));
  } else {
    assert.ok(REJECT_REASONS.has(outcome.reason!), `reason ${outcome.reason}`);
    assert.deepEqual(outcome.events.map((event) => event.event_type), ['webhook.received', 'webhook.rejected']);
    assert.equal(outcome.events[1]!.http_status, outcome.status);
    assert.equal(outcome.events[1]!.reason, outcome.reason);
    assert.equal(outcome.events[1]!.session_id, null, 'nothing unverified names a session');
    if (outcome.status === 401) assert.ok((VERIFY_REASONS as readonly string[]).includes(outcome.reason!));
    else assert.ok((DECODE_REASONS as readonly string[]).includes(outcome.reason!));
  }
}

async function run(body: Uint8Array, authorization: string | undefined, ctx = context()): Promise<WebhookOutcome> {
  const outcome = await processWebhook({ authorization, body, receivedAtMs: NOW_MS }, ctx);
  assertOutcomeShape(outcome);
  outcome.commit();
  return outcome;
}

const sign = (body: Uint8Array | string, key = TEST_KEY, options: Parameters<typeof signWebhook>[2] = {}) => signWebhook(body, key, { issuedAt: NOW_S, ...options });

/** Token-shaped strings: random segments, random claims signed with a real or wrong key, alg games. */
const tokenArbitrary = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 120 }), fc.base64String({ maxLength: 50 })).map((parts) => parts.join('.').replace(/\+/g, '-').replace(/\//g, '_')),
  fc.record({
    claims: fc.dictionary(fc.constantFrom('iss', 'exp', 'nbf', 'iat', 'sha256', 'sub', 'video'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }),
    header: fc.dictionary(fc.constantFrom('alg', 'typ', 'kid', 'crit', 'b64'), fc.oneof(fc.constantFrom('HS256', 'none', 'HS512', 'RS256', 'JWT'), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 2 }),
    key: fc.constantFrom(TEST_KEY, OTHER_KEY, { keyId: TEST_KEY.keyId, secret: 'wrong' }),
    bearer: fc.boolean(),
  }).map(({ claims, header, key, bearer }) => `${bearer ? 'Bearer ' : ''}${sign('{}', key, { claims, header })}`),
);

describe('processWebhook on hostile input', () => {
  test('random bytes with any Authorization: never throws, answers 401 (nothing here holds a valid token for those bytes)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), tokenArbitrary, async (body, authorization) => {
        const outcome = await run(body, authorization);
        assert.equal(outcome.status, 401, `accepted random bytes with ${authorization}`);
      }),
      { numRuns: runs(2500) },
    );
  });

  test('any JSON, correctly signed: never throws; 400 unless it is an object with a string "event"', async () => {
    const anyJson = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record({ event: fc.oneof(fc.constantFrom(...SAMPLE_EVENTS), fc.string({ maxLength: 20 })) }, { requiredKeys: [] }).chain((head) =>
        fc.dictionary(fc.constantFrom('room', 'participant', 'track', 'egressInfo', 'ingressInfo', 'job', 'id', 'createdAt', 'numDropped'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }).map((rest) => ({ ...rest, ...head })),
      ),
    );
    await fc.assert(
      fc.asyncProperty(anyJson, fc.boolean(), async (json, insecure) => {
        const body = Buffer.from(JSON.stringify(json) ?? 'null');
        const outcome = await run(body, insecure ? undefined : sign(body), context(insecure));
        const isEvent = typeof json === 'object' && json !== null && !Array.isArray(json) && typeof (json as { event?: unknown }).event === 'string' && (json as { event: string }).event !== '';
        if (!isEvent) assert.equal(outcome.status, 400);
        else assert.notEqual(outcome.status, 401);
      }),
      { numRuns: runs(2500) },
    );
  });
});

test('event names that are Object.prototype keys are unknown events, not prototype members (found by the property above)', async () => {
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
    const body = Buffer.from(JSON.stringify({ event: name, id: `EV_${name}`, room: { sid: 'RM_proto', name: 'proto' } }));
    const outcome = await run(body, sign(body));
    assert.equal(outcome.status, 200);
    assert.equal(outcome.events[2]!.event_type, 'livekit.event.unknown', `${name} → ${String(outcome.events[2]!.event_type)}`);
  }
});

describe('a signed real webhook, tampered with', () => {
  const realWebhook = fc.record({ event: fc.constantFrom(...SAMPLE_EVENTS), spaced: fc.boolean(), seed: fc.integer() }).map(({ event, spaced }) => {
    const body = Buffer.from(encodeBody(sampleWebhook(event, 'tamper-room', NOW_MS), spaced));
    return { body, token: sign(body) };
  });

  const byteMutation = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), bytes: fc.constantFrom(' ', '\n', '\r\n', '\t', '{}', ',').map((text) => Buffer.from(text)) }),
  );

  function mutate(original: Buffer, mutation: ValueOf<typeof byteMutation>): Buffer {
    const at = 'at' in mutation ? mutation.at % (original.length + 1) : original.length;
    switch (mutation.kind) {
      case 'replace': {
        const copy = Buffer.from(original);
        if (at < copy.length) copy[at] = mutation.byte;
        return copy;
      }
      case 'insert':
        return Buffer.concat([original.subarray(0, at), mutation.bytes, original.subarray(at)]);
      case 'delete':
        return Buffer.concat([original.subarray(0, at), original.subarray(at + mutation.length)]);
      case 'truncate':
        return original.subarray(0, at);
      case 'append':
        return Buffer.concat([original, mutation.bytes]);
    }
  }

  test('a changed body is never accepted; an unchanged one always is', async () => {
    await fc.assert(
      fc.asyncProperty(realWebhook, byteMutation, async ({ body, token }, mutation) => {
        const mutated = mutate(body, mutation);
        const outcome = await run(mutated, token);
        if (mutated.equals(body)) assert.equal(outcome.status, 200, 'a no-op mutation is still the real webhook');
        else assert.deepEqual([outcome.status, outcome.reason], [401, 'body_hash_mismatch']);
      }),
      { numRuns: runs(2500) },
    );
  });

  const tokenMutation = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), char: fc.oneof(fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' })) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('decorate' as const), prefix: fc.constantFrom('', 'Bearer ', 'bearer  ', ' ', 'Basic '), suffix: fc.constantFrom('', ' ', '\t', '=') }),
    fc.record({ kind: fc.constant('swap' as const) }),
  );

  function mutateToken(token: string, mutation: ValueOf<typeof tokenMutation>): string {
    const at = 'at' in mutation ? mutation.at % (token.length + 1) : 0;
    switch (mutation.kind) {
      case 'replace':
        return token.slice(0, at) + mutation.char + token.slice(at + 1);
      case 'insert':
        return token.slice(0, at) + mutation.text + token.slice(at);
      case 'delete':
        return token.slice(0, at) + token.slice(at + mutation.length);
      case 'decorate':
        return mutation.prefix + token + mutation.suffix;
      case 'swap': {
        const [header, payload, signature] = token.split('.');
        return [payload, header, signature].join('.');
      }
    }
  }

  /** Same token as far as a verifier can tell: the signed part byte-identical, the signature decoding to the same bytes. */
  function sameToken(original: string, header: string): boolean {
    const match = /^\s*(?:bearer\s+)?(.*?)\s*$/is.exec(header);
    const candidate = match?.[1] ?? '';
    const [signedA, signatureA] = [original.slice(0, original.lastIndexOf('.')), original.slice(original.lastIndexOf('.') + 1)];
    const [signedB, signatureB] = [candidate.slice(0, candidate.lastIndexOf('.')), candidate.slice(candidate.lastIndexOf('.') + 1)];
    if (signedA !== signedB) return false;
    try {
      return Buffer.from(base64url.decode(signatureA)).equals(Buffer.from(base64url.decode(signatureB)));
    } catch {
      return false;
    }
  }

  test('a changed token is never accepted unless a verifier cannot tell it from the original', async () => {
    await fc.assert(
      fc.asyncProperty(realWebhook, tokenMutation, async ({ body, token }, mutation) => {
        const header = mutateToken(token, mutation);
        const outcome = await run(body, header);
        if (outcome.status === 200) assert.ok(sameToken(token, header), `accepted a different token: ${JSON.stringify(header)}`);
        else assert.equal(outcome.status, 401, 'a token problem is a 401');
      }),
      { numRuns: runs(2000) },
    );
  });
});

describe('mapping and session state under arbitrary event sequences', () => {
  const realishEvent = realishEvents(NOW_MS);

  /** Replaces values at random paths with random JSON, or removes them. */
  function withEdits(json: JsonObject, edits: ReadonlyArray<readonly [number, unknown]>): unknown {
    const copy = JSON.parse(JSON.stringify(json)) as JsonObject;
    for (const [pick, value] of edits) {
      const paths: Array<[Record<string, unknown>, string]> = [];
      const walk = (node: unknown): void => {
        if (typeof node !== 'object' || node === null) return;
        for (const [key, child] of Object.entries(node)) {
          paths.push([node as Record<string, unknown>, key]);
          walk(child);
        }
      };
      walk(copy);
      if (paths.length === 0) break;
      const [parent, key] = paths[pick % paths.length]!;
      if (value === undefined) delete parent[key];
      else parent[key] = value;
    }
    return copy;
  }

  const edit = fc.tuple(fc.nat(), fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', '0', '-1', '99999999999999999999', 'SIP', 'ACTIVE', 'DISCONNECTED')));
  const sequence = fc.array(fc.tuple(realishEvent, fc.array(edit, { maxLength: 2 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 12 });

  const STATE_RANK: Record<string, number> = { created: 1, connected: 2, ended: 3 };

  test('never throws; sessions never go back; a call ends at most once', () => {
    fc.assert(
      fc.property(sequence, (steps) => {
        const store = new MemoryStore();
        const sessionRank = new Map<string, number>();
        const endedCalls = new Set<string>();
        let nowMs = NOW_MS;
        for (const [json, edits, editsUsed] of steps) {
          nowMs += 1000;
          const decoded = decodeWebhook(Buffer.from(JSON.stringify(withEdits(json, edits.slice(0, editsUsed)))));
          if (!decoded.ok) {
            assert.ok((DECODE_REASONS as readonly string[]).includes(decoded.reason));
            continue;
          }
          const outcome = planOne(decoded.event, nowMs, store);
          assertOutcomeShape(outcome);
          outcome.commit();
          for (const line of outcome.events) {
            if (line.event_type === 'session.state_changed') {
              const rank = STATE_RANK[String(line.to_state)];
              assert.ok(rank !== undefined, `to_state ${String(line.to_state)}`);
              const previous = sessionRank.get(String(line.session_id)) ?? 0;
              assert.ok(rank > previous, `session ${line.session_id} went from rank ${previous} to ${line.to_state}`);
              sessionRank.set(String(line.session_id), rank);
            }
            if (line.event_type === 'call.ended') {
              const key = `${line.session_id}/${String(line.participant_sid)}`;
              assert.ok(!endedCalls.has(key), `call ${key} ended twice`);
              endedCalls.add(key);
            }
          }
        }
      }),
      { numRuns: runs(1500) },
    );
  });
});
