// Builders for the session and call tests: LiveKit-shaped webhook bodies
// (src/livekit/samples.ts) decoded the way the daemon decodes them, and a
// driver that feeds them to a SessionStore and collects the derived lines.

import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../../src/obs/schema.ts';
import type { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { decodeWebhook } from '../../src/pipeline/decode.ts';
import { agentParticipant, encodeBody, type JsonObject, newRoom, type ParticipantSpec, type RoomSpec, sipParticipant, standardParticipant } from '../../src/livekit/samples.ts';
import { RoomTimeline } from '../../src/livekit/scenarios.ts';

/** 2026-12-01T12:00:00Z, in Unix seconds: every scenario's room opens here. */
export const T0 = 1_796_126_400;
/** The receiver's clock in these tests: deliberately far from LiveKit's times, which durations must use. */
export const RECEIVER_NOW_MS = 1_900_000_000_000;

export function decode(json: JsonObject): WebhookEvent {
  const decoded = decodeWebhook(Buffer.from(encodeBody(json)));
  if (!decoded.ok) throw new Error(`sample did not decode: ${decoded.reason} ${decoded.detail}`);
  return decoded.event;
}

/** One room's webhooks with LiveKit's timestamps in seconds after T0 (the builder `control-plane simulate` uses too). */
export class RoomScript extends RoomTimeline {
  constructor(name = 'support-room', room?: RoomSpec) {
    super(room ?? newRoom(name, T0), T0);
  }
}

export { agentParticipant, sipParticipant, standardParticipant };

/** A SIP leg that joined the room `secondsAfterT0` after T0 (LiveKit's joinedAtMs). */
export function sipLeg(direction: 'inbound' | 'outbound', secondsAfterT0: number, remote = '+14155550123', trunkNumber = '+31201234589'): ParticipantSpec {
  return sipParticipant(direction, { remote, trunkNumber, joinedAtMs: (T0 + secondsAfterT0) * 1000 });
}

/** Feeds the events one by one (observe, then commit) and returns all derived lines. */
export function run(store: SessionStore, events: readonly JsonObject[], nowMs = RECEIVER_NOW_MS): ObsEvent[] {
  const lines: ObsEvent[] = [];
  for (const json of events) {
    const observed = store.observe(decode(json), nowMs);
    lines.push(...observed.events);
    observed.commit();
  }
  return lines;
}

/** The fields a scenario table compares: what an auditor reads on each line. */
export const COMPARED_FIELDS = ['event_type', 'level', 'direction', 'from', 'to', 'from_state', 'to_state', 'reason', 'outcome', 'answered', 'duration_ms', 'talk_ms', 'provider', 'detail'] as const;

export function project(line: ObsEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of COMPARED_FIELDS) {
    const value = (line as unknown as Record<string, unknown>)[field];
    if (value !== undefined) out[field] = value;
  }
  return out;
}
