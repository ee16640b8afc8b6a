// verify: Authorization header + raw body bytes → the key id that signed
// them, or the reason they are refused (SPEC §3). A function of its inputs:
// the key ring and the current time are passed in.
//
// LiveKit signs each webhook with an HS256 JWT (livekit-webhooks.md §1):
// iss = API key, exp = iat + 5 min, sha256 = base64(SHA-256(body bytes)).
// The body hash is checked on the bytes as received, never on a
// re-serialised object (some LiveKit builds put ", " between fields).

import { createHash, timingSafeEqual } from 'node:crypto';
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

/** The configured keys, looked up by the token's `iss`. Secrets stay inside. */
export class KeyRing {
  private readonly secrets: Map<string, Uint8Array>;

  constructor(keys: readonly KeyPair[]) {
    this.secrets = new Map(keys.map((key) => [key.keyId, encoder.encode(key.secret)]));
  }

  get keyIds(): string[] {
    return [...this.secrets.keys()];
  }

  secretFor(keyId: string): Uint8Array | undefined {
    return this.secrets.get(keyId);
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

/** Compares the `sha256` claim with the body's digest in constant time. */
export function bodyHashMatches(claim: string, body: Uint8Array): boolean {
  const expected = createHash('sha256').update(body).digest();
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

export async function verifyWebhook(authorization: string | undefined, body: Uint8Array, options: VerifyOptions): Promise<VerifyResult> {
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
