// verify + decode: raw bytes and their Authorization header → a typed
// LiveKit event, or the reason it can never be accepted
// (docs/architecture.md). No state is read or changed, so the webhooks of
// one turn are all checked before any is planned. The answer is a plain
// value when the synchronous fast path decides, a promise when jose must.

import type { WebhookEvent } from '@livekit/protocol';
import { type DecodeReason, decodeWebhook } from './decode.ts';
import { type KeyRing, type VerifyReason, type VerifyResult, verifyWebhook } from './verify.ts';

export type RefusalReason = VerifyReason | DecodeReason;

export type CheckedWebhook =
  | { readonly ok: true; readonly event: WebhookEvent }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail?: string };

export interface CheckOptions {
  readonly keys: KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
}

/** protobuf-es names the field and then quotes the offending value; keep only the field part. */
function decodeDetail(message: string): string {
  return message.replace(/ from JSON:[\s\S]*$/, '').slice(0, 200);
}

function decodeChecked(body: Uint8Array): CheckedWebhook {
  const decoded = decodeWebhook(body);
  if (decoded.ok) return { ok: true, event: decoded.event };
  return { ok: false, reason: decoded.reason, detail: decoded.reason === 'invalid_webhook_event' ? decodeDetail(decoded.detail) : undefined };
}

/** Verifies the token against the raw bytes, then decodes them. `nowMs` is the request's arrival. */
export function checkWebhook(authorization: string | undefined, body: Uint8Array, nowMs: number, options: CheckOptions): CheckedWebhook | Promise<CheckedWebhook> {
  if (options.insecureSkipVerify) return decodeChecked(body);
  const verdict = verifyWebhook(authorization, body, { keys: options.keys, nowMs, clockToleranceMs: options.clockToleranceMs });
  const decided = (result: VerifyResult): CheckedWebhook => (result.ok ? decodeChecked(body) : { ok: false, reason: result.reason });
  return verdict instanceof Promise ? verdict.then(decided) : decided(verdict);
}
