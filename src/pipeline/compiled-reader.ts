// The compiled JSON reader of LiveKit's WebhookEvent, in front of
// protobuf-es's fromJson (the reader of record) in decode.ts. It is
// compiled once per message type from the message descriptors into one
// function that switches on the JSON key and stores each field by name, and
// builds the same message instances as fromJson (same classes, same
// defaults, same values) about 3x faster. It gives up, to fromJson, on
// anything it does not handle exactly as fromJson does: null values, a
// oneof given two members, well-known types, bytes, floats, numeric int64,
// string int32, unknown enum names, proto (snake_case) field names, keys
// that collide with Object.prototype, strings that are not well-formed
// UTF-16. decode-equivalence.test.ts checks, with assert.deepStrictEqual,
// that every result it gives equals fromJson's.
//
// It reads protobuf-es v1's runtime descriptors (MessageType.fields,
// FieldInfo), which are not a stable API. messageShapeProblems lists what
// it relies on; a type whose descriptors do not match is not compiled
// (fromJson decodes it), and compiled-reader.test.ts fails on every
// compiled type that does not match, so an upgrade that changes them is
// seen at once.

import { WebhookEvent } from '@livekit/protocol';

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
  // Descriptors not shaped as this reader expects (another protobuf-es): fromJson decodes the type.
  if (messageShapeProblems(type).length > 0) return undefined;
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

// ------------------------------------------- what the reader relies on

const SCALAR_TYPES = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 18]);
const LONG_TYPES = new Set([INT64, UINT64, FIXED64, SFIXED64, SINT64]);
const FIELD_KINDS = new Set(['scalar', 'enum', 'message', 'map']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const isName = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** What the value of a `kind`/`T` pair must look like: a problem, or undefined. */
function valueTypeProblem(kind: unknown, type: unknown, longType: unknown): string | undefined {
  switch (kind) {
    case 'scalar':
      if (typeof type !== 'number' || !SCALAR_TYPES.has(type)) return `scalar T ${String(type)} is not a protobuf ScalarType`;
      if (LONG_TYPES.has(type) && longType !== undefined && longType !== 0 && longType !== 1) return `L ${String(longType)} is not a LongType`;
      return undefined;
    case 'enum': {
      const values = isObject(type) ? type.values : undefined;
      if (!Array.isArray(values) || !values.every((value) => isObject(value) && Number.isInteger(value.no) && isName(value.name))) return 'enum T has no values [{ no, name }]';
      return undefined;
    }
    case 'message': {
      const message = type as { typeName?: unknown; fields?: { list?: unknown } } | undefined;
      if (typeof type !== 'function' || !isName(message?.typeName) || typeof message?.fields?.list !== 'function') return 'message T is not a message class';
      return undefined;
    }
    default:
      return `kind ${String(kind)} is not scalar, enum or message`;
  }
}

/** The zero value a fresh message holds for a singular scalar field (what fromJson leaves when the JSON omits it). */
function scalarDefault(type: number, longType: number | undefined): unknown {
  if (type === STRING) return '';
  if (type === BOOL) return false;
  if (LONG_TYPES.has(type)) return longType === LONG_AS_BIGINT ? 0n : '0';
  if (type === 12) return undefined; // bytes: a Uint8Array, which messageFactory checks itself
  return 0;
}

/**
 * What this reader relies on in a protobuf-es (v1) message type, checked:
 * the problems found, empty when the type is as expected. The type is a
 * proto3 message class with `typeName` and `fields.list()`; each field
 * has `no`, `name`, `localName`, `jsonName`, `kind` (scalar, enum, message
 * or map), `repeated`, and by kind `T` (a ScalarType number with `L` for
 * 64-bit ones, an enum type with `values`, a message class), or `K` and `V`
 * for a map; a oneof member has `oneof.localName`. A fresh instance holds
 * `{ case: undefined }` under each oneof's localName, an empty array for a
 * repeated field, an empty object for a map, nothing for a message field,
 * and the zero value for a singular scalar or enum (nothing for a proto3
 * `optional` one), which the compiled reader's stores and messageFactory
 * build on.
 */
export function messageShapeProblems(candidate: unknown): string[] {
  if (typeof candidate !== 'function') return [`${String(candidate)}: not a protobuf-es message class`];
  const type = candidate as unknown as { typeName?: unknown; fields?: { list?: unknown }; runtime?: { syntax?: unknown }; prototype?: unknown };
  const name = String(type.typeName);
  if (!isName(type.typeName) || typeof type.fields?.list !== 'function') return [`${name}: not a protobuf-es message class (typeName, fields.list())`];
  const problems: string[] = [];
  if (type.runtime?.syntax !== 'proto3') problems.push(`${name}: syntax ${String(type.runtime?.syntax)}, not proto3`);
  let instance: Record<string, unknown>;
  try {
    instance = new (candidate as MessageClass)() as Record<string, unknown>;
  } catch (error) {
    return [...problems, `${name}: new ${name}() throws (${String(error)})`];
  }
  if (Object.getPrototypeOf(instance) !== type.prototype) problems.push(`${name}: an instance's prototype is not the class's`);
  const fields = (type.fields as { list(): unknown }).list();
  if (!Array.isArray(fields)) return [...problems, `${name}: fields.list() is not an array`];
  for (const entry of fields) {
    const field = entry as Partial<FieldDescription> & { no?: unknown; opt?: unknown; oneof?: { localName?: unknown; kind?: unknown } };
    const where = `${name}.${String(field?.name)}`;
    if (!isObject(field) || !Number.isInteger(field.no) || !isName(field.name) || !isName(field.localName) || !isName(field.jsonName)) {
      problems.push(`${where}: a field needs no, name, localName and jsonName`);
      continue;
    }
    if (!FIELD_KINDS.has(field.kind as string)) problems.push(`${where}: kind ${String(field.kind)}`);
    if (typeof field.repeated !== 'boolean') problems.push(`${where}: repeated is not a boolean`);
    if (field.kind === 'map') {
      if (typeof field.K !== 'number' || !SCALAR_TYPES.has(field.K)) problems.push(`${where}: map K ${String(field.K)} is not a ScalarType`);
      const valueProblem = isObject(field.V) ? valueTypeProblem(field.V.kind, field.V.T, LONG_AS_BIGINT) : 'map without V';
      if (valueProblem) problems.push(`${where}: ${valueProblem}`);
    } else {
      const valueProblem = valueTypeProblem(field.kind, field.T, field.L);
      if (valueProblem) problems.push(`${where}: ${valueProblem}`);
    }
    const value = instance[field.localName];
    if (field.oneof !== undefined) {
      const holder = isObject(field.oneof) && isName(field.oneof.localName) ? instance[field.oneof.localName] : undefined;
      if (field.oneof.kind !== 'oneof' || !isObject(holder) || Object.keys(holder).join() !== 'case' || holder.case !== undefined) {
        problems.push(`${where}: a oneof member, but the instance holds no { case: undefined } under its oneof's localName`);
      }
    } else if (field.kind === 'map') {
      if (!isObject(value) || Object.getPrototypeOf(value) !== Object.prototype || Object.keys(value).length > 0) problems.push(`${where}: a map starts as an empty object`);
    } else if (field.repeated) {
      if (!Array.isArray(value) || value.length > 0) problems.push(`${where}: a repeated field starts as an empty array`);
    } else if (field.kind === 'message' || field.opt === true) {
      if (value !== undefined) problems.push(`${where}: a message or optional field starts unset`);
    } else if (field.kind === 'enum') {
      if (value !== 0) problems.push(`${where}: an enum field starts at 0`);
    } else if (typeof field.T === 'number') {
      const expected = scalarDefault(field.T, field.L);
      if (expected !== undefined && value !== expected) problems.push(`${where}: starts at ${String(value)} (${typeof value}), not ${String(expected)} (${typeof expected})`);
    }
  }
  return problems;
}

/** Every message type a reader was compiled for (the shape test checks each). */
export function compiledMessageTypes(): unknown[] {
  return [...compiledReaders.keys()];
}

const webhookEventReader = messageReader(WebhookEvent as unknown as MessageClass);

/** The fast reader's WebhookEvent, or undefined when fromJson must decode `json`. */
export function readWebhookEvent(json: unknown): WebhookEvent | undefined {
  return webhookEventReader?.(json) as WebhookEvent | undefined;
}
