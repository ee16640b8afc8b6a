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

/** `,"name":` for each field of FIELD_ORDER. */
const FIELD_PREFIXES: readonly string[] = FIELD_ORDER.map((name) => `,"${name}":`);

const INITIAL_BUFFER_BYTES = 64 * 1024;
/** A group of lines larger than this grew the buffer; it is given back after the write. */
const KEPT_BUFFER_BYTES = 1024 * 1024;

/**
 * Encodes OBS-00 lines as UTF-8 straight into one reusable buffer: a group
 * of lines costs no intermediate strings (which were the largest source of
 * garbage per webhook, measured with V8's sampling heap profiler) and no
 * copy from a string into bytes. Each line is `\n`-terminated JSON with the
 * common fields first in SPEC order, then the event's known fields in
 * FIELD_ORDER; nothing outside the schema is ever written. With a redactor,
 * phone numbers in PHONE_FIELDS are masked. Strings are escaped exactly as
 * JSON.stringify escapes them (the plain-ASCII ones are copied byte by byte).
 */
export class LineEncoder {
  private buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  private length = 0;

  /** Forgets the lines encoded so far. */
  clear(): void {
    this.length = 0;
    if (this.buffer.length > KEPT_BUFFER_BYTES) this.buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  }

  /** The lines encoded since the last clear(); a view, valid until the next append() or clear(). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** Appends `event` as one line; `ts` is formatted (formatTimestamp), `seq` the per-process line counter. */
  append(event: ObsEvent, seq: number, ts: string, redact?: Redactor): void {
    this.ascii('{"ts":"');
    this.ascii(ts);
    this.ascii('","seq":');
    this.ascii(String(seq));
    this.ascii(',"level":"');
    this.ascii(event.level);
    this.ascii(`","component":"${COMPONENT}","event_type":"`);
    this.ascii(event.event_type);
    this.ascii('","session_id":');
    if (event.session_id === null) this.ascii('null');
    else this.jsonString(event.session_id);
    // An indexed loop over the fixed field list: the hot path of every line.
    for (let index = 0; index < FIELD_ORDER.length; index++) {
      const name = FIELD_ORDER[index]!;
      const value = event[name];
      if (value === undefined) continue;
      this.ascii(FIELD_PREFIXES[index]!);
      if (typeof value === 'string') this.jsonString(redact !== undefined && PHONE_FIELDS.has(name) ? redact(value) : value);
      else if (typeof value === 'number') this.ascii(Number.isFinite(value) ? String(value) : 'null');
      else if (typeof value === 'boolean') this.ascii(value ? 'true' : 'false');
      else this.utf8(JSON.stringify(value.map(String)));
    }
    this.ascii('}\n');
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  /** Text known to be ASCII and to need no escaping (our own names, numbers, the timestamp). */
  private ascii(text: string): void {
    const count = text.length;
    this.reserve(count);
    const buffer = this.buffer;
    let at = this.length;
    for (let index = 0; index < count; index++) buffer[at++] = text.charCodeAt(index);
    this.length = at;
  }

  private utf8(text: string): void {
    this.reserve(text.length * 3);
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** A JSON string: printable ASCII copied as is; anything else goes through JSON.stringify. */
  private jsonString(text: string): void {
    const count = text.length;
    this.reserve(count + 2);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at++] = 0x22;
    for (let index = 0; index < count; index++) {
      const code = text.charCodeAt(index);
      // Control characters, `"`, `\\`, DEL and everything past ASCII: escaped or multi-byte.
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return this.utf8(JSON.stringify(text));
      buffer[at++] = code;
    }
    buffer[at++] = 0x22;
    this.length = at;
  }
}

const lineEncoder = new LineEncoder();

/**
 * One event as a `\n`-terminated JSON line (a string, for tests and tools;
 * the daemon's LineWriter encodes straight to bytes). `tsMs` is the emission
 * time (ms since epoch), `seq` the per-process line counter.
 */
export function encodeLine(event: ObsEvent, seq: number, tsMs: number, redact?: Redactor): string {
  lineEncoder.clear();
  lineEncoder.append(event, seq, formatTimestamp(tsMs), redact);
  return lineEncoder.bytes().toString('utf8');
}
