// The `livekit.*` line of a webhook: which event it was and the fields that
// identify its room, participant, track, egress, ingress or agent job.
// Only named fields are extracted; the payload itself (with its
// turnPassword and streamKey) is never copied.

import type { WebhookEvent } from '@livekit/protocol';
import { disconnectReasonGiven, egressStatusName, ingressStatusName, jobStatusName, participantKindName, trackSourceName, trackTypeName } from './enum-names.ts';
import { type EventType, formatSeconds, type LineFields, line, type ObsEvent } from './schema.ts';

/** LiveKit event name → OBS-00 event type. Names not listed map to `livekit.event.unknown`. */
export const LIVEKIT_EVENT_TYPES: Readonly<Record<string, EventType>> = {
  room_started: 'livekit.room.created',
  room_finished: 'livekit.room.finished',
  participant_joined: 'livekit.participant.joined',
  participant_left: 'livekit.participant.left',
  participant_connection_aborted: 'livekit.participant.connection_aborted',
  track_published: 'livekit.track.published',
  track_unpublished: 'livekit.track.unpublished',
  egress_started: 'livekit.egress.started',
  egress_updated: 'livekit.egress.updated',
  egress_ended: 'livekit.egress.ended',
  ingress_started: 'livekit.ingress.started',
  ingress_ended: 'livekit.ingress.ended',
  agent_job_started: 'livekit.agent_job.started',
  agent_job_ended: 'livekit.agent_job.ended',
};

/** Unix seconds (bigint, from protojson int64) → RFC 3339 UTC, or undefined when unset. */
export function secondsToTimestamp(seconds: bigint): string | undefined {
  // Compared as a number (exact in this range): bigint comparisons cost more.
  const value = Number(seconds);
  return value > 0 && value <= 253_402_300_799 ? formatSeconds(value) : undefined;
}

/** The room SID that names this event's session (docs/contract.md#common-fields), or null when none can be known. */
export function sessionIdOf(event: WebhookEvent): string | null {
  if (event.egressInfo) return event.egressInfo.roomId || event.room?.sid || null;
  if (event.ingressInfo) return null;
  return event.room?.sid || event.job?.room?.sid || null;
}

type MutableFields = { -readonly [name in keyof LineFields]: LineFields[name] };

/** The `livekit.*` line for a decoded, verified webhook. Empty strings are unknowns: left out. */
export function livekitLine(event: WebhookEvent): ObsEvent {
  const sessionId = sessionIdOf(event);
  // hasOwn: an event named `toString` or `__proto__` must not find Object.prototype's members.
  const eventType = Object.hasOwn(LIVEKIT_EVENT_TYPES, event.event) ? LIVEKIT_EVENT_TYPES[event.event]! : 'livekit.event.unknown';
  const room = event.room;
  const fields: MutableFields = {
    webhook_id: event.id || undefined,
    livekit_event: event.event || undefined,
    event_created_at: secondsToTimestamp(event.createdAt),
    room_name: room?.name || event.egressInfo?.roomName || event.ingressInfo?.roomName || event.job?.room?.name || undefined,
    room_sid: sessionId ?? undefined,
  };

  const participant = event.participant ?? event.job?.participant;
  if (participant) {
    fields.participant_identity = participant.identity || undefined;
    fields.participant_sid = participant.sid || undefined;
    // Track events carry only sid and identity: no kind to report there.
    if (!event.track) fields.participant_kind = participantKindName(participant);
    fields.reason = disconnectReasonGiven(participant);
  }

  if (event.track) {
    fields.track_sid = event.track.sid || undefined;
    fields.track_type = trackTypeName(event.track);
    fields.track_source = trackSourceName(event.track);
  }

  if (event.egressInfo) {
    fields.detail = event.egressInfo.egressId || undefined;
    fields.outcome = egressStatusName(event.egressInfo);
    fields.error = event.egressInfo.error || undefined;
  } else if (event.ingressInfo) {
    fields.detail = event.ingressInfo.ingressId || undefined;
    if (event.ingressInfo.participantIdentity) fields.participant_identity = event.ingressInfo.participantIdentity;
    if (event.ingressInfo.state) {
      fields.outcome = ingressStatusName(event.ingressInfo.state);
      fields.error = event.ingressInfo.state.error || undefined;
    }
  } else if (event.job) {
    fields.detail = event.job.id || undefined;
    if (event.job.state?.participantIdentity) fields.participant_identity = event.job.state.participantIdentity;
    if (event.job.state) {
      fields.outcome = jobStatusName(event.job.state);
      fields.error = event.job.state.error || undefined;
    }
  }
  return line('info', eventType, sessionId, fields);
}
