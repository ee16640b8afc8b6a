// The synchronous node:crypto path (hmac-fast-path.ts) may only say "yes" where
// jose (the verifier of record) says "yes": verifyWebhook must return what
// verifyWebhookWithJose returns, for well-formed LiveKit tokens and for
// every way a token can be odd, forged, stale or malformed.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeJwt, jwtVerify } from 'jose';
import { bodySha256, signWebhook } from '../../src/livekit/sign.ts';
import { acceptsLiveKitToken } from '../../src/pipeline/hmac-fast-path.ts';
import { KeyRing, verifyWebhook, verifyWebhookWithJose } from '../../src/pipeline/verify.ts';

const KEY = { keyId: 'APIkey1', secret: 'secret-one-that-is-long-enough-0123456789' };
const SECOND = { keyId: 'APIkey2', secret: 'secret-two-that-is-long-enough-9876543210' };
const keys = new KeyRing([KEY, SECOND]);
const NOW_MS = 1_796_029_268_431;
const NOW = Math.floor(NOW_MS / 1000);
const body = Buffer.from('{"event":"room_started","room":{"sid":"RM_x","name":"r"},"id":"EV_abcdefghijkm","createdAt":"1796029268"}');
const otherBody = Buffer.from('{"event":"room_finished"}');

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/**
 * Signs any header and claims (objects, or raw JSON text) with HMAC-SHA-<bits>.
 * `suffix` is appended to both encoded segments before signing: a signer
 * (not an attacker) producing segments that are not clean base64url.
 */
function forge(header: unknown, claims: unknown, secret: string, bits = 256, suffix = ''): string {
  const encode = (part: unknown) => b64url(typeof part === 'string' ? part : JSON.stringify(part)) + suffix;
  const input = `${encode(header)}.${encode(claims)}`;
  return `${input}.${createHmac(`sha${bits}`, secret).update(input).digest('base64url')}`;
}

/** Mostly the well-formed value, sometimes one of the odd ones: most generated tokens are then near-valid. */
function mostly<T>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: good, weight: 5 }, { arbitrary: odd, weight: 1 });
}

const headers = mostly<unknown>(
  fc.constantFrom({ alg: 'HS256', typ: 'JWT' }, { alg: 'HS256' }, { typ: 'JWT', alg: 'HS256' }),
  fc.constantFrom<unknown>(
    { alg: 'HS256', typ: 'at+jwt' },
    { alg: 'HS384', typ: 'JWT' },
    { alg: 'none', typ: 'JWT' },
    { alg: 'hs256' },
    { alg: 'HS256', kid: 'APIkey1' },
    { alg: 'HS256', crit: ['b64'], b64: false },
    { alg: 'HS256', crit: ['exp'] },
    { alg: 'HS256', b64: true },
    '{"alg":"HS256","__proto__":{"x":1}}',
    '["HS256"]',
    '{"alg":"HS256"',
    'null',
  ),
);

/**
 * A time claim: the value LiveKit would send, or a number near `centre`
 * (±70 s: across every tolerance boundary), or absent, or of the wrong type.
 */
const timeClaim = (typical: number, centre: number, optional: boolean) =>
  mostly<unknown>(
    fc.oneof(
      fc.constant(typical),
      fc.integer({ min: -70, max: 70 }).map((offset) => centre + offset),
      fc.double({ min: centre - 70, max: centre + 70, noNaN: true }),
    ),
    fc.constantFrom<unknown>(null, String(centre), true, '__inf__', '__minus_inf__', 1e308, -1, centre + 0.5, 253_402_300_800, ...(optional ? [] : [undefined])),
  ).chain((value) => (optional ? fc.constantFrom(value, undefined) : fc.constant(value)));

const issuers = mostly<unknown>(fc.constantFrom(KEY.keyId, SECOND.keyId), fc.constantFrom<unknown>('APIunknown', '', undefined, 42, null));
const hashes = mostly<unknown>(
  fc.constantFrom(bodySha256(body)),
  fc.constantFrom<unknown>(
    bodySha256(body).replace(/=$/, ''),
    bodySha256(otherBody),
    '',
    undefined,
    7,
    'AAAA',
    ` ${bodySha256(body)}`,
    `${bodySha256(body)} `,
    `${bodySha256(body)}\n`,
    `${bodySha256(body)}junk`,
    Buffer.from(bodySha256(body), 'base64').toString('base64url'),
  ),
);
/** `match` signs with the secret of the key `iss` names. */
const secrets = mostly(fc.constant('match'), fc.constantFrom(KEY.secret, SECOND.secret, 'wrong-secret'));
const bits = mostly(fc.constant(256), fc.constant(384));

/** Ways to damage a well-formed token's text. */
const tamper = mostly<(token: string) => string>(
  fc.constantFrom((token: string) => token, (token: string) => `Bearer ${token}`, (token: string) => ` ${token} `),
  fc.constantFrom<(token: string) => string>(
    (token) => `${token}=`,
    (token) => token.slice(0, -1),
    (token) => `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
    (token) => token.replace('.', 'x.'),
    (token) => token.replace('.', '=.'),
    (token) => token.replace(/\.([^.]*)\./, '.$1x.'),
    (token) => token.replace(/\.([^.]*)\./, '.$1é.'),
    (token) => token.replace(/-/g, '+').replace(/_/g, '/'),
    (token) => `${token}.extra`,
    (token) => token.split('.').slice(0, 2).join('.'),
    () => '',
  ),
);

const cases = fc.record({
  header: headers,
  iss: issuers,
  // exp is checked around now - tolerance, nbf around now + tolerance.
  exp: timeClaim(NOW + 300, NOW - 60, false),
  nbf: timeClaim(NOW, NOW + 60, true),
  iat: mostly<unknown>(fc.constant(NOW), fc.constantFrom<unknown>(undefined, 'now', null)),
  sha256: hashes,
  secret: secrets,
  bits,
  tamper,
  nowOffsetMs: mostly(fc.integer({ min: -2_000, max: 2_000 }), fc.integer({ min: -400_000, max: 400_000 })),
  toleranceMs: fc.constantFrom(60_000, 60_000, 10_000, 0, 1500),
  payload: mostly(fc.constant(body), fc.constant(otherBody)),
  suffix: mostly(fc.constant(''), fc.constantFrom('A', 'AA', 'AAA', 'A=', '=', '==', '%')),
});

/** Whether jose's jwtVerify alone accepts the token, with the options verify.ts gives it. */
async function joseAccepts(token: string, nowMs: number, clockToleranceMs: number): Promise<boolean> {
  try {
    const { iss } = decodeJwt(token);
    const secret = keys.secretFor(String(iss));
    if (!secret) return false;
    await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: String(iss), requiredClaims: ['exp'], clockTolerance: clockToleranceMs / 1000, currentDate: new Date(nowMs) });
    return true;
  } catch {
    return false;
  }
}

async function bothVerdicts(authorization: string | undefined, payload: Uint8Array, nowMs: number, clockToleranceMs: number) {
  const options = { keys, nowMs, clockToleranceMs };
  return { fast: await verifyWebhook(authorization, payload, options), jose: await verifyWebhookWithJose(authorization, payload, options) };
}

describe('the node:crypto fast path agrees with jose', () => {
  test('on tokens minted like LiveKit, across the exp/nbf boundaries', async () => {
    for (let offset = -400; offset <= 400; offset += 1) {
      const token = signWebhook(body, KEY, { issuedAt: NOW + offset });
      const { fast, jose } = await bothVerdicts(token, body, NOW_MS, 60_000);
      assert.deepEqual(fast, jose, `issuedAt now${offset >= 0 ? '+' : ''}${offset}`);
    }
  });

  test('the fast path does take the well-formed tokens (it is not a no-op)', () => {
    const token = signWebhook(body, KEY, { issuedAt: NOW });
    const accepted = acceptsLiveKitToken(token, { keys, nowMs: NOW_MS, clockToleranceMs: 60_000 });
    assert.equal(accepted?.keyId, KEY.keyId);
    assert.equal(accepted?.claims.sha256, bodySha256(body));
    assert.ok(!(verifyWebhook(token, body, { keys, nowMs: NOW_MS, clockToleranceMs: 60_000 }) instanceof Promise), 'decided without a promise');
  });

  test('on random, forged and damaged tokens (property)', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const claims: Record<string, unknown> = {};
        if (c.iss !== undefined) claims.iss = c.iss;
        if (c.nbf !== undefined) claims.nbf = c.nbf;
        if (c.iat !== undefined) claims.iat = c.iat;
        if (c.exp !== undefined) claims.exp = c.exp;
        if (c.sha256 !== undefined) claims.sha256 = c.sha256;
        // 1e400 cannot come from JSON.stringify; write it as JSON text.
        const claimsText = JSON.stringify(claims).replace(/"__inf__"/g, '1e400').replace(/"__minus_inf__"/g, '-1e400');
        const secret = c.secret !== 'match' ? c.secret : c.iss === SECOND.keyId ? SECOND.secret : KEY.secret;
        const token = c.tamper(forge(c.header, claimsText, secret, c.bits, c.suffix));
        const nowMs = NOW_MS + c.nowOffsetMs;
        const { fast, jose } = await bothVerdicts(token, c.payload, nowMs, c.toleranceMs);
        assert.deepEqual(fast, jose);
        const shortCut = acceptsLiveKitToken(token, { keys, nowMs, clockToleranceMs: c.toleranceMs });
        if (shortCut !== undefined) {
          accepted++;
          // Only where jose itself accepts the token (the strict time claims and the body hash are checked after, on both paths).
          assert.equal(await joseAccepts(token, nowMs, c.toleranceMs), true, `fast path accepted what jose refuses: ${JSON.stringify(jose)}`);
        }
      }),
      { numRuns: 5000, seed: 20_261_130 },
    );
    assert.ok(accepted > 100, `the fast path accepted only ${accepted} generated tokens`);
  });

  test('segments a signer padded with stray base64 characters (one character over a multiple of 4 is not base64)', async () => {
    const claims = { iss: KEY.keyId, nbf: NOW, iat: NOW, exp: NOW + 300, sha256: bodySha256(body) };
    for (const suffix of ['A', 'AA', 'AAA', 'AAAA', '=', 'A=']) {
      for (const where of ['header', 'payload'] as const) {
        const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + (where === 'header' ? suffix : '');
        const payload = b64url(JSON.stringify(claims)) + (where === 'payload' ? suffix : '');
        const input = `${header}.${payload}`;
        const token = `${input}.${createHmac('sha256', KEY.secret).update(input).digest('base64url')}`;
        const { fast, jose } = await bothVerdicts(token, body, NOW_MS, 60_000);
        assert.deepEqual(fast, jose, `${where} + "${suffix}"`);
      }
    }
  });

  test('a missing or empty Authorization, and a non-finite clock, go to jose', async () => {
    for (const header of [undefined, '', '   ', 'Bearer ']) {
      const { fast, jose } = await bothVerdicts(header, body, NOW_MS, 60_000);
      assert.deepEqual(fast, jose);
    }
    const token = signWebhook(body, KEY, { issuedAt: NOW });
    assert.equal(acceptsLiveKitToken(token, { keys, nowMs: Number.NaN, clockToleranceMs: 60_000 }), undefined);
    assert.equal(acceptsLiveKitToken(token, { keys, nowMs: NOW_MS, clockToleranceMs: -1 }), undefined);
    const { fast, jose } = await bothVerdicts(token, body, Number.NaN, 60_000);
    assert.deepEqual(fast, jose);
  });
});
