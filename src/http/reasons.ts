// Every reason a request is refused, and what it is answered with: the one
// table from reason to HTTP status, Retry-After and metric label
// (docs/contract.md, "HTTP answers"). The server looks answers up here and
// writes no status of its own.
//
// The rule it encodes: LiveKit never retries a 4xx, so a 4xx loses the
// event for good. Only what can never succeed gets one (a bad signature,
// not a webhook, too large); everything that may succeed later (the output
// or the store not taking it, too many requests at once, shutting down) is
// a 503 with a Retry-After that keeps LiveKit's retries inside its 30 s.

import { DECODE_REASONS, type DecodeReason } from '../pipeline/decode.ts';
import { VERIFY_REASONS, type VerifyReason } from '../pipeline/verify.ts';

/** Seconds LiveKit is told to wait before retrying: it drops events that waited 30 s. */
export const RETRY_AFTER_SECONDS = 2;

export const SERVER_REASONS = [
  'body_too_large',
  'not_found',
  'method_not_allowed',
  'expectation_failed',
  'request_timeout',
  'headers_too_large',
  'malformed_http_request',
  'too_many_connections',
  'too_much_body_in_memory',
  'shutting_down',
  'output_unavailable',
  'store_unavailable',
  'internal_error',
] as const;

export type ServerReason = (typeof SERVER_REASONS)[number];
export type Reason = VerifyReason | DecodeReason | ServerReason;

export interface Refusal {
  readonly status: number;
  /** Whether the answer carries Retry-After (every 5xx: LiveKit retries those). */
  readonly retryAfter: boolean;
  /** Whether a webhook.rejected line is written (not when the output itself failed: it cannot carry it). */
  readonly logged: boolean;
}

const never = (status: 400 | 401 | 404 | 405 | 408 | 413 | 417 | 431): Refusal => ({ status, retryAfter: false, logged: true });
const later = (logged = true): Refusal => ({ status: 503, retryAfter: true, logged });

export const REFUSALS: Readonly<Record<Reason, Refusal>> = {
  // The token (401): no key can make it valid later.
  missing_authorization: never(401),
  malformed_token: never(401),
  wrong_algorithm: never(401),
  missing_issuer: never(401),
  unknown_key: never(401),
  bad_signature: never(401),
  expired: never(401),
  not_yet_valid: never(401),
  missing_expiry: never(401),
  missing_body_hash: never(401),
  body_hash_mismatch: never(401),
  // The body (400, 413): the same bytes will never decode or fit.
  body_not_json: never(400),
  not_a_webhook_event: never(400),
  invalid_webhook_event: never(400),
  body_too_large: never(413),
  // The request itself.
  not_found: never(404),
  method_not_allowed: never(405),
  expectation_failed: never(417),
  request_timeout: never(408),
  headers_too_large: never(431),
  malformed_http_request: never(400),
  // Could succeed later: LiveKit retries.
  too_many_connections: later(),
  too_much_body_in_memory: later(),
  shutting_down: later(),
  output_unavailable: later(false),
  store_unavailable: later(),
  internal_error: { status: 500, retryAfter: true, logged: true },
};

export const ALL_REASONS: readonly Reason[] = [...VERIFY_REASONS, ...DECODE_REASONS, ...SERVER_REASONS];

/** The headers of a refusal's answer besides its JSON body. */
export function refusalHeaders(reason: Reason, extra?: Readonly<Record<string, string>>): Record<string, string> {
  const headers: Record<string, string> = REFUSALS[reason].retryAfter ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {};
  return extra ? { ...headers, ...extra } : headers;
}
