// Mints the token LiveKit puts in `Authorization`, exactly as the server
// does (docs/livekit-facts.md#signing): HS256, iss = API key, nbf = iat = now,
// exp = now + 5 min, sha256 = standard base64 of SHA-256 of the body bytes.
// Used by `control-plane sign` / `send`, the tests and the benchmarks.

import { createHash, createHmac } from 'node:crypto';
import type { KeyPair } from '../config.ts';

export const TOKEN_LIFETIME_SECONDS = 300;

export function bodySha256(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('base64');
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export interface SignOptions {
  /** Signing time in Unix seconds (default: now). */
  readonly issuedAt?: number;
  readonly lifetimeSeconds?: number;
  /** Overrides merged into the claims (tests use this to forge tokens). */
  readonly claims?: Record<string, unknown>;
  readonly header?: Record<string, unknown>;
}

export function signWebhook(body: Uint8Array | string, key: KeyPair, options: SignOptions = {}): string {
  const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const header = { alg: 'HS256', typ: 'JWT', ...options.header };
  const claims = {
    iss: key.keyId,
    nbf: issuedAt,
    iat: issuedAt,
    exp: issuedAt + (options.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS),
    sha256: bodySha256(body),
    ...options.claims,
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createHmac('sha256', key.secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}
