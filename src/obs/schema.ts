// OBS-00: the event lines (SPEC §4). This file is the one place that lists
// the event types and the field order; the encoder, the mapper, the tests
// and README all follow it.
//
// Lines are built by hand rather than with JSON.stringify on an object
// (pino's lesson): the common fields come first in a fixed order, only the
// known fields are written (so a raw payload can never leak through), and
// the hot path does no generic object walking.

export const COMPONENT = 'control_plane';

export const EVENT_TYPES = [
  'control_plane.started',
  'control_plane.stopped',
  'control_plane.warning',
  'control_plane.keys_reloaded',
  // Written to stderr, not to the output (src/main.ts): no seq.
  'control_plane.diagnostic',
  'webhook.received',
  'webhook.processing',
  'webhook.rejected',
  'webhook.rejected_suppressed',
  'webhook.duplicate',
  'livekit.room.created',
  'livekit.room.finished',
  'livekit.participant.joined',
  'livekit.participant.left',
  'livekit.participant.connection_aborted',
  'livekit.track.published',
  'livekit.track.unpublished',
  'livekit.egress.started',
  'livekit.egress.updated',
  'livekit.egress.ended',
  'livekit.ingress.started',
  'livekit.ingress.ended',
  'livekit.agent_job.started',
  'livekit.agent_job.ended',
  'livekit.event.unknown',
  'call.started',
  'call.answered',
  'call.ended',
  'session.state_changed',
  'provider.event',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export type Level = 'info' | 'warn' | 'error';

export type FieldValue = string | number | boolean | readonly string[];

/** The event's own fields, in the order they are written (SPEC §4). */
export const FIELD_ORDER = [
  'webhook_id',
  'livekit_event',
  'event_created_at',
  'room_name',
  'room_sid',
  'participant_identity',
  'participant_sid',
  'participant_kind',
  'track_sid',
  'track_type',
  'track_source',
  'direction',
  'from',
  'to',
  'sip_call_id',
  'trunk_id',
  'reason',
  'outcome',
  'answered',
  'duration_ms',
  'talk_ms',
  'from_state',
  'to_state',
  'http_status',
  'error',
  'provider',
  'detail',
  'suppressed',
  'version',
  'listen',
  'sink',
  'key_ids',
] as const;

export type FieldName = (typeof FIELD_ORDER)[number];

export type ObsFields = { readonly [name in FieldName]?: FieldValue };

/** One OBS-00 event before it gets its `ts` and `seq` (which the output assigns). */
export interface ObsEvent extends ObsFields {
  readonly level: Level;
  readonly event_type: EventType;
  readonly session_id: string | null;
}

/** Fields whose values may embed a phone number (SPEC §4, --redact-phone-numbers). */
// `error` and `detail` are free text that can quote one (an egress error
// naming a file after the room, a 404's URL).
export const PHONE_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>(['from', 'to', 'participant_identity', 'room_name', 'error', 'detail']);

export type Redactor = (value: string) => string;

function encodeValue(value: FieldValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return JSON.stringify(value.map(String));
}

/** The second formatted last (`2026-11-30T09:28:01`): the lines of one second share it. */
let cachedSecond = Number.NaN;
let cachedSecondText = '';

/**
 * RFC 3339 UTC with milliseconds (`2026-11-30T09:28:01.007Z`), the `ts` of a
 * line; always equal to `new Date(tsMs).toISOString()` (a property test
 * checks it). The part up to the second is formatted once per second:
 * formatting a Date is a visible share of a webhook's CPU in a burst.
 */
export function formatTimestamp(tsMs: number): string {
  const second = Math.floor(tsMs / 1000);
  const millis = tsMs - second * 1000;
  if (second === cachedSecond && Number.isInteger(millis)) return `${cachedSecondText}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
  const iso = new Date(tsMs).toISOString();
  // Only four-digit years have the fixed-width form the cache relies on.
  if (iso.length === 24) {
    cachedSecond = second;
    cachedSecondText = iso.slice(0, 19);
  }
  return iso;
}

/**
 * Encodes one event as a `\n`-terminated JSON line. `ts` is the emission
 * time (ms since epoch), `seq` the per-process line counter. With a
 * redactor, phone numbers in PHONE_FIELDS are masked.
 */
export function encodeLine(event: ObsEvent, seq: number, tsMs: number, redact?: Redactor): string {
  return encodeLineAt(event, seq, formatTimestamp(tsMs), redact);
}

/**
 * encodeLine with `ts` already formatted (formatTimestamp): the lines of one
 * webhook share their emission time, so a writer formats it once.
 */
export function encodeLineAt(event: ObsEvent, seq: number, ts: string, redact?: Redactor): string {
  let line =
    `{"ts":"${ts}","seq":${seq},"level":"${event.level}","component":"${COMPONENT}"` +
    `,"event_type":"${event.event_type}","session_id":${event.session_id === null ? 'null' : JSON.stringify(event.session_id)}`;
  // An indexed loop over the fixed field list: the hot path of every line.
  for (let index = 0; index < FIELD_ORDER.length; index++) {
    const name = FIELD_ORDER[index]!;
    const value = event[name];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      line += `,"${name}":${JSON.stringify(redact !== undefined && PHONE_FIELDS.has(name) ? redact(value) : value)}`;
    } else {
      line += `,"${name}":${encodeValue(value)}`;
    }
  }
  return line + '}\n';
}
