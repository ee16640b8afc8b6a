// One webhook's trip, minus the I/O (ARCHITECTURE.md):
//
//   bytes in ─▶ verify ─▶ decode ─▶ dedup ─▶ map (+ session state) ─▶ lines
//
// The result is the HTTP status to answer, the OBS-00 lines to write (in
// order), and a `commit` that records the event id and the new session
// state. The server calls `commit` only after the sink wrote the lines: if
// the write fails the webhook is answered 503, nothing is remembered, and
// LiveKit's retry is processed as if it were the first delivery.

import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../obs/schema.ts';
import { livekitLine, sessionIdOf } from '../obs/livekit.ts';
import { decodeWebhook } from './decode.ts';
import type { RecentIds } from '../store/recent-ids.ts';
import { type KeyRing, verifyWebhook } from './verify.ts';

/** Derives call.*, session.* and provider.* lines; implemented by SessionStore. */
export interface SessionTracker {
  /**
   * The lines this event causes and a commit that applies the state change.
   * Must not change any state before commit() is called.
   */
  observe(event: WebhookEvent, nowMs: number): { readonly events: readonly ObsEvent[]; commit(): void };
  /**
   * Runs `commits` (commit() calls of events observed earlier) with the caps
   * and expiry applied once, after the last of them, so that no commit
   * evicts state that another one's lines were derived from.
   */
  commitTogether(commits: () => void): void;
}

export interface PipelineContext {
  /** Read on every request, so a SIGHUP can swap the keys. */
  readonly keys: () => KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
  readonly recentIds: RecentIds;
  readonly sessions: SessionTracker;
  /**
   * Called with an event's stateKeysOf() just before its lines are derived.
   * The server's group commit (group-commit.ts) uses it to write out the
   * pending webhooks that touch any of that state first.
   */
  readonly beforeMapping?: (stateKeys: readonly string[]) => void;
}

export interface WebhookRequest {
  readonly authorization: string | undefined;
  readonly body: Uint8Array;
  /** When the request arrived (ms since epoch); all time checks use it. */
  readonly receivedAtMs: number;
}

export type WebhookStatus = 200 | 400 | 401;

export interface WebhookOutcome {
  readonly status: WebhookStatus;
  /** Why it was refused (the `{"error"}` body and the log line's `reason`). */
  readonly reason?: string;
  readonly events: readonly ObsEvent[];
  /** The LiveKit event name, once verified and decoded. */
  readonly livekitEvent?: string;
  /** LiveKit's `createdAt`, in ms, once decoded (0 when absent). */
  readonly createdAtMs?: number;
  readonly duplicate: boolean;
  /** The state commit() changes (stateKeysOf the event); empty when it changes none. */
  readonly stateKeys: readonly string[];
  commit(): void;
}

export const RECEIVED: ObsEvent = Object.freeze({ level: 'info', event_type: 'webhook.received', session_id: null });

const nothingToCommit = (): void => {};
const NO_STATE: readonly string[] = Object.freeze([]);

/**
 * Everything the mapping of `event` reads or changes besides immutable
 * tables: its id (dedup), its room's session, and the egress or ingress
 * whose troubles are reported once. Two events with no key in common map
 * the same whichever is committed first. The keys are the values
 * themselves, not prefixed by kind: an id equal to some room SID only
 * costs an early write, and no new string is built per webhook.
 */
export function stateKeysOf(event: WebhookEvent): string[] {
  const keys: string[] = [];
  if (event.id) keys.push(event.id);
  const roomSid = event.room?.sid;
  if (roomSid) keys.push(roomSid);
  const egressId = event.egressInfo?.egressId;
  if (egressId) keys.push(egressId);
  const ingressId = event.ingressInfo?.ingressId;
  if (ingressId) keys.push(ingressId);
  return keys;
}

export function rejectedLine(httpStatus: number, reason: string, detail?: string): ObsEvent {
  const line: ObsEvent = { level: 'warn', event_type: 'webhook.rejected', session_id: null, http_status: httpStatus, reason };
  return detail ? { ...line, detail } : line;
}

function rejected(status: WebhookStatus, reason: string, detail?: string): WebhookOutcome {
  return { status, reason, events: [RECEIVED, rejectedLine(status, reason, detail)], duplicate: false, stateKeys: NO_STATE, commit: nothingToCommit };
}

/** protobuf-es names the field and then quotes the offending value; keep only the field part. */
function decodeDetail(message: string): string {
  return message.replace(/ from JSON:[\s\S]*$/, '').slice(0, 200);
}

/**
 * One webhook's whole trip (verify, decode, dedup, map). The server runs
 * the same two halves for a whole turn's webhooks at once: checkWebhookNow
 * for all of them, then mapChecked in arrival order.
 */
export async function processWebhook(request: WebhookRequest, context: PipelineContext): Promise<WebhookOutcome> {
  return mapChecked(await checkWebhookNow(request, context), request, context);
}

/** A webhook after verification and decoding: its event, or the outcome that refuses it. */
export type CheckedWebhook = { readonly event: WebhookEvent; readonly refused?: undefined } | { readonly event?: undefined; readonly refused: WebhookOutcome };

/**
 * The stateless half of processWebhook: verification and decoding,
 * which read and change no state, so the server can run them for a whole
 * turn's webhooks before mapping any (mapChecked). A promise only when jose
 * must decide the token.
 */
export function checkWebhookNow(request: WebhookRequest, context: PipelineContext): CheckedWebhook | Promise<CheckedWebhook> {
  if (!context.insecureSkipVerify) {
    const verdict = verifyWebhook(request.authorization, request.body, { keys: context.keys(), nowMs: request.receivedAtMs, clockToleranceMs: context.clockToleranceMs });
    if (verdict instanceof Promise) {
      return verdict.then((joseVerdict) => (joseVerdict.ok ? decodeChecked(request) : { refused: rejected(401, joseVerdict.reason) }));
    }
    if (!verdict.ok) return { refused: rejected(401, verdict.reason) };
  }
  return decodeChecked(request);
}

function decodeChecked(request: WebhookRequest): CheckedWebhook {
  const decoded = decodeWebhook(request.body);
  if (!decoded.ok) return { refused: rejected(400, decoded.reason, decoded.reason === 'invalid_webhook_event' ? decodeDetail(decoded.detail) : undefined) };
  return { event: decoded.event };
}

/** The stateful half: dedup and mapping of a checked webhook (its outcome as is when it was refused). */
export function mapChecked(checked: CheckedWebhook, request: WebhookRequest, context: PipelineContext): WebhookOutcome {
  return checked.refused ?? mapVerifiedWebhook(checked.event, request.receivedAtMs, context);
}

/** dedup + map for an event that passed verification and decoding. */
export function mapVerifiedWebhook(event: WebhookEvent, nowMs: number, context: Pick<PipelineContext, 'recentIds' | 'sessions' | 'beforeMapping'>): WebhookOutcome {
  const stateKeys = stateKeysOf(event);
  context.beforeMapping?.(stateKeys);
  const sessionId = sessionIdOf(event);
  const createdAtMs = Number(event.createdAt) * 1000;
  const identity: ObsEvent = { level: 'info', event_type: 'webhook.processing', session_id: sessionId, webhook_id: event.id || undefined, livekit_event: event.event };

  if (event.id && context.recentIds.has(event.id, nowMs)) {
    return {
      status: 200,
      events: [RECEIVED, { ...identity, event_type: 'webhook.duplicate' }],
      livekitEvent: event.event,
      createdAtMs,
      duplicate: true,
      stateKeys: NO_STATE,
      commit: nothingToCommit,
    };
  }

  const derived = context.sessions.observe(event, nowMs);
  return {
    status: 200,
    events: [RECEIVED, identity, livekitLine(event), ...derived.events],
    livekitEvent: event.event,
    createdAtMs,
    duplicate: false,
    stateKeys,
    commit() {
      if (event.id) context.recentIds.remember(event.id, nowMs);
      derived.commit();
    },
  };
}
