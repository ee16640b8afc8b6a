// verify: Authorization header + raw body bytes → the key id that signed
// them, or the reason they are refused. A function of its inputs (the key
// ring and the current time are passed in), read top to bottom like
// LiveKit's own receiver (Go `webhook.Receive`): take the token from the
// header, parse it, find the key its `iss` names, check the signature and
// the times, then hash the body and compare with the `sha256` claim.
//
// LiveKit signs each webhook with an HS256 JWT (docs/livekit-facts.md#signing):
// iss = API key, exp = iat + 5 min, sha256 = standard base64 of SHA-256 of
// the body bytes. The body hash is checked on the bytes as received, never
// on a re-serialised object (some LiveKit builds put ", " between fields).
//
// Strict where a lenient decoder would let a token through that LiveKit
// never writes: each segment is canonical unpadded base64url (no `=`, no
// whitespace, no set unused bits), `exp`/`nbf`/`iat` are whole seconds
// between 0 and the year 9999 (JSON's 1e308 and 1e400 are not), and the
// `sha256` claim is exactly the padded standard base64 of the digest.
//
// Two paths, one verdict. jose is the verifier of record for the
// signature and the times; the synchronous node:crypto path in front of it
// (hmac-fast-path.ts) may only ever say "yes", and only where jose would.
// The strict checks above apply to both alike.

import { hash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { KeyPair } from '../config.ts';
import { acceptsShapedToken, decodeSegment, equalInConstantTime, type HmacKey, hmacKey, isLiveKitShaped } from './hmac-fast-path.ts';
import { isPlainObject } from '../obs/json-values.ts';

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

export interface VerifyOptions {
  readonly keys: KeyRing;
  /** The current time in ms since the epoch. */
  readonly nowMs: number;
  readonly clockToleranceMs: number;
}

const encoder = new TextEncoder();

/** How many distinct well-formed token headers a KeyRing remembers (LiveKit sends one). */
const KNOWN_HEADERS_MAX = 16;

/** The configured keys (the key provider), looked up by the token's `iss`. Secrets stay inside. */
export class KeyRing {
  private readonly secrets: Map<string, Uint8Array>;
  /** Per key, the HMAC-SHA256 pads of the fast path. An empty secret gets none: jose alone decides about it. */
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

function fail(reason: VerifyReason): { readonly ok: false; readonly reason: VerifyReason } {
  return { ok: false, reason };
}

/**
 * Verifies a webhook: the whole check, as LiveKit's `webhook.Receive`.
 * Synchronous when the fast path decides (a token as LiveKit writes it);
 * a promise only when jose must.
 */
export function verifyWebhook(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): VerifyResult | Promise<VerifyResult> {
  const token = verifyToken(authorization, options, true);
  return token instanceof Promise ? token.then((verdict) => checkBody(verdict, body)) : checkBody(token, body);
}

/**
 * The check the server makes before reading a large body: everything
 * verifyWebhook checks but the body hash (`sha256` must still be there).
 */
export function checkTokenWithoutBody(authorization: string | undefined, keys: KeyRing, nowMs: number, clockToleranceMs: number): VerifyResult | Promise<VerifyResult> {
  const token = verifyToken(authorization, { keys, nowMs, clockToleranceMs }, true);
  return token instanceof Promise ? token.then(withoutBody) : withoutBody(token);
}

/** verifyWebhook with jose deciding every token: the reference the fast path is tested against. */
export async function verifyWebhookWithJose(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
  return checkBody(await verifyToken(authorization, options, false), body);
}

/** A token that verified: its key and the claim the body is checked against. */
type TokenVerdict = { readonly ok: true; readonly keyId: string; readonly bodyHash: unknown } | { readonly ok: false; readonly reason: VerifyReason };

/** From the header to the verified claims: parse, key, signature, times. */
function verifyToken(authorization: string | undefined, options: VerifyOptions, fastPath: boolean): TokenVerdict | Promise<TokenVerdict> {
  const token = tokenFromHeader(authorization);
  if (token === undefined) return fail('missing_authorization');
  // LiveKit's shape (one regex: the alphabet, three segments) leaves only each segment's end to check.
  const liveKitShaped = isLiveKitShaped(token);
  if (!(liveKitShaped ? hasCanonicalSegmentEnds(token) : hasCanonicalSegments(token))) return fail('malformed_token');
  const accepted = fastPath && liveKitShaped ? acceptsShapedToken(token, options) : undefined;
  if (accepted !== undefined) return checkTimeClaims(accepted.keyId, accepted.claims);
  return verifyTokenWithJose(token, options);
}

async function verifyTokenWithJose(token: string, options: VerifyOptions): Promise<TokenVerdict> {
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
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      issuer,
      requiredClaims: ['exp'],
      clockTolerance: options.clockToleranceMs / 1000,
      currentDate: new Date(options.nowMs),
    });
    return checkTimeClaims(issuer, payload);
  } catch (error) {
    return fail(reasonForJoseError(error));
  }
}

/** The latest time a token may name: 9999-12-31T23:59:59Z, in seconds. */
const LAST_SECOND = 253_402_300_799;

const isWholeSecond = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= LAST_SECOND;

/**
 * After the signature and jose's time checks: `exp`, `nbf` and `iat` are
 * whole seconds in range when present (LiveKit's Go decoder reads them as
 * int64; 1e308 and 1e400 would pass a mere comparison with now).
 */
function checkTimeClaims(keyId: string, claims: Record<string, unknown>): TokenVerdict {
  for (const name of ['exp', 'nbf', 'iat'] as const) {
    if (claims[name] !== undefined && !isWholeSecond(claims[name])) return fail('malformed_token');
  }
  return { ok: true, keyId, bodyHash: claims.sha256 };
}

function checkBody(verdict: TokenVerdict, body: Uint8Array): VerifyResult {
  if (!verdict.ok) return verdict;
  const claim = verdict.bodyHash;
  if (typeof claim !== 'string' || claim === '') return fail('missing_body_hash');
  if (!bodyHashMatches(claim, body)) return fail('body_hash_mismatch');
  return { ok: true, keyId: verdict.keyId };
}

function withoutBody(verdict: TokenVerdict): VerifyResult {
  if (!verdict.ok) return verdict;
  if (typeof verdict.bodyHash !== 'string' || verdict.bodyHash === '') return fail('missing_body_hash');
  return { ok: true, keyId: verdict.keyId };
}

/** Takes the token out of the header: bare as LiveKit sends it, or after a tolerated `Bearer `. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  const token = /^bearer\s+/i.test(trimmed) ? trimmed.replace(/^bearer\s+/i, '') : trimmed;
  return token === '' ? undefined : token;
}

/**
 * Whether the `sha256` claim is exactly the body's digest as LiveKit writes
 * it: padded standard base64, nothing around it. Compared in constant time
 * (one-shot crypto.hash: no Hash object per webhook).
 */
export function bodyHashMatches(claim: string, body: Uint8Array): boolean {
  return equalInConstantTime(claim, hash('sha256', body, 'base64'));
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Base64url character → its 6-bit value, -1 for anything else. */
const SEXTET = new Int8Array(128).fill(-1);
for (let index = 0; index < BASE64URL.length; index++) SEXTET[BASE64URL.charCodeAt(index)] = index;

/**
 * Whether the base64url segment token[start, end) (of base64url characters)
 * ends canonically: no length of 4n + 1, and no set bits past the last
 * whole byte (a second spelling of the same bytes).
 */
function hasCanonicalEnd(token: string, start: number, end: number): boolean {
  const rest = (end - start) % 4;
  if (rest === 1) return false;
  if (rest === 0) return true;
  // 2 characters carry 1 byte (4 bits spare), 3 carry 2 bytes (2 bits spare).
  return (SEXTET[token.charCodeAt(end - 1)]! & (rest === 2 ? 0b1111 : 0b11)) === 0;
}

/**
 * Three segments of canonical unpadded base64url: only the 64 characters,
 * no `=`, and each segment ending canonically (hasCanonicalEnd). Empty
 * segments pass (an `alg: none` token's signature is empty; the algorithm
 * check names that).
 */
export function hasCanonicalSegments(token: string): boolean {
  let segments = 1;
  let start = 0;
  for (let index = 0; index <= token.length; index++) {
    const code = index === token.length ? 0x2e : token.charCodeAt(index);
    if (code === 0x2e) {
      if (!hasCanonicalEnd(token, start, index)) return false;
      if (index < token.length && ++segments > 3) return false;
      start = index + 1;
      continue;
    }
    if (code >= 128 || SEXTET[code]! < 0) return false;
  }
  return segments === 3;
}

/** hasCanonicalSegments for a token of LiveKit's shape (isLiveKitShaped: the alphabet and three segments are known). */
function hasCanonicalSegmentEnds(token: string): boolean {
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  return hasCanonicalEnd(token, 0, firstDot) && hasCanonicalEnd(token, firstDot + 1, lastDot) && hasCanonicalEnd(token, lastDot + 1, token.length);
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
