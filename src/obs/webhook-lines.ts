// The webhook.* and control_plane.* lines: what happened to a request and
// to the process, beside the livekit.* and derived lines of an accepted
// webhook (docs/contract.md).

import { type LineFields, line, type ObsEvent } from './schema.ts';

/** Every POST /webhook, before verification. */
export const RECEIVED: ObsEvent = Object.freeze(line('info', 'webhook.received', null));

/** The webhook verified and decoded. */
export function processingLine(sessionId: string | null, webhookId: string | undefined, livekitEvent: string): ObsEvent {
  return line('info', 'webhook.processing', sessionId, { webhook_id: webhookId, livekit_event: livekitEvent });
}

/** A redelivered event id: nothing else is written for it. */
export function duplicateLine(sessionId: string | null, webhookId: string, livekitEvent: string): ObsEvent {
  return line('info', 'webhook.duplicate', sessionId, { webhook_id: webhookId, livekit_event: livekitEvent });
}

/** An error answer; nothing unverified names a session. */
export function rejectedLine(httpStatus: number, reason: string, detail?: string): ObsEvent {
  return line('warn', 'webhook.rejected', null, { http_status: httpStatus, reason, detail });
}

/** The periodic count of rejection lines held back by the per-reason rate limit. */
export function suppressedLine(reason: string, suppressed: number): ObsEvent {
  return line('warn', 'webhook.rejected_suppressed', null, { reason, suppressed, detail: `${suppressed} rejected requests with this reason were not logged (rate limit)` });
}

export function warningLine(detail: string): ObsEvent {
  return line('warn', 'control_plane.warning', null, { detail });
}

export function processLine(eventType: 'control_plane.started' | 'control_plane.stopped' | 'control_plane.keys_reloaded', fields: LineFields): ObsEvent {
  return line('info', eventType, null, fields);
}
