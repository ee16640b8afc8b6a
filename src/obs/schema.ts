// OBS-00: the event lines (docs/contract.md#lines). This file is the one place that lists
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

/**
 * Each level's syslog priority as the `<n>` line prefix journald reads
 * (SyslogLevelPrefix=, on by default) and strips: `journalctl -p warning`
 * then filters by level, and `-o cat` shows the bare JSON.
 */
export const PRIORITY_PREFIX: Readonly<Record<Level, string>> = Object.freeze({ error: '<3>', warn: '<4>', info: '<6>' });

export type FieldValue = string | number | boolean | readonly string[];

/** The event's own fields, in the order they are written (docs/contract.md#the-events-own-fields). */
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
  'store',
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

/** The event's own fields as a line builder takes them: unknown ones may be given as undefined and are left out. */
export type LineFields = { readonly [name in FieldName]?: FieldValue | undefined };

/**
 * The one way to build a line: a misspelt field does not compile, and
 * fields given as undefined (unknown) are left out of the line.
 */
export function line(level: Level, eventType: EventType, sessionId: string | null, fields: LineFields = {}): ObsEvent {
  // One object, filled in place (the hot path builds several lines per webhook).
  const built: { -readonly [name in keyof ObsEvent]: ObsEvent[name] } = { level, event_type: eventType, session_id: sessionId };
  for (const name in fields) {
    const value = fields[name as FieldName];
    if (value !== undefined) built[name as FieldName] = value;
  }
  return built;
}

/** Fields whose values may embed a phone number (docs/contract.md#redaction, --redact-phone-numbers). */
// `error` and `detail` are free text that can quote one (an egress error
// naming a file after the room, a 404's URL).
export const PHONE_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>(['from', 'to', 'participant_identity', 'room_name', 'error', 'detail']);

/** Masks what is personal in `value`, knowing which field it is (`from`/`to` hold a number; the others are text). */
export type Redactor = (value: string, field: FieldName) => string;

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

const TWO_DIGITS: readonly string[] = Array.from({ length: 60 }, (_, value) => String(value).padStart(2, '0'));
const SECONDS_PER_DAY = 86_400;
let cachedDay = Number.NaN;
let cachedDayText = '';

/**
 * A whole number of seconds since the epoch (1 to 253402300799, years with
 * four digits) as RFC 3339 UTC with milliseconds, `2026-11-30T09:28:01.000Z`:
 * equal to `new Date(seconds * 1000).toISOString()` (a property test checks
 * it), without a Date per call. LiveKit's `createdAt` of a burst's events
 * differ by seconds but share a day, so only the date part is cached.
 */
export function formatSeconds(seconds: number): string {
  const day = Math.floor(seconds / SECONDS_PER_DAY);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDayText = new Date(day * SECONDS_PER_DAY * 1000).toISOString().slice(0, 10);
  }
  const secondOfDay = seconds - day * SECONDS_PER_DAY;
  const hours = Math.floor(secondOfDay / 3600);
  const minutes = Math.floor((secondOfDay - hours * 3600) / 60);
  return `${cachedDayText}T${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[secondOfDay - hours * 3600 - minutes * 60]}.000Z`;
}

const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (character) => character.charCodeAt(0));
/** `,"name":` for each field of FIELD_ORDER, as bytes. */
const FIELD_PREFIXES: readonly Uint8Array[] = FIELD_ORDER.map((name) => latin1(`,"${name}":`));
/** FIELD_ORDER's index of each field name; nothing for any other key (no prototype). */
const FIELD_INDEX: Readonly<Record<string, number | undefined>> = Object.assign(Object.create(null) as Record<string, number>, Object.fromEntries(FIELD_ORDER.map((name, index) => [name, index])));
/** `","component":"control_plane","event_type":"<type>","session_id":` per event type. */
const TYPE_PARTS: Readonly<Record<string, Uint8Array>> = Object.fromEntries(
  EVENT_TYPES.map((type) => [type, latin1(`","component":"${COMPONENT}","event_type":"${type}","session_id":`)]),
);
const LEVEL_PARTS: Readonly<Record<string, Uint8Array>> = Object.fromEntries((['info', 'warn', 'error'] as const).map((level) => [level, latin1(`,"level":"${level}`)]));
const PRIORITY_PARTS: Readonly<Record<string, Uint8Array>> = Object.fromEntries((['info', 'warn', 'error'] as const).map((level) => [level, latin1(PRIORITY_PREFIX[level])]));
const SEQ_PART = latin1('","seq":');
const QUOTE_PART = latin1('"');
const NULL_PART = latin1('null');
const TRUE_PART = latin1('true');
const FALSE_PART = latin1('false');
const LINE_END = latin1('}\n');

/** Unicode line breaks that JSON.stringify leaves raw: LINE SEPARATOR, PARAGRAPH SEPARATOR, NEXT LINE. */
const UNICODE_LINE_BREAKS = /[\u2028\u2029\u0085]/;
const UNICODE_LINE_BREAKS_ALL = /[\u2028\u2029\u0085]/g;
const escapeLineBreak = (character: string): string => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;

const INITIAL_BUFFER_BYTES = 64 * 1024;
/** A group of lines larger than this grew the buffer; it is given back after the write. */
const KEPT_BUFFER_BYTES = 1024 * 1024;
/**
 * Room reserved at the start of each line for everything but string
 * values: the names, the timestamp, numbers (at most 33 fields of at most
 * ~40 bytes each). A string value reserves its own length on top.
 */
const LINE_HEADROOM = 2048;

export interface LineEncoderOptions {
  /** Start each line with its syslog priority (`<6>` info, `<4>` warn, `<3>` error), for journald. */
  readonly priorityPrefix?: boolean;
  /** This instance's name, written as `instance` after `session_id` (several instances sharing a store). */
  readonly instance?: string;
}

/**
 * Encodes OBS-00 lines as UTF-8 straight into one reusable buffer: a group
 * of lines costs no intermediate strings (which were the largest source of
 * garbage per webhook, measured with V8's sampling heap profiler) and no
 * copy from a string into bytes. Each line is `\n`-terminated JSON with the
 * common fields first in the contract's order, then the event's known fields in
 * FIELD_ORDER; nothing outside the schema is ever written. With a redactor,
 * phone numbers in PHONE_FIELDS are masked. Strings are escaped exactly as
 * JSON.stringify escapes them, and U+2028, U+2029 and U+0085 as well (the
 * plain-ASCII ones are copied byte by byte); the names are copied from
 * bytes prepared once.
 */
export class LineEncoder {
  private buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  private length = 0;
  /** `{"ts":"<ts>` for the last `ts` seen: the lines of a group share it. */
  private tsText = '';
  private tsPart: Uint8Array = new Uint8Array(0);
  /** FIELD_ORDER indexes of the line being encoded (reused). */
  private readonly present: number[] = [];
  private readonly priorityPrefix: boolean;
  /** `,"instance":"<name>"`, written after `session_id` on every line; empty without a shared store. */
  private readonly instancePart: Uint8Array;

  constructor(options: LineEncoderOptions = {}) {
    this.priorityPrefix = options.priorityPrefix ?? false;
    this.instancePart = options.instance === undefined ? new Uint8Array(0) : Buffer.from(`,"instance":${JSON.stringify(options.instance)}`, 'utf8');
  }

  /** Forgets the lines encoded so far. */
  clear(): void {
    this.length = 0;
    if (this.buffer.length > KEPT_BUFFER_BYTES) this.buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  }

  /** The lines encoded since the last clear(); a view, valid until the next append() or clear(). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /**
   * Appends `event` as one line; `ts` is formatted (formatTimestamp), `seq`
   * the per-process line counter, or null for a line outside the output
   * stream that `seq` counts (a diagnostic on stderr): then it has none.
   */
  append(event: ObsEvent, seq: number | null, ts: string, redact?: Redactor): void {
    if (ts !== this.tsText) {
      // A new millisecond: `{"ts":"` and the timestamp, kept as bytes for the lines that share it.
      this.tsText = ts;
      const part = this.tsPart.length === ts.length + 7 ? this.tsPart : new Uint8Array(ts.length + 7);
      const prefix = '{"ts":"' + ts;
      for (let index = 0; index < prefix.length; index++) part[index] = prefix.charCodeAt(index);
      this.tsPart = part;
    }
    this.reserve(LINE_HEADROOM + this.instancePart.length);
    if (this.priorityPrefix) this.copy(PRIORITY_PARTS[event.level]!);
    this.copy(this.tsPart);
    if (seq === null) {
      this.copy(QUOTE_PART);
    } else {
      this.copy(SEQ_PART);
      this.number(seq);
    }
    this.copy(LEVEL_PARTS[event.level]!);
    this.copy(TYPE_PARTS[event.event_type]!);
    if (event.session_id === null) this.copy(NULL_PART);
    else this.jsonString(event.session_id);
    if (this.instancePart.length > 0) this.copy(this.instancePart);
    // The event's own known fields, put in FIELD_ORDER (a line has a few
    // of the 33; looking each of the 33 up was the slower way).
    const present = this.present;
    present.length = 0;
    for (const key in event) {
      const index = FIELD_INDEX[key];
      if (index === undefined) continue;
      let at = present.length;
      while (at > 0 && present[at - 1]! > index) {
        present[at] = present[at - 1]!;
        at--;
      }
      present[at] = index;
    }
    for (let position = 0; position < present.length; position++) {
      const index = present[position]!;
      const name = FIELD_ORDER[index]!;
      const value = event[name];
      if (value === undefined) continue;
      this.copy(FIELD_PREFIXES[index]!);
      if (typeof value === 'string') this.jsonString(redact !== undefined && PHONE_FIELDS.has(name) ? redact(value, name) : value);
      else if (typeof value === 'number') this.number(value);
      else if (typeof value === 'boolean') this.copy(value ? TRUE_PART : FALSE_PART);
      else this.json(JSON.stringify(value.map(String)));
    }
    this.copy(LINE_END);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  /** Prepared bytes; the line's headroom has room for them. */
  private copy(bytes: Uint8Array): void {
    const buffer = this.buffer;
    let at = this.length;
    for (let index = 0; index < bytes.length; index++) buffer[at++] = bytes[index]!;
    this.length = at;
  }

  /** A number as JSON.stringify writes it (non-finite: null); the line's headroom has room for it. */
  private number(value: number): void {
    if (Number.isSafeInteger(value) && value >= 0) {
      // The common case (seq, durations): digits written in place, no string.
      const buffer = this.buffer;
      let end = this.length;
      for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) end++;
      this.length = end + 1;
      let rest = value;
      do {
        buffer[end--] = 0x30 + (rest % 10);
        rest = Math.floor(rest / 10);
      } while (rest > 0);
      return;
    }
    const text = Number.isFinite(value) ? String(value) : 'null';
    const buffer = this.buffer;
    let at = this.length;
    for (let index = 0; index < text.length; index++) buffer[at++] = text.charCodeAt(index);
    this.length = at;
  }

  /**
   * JSON text from JSON.stringify, with the Unicode line breaks it leaves
   * raw (U+2028, U+2029, U+0085) escaped: a tool that splits on Unicode
   * line breaks must see one line per `\n`.
   */
  private json(text: string): void {
    this.utf8(UNICODE_LINE_BREAKS.test(text) ? text.replace(UNICODE_LINE_BREAKS_ALL, escapeLineBreak) : text);
  }

  private utf8(text: string): void {
    this.reserve(text.length * 3 + LINE_HEADROOM);
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  /** A JSON string: printable ASCII copied as is; anything else goes through JSON.stringify. */
  private jsonString(text: string): void {
    const count = text.length;
    this.reserve(count + 2 + LINE_HEADROOM);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at++] = 0x22;
    for (let index = 0; index < count; index++) {
      const code = text.charCodeAt(index);
      // Control characters, `"`, `\\`, DEL and everything past ASCII: escaped or multi-byte.
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return this.json(JSON.stringify(text));
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

const diagnosticEncoders = { plain: new LineEncoder(), prefixed: new LineEncoder({ priorityPrefix: true }) };

/**
 * A `control_plane.diagnostic` line: what the daemon tells the operator on
 * stderr (docs/contract.md). Encoded like every output line, escapes
 * included, but without `seq`: it is not part of the output stream that
 * `seq` counts. `priorityPrefix` when stderr is the journal.
 */
export function encodeDiagnostic(detail: string, tsMs: number, level: Level, priorityPrefix: boolean): string {
  const encoder = priorityPrefix ? diagnosticEncoders.prefixed : diagnosticEncoders.plain;
  encoder.clear();
  encoder.append(line(level, 'control_plane.diagnostic', null, { detail }), null, formatTimestamp(tsMs));
  return encoder.bytes().toString('utf8');
}
