// verify: Authorization header + raw body bytes → the key id that signed
// them, or the reason they are refused (SPEC §3). A function of its inputs:
// the key ring and the current time are passed in.
//
// LiveKit signs each webhook with an HS256 JWT (livekit-webhooks.md §1):
// iss = API key, exp = iat + 5 min, sha256 = base64(SHA-256(body bytes)).
// The body hash is checked on the bytes as received, never on a
// re-serialised object (some LiveKit builds put ", " between fields).
//
// Two paths, one verdict. jose is the verifier of record: every refusal,
// and every token that is not shaped exactly like LiveKit's, is decided by
// jose's jwtVerify. In front of it sits a synchronous node:crypto path for
// the common case, a well-formed LiveKit token: it may only ever say "yes",
// and only when jose would say yes too (same checks, same arithmetic; see
// acceptsLiveKitToken). Anything else falls through to jose. Why: jose runs
// HMAC through WebCrypto, an async job on libuv's thread pool: ~100 µs per
// token against ~5 µs for the whole synchronous path (body hash included);
// under a burst jose was the largest single cost of a webhook
// (bench/results). test/webhook/verify-equivalence.test.ts checks that both
// paths return the same verdict.

import { isAscii } from 'node:buffer';
import { hash, timingSafeEqual } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { KeyPair } from '../config.ts';

/** Every reason a token is refused; each is the 401 body and the log line's `reason`. */
export const VERIFY_REASONS = [
  'missing_authorization',
  'malformed_token',
  'wrong_algorithm',
  'missing_issuer',
  'unknown_key',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'missing_expiry',
  'missing_body_hash',
  'body_hash_mismatch',
] as const;

export type VerifyReason = (typeof VERIFY_REASONS)[number];

export type VerifyResult = { readonly ok: true; readonly keyId: string } | { readonly ok: false; readonly reason: VerifyReason };

const encoder = new TextEncoder();

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
}

const SHA256_BLOCK_BYTES = 64;

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
  return { innerPad, outerPad };
}

/** HMAC-SHA256 of a latin1 (here: ASCII) message, as unpadded base64url: a JWS HS256 signature. */
export function hmacSha256Base64url(key: HmacKey, message: string): string {
  const inner = Buffer.allocUnsafe(SHA256_BLOCK_BYTES + message.length);
  key.innerPad.copy(inner, 0);
  inner.write(message, SHA256_BLOCK_BYTES, 'latin1');
  const outer = Buffer.allocUnsafe(SHA256_BLOCK_BYTES + 32);
  key.outerPad.copy(outer, 0);
  // 'binary' is latin1: the 32 digest bytes as a 32-character string.
  outer.write(hash('sha256', inner, 'binary'), SHA256_BLOCK_BYTES, 'latin1');
  return hash('sha256', outer, 'base64url');
}

/**
 * Whether two strings are equal, in a time that depends on their length
 * only: every character is compared, with no early exit. For the MAC check,
 * where both are 43 ASCII characters; timingSafeEqual would need two
 * Buffers made per webhook to compare the same bytes.
 */
export function equalInConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  return difference === 0;
}

/** How many distinct well-formed token headers a KeyRing remembers (LiveKit sends one). */
const KNOWN_HEADERS_MAX = 16;

/** The configured keys, looked up by the token's `iss`. Secrets stay inside. */
export class KeyRing {
  private readonly secrets: Map<string, Uint8Array>;
  /** Per key, the HMAC-SHA256 pads of the synchronous path (hmacSha256Base64url). An empty secret gets none: jose alone decides about it. */
  private readonly hmacKeys: Map<string, HmacKey>;
  /**
   * Header segments already found well-formed (see acceptsLiveKitToken):
   * LiveKit's header never changes, so it is decoded once, not per webhook.
   */
  private readonly wellFormedHeaders = new Set<string>();

  constructor(keys: readonly KeyPair[]) {
    this.secrets = new Map(keys.map((key) => [key.keyId, encoder.encode(key.secret)]));
    this.hmacKeys = new Map([...this.secrets].filter(([, secret]) => secret.length > 0).map(([keyId, secret]) => [keyId, hmacKey(secret)]));
  }

  get keyIds(): string[] {
    return [...this.secrets.keys()];
  }

  secretFor(keyId: string): Uint8Array | undefined {
    return this.secrets.get(keyId);
  }

  hmacKeyFor(keyId: string): HmacKey | undefined {
    return this.hmacKeys.get(keyId);
  }

  /** Whether `segment` is a token header the fast path accepts (see acceptsLiveKitToken). */
  isWellFormedHeader(segment: string): boolean {
    if (this.wellFormedHeaders.has(segment)) return true;
    const header = decodeSegment(segment);
    if (!isPlainObject(header) || header.alg !== 'HS256') return false;
    for (const name of Object.keys(header)) if (name !== 'alg' && name !== 'typ') return false;
    return true;
  }

  /** Remembers a well-formed header of a token whose signature verified (so no stranger can fill the memo). */
  rememberHeader(segment: string): void {
    if (this.wellFormedHeaders.size < KNOWN_HEADERS_MAX) this.wellFormedHeaders.add(segment);
  }
}

function fail(reason: VerifyReason): VerifyResult {
  return { ok: false, reason };
}

/** Takes the token out of the header: bare as LiveKit sends it, or after a tolerated `Bearer `. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  const token = /^bearer\s+/i.test(trimmed) ? trimmed.replace(/^bearer\s+/i, '') : trimmed;
  return token === '' ? undefined : token;
}

/** Compares the `sha256` claim with the body's digest (any base64 form). */
export function bodyHashMatches(claim: string, body: Uint8Array): boolean {
  // One-shot crypto.hash: no Hash stream object per webhook (about 2x
  // faster than createHash for a webhook-sized body).
  const digest = hash('sha256', body, 'base64');
  // LiveKit's form (padded standard base64). Nothing secret is compared:
  // both the body and the claim come from the sender, so equal strings need
  // no constant-time comparison.
  if (claim === digest) return true;
  const expected = Buffer.from(digest, 'base64');
  // Buffer's base64 decoder also takes the URL-safe and unpadded forms.
  const claimed = Buffer.from(claim, 'base64');
  if (claimed.length !== expected.length) return false;
  return timingSafeEqual(claimed, expected);
}

export interface VerifyOptions {
  readonly keys: KeyRing;
  /** The current time in ms since the epoch. */
  readonly nowMs: number;
  readonly clockToleranceMs: number;
}

/** The verifier of record: jose's jwtVerify decides, every check as SPEC §3 lists it. */
export async function verifyWebhookWithJose(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
  const token = tokenFromHeader(authorization);
  if (token === undefined) return fail('missing_authorization');

  let algorithm: unknown;
  let issuer: unknown;
  try {
    algorithm = decodeProtectedHeader(token).alg;
    issuer = decodeJwt(token).iss;
  } catch {
    return fail('malformed_token');
  }
  // HS256 only: `none`, HS384/HS512 and asymmetric algorithms are refused
  // before any key is touched.
  if (algorithm !== 'HS256') return fail('wrong_algorithm');
  if (typeof issuer !== 'string' || issuer === '') return fail('missing_issuer');
  const secret = options.keys.secretFor(issuer);
  if (secret === undefined) return fail('unknown_key');

  let claims: Record<string, unknown>;
  try {
    ({ payload: claims } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      issuer,
      requiredClaims: ['exp'],
      clockTolerance: options.clockToleranceMs / 1000,
      currentDate: new Date(options.nowMs),
    }));
  } catch (error) {
    return fail(reasonForJoseError(error));
  }

  const claimedHash = claims.sha256;
  if (typeof claimedHash !== 'string' || claimedHash === '') return fail('missing_body_hash');
  if (!bodyHashMatches(claimedHash, body)) return fail('body_hash_mismatch');
  return { ok: true, keyId: issuer };
}

/**
 * Verifies a webhook (SPEC §3): the synchronous fast path for a well-formed
 * LiveKit token, jose for everything else. The same result as
 * verifyWebhookWithJose for every input, several times faster for the
 * tokens LiveKit sends.
 */
export async function verifyWebhook(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
  return verifyLiveKitWebhook(authorization, body, options) ?? verifyWebhookWithJose(authorization, body, options);
}

const EMPTY_BODY = new Uint8Array(0);

/**
 * Checks the token before the body is read (for a large body): the reason
 * it can never be accepted, or undefined when only the body hash is left to
 * check. The whole webhook is verified again once its body is complete.
 */
export function checkTokenWithoutBody(authorization: string | undefined, options: VerifyOptions): VerifyReason | undefined | Promise<VerifyReason | undefined> {
  const fast = verifyLiveKitWebhook(authorization, EMPTY_BODY, options);
  const verdict = fast ?? verifyWebhookWithJose(authorization, EMPTY_BODY, options);
  const reasonOf = (result: VerifyResult): VerifyReason | undefined => (result.ok || result.reason === 'body_hash_mismatch' ? undefined : result.reason);
  return verdict instanceof Promise ? verdict.then(reasonOf) : reasonOf(verdict);
}

/**
 * The synchronous half of verifyWebhook: the verdict when the token is a
 * well-formed LiveKit token that jose would accept (then only the body hash
 * can still refuse it), undefined when jose must decide.
 */
export function verifyLiveKitWebhook(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): VerifyResult | undefined {
  const token = tokenFromHeader(authorization);
  const accepted = token === undefined ? undefined : acceptsLiveKitToken(token, options);
  if (accepted === undefined) return undefined;
  if (!bodyHashMatches(accepted.bodyHash, body)) return fail('body_hash_mismatch');
  return { ok: true, keyId: accepted.keyId };
}

/**
 * A compact JWS exactly as LiveKit writes it: three base64url segments
 * without padding, the signature 43 characters (32 bytes of HMAC-SHA256).
 * Only such tokens take the fast path; any other shape goes to jose.
 */
const LIVEKIT_TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url segment decoded (strict UTF-8, as jose) and parsed as JSON, or undefined. */
function decodeSegment(segment: string): unknown {
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The fast path: the key id and the sha256 claim when the token is one that
 * jose accepts under verifyWebhookWithJose's options and its sha256 claim
 * is a non-empty string; otherwise undefined, and jose decides and names
 * the reason. It mirrors jose 6's jwtVerify step by step, and is stricter
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
export function acceptsLiveKitToken(token: string, options: VerifyOptions): { keyId: string; bodyHash: string } | undefined {
  const now = Math.floor(new Date(options.nowMs).getTime() / 1000);
  const tolerance = options.clockToleranceMs / 1000;
  if (!Number.isFinite(now) || !Number.isFinite(tolerance) || tolerance < 0) return undefined;
  if (!LIVEKIT_TOKEN.test(token)) return undefined;
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  const header = token.slice(0, firstDot);
  if (!options.keys.isWellFormedHeader(header)) return undefined;

  const claims = decodeSegment(token.slice(firstDot + 1, lastDot));
  if (!isPlainObject(claims)) return undefined;
  const keyId = claims.iss;
  if (typeof keyId !== 'string' || keyId === '') return undefined;
  const key = options.keys.hmacKeyFor(keyId);
  if (key === undefined) return undefined;

  // The signature compared as text, in constant time: the canonical
  // base64url of the expected MAC. (A signature with non-zero padding bits,
  // which decodes to the same bytes, is not equal here and goes to jose.)
  if (!equalInConstantTime(hmacSha256Base64url(key, token.slice(0, lastDot)), token.slice(lastDot + 1))) return undefined;
  options.keys.rememberHeader(header);

  const { iat, nbf, exp, sha256 } = claims;
  if (iat !== undefined && typeof iat !== 'number') return undefined;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + tolerance)) return undefined;
  if (typeof exp !== 'number' || exp <= now - tolerance) return undefined;
  if (typeof sha256 !== 'string' || sha256 === '') return undefined;
  return { keyId, bodyHash: sha256 };
}

function reasonForJoseError(error: unknown): VerifyReason {
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'not_yet_valid';
    if (error.claim === 'exp' && error.reason === 'missing') return 'missing_expiry';
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'wrong_algorithm';
  return 'malformed_token';
}
