import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { AccessToken, WebhookReceiver } from 'livekit-server-sdk';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { bodySha256, signWebhook } from '../../src/livekit/sign.ts';
import { bodyHashMatches, KeyRing, tokenFromHeader, verifyWebhook, type VerifyResult } from '../../src/pipeline/verify.ts';

const KEY = { keyId: 'APIkey1', secret: 'secret-one-that-is-long-enough-0123456789' };
const SECOND = { keyId: 'APIkey2', secret: 'secret-two-that-is-long-enough-9876543210' };
const keys = new KeyRing([KEY, SECOND]);
const NOW_MS = 1_796_029_268_000;
const NOW = NOW_MS / 1000;
const body = encodeBody(sampleWebhook('room_started', 'verify-room', NOW_MS));
const bytes = Buffer.from(body);

function verify(authorization: string | undefined, payload: Uint8Array = bytes, nowMs = NOW_MS, clockToleranceMs = 60_000): Promise<VerifyResult> {
  return verifyWebhook(authorization, payload, { keys, nowMs, clockToleranceMs });
}

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token with any header and claims, signed with HMAC-SHA-<bits>. */
function forge(header: object, claims: object, secret = KEY.secret, bits = 256): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac(`sha${bits}`, secret).update(input).digest('base64url')}`;
}

const goodClaims = { iss: KEY.keyId, nbf: NOW, iat: NOW, exp: NOW + 300, sha256: bodySha256(bytes) };

describe('verifyWebhook', () => {
  test('accepts a token minted the way the LiveKit server mints it', async () => {
    assert.deepEqual(await verify(signWebhook(body, KEY, { issuedAt: NOW })), { ok: true, keyId: KEY.keyId });
  });

  test("accepts a token made by livekit-server-sdk's AccessToken (independent implementation)", async () => {
    const token = new AccessToken(KEY.keyId, KEY.secret, { ttl: 300 });
    token.sha256 = bodySha256(bytes);
    const result = await verify(await token.toJwt(), bytes, Date.now());
    assert.deepEqual(result, { ok: true, keyId: KEY.keyId });
  });

  test("our signer's tokens pass livekit-server-sdk's WebhookReceiver", async () => {
    const receiver = new WebhookReceiver(KEY.keyId, KEY.secret);
    const event = await receiver.receive(body, signWebhook(body, KEY));
    assert.equal(event.event, 'room_started');
  });

  test('accepts a token whose iss is the second configured key', async () => {
    assert.deepEqual(await verify(signWebhook(body, SECOND, { issuedAt: NOW })), { ok: true, keyId: SECOND.keyId });
  });

  test('verifies the raw bytes of a body with ", " separators', async () => {
    const spaced = encodeBody(sampleWebhook('participant_joined', 'spaced', NOW_MS), true);
    assert.match(spaced, /", "/);
    const spacedBytes = Buffer.from(spaced);
    assert.deepEqual(await verify(signWebhook(spacedBytes, KEY, { issuedAt: NOW }), spacedBytes), { ok: true, keyId: KEY.keyId });
    // The same event re-serialised compactly is different bytes: the hash must fail.
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(spaced)));
    assert.deepEqual(await verify(signWebhook(spacedBytes, KEY, { issuedAt: NOW }), reserialised), { ok: false, reason: 'body_hash_mismatch' });
  });

  test('tolerates a Bearer prefix', async () => {
    assert.equal((await verify(`Bearer ${signWebhook(body, KEY, { issuedAt: NOW })}`)).ok, true);
    assert.equal((await verify(`bearer   ${signWebhook(body, KEY, { issuedAt: NOW })}`)).ok, true);
  });

  const refusals: Array<[string, () => string | undefined, string, Uint8Array?]> = [
    ['rejects a request without Authorization', () => undefined, 'missing_authorization'],
    ['rejects an empty Authorization', () => '  ', 'missing_authorization'],
    ['rejects a header that is not a JWT', () => 'not-a-token', 'malformed_token'],
    ['rejects a JWT with a header that is not JSON', () => `e30x.${b64url(goodClaims)}.sig`, 'malformed_token'],
    ['rejects alg none', () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(goodClaims)}.`, 'wrong_algorithm'],
    ['rejects HS512 even with the right secret', () => forge({ alg: 'HS512', typ: 'JWT' }, goodClaims, KEY.secret, 512), 'wrong_algorithm'],
    ['rejects HS384', () => forge({ alg: 'HS384', typ: 'JWT' }, goodClaims, KEY.secret, 384), 'wrong_algorithm'],
    ['rejects RS256 headers', () => `${b64url({ alg: 'RS256' })}.${b64url(goodClaims)}.c2ln`, 'wrong_algorithm'],
    ['rejects a token without iss', () => forge({ alg: 'HS256' }, { ...goodClaims, iss: undefined }), 'missing_issuer'],
    ['rejects a key that is not configured', () => signWebhook(body, { keyId: 'APIunknown', secret: KEY.secret }, { issuedAt: NOW }), 'unknown_key'],
    ['rejects a token signed with another secret', () => signWebhook(body, { keyId: KEY.keyId, secret: 'wrong-secret' }, { issuedAt: NOW }), 'bad_signature'],
    ["rejects a token whose iss names key 1 but is signed with key 2's secret", () => signWebhook(body, { keyId: KEY.keyId, secret: SECOND.secret }, { issuedAt: NOW }), 'bad_signature'],
    ['rejects a token with a tampered payload', () => {
      const [header, , signature] = signWebhook(body, KEY, { issuedAt: NOW }).split('.');
      return `${header}.${b64url({ ...goodClaims, exp: NOW + 99_999 })}.${signature}`;
    }, 'bad_signature'],
    ['rejects a token expired beyond the tolerance', () => signWebhook(body, KEY, { issuedAt: NOW - 300 - 61 }), 'expired'],
    ['rejects a token not valid until beyond the tolerance', () => signWebhook(body, KEY, { issuedAt: NOW + 61 }), 'not_yet_valid'],
    ['rejects a token without exp', () => forge({ alg: 'HS256' }, { ...goodClaims, exp: undefined }), 'missing_expiry'],
    ['rejects a token without the sha256 claim', () => forge({ alg: 'HS256' }, { ...goodClaims, sha256: undefined }), 'missing_body_hash'],
    ['rejects a body that does not match the sha256 claim', () => signWebhook('{"event":"room_started"}', KEY, { issuedAt: NOW }), 'body_hash_mismatch'],
    ['rejects a sha256 claim of the wrong length', () => forge({ alg: 'HS256' }, { ...goodClaims, sha256: 'AAAA' }), 'body_hash_mismatch'],
  ];
  for (const [name, makeHeader, reason] of refusals) {
    test(name, async () => {
      assert.deepEqual(await verify(makeHeader()), { ok: false, reason });
    });
  }

  test('accepts exp and nbf within the clock tolerance', async () => {
    assert.equal((await verify(signWebhook(body, KEY, { issuedAt: NOW - 300 - 30 }))).ok, true);
    assert.equal((await verify(signWebhook(body, KEY, { issuedAt: NOW + 30 }))).ok, true);
  });

  test('a smaller clock tolerance is honoured', async () => {
    assert.deepEqual(await verify(signWebhook(body, KEY, { issuedAt: NOW + 30 }), bytes, NOW_MS, 10_000), { ok: false, reason: 'not_yet_valid' });
  });

  test('a retry with an older iat but the same token still verifies within exp', async () => {
    const token = signWebhook(body, KEY, { issuedAt: NOW - 15 });
    assert.equal((await verify(token)).ok, true);
  });
});

describe('helpers', () => {
  test('tokenFromHeader strips only a Bearer scheme', () => {
    assert.equal(tokenFromHeader('abc.def.ghi'), 'abc.def.ghi');
    assert.equal(tokenFromHeader('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(tokenFromHeader('Basic abc'), 'Basic abc');
    assert.equal(tokenFromHeader(undefined), undefined);
  });

  test('bodyHashMatches accepts standard and URL-safe base64 of the digest only', () => {
    const digest = bodySha256(bytes);
    assert.equal(bodyHashMatches(digest, bytes), true);
    assert.equal(bodyHashMatches(digest.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), bytes), true);
    assert.equal(bodyHashMatches(digest, Buffer.from(body + ' ')), false);
  });

  test('KeyRing exposes key ids, never secrets', () => {
    assert.deepEqual(keys.keyIds, [KEY.keyId, SECOND.keyId]);
    assert.doesNotMatch(JSON.stringify(keys), /secret-one/);
  });
});
