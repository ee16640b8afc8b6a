// decode: raw body → a typed LiveKit WebhookEvent, or the reason it is not
// one. Runs only after the signature verified. Unknown fields are ignored
// (as LiveKit's own SDKs do), so a newer server's payload still decodes; an
// enum name this version does not know leaves its field at 0, and the name
// is noted beside the message for the lines (rememberUnknownEnumNames).
// int64 fields come out as bigint: nothing here or downstream may
// JSON.stringify the decoded message.
//
// Two readers, one result. @livekit/protocol's WebhookEvent.fromJson
// (protobuf-es) is the reader of record. In front of it sits the compiled
// reader (compiled-reader.ts), about 3x faster on the JSON LiveKit sends,
// which gives every case it does not handle exactly as fromJson does back
// to fromJson. USE_COMPILED_READER switches it off: then fromJson decodes
// everything, with the same results (decode-equivalence.test.ts).

import { isAscii } from 'node:buffer';
import { DisconnectReason, EgressStatus, IngressState_Status, JobStatus, ParticipantInfo_Kind, RoomEndReason, TrackSource, TrackType, WebhookEvent } from '@livekit/protocol';
import { rememberUnknownEnumName } from '../obs/enum-names.ts';
import { readWebhookEvent } from './compiled-reader.ts';

/** false: decode with WebhookEvent.fromJson alone, the reader of record (same results, slower). */
const USE_COMPILED_READER = true;

export const DECODE_REASONS = ['body_not_json', 'not_a_webhook_event', 'invalid_webhook_event'] as const;
export type DecodeReason = (typeof DECODE_REASONS)[number];

export type DecodeResult =
  | { readonly ok: true; readonly event: WebhookEvent }
  | { readonly ok: false; readonly reason: DecodeReason; readonly detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeWebhook(body: Uint8Array): DecodeResult {
  return decodeWebhookWith(body, USE_COMPILED_READER);
}

/** decodeWebhook with the compiled reader in front of fromJson, or fromJson alone (tests compare the two). */
export function decodeWebhookWith(body: Uint8Array, useCompiledReader: boolean): DecodeResult {
  let json: unknown;
  try {
    // ASCII (most webhooks) is valid UTF-8 and reads faster as latin1.
    json = JSON.parse(isAscii(body) ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1') : utf8.decode(body));
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
  const fast = useCompiledReader ? readWebhookEvent(json) : undefined;
  if (fast !== undefined) return { ok: true, event: fast };
  let event: WebhookEvent;
  try {
    event = WebhookEvent.fromJson(json as never, { ignoreUnknownFields: true });
  } catch (error) {
    return { ok: false, reason: 'invalid_webhook_event', detail: error instanceof Error ? error.message : String(error) };
  }
  rememberUnknownEnumNames(json as Record<string, unknown>, event);
  return { ok: true, event };
}

// ------------------------------------------------- enum names fromJson skips

type Json = Record<string, unknown>;

/** The value fromJson reads for a field: under its JSON name, or its proto (snake_case) name. */
function jsonField(json: Json, jsonName: string, protoName: string): unknown {
  const value = json[jsonName];
  return value !== undefined || jsonName === protoName ? value : json[protoName];
}

function jsonObject(json: Json | undefined, jsonName: string, protoName = jsonName): Json | undefined {
  if (json === undefined) return undefined;
  const value = jsonField(json, jsonName, protoName);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** When fromJson left `message[field]` at 0 for a name its enum does not have, notes the name. */
function noteEnum<M extends object>(message: M | undefined, field: keyof M & string, json: Json | undefined, jsonName: string, protoName: string, names: object): void {
  if (message === undefined || json === undefined || message[field] !== 0) return;
  const raw = jsonField(json, jsonName, protoName);
  if (typeof raw === 'string' && typeof (names as Record<string, unknown>)[raw] !== 'number') rememberUnknownEnumName(message, field, raw);
}

/**
 * fromJson (ignoreUnknownFields) skips an enum name it does not know and
 * leaves the field at 0, the enum's default: a newer server's participant
 * kind would read as STANDARD. For every enum field the lines write, the
 * name it skipped is noted beside the message (src/obs/enum-names.ts).
 * The compiled reader never gets here with one: it leaves unknown names to
 * fromJson.
 */
function rememberUnknownEnumNames(json: Json, event: WebhookEvent): void {
  noteEnum(event, 'roomEndReason', json, 'roomEndReason', 'room_end_reason', RoomEndReason);
  for (const [participant, participantJson] of [
    [event.participant, jsonObject(json, 'participant')],
    [event.job?.participant, jsonObject(jsonObject(json, 'job'), 'participant')],
  ] as const) {
    noteEnum(participant, 'kind', participantJson, 'kind', 'kind', ParticipantInfo_Kind);
    noteEnum(participant, 'disconnectReason', participantJson, 'disconnectReason', 'disconnect_reason', DisconnectReason);
  }
  const trackJson = jsonObject(json, 'track');
  noteEnum(event.track, 'type', trackJson, 'type', 'type', TrackType);
  noteEnum(event.track, 'source', trackJson, 'source', 'source', TrackSource);
  noteEnum(event.egressInfo, 'status', jsonObject(json, 'egressInfo', 'egress_info'), 'status', 'status', EgressStatus);
  noteEnum(event.ingressInfo?.state, 'status', jsonObject(jsonObject(json, 'ingressInfo', 'ingress_info'), 'state'), 'status', 'status', IngressState_Status);
  noteEnum(event.job?.state, 'status', jsonObject(jsonObject(json, 'job'), 'state'), 'status', 'status', JobStatus);
}
