// decode: raw body → a typed LiveKit WebhookEvent, or the reason it is not
// one. Runs only after the signature verified. Unknown fields and unknown
// enum names are ignored (as LiveKit's own SDKs do), so a newer server's
// payload still decodes. int64 fields come out as bigint: nothing here or
// downstream may JSON.stringify the decoded message.

import { WebhookEvent } from '@livekit/protocol';

export const DECODE_REASONS = ['body_not_json', 'not_a_webhook_event', 'invalid_webhook_event'] as const;
export type DecodeReason = (typeof DECODE_REASONS)[number];

export type DecodeResult =
  | { readonly ok: true; readonly event: WebhookEvent }
  | { readonly ok: false; readonly reason: DecodeReason; readonly detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeWebhook(body: Uint8Array): DecodeResult {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(body));
  } catch (error) {
    return { ok: false, reason: 'body_not_json', detail: error instanceof Error ? error.message : String(error) };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'not_a_webhook_event', detail: 'the body is not a JSON object' };
  }
  const name = (json as { event?: unknown }).event;
  if (typeof name !== 'string' || name === '') {
    return { ok: false, reason: 'not_a_webhook_event', detail: 'no string "event" field' };
  }
  try {
    return { ok: true, event: WebhookEvent.fromJson(json as never, { ignoreUnknownFields: true }) };
  } catch (error) {
    return { ok: false, reason: 'invalid_webhook_event', detail: error instanceof Error ? error.message : String(error) };
  }
}
