// The `livekit.*` line of a webhook: which event it was and the fields that
// identify its room, participant, track, egress, ingress or agent job.
// Only named fields are extracted; the payload itself (with its
// turnPassword and streamKey) is never copied.

import type { WebhookEvent } from '@livekit/protocol';
import { disconnectReasonGiven, egressStatusName, ingressStatusName, jobStatusName, participantKindName, trackSourceName, trackTypeName } from './enum-names.ts';
import { type EventType, formatSeconds, type ObsEvent } from './schema.ts';

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

/** The room SID that names this event's session (SPEC §4), or null when none can be known. */
export function sessionIdOf(event: WebhookEvent): string | null {
  if (event.egressInfo) return event.egressInfo.roomId || event.room?.sid || null;
  if (event.ingressInfo) return null;
  return event.room?.sid || event.job?.room?.sid || null;
}

const put = (target: Record<string, unknown>, name: string, value: string | undefined): void => {
  if (value) target[name] = value;
};

/** The `livekit.*` line for a decoded, verified webhook. */
export function livekitLine(event: WebhookEvent): ObsEvent {
  const line: Record<string, unknown> = {
    level: 'info',
    // hasOwn: an event named `toString` or `__proto__` must not find Object.prototype's members.
    event_type: Object.hasOwn(LIVEKIT_EVENT_TYPES, event.event) ? LIVEKIT_EVENT_TYPES[event.event]! : 'livekit.event.unknown',
    session_id: sessionIdOf(event),
  };
  put(line, 'webhook_id', event.id);
  put(line, 'livekit_event', event.event);
  put(line, 'event_created_at', secondsToTimestamp(event.createdAt));

  const room = event.room;
  put(line, 'room_name', room?.name || event.egressInfo?.roomName || event.ingressInfo?.roomName || event.job?.room?.name);
  put(line, 'room_sid', line.session_id as string | null ?? undefined);

  const participant = event.participant ?? event.job?.participant;
  if (participant) {
    put(line, 'participant_identity', participant.identity);
    put(line, 'participant_sid', participant.sid);
    // Track events carry only sid and identity: no kind to report there.
    if (!event.track) line.participant_kind = participantKindName(participant);
    put(line, 'reason', disconnectReasonGiven(participant));
  }

  if (event.track) {
    put(line, 'track_sid', event.track.sid);
    line.track_type = trackTypeName(event.track);
    line.track_source = trackSourceName(event.track);
  }

  if (event.egressInfo) {
    put(line, 'detail', event.egressInfo.egressId);
    line.outcome = egressStatusName(event.egressInfo);
    put(line, 'error', event.egressInfo.error);
  } else if (event.ingressInfo) {
    put(line, 'detail', event.ingressInfo.ingressId);
    put(line, 'participant_identity', event.ingressInfo.participantIdentity);
    if (event.ingressInfo.state) {
      line.outcome = ingressStatusName(event.ingressInfo.state);
      put(line, 'error', event.ingressInfo.state.error);
    }
  } else if (event.job) {
    put(line, 'detail', event.job.id);
    put(line, 'participant_identity', event.job.state?.participantIdentity);
    if (event.job.state) {
      line.outcome = jobStatusName(event.job.state);
      put(line, 'error', event.job.state.error);
    }
  }
  return line as unknown as ObsEvent;
}
