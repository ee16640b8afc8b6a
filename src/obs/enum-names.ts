// Enum values as the lines write them: lower snake case without the type's
// prefix (CLIENT_INITIATED → client_initiated, EGRESS_LIMIT_REACHED →
// limit_reached); a number this version does not know as `unknown_<n>`;
// a name it does not know (a newer server's) as it came, in lower snake
// case (EGRESS_PAUSED → paused).
//
// protobuf-es's fromJson leaves a field whose enum name it does not know at
// the enum's default, 0: a participant of an unknown kind would read as
// STANDARD. So the decoder (src/pipeline/decode.ts) notes the names it
// could not map beside the decoded message, in a WeakMap (no property is
// added to the message, whose shape the hot path relies on), and the names
// here read them back.

import {
  DisconnectReason,
  EgressStatus,
  type EgressInfo,
  type IngressState,
  IngressState_Status,
  type JobState,
  JobStatus,
  type ParticipantInfo,
  ParticipantInfo_Kind,
  RoomEndReason,
  TrackSource,
  type TrackInfo,
  TrackType,
  type WebhookEvent,
} from '@livekit/protocol';

/** Per decoded message, the enum names it held that this version does not know, by field (localName). */
const unknownNames = new WeakMap<object, Record<string, string>>();

/** Notes that `message[field]` was given the enum name `name`, which no value of its enum has (the decoder calls it). */
export function rememberUnknownEnumName(message: object, field: string, name: string): void {
  const names = unknownNames.get(message);
  if (names) names[field] = name;
  else unknownNames.set(message, { [field]: name });
}

/** The unknown enum name `message[field]` came with, if any. */
export function unknownEnumName(message: object, field: string): string | undefined {
  return unknownNames.get(message)?.[field];
}

/** An enum name in lower snake case without `prefix`: CLIENT_INITIATED → client_initiated. */
function lowerSnakeCase(name: string, prefix: string): string {
  const bare = prefix !== '' && name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : name;
  const snake = bare
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toLowerCase();
  return snake === '' ? 'unknown' : snake;
}

/**
 * An enum value as lower snake case without its type prefix:
 * CLIENT_INITIATED → client_initiated, EGRESS_LIMIT_REACHED → limit_reached.
 * A number the library does not know stays visible as `unknown_<n>`.
 */
export function enumName(names: Record<number, string>, value: number, prefix = ''): string {
  const name = names[value];
  if (name === undefined) return `unknown_${value}`;
  return (name.startsWith(prefix) ? name.slice(prefix.length) : name).toLowerCase();
}

/** The name of `message[field]`: an unknown name it came with, else its value's name. */
function fieldName<M extends object>(message: M, field: keyof M & string, names: Record<number, string>, prefix = ''): string {
  const value = message[field] as number;
  if (value === 0) {
    const unknown = unknownEnumName(message, field);
    if (unknown !== undefined) return lowerSnakeCase(unknown, prefix);
  }
  return enumName(names, value, prefix);
}

/** Like fieldName, but undefined for the default value given as such (protojson omits it: nothing was said). */
function fieldNameUnlessDefault<M extends object>(message: M, field: keyof M & string, names: Record<number, string>, prefix = ''): string | undefined {
  if ((message[field] as number) === 0 && unknownEnumName(message, field) === undefined) return undefined;
  return fieldName(message, field, names, prefix);
}

export const participantKindName = (participant: ParticipantInfo): string => fieldName(participant, 'kind', ParticipantInfo_Kind);
/** Whether the participant's kind is one this version knows (an unknown one is no standard participant). */
export const hasKnownKind = (participant: ParticipantInfo): boolean => unknownEnumName(participant, 'kind') === undefined;
/** The disconnect reason, `unknown_reason` when absent. */
export const disconnectReasonName = (participant: ParticipantInfo): string => fieldName(participant, 'disconnectReason', DisconnectReason);
/** The disconnect reason, undefined when absent. */
export const disconnectReasonGiven = (participant: ParticipantInfo): string | undefined => fieldNameUnlessDefault(participant, 'disconnectReason', DisconnectReason);
export const trackTypeName = (track: TrackInfo): string => fieldName(track, 'type', TrackType);
export const trackSourceName = (track: TrackInfo): string => fieldName(track, 'source', TrackSource);
export const egressStatusName = (egress: EgressInfo): string => fieldName(egress, 'status', EgressStatus, 'EGRESS_');
export const ingressStatusName = (state: IngressState): string => fieldName(state, 'status', IngressState_Status, 'ENDPOINT_');
export const jobStatusName = (state: JobState): string => fieldName(state, 'status', JobStatus, 'JS_');
/** The room's end reason (room_finished), undefined when the server sent none. */
export const roomEndReasonName = (event: WebhookEvent): string | undefined => fieldNameUnlessDefault(event, 'roomEndReason', RoomEndReason, 'ROOM_END_');
