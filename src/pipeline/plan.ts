// dedup + plan: a verified, decoded event and the state it reads → the
// OBS-00 lines it causes and the state change to commit
// (docs/architecture.md). Pure: no I/O, no clock (the receiver's time is
// passed in), nothing is changed in a store. A group of webhooks is planned
// one after the other against a GroupState: the store's view with the
// changes of the group's earlier members on top, so each webhook sees
// exactly the state its predecessors left, and the group's changes are
// committed together once its lines are written.

import type { WebhookEvent } from '@livekit/protocol';
import { livekitLine, sessionIdOf } from '../obs/livekit.ts';
import { providerFindings } from '../obs/providers.ts';
import type { ObsEvent } from '../obs/schema.ts';
import { ENDED, type RoomState, reduceSession, trimCalls } from '../obs/sessions.ts';
import { duplicateLine, processingLine, RECEIVED } from '../obs/webhook-lines.ts';
import type { StateChanges, StateKeys, StateView } from '../store/store.ts';

/** What one accepted webhook comes to. */
export interface PlannedWebhook {
  /** Its lines, in order: webhook.received, webhook.processing, the livekit.* line, then call.*, session.*, provider.*. */
  readonly lines: readonly ObsEvent[];
  /** A redelivery of an id accepted before: only webhook.received and webhook.duplicate. */
  readonly duplicate: boolean;
  readonly livekitEvent: string;
  /** LiveKit's createdAt in ms (0 when absent). */
  readonly createdAtMs: number;
}

/**
 * The state a group of events reads and may change: their ids, their
 * rooms, and the provider troubles they report.
 */
export function stateKeysOf(events: readonly WebhookEvent[]): StateKeys {
  const eventIds: string[] = [];
  const roomSids: string[] = [];
  const providerKeys: string[] = [];
  for (const event of events) {
    if (event.id) eventIds.push(event.id);
    const sid = event.room?.sid;
    if (sid && !roomSids.includes(sid)) roomSids.push(sid);
    for (const finding of providerFindings(event)) if (finding.key !== undefined) providerKeys.push(finding.key);
  }
  return { eventIds, roomSids, providerKeys };
}

/** A store's view with one group's changes on top; the changes are what the group commits. */
export class GroupState implements StateView, StateChanges {
  readonly ids = new Map<string, number>();
  readonly rooms = new Map<string, RoomState>();
  readonly endedAtMs = new Map<string, number>();
  readonly providerKeys = new Map<string, number>();
  private readonly base: StateView;

  constructor(base: StateView) {
    this.base = base;
  }

  idSeen(id: string, nowMs: number): boolean {
    return this.ids.has(id) || this.base.idSeen(id, nowMs);
  }

  room(sid: string): RoomState | undefined {
    const changed = this.rooms.get(sid);
    return changed !== undefined ? changed : this.base.room(sid);
  }

  providerReported(key: string): boolean {
    return this.providerKeys.has(key) || this.base.providerReported(key);
  }

  /** No change planned yet. */
  get empty(): boolean {
    return this.ids.size === 0 && this.rooms.size === 0 && this.providerKeys.size === 0;
  }
}

/**
 * Plans one verified, decoded event against `state` and records the change
 * in it: dedup by event id, then the session and call step, then the
 * provider troubles not reported before.
 */
export function planWebhook(event: WebhookEvent, state: GroupState, nowMs: number): PlannedWebhook {
  const createdAtMs = Number(event.createdAt) * 1000;
  const webhookId = event.id || undefined;
  const sessionId = sessionIdOf(event);

  if (webhookId !== undefined && state.idSeen(webhookId, nowMs)) {
    return { lines: [RECEIVED, duplicateLine(sessionId, webhookId, event.event)], duplicate: true, livekitEvent: event.event, createdAtMs };
  }

  const sid = event.room?.sid || undefined;
  const reduced = reduceSession(sid === undefined ? undefined : state.room(sid), event, nowMs);
  const lines: ObsEvent[] = [RECEIVED, processingLine(sessionId, webhookId, event.event), livekitLine(event)];
  for (const line of reduced.calls) lines.push(line);
  for (const line of reduced.session) lines.push(line);
  for (const line of reduced.provider) lines.push(line);
  const newProviderKeys: string[] = [];
  for (const finding of providerFindings(event)) {
    if (finding.key !== undefined) {
      if (state.providerReported(finding.key) || newProviderKeys.includes(finding.key)) continue;
      newProviderKeys.push(finding.key);
    }
    lines.push(finding.line);
  }

  // Recorded only once every line is built: a mapping that throws changes nothing.
  if (sid !== undefined && reduced.next !== undefined) {
    // Re-inserted, so the group commits its rooms in the order they were last changed (least recently active first).
    state.rooms.delete(sid);
    state.rooms.set(sid, reduced.next === ENDED ? ENDED : trimCalls(reduced.next));
    if (reduced.next === ENDED) state.endedAtMs.set(sid, nowMs);
  }
  for (const key of newProviderKeys) state.providerKeys.set(key, nowMs);
  if (webhookId !== undefined) state.ids.set(webhookId, nowMs);
  return { lines, duplicate: false, livekitEvent: event.event, createdAtMs };
}
