import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { AccessToken, WebhookReceiver } from 'livekit-server-sdk';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { bodySha256, signWebhook } from '../../src/livekit/sign.ts';
import { bodyHashMatches, checkTokenWithoutBody, KeyRing, tokenFromHeader, verifyWebhook, type VerifyResult } from '../../src/pipeline/verify.ts';

const KEY = { keyId: 'APIkey1', secret: 'secret-one-that-is-long-enough-0123456789' };
const SECOND = { keyId: 'APIkey2', secret: 'secret-two-that-is-long-enough-9876543210' };
const keys = new KeyRing([KEY, SECOND]);
const NOW_MS = 1_796_029_268_000;
const NOW = NOW_MS / 1000;
const body = encodeBody(sampleWebhook('room_started', 'verify-room', NOW_MS));
const bytes = Buffer.from(body);

async function verify(authorization: string | undefined, payload: Uint8Array = bytes, nowMs = NOW_MS, clockToleranceMs = 60_000): Promise<VerifyResult> {
  return verifyWebhook(authorization, payload, { keys, nowMs, clockToleranceMs });
}

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token with any header and claims (an object, or JSON text), signed with HMAC-SHA-<bits>. */
function forge(header: object, claims: object | string, secret = KEY.secret, bits = 256): string {
  const input = `${b64url(header)}.${typeof claims === 'string' ? Buffer.from(claims).toString('base64url') : b64url(claims)}`;
  return `${input}.${createHmac(`sha${bits}`, secret).update(input).digest('base64url')}`;
}

/** A well-signed token whose claims are `goodClaims` with `changes`, written as JSON text (so 1e400 can be written). */
function withClaims(changes: Record<string, string>): string {
  let text = JSON.stringify(goodClaims);
  for (const [name, value] of Object.entries(changes)) text = text.replace(new RegExp(`"${name}":[^,}]*`), `"${name}":${value}`);
  return forge({ alg: 'HS256', typ: 'JWT' }, text);
}

/** The base64url alphabet: a last character whose unused low bits are set decodes to the same bytes as another. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function withNonCanonicalEnd(segment: string): string {
  const last = ALPHABET.indexOf(segment.at(-1)!);
  const unusedBits = segment.length % 4 === 3 ? 0b11 : 0b1111;
  return segment.slice(0, -1) + ALPHABET[last | unusedBits]!;
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

  const strictness: Array<[string, () => string, string]> = [
    ['a sha256 claim with a leading space', () => withClaims({ sha256: JSON.stringify(` ${goodClaims.sha256}`) }), 'body_hash_mismatch'],
    ['a sha256 claim with a trailing space', () => withClaims({ sha256: JSON.stringify(`${goodClaims.sha256} `) }), 'body_hash_mismatch'],
    ['a sha256 claim with a trailing newline', () => withClaims({ sha256: JSON.stringify(`${goodClaims.sha256}\n`) }), 'body_hash_mismatch'],
    ['a sha256 claim with trailing junk', () => withClaims({ sha256: JSON.stringify(`${goodClaims.sha256}junk`) }), 'body_hash_mismatch'],
    ['a sha256 claim without its padding', () => withClaims({ sha256: JSON.stringify(goodClaims.sha256.replace(/=+$/, '')) }), 'body_hash_mismatch'],
    ['a sha256 claim in URL-safe base64', () => withClaims({ sha256: JSON.stringify(Buffer.from(goodClaims.sha256, 'base64').toString('base64url')) }), 'body_hash_mismatch'],
    ['exp 1e308', () => withClaims({ exp: '1e308' }), 'malformed_token'],
    ['exp 1e400 (Infinity once parsed)', () => withClaims({ exp: '1e400' }), 'malformed_token'],
    ['exp past the year 9999', () => withClaims({ exp: '253402300800' }), 'malformed_token'],
    ['exp with a fraction', () => withClaims({ exp: String(NOW + 300.5) }), 'malformed_token'],
    ['nbf -1e400 (-Infinity)', () => withClaims({ nbf: '-1e400' }), 'malformed_token'],
    ['nbf with a fraction', () => withClaims({ nbf: String(NOW - 0.5) }), 'malformed_token'],
    ['a negative nbf', () => withClaims({ nbf: '-1' }), 'malformed_token'],
    ['iat 1e400', () => withClaims({ iat: '1e400' }), 'malformed_token'],
    ['a signature with a trailing =', () => `${signWebhook(body, KEY, { issuedAt: NOW })}=`, 'malformed_token'],
    ['a signature whose unused bits are set (the same bytes, not the same text)', () => {
      const [header, payload, signature] = signWebhook(body, KEY, { issuedAt: NOW }).split('.');
      return `${header}.${payload}.${withNonCanonicalEnd(signature!)}`;
    }, 'malformed_token'],
    // LiveKit-shaped tokens (one regex takes their alphabet) have only each segment's end checked: every segment is tried.
    ['a payload segment whose unused bits are set (LiveKit-shaped, correctly signed)', () => {
      // A filler claim makes the payload's length 4n + 2 or 4n + 3, so its last character has spare bits.
      let payload = b64url(goodClaims);
      for (let filler = ''; payload.length % 4 === 0; filler += 'x') payload = b64url({ ...goodClaims, x: filler });
      const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${withNonCanonicalEnd(payload)}`;
      return `${input}.${createHmac('sha256', KEY.secret).update(input).digest('base64url')}`;
    }, 'malformed_token'],
    ['a header segment whose unused bits are set (LiveKit-shaped, correctly signed)', () => {
      // 28 bytes of JSON: 38 characters, the last one with 2 spare bits.
      const header = b64url({ alg: 'HS256', typ: 'JOSE' });
      assert.notEqual(header.length % 4, 0);
      const input = `${withNonCanonicalEnd(header)}.${b64url(goodClaims)}`;
      return `${input}.${createHmac('sha256', KEY.secret).update(input).digest('base64url')}`;
    }, 'malformed_token'],
    ['a signature in standard base64', () => {
      // The first issue time whose MAC has a + or / in standard base64.
      for (let offset = 0; ; offset++) {
        const [header, payload] = signWebhook(body, KEY, { issuedAt: NOW - offset }).split('.');
        const input = `${header}.${payload}`;
        const standard = createHmac('sha256', KEY.secret).update(input).digest('base64').replace(/=+$/, '');
        if (/[+/]/.test(standard)) return `${input}.${standard}`;
      }
    }, 'malformed_token'],
    ['a header segment with padding', () => {
      // 34 bytes of JSON: padded base64 ends in ==.
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', x: 10 })).toString('base64');
      assert.match(header, /==$/);
      const input = `${header}.${b64url(goodClaims)}`;
      return `${input}.${createHmac('sha256', KEY.secret).update(input).digest('base64url')}`;
    }, 'malformed_token'],
    ['a payload segment with whitespace', () => {
      const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(goodClaims).replace(/^(.{8})/, '$1 ')}`;
      return `${input}.${createHmac('sha256', KEY.secret).update(input).digest('base64url')}`;
    }, 'malformed_token'],
  ];
  for (const [name, makeHeader, reason] of strictness) {
    test(`refuses ${name}: ${reason}`, async () => {
      assert.deepEqual(await verify(makeHeader()), { ok: false, reason });
    });
  }

  test('the exact digest with whole-second times in range is accepted (the strictness refuses nothing LiveKit sends)', async () => {
    assert.deepEqual(await verify(withClaims({ exp: String(NOW + 300), nbf: String(NOW), iat: String(NOW) })), { ok: true, keyId: KEY.keyId });
    assert.deepEqual(await verify(withClaims({ nbf: '0', iat: '0' })), { ok: true, keyId: KEY.keyId });
  });

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

  test('bodyHashMatches accepts exactly the padded standard base64 of the digest, as LiveKit writes it', () => {
    const digest = bodySha256(bytes);
    assert.equal(bodyHashMatches(digest, bytes), true);
    assert.equal(bodyHashMatches(digest.replace(/=+$/, ''), bytes), false);
    assert.equal(bodyHashMatches(digest.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), bytes), false);
    assert.equal(bodyHashMatches(`${digest} `, bytes), false);
    assert.equal(bodyHashMatches(digest, Buffer.from(body + ' ')), false);
  });

  test('checkTokenWithoutBody: everything but the body hash, synchronous for a LiveKit token', async () => {
    const token = signWebhook(body, KEY, { issuedAt: NOW });
    const verdict = checkTokenWithoutBody(token, keys, NOW_MS, 60_000);
    assert.ok(!(verdict instanceof Promise), 'a LiveKit token is checked without a promise');
    assert.deepEqual(verdict, { ok: true, keyId: KEY.keyId });
    assert.deepEqual(await checkTokenWithoutBody(signWebhook(body, { keyId: KEY.keyId, secret: 'wrong-secret' }, { issuedAt: NOW }), keys, NOW_MS, 60_000), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(await checkTokenWithoutBody(signWebhook(body, KEY, { issuedAt: NOW - 1000 }), keys, NOW_MS, 60_000), { ok: false, reason: 'expired' });
    assert.deepEqual(await checkTokenWithoutBody(withClaims({ exp: '1e308' }), keys, NOW_MS, 60_000), { ok: false, reason: 'malformed_token' });
    assert.deepEqual(await checkTokenWithoutBody(undefined, keys, NOW_MS, 60_000), { ok: false, reason: 'missing_authorization' });
  });

  test('KeyRing exposes key ids, never secrets', () => {
    assert.deepEqual(keys.keyIds, [KEY.keyId, SECOND.keyId]);
    assert.doesNotMatch(JSON.stringify(keys), /secret-one/);
  });
});
