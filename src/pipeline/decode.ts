// decode: raw body → a typed LiveKit WebhookEvent, or the reason it is not
// one. Runs only after the signature verified. Unknown fields are ignored
// (as LiveKit's own SDKs do), so a newer server's payload still decodes; an
// enum name this version does not know leaves its field at 0, and the name
// is noted beside the message for the lines (rememberUnknownEnumNames). int64 fields come out as bigint: nothing here or
// downstream may JSON.stringify the decoded message.
//
// Two readers, one result. @livekit/protocol's WebhookEvent.fromJson
// (protobuf-es) is the reader of record. In front of it sits a reader
// compiled once from the same message descriptors for the JSON that
// LiveKit actually sends: it builds the same message instances (same
// classes, same defaults, same values) about 3x faster, and gives up, to
// fromJson, on anything it does not handle exactly as fromJson does:
// null values, a oneof given two members, well-known types, bytes, floats,
// numeric int64, string int32, unknown enum names, proto (snake_case) field
// names, keys that collide with Object.prototype, strings that are not
// well-formed UTF-16. decode-equivalence.test.ts checks, with
// assert.deepStrictEqual, that every result it gives equals fromJson's.

import { isAscii } from 'node:buffer';
import { DisconnectReason, EgressStatus, IngressState_Status, JobStatus, ParticipantInfo_Kind, RoomEndReason, TrackSource, TrackType, WebhookEvent } from '@livekit/protocol';
import { rememberUnknownEnumName } from '../obs/enum-names.ts';

export const DECODE_REASONS = ['body_not_json', 'not_a_webhook_event', 'invalid_webhook_event'] as const;
export type DecodeReason = (typeof DECODE_REASONS)[number];

export type DecodeResult =
  | { readonly ok: true; readonly event: WebhookEvent }
  | { readonly ok: false; readonly reason: DecodeReason; readonly detail: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeWebhook(body: Uint8Array): DecodeResult {
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
  const fast = readWebhookEvent(json);
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

// ------------------------------------------------- the compiled fast reader

/** What this reader needs of a protobuf-es (v1) message class. */
interface MessageClass {
  new (): object;
  readonly typeName: string;
  readonly fields: { list(): readonly unknown[] };
  readonly fieldWrapper?: unknown;
}

/** What this reader needs of a protobuf-es FieldInfo. */
interface FieldDescription {
  readonly name: string;
  readonly localName: string;
  readonly jsonName: string;
  readonly kind: 'scalar' | 'enum' | 'message' | 'map';
  readonly repeated: boolean;
  /** The oneof the field is a member of: the message holds `{ case: <member's localName>, value }` under the oneof's localName. */
  readonly oneof?: { readonly localName: string };
  /** ScalarType number, EnumType or MessageType, by kind. */
  readonly T?: unknown;
  /** LongType for 64-bit scalars: 0 bigint, 1 string. */
  readonly L?: number;
  /** map key ScalarType. */
  readonly K?: number;
  /** map value. */
  readonly V?: { readonly kind: 'scalar' | 'enum' | 'message'; readonly T: unknown };
}

interface EnumDescription {
  readonly values: ReadonlyArray<{ readonly no: number; readonly name: string }>;
}

/** The value a JSON value decodes to, or GIVE_UP: fromJson must decide. */
type ValueReader = (value: unknown) => unknown;
/** Stores a JSON value into the message and returns true, or returns false: fromJson must decide. */
type FieldReader = (message: Record<string, unknown>, value: unknown) => boolean;

const GIVE_UP: unique symbol = Symbol('give up');

/** String.prototype.isWellFormed (ES2024; Node ≥ 20): no lone surrogates, which fromJson refuses. */
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();

// protobuf ScalarType numbers (descriptor.proto's field types; they never change).
const DOUBLE = 1;
const INT64 = 3;
const UINT64 = 4;
const INT32 = 5;
const FIXED64 = 6;
const FIXED32 = 7;
const BOOL = 8;
const STRING = 9;
const UINT32 = 13;
const SFIXED32 = 15;
const SFIXED64 = 16;
const SINT32 = 17;
const SINT64 = 18;
const LONG_AS_BIGINT = 0;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const SIGNED_DECIMAL = /^-?[0-9]{1,20}$/;
const UNSIGNED_DECIMAL = /^[0-9]{1,20}$/;

/** Keys that a plain object lookup in protobuf-es would resolve through Object.prototype. */
const PROTOTYPE_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));

/** A 64-bit integer as protojson writes it (a decimal string), as a bigint in [min, max]. */
function longReader(decimal: RegExp, min: bigint, max: bigint): ValueReader {
  return (value) => {
    if (typeof value !== 'string' || !decimal.test(value)) return GIVE_UP;
    const long = BigInt(value);
    return long >= min && long <= max ? long : GIVE_UP;
  };
}

function scalarReader(type: number, longType: number | undefined): ValueReader | undefined {
  switch (type) {
    case STRING:
      // fromJson rejects strings with lone surrogates (encodeURIComponent).
      return (value) => (typeof value === 'string' && isWellFormed(value) ? value : GIVE_UP);
    case BOOL:
      return (value) => (typeof value === 'boolean' ? value : GIVE_UP);
    case DOUBLE:
      return (value) => (typeof value === 'number' && Number.isFinite(value) ? value : GIVE_UP);
    case INT32:
    case SINT32:
    case SFIXED32:
      return (value) => (typeof value === 'number' && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647 ? value : GIVE_UP);
    case UINT32:
    case FIXED32:
      return (value) => (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 4294967295 ? value : GIVE_UP);
    case INT64:
    case SINT64:
    case SFIXED64:
      return longType === LONG_AS_BIGINT ? longReader(SIGNED_DECIMAL, INT64_MIN, INT64_MAX) : undefined;
    case UINT64:
    case FIXED64:
      return longType === LONG_AS_BIGINT ? longReader(UNSIGNED_DECIMAL, 0n, UINT64_MAX) : undefined;
    default:
      // FLOAT (a float32 range check), BYTES (base64): left to fromJson.
      return undefined;
  }
}

function enumReader(type: EnumDescription): ValueReader {
  const numbers = new Map(type.values.map((value) => [value.name, value.no]));
  return (value) => {
    if (typeof value === 'string') {
      // An unknown name is skipped by fromJson: let it do exactly that.
      return numbers.get(value) ?? GIVE_UP;
    }
    return typeof value === 'number' && Number.isInteger(value) ? value : GIVE_UP;
  };
}

type MessageReader = (json: unknown) => object | undefined;

const compiledReaders = new Map<MessageClass, MessageReader>();

function valueReader(kind: 'scalar' | 'enum' | 'message', type: unknown, longType: number | undefined): ValueReader | undefined {
  if (kind === 'scalar') return scalarReader(type as number, longType);
  if (kind === 'enum') return enumReader(type as EnumDescription);
  const read = messageReader(type as MessageClass);
  if (read === undefined) return undefined;
  return (value) => read(value) ?? GIVE_UP;
}

function fieldReader(field: FieldDescription): FieldReader | undefined {
  if (field.oneof !== undefined) return undefined;
  const local = field.localName;
  if (field.kind === 'map') {
    if (field.K !== STRING || field.V === undefined) return undefined;
    const read = valueReader(field.V.kind, field.V.T, LONG_AS_BIGINT);
    if (read === undefined) return undefined;
    return (message, value) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
      const target = message[local] as Record<string, unknown>;
      for (const key in value) {
        if (!isWellFormed(key) || PROTOTYPE_KEYS.has(key)) return false;
        const entry = read((value as Record<string, unknown>)[key]);
        if (entry === GIVE_UP) return false;
        target[key] = entry;
      }
      return true;
    };
  }
  const read = valueReader(field.kind, field.T, field.L);
  if (read === undefined) return undefined;
  if (field.repeated) {
    return (message, value) => {
      if (!Array.isArray(value)) return false;
      const target = message[local] as unknown[];
      for (const item of value) {
        const entry = read(item);
        if (entry === GIVE_UP) return false;
        target.push(entry);
      }
      return true;
    };
  }
  return (message, value) => {
    const entry = read(value);
    if (entry === GIVE_UP) return false;
    message[local] = entry;
    return true;
  };
}

/**
 * The fast reader of a message type, compiled on first use from its field
 * descriptors into one function that switches on the JSON key and stores
 * each field by its name: one shape of store per field, where a generic
 * keyed store made every field of every type share one slow path. A field
 * the reader cannot handle exactly gives up when present; so does a
 * field's proto name when it differs from its JSON name. Unknown keys are
 * skipped, as fromJson does with ignoreUnknownFields, unless they would
 * resolve through Object.prototype.
 */
function messageReader(type: MessageClass): MessageReader | undefined {
  const known = compiledReaders.get(type);
  if (known !== undefined) return known;
  // Wrappers and other well-known types have their own JSON forms.
  if (type.typeName.startsWith('google.protobuf.') || type.fieldWrapper !== undefined) return undefined;
  // Registered before the fields compile, so recursive types find it (through this indirection).
  let compiled: MessageReader = () => undefined;
  const reader: MessageReader = (json) => compiled(json);
  compiledReaders.set(type, reader);

  const valueReaders: ValueReader[] = [];
  const fieldReaders: FieldReader[] = [];
  const cases: string[] = [];
  const giveUpKeys = new Set<string>();
  /** Each oneof's index: `seen<index>` says one of its members was read already. */
  const oneofs = new Map<object, number>();
  for (const field of type.fields.list() as readonly FieldDescription[]) {
    const jsonName = JSON.stringify(field.jsonName);
    if (field.name !== field.jsonName) giveUpKeys.add(field.name);
    if (field.oneof !== undefined) {
      // A oneof member, stored as fromJson stores it: `{ case, value }` under
      // the oneof's name. A second member of the same oneof makes fromJson
      // throw, and it treats a null member in its own ways (a null scalar is
      // skipped): both are left to it (a null makes every value reader give
      // up).
      const member = field.kind !== 'map' && !field.repeated ? valueReader(field.kind, field.T, field.L) : undefined;
      if (member === undefined) {
        cases.push(`case ${jsonName}: return undefined;`);
        continue;
      }
      let oneof = oneofs.get(field.oneof);
      if (oneof === undefined) oneofs.set(field.oneof, (oneof = oneofs.size));
      cases.push(
        `case ${jsonName}: { if (seen${oneof}) return undefined; seen${oneof} = true; const entry = values[${valueReaders.length}](json[key]); if (entry === GIVE_UP) return undefined; ` +
          `message[${JSON.stringify(field.oneof.localName)}] = { case: ${JSON.stringify(field.localName)}, value: entry }; break; }`,
      );
      valueReaders.push(member);
      continue;
    }
    const single = field.kind !== 'map' && !field.repeated ? valueReader(field.kind, field.T, field.L) : undefined;
    if (single !== undefined) {
      // The common case: one value, stored by name.
      cases.push(`case ${jsonName}: { const entry = values[${valueReaders.length}](json[key]); if (entry === GIVE_UP) return undefined; message[${JSON.stringify(field.localName)}] = entry; break; }`);
      valueReaders.push(single);
      continue;
    }
    const read = field.kind === 'map' || field.repeated ? fieldReader(field) : undefined;
    if (read === undefined) {
      cases.push(`case ${jsonName}: return undefined;`);
      continue;
    }
    cases.push(`case ${jsonName}: if (!fields[${fieldReaders.length}](message, json[key])) return undefined; break;`);
    fieldReaders.push(read);
  }
  for (const key of giveUpKeys) if (!cases.some((line) => line.startsWith(`case ${JSON.stringify(key)}:`))) cases.push(`case ${JSON.stringify(key)}: return undefined;`);
  // Compiled from the descriptors' own names (never from input), like messageFactory.
  compiled = new Function(
    'create',
    'values',
    'fields',
    'GIVE_UP',
    'PROTOTYPE_KEYS',
    `return function read(json) {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
      const message = create();
      ${[...oneofs.values()].map((index) => `let seen${index} = false;`).join(' ')}
      for (const key in json) {
        switch (key) {
          ${cases.join('\n          ')}
          default: if (PROTOTYPE_KEYS.has(key)) return undefined;
        }
      }
      return message;
    };`,
  )(messageFactory(type), valueReaders, fieldReaders, GIVE_UP, PROTOTYPE_KEYS) as MessageReader;
  return reader;
}

/**
 * `new type()` without running protobuf-es's generic field initialiser on
 * every message: the own properties of one instance made by the real
 * constructor, copied in the same order onto a new object with the same
 * prototype (fresh empty arrays, maps, oneof holders and bytes; the
 * primitive zero values as they are). Anything it does not recognise
 * keeps the real constructor.
 */
function messageFactory(type: MessageClass): () => object {
  const construct = (): object => new type();
  const template = new type() as Record<string, unknown>;
  const values: unknown[] = [];
  const statements: string[] = [];
  for (const key of Reflect.ownKeys(template)) {
    if (typeof key !== 'string') return construct;
    const descriptor = Object.getOwnPropertyDescriptor(template, key)!;
    if (!descriptor.writable || !descriptor.enumerable || !descriptor.configurable) return construct;
    const value = descriptor.value;
    let expression: string;
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
      expression = `values[${values.length}]`;
      values.push(value);
    } else if (Array.isArray(value) && value.length === 0 && Object.getPrototypeOf(value) === Array.prototype) {
      expression = '[]';
    } else if (value instanceof Uint8Array && value.length === 0 && Object.getPrototypeOf(value) === Uint8Array.prototype) {
      expression = 'new Uint8Array(0)';
    } else if (Object.getPrototypeOf(value) === Object.prototype && Reflect.ownKeys(value).length === 0) {
      expression = '{}';
    } else if (Object.getPrototypeOf(value) === Object.prototype && Reflect.ownKeys(value).length === 1 && 'case' in value && (value as { case: unknown }).case === undefined) {
      expression = '{ case: undefined }';
    } else {
      return construct;
    }
    statements.push(`message[${JSON.stringify(key)}] = ${expression};`);
  }
  // Compiled from the descriptors' own field names (never from input): one straight-line initialiser per type.
  return new Function('prototype', 'values', `return function create() { const message = Object.create(prototype); ${statements.join(' ')} return message; };`)(type.prototype, values) as () => object;
}

const webhookEventReader = messageReader(WebhookEvent as unknown as MessageClass);

/** The fast reader's WebhookEvent, or undefined when fromJson must decode `json`. */
export function readWebhookEvent(json: unknown): WebhookEvent | undefined {
  return webhookEventReader?.(json) as WebhookEvent | undefined;
}
