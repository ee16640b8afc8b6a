// The synchronous HS256 check of verify.ts, for the common case: a token
// shaped exactly as LiveKit writes it. It may only ever say "yes", and only
// where jose (the verifier of record) would say yes too: same checks, same
// arithmetic (acceptsLiveKitToken). Anything else is left to jose. Why:
// jose runs HMAC through WebCrypto, an async job on libuv's thread pool:
// ~100 µs per token against ~5 µs for this whole path (body hash
// included); under a burst jose was the largest single cost of a webhook.
// test/pipeline/verify-equivalence.test.ts checks that both paths return
// the same verdict.

import { isAscii } from 'node:buffer';
import { hash } from 'node:crypto';
import { isPlainObject } from '../obs/json-values.ts';

/**
 * HMAC-SHA256 (RFC 2104) over node:crypto's one-shot `hash`:
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ message)), K the secret zero-padded to
 * SHA-256's 64-byte block (hashed first when longer). Why not createHmac:
 * each createHmac builds a stream object around a fresh OpenSSL 3 HMAC
 * context (a provider fetch per call); under a burst that cost ~10 µs of
 * CPU per webhook, two one-shot hashes cost well under 2 µs.
 * hmac-sha256.test.ts checks it against createHmac for keys and messages
 * of every length class.
 */
export interface HmacKey {
  readonly innerPad: Buffer;
  readonly outerPad: Buffer;
  /** (K ⊕ ipad) followed by room for the message: reused per call, grown for a longer message. */
  inner: Buffer;
  /** (K ⊕ opad) followed by the 32 bytes of the inner digest: reused per call. */
  readonly outer: Buffer;
}

const SHA256_BLOCK_BYTES = 64;
const SHA256_DIGEST_BYTES = 32;
/** A LiveKit token's signing input is a few hundred bytes. */
const INITIAL_MESSAGE_ROOM = 1024;

export function hmacKey(secret: Uint8Array): HmacKey {
  const block = Buffer.alloc(SHA256_BLOCK_BYTES);
  if (secret.length > SHA256_BLOCK_BYTES) Buffer.from(hash('sha256', secret, 'base64'), 'base64').copy(block);
  else block.set(secret);
  const innerPad = Buffer.allocUnsafe(SHA256_BLOCK_BYTES);
  const outerPad = Buffer.allocUnsafe(SHA256_BLOCK_BYTES);
  for (let index = 0; index < SHA256_BLOCK_BYTES; index++) {
    innerPad[index] = block[index]! ^ 0x36;
    outerPad[index] = block[index]! ^ 0x5c;
  }
  const inner = Buffer.allocUnsafeSlow(SHA256_BLOCK_BYTES + INITIAL_MESSAGE_ROOM);
  innerPad.copy(inner, 0);
  const outer = Buffer.allocUnsafeSlow(SHA256_BLOCK_BYTES + SHA256_DIGEST_BYTES);
  outerPad.copy(outer, 0);
  return { innerPad, outerPad, inner, outer };
}

/**
 * HMAC-SHA256 of a latin1 (here: ASCII) message, as unpadded base64url: a
 * JWS HS256 signature. The two hashed blocks are the key's own buffers,
 * with the pads written once (not two buffers per call; ~0.85 against 1.1-1.2
 * µs per call in isolation): synchronous code, so no call can come between
 * the writes and the hash.
 */
export function hmacSha256Base64url(key: HmacKey, message: string): string {
  const innerLength = SHA256_BLOCK_BYTES + message.length;
  if (key.inner.length < innerLength) {
    key.inner = Buffer.allocUnsafeSlow(Math.max(innerLength, 2 * key.inner.length));
    key.innerPad.copy(key.inner, 0);
  }
  key.inner.write(message, SHA256_BLOCK_BYTES, 'latin1');
  // The inner digest as a 32-character latin1 ('binary') string: a digest
  // returned as a Buffer costs a fresh ArrayBuffer each, and was slower.
  key.outer.write(hash('sha256', key.inner.subarray(0, innerLength), 'binary'), SHA256_BLOCK_BYTES, 'latin1');
  return hash('sha256', key.outer, 'base64url');
}

/**
 * Whether two strings are equal, in a time that depends on their length
 * only: every character is compared, with no early exit. For the MAC and
 * the body hash, where both are short ASCII; timingSafeEqual would need two
 * Buffers made per webhook to compare the same bytes.
 */
export function equalInConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  return difference === 0;
}

/**
 * A compact JWS exactly as LiveKit writes it: three base64url segments
 * without padding, the signature 43 characters (32 bytes of HMAC-SHA256).
 * Only such tokens take the fast path; any other shape goes to jose.
 */
const LIVEKIT_TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

/** Whether `token` has LIVEKIT_TOKEN's shape (the only shape the fast path takes). */
export function isLiveKitShaped(token: string): boolean {
  return LIVEKIT_TOKEN.test(token);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url segment decoded (strict UTF-8, as jose) and parsed as JSON, or undefined. */
export function decodeSegment(segment: string): unknown {
  // One character over a multiple of 4 is not base64: jose refuses it,
  // Buffer would silently drop the character.
  if (segment.length % 4 === 1) return undefined;
  try {
    const bytes = Buffer.from(segment, 'base64url');
    // ASCII (every LiveKit token) is valid UTF-8 and reads faster as latin1.
    return JSON.parse(isAscii(bytes) ? bytes.toString('latin1') : strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
}

/** A token the fast path accepted: who signed it, its claims (the time claims and sha256 are checked by verify.ts). */
export interface AcceptedToken {
  readonly keyId: string;
  readonly claims: Record<string, unknown>;
}

/** What the fast path needs of the configured keys (verify.ts's KeyRing). */
export interface FastPathKeys {
  /** Whether `segment` is a token header the fast path accepts. */
  isWellFormedHeader(segment: string): boolean;
  /** Remembers a header of a token whose signature verified. */
  rememberHeader(segment: string): void;
  hmacKeyFor(keyId: string): HmacKey | undefined;
}

export interface FastPathOptions {
  readonly keys: FastPathKeys;
  readonly nowMs: number;
  readonly clockToleranceMs: number;
}

/**
 * The fast path: the key id and claims when the token is one that jose
 * accepts under verify.ts's jose options and its sha256 claim is a
 * non-empty string; otherwise undefined, and jose decides and names the
 * reason. It mirrors jose 6's jwtVerify step by step, and is stricter
 * wherever that is simpler:
 *
 * - shape: LIVEKIT_TOKEN (ASCII, so the signing input is the bytes jose
 *   signs; no padding or stray characters for the decoders to differ on);
 * - header: a JSON object with `alg` "HS256" and nothing but `typ` besides
 *   (no `crit`, `b64`, `kid`, ... which jose treats specially);
 * - payload: a JSON object whose `iss` is a configured key id;
 * - signature: HMAC-SHA256 with that key's secret (hmacSha256Base64url),
 *   compared in constant time;
 * - claims, as jose's validateClaimsSet with tolerance t = clockToleranceMs
 *   / 1000 and now = floor(Date(nowMs) / 1000): `iat`, when present, a
 *   number; `nbf`, when present, a number ≤ now + t; `exp` present, a
 *   number > now - t.
 */
export function acceptsLiveKitToken(token: string, options: FastPathOptions): AcceptedToken | undefined {
  return isLiveKitShaped(token) ? acceptsShapedToken(token, options) : undefined;
}

/** `Date`'s time value of `ms` (ECMAScript TimeClip), as `new Date(ms).getTime()` gives it, without a Date. */
function timeClip(ms: number): number {
  return Math.abs(ms) <= 8.64e15 ? Math.trunc(ms) + 0 : Number.NaN;
}

/** acceptsLiveKitToken for a token already known to be LiveKit-shaped (isLiveKitShaped). */
export function acceptsShapedToken(token: string, options: FastPathOptions): AcceptedToken | undefined {
  const now = Math.floor(timeClip(options.nowMs) / 1000);
  const tolerance = options.clockToleranceMs / 1000;
  if (!Number.isFinite(now) || !Number.isFinite(tolerance) || tolerance < 0) return undefined;
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  const header = token.slice(0, firstDot);
  const keys = options.keys;
  if (!keys.isWellFormedHeader(header)) return undefined;

  const claims = decodeSegment(token.slice(firstDot + 1, lastDot));
  if (!isPlainObject(claims)) return undefined;
  const keyId = claims.iss;
  if (typeof keyId !== 'string' || keyId === '') return undefined;
  const key = keys.hmacKeyFor(keyId);
  if (key === undefined) return undefined;

  // The signature compared as text, in constant time: the canonical
  // base64url of the expected MAC.
  if (!equalInConstantTime(hmacSha256Base64url(key, token.slice(0, lastDot)), token.slice(lastDot + 1))) return undefined;
  keys.rememberHeader(header);

  const { iat, nbf, exp, sha256 } = claims;
  if (iat !== undefined && typeof iat !== 'number') return undefined;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + tolerance)) return undefined;
  if (typeof exp !== 'number' || exp <= now - tolerance) return undefined;
  if (typeof sha256 !== 'string' || sha256 === '') return undefined;
  return { keyId, claims };
}
