// One webhook's whole trip without HTTP or a sink, for tests of the pure
// core: check (verify + decode), then plan against an embedded store, with
// the answer the server would give (status and reason from the reason
// table) and the lines it would write. `commit` installs the planned state,
// as the output stage does once the lines are written.

import type { WebhookEvent } from '@livekit/protocol';
import { REFUSALS } from '../../src/http/reasons.ts';
import type { ObsEvent } from '../../src/obs/schema.ts';
import { RECEIVED, rejectedLine } from '../../src/obs/webhook-lines.ts';
import { checkWebhook } from '../../src/pipeline/check.ts';
import { GroupState, planWebhook } from '../../src/pipeline/plan.ts';
import type { KeyRing } from '../../src/pipeline/verify.ts';
import { MemoryStore } from '../../src/store/memory.ts';

export interface PipelineContext {
  readonly keys: () => KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
  readonly store: MemoryStore;
}

export interface WebhookOutcome {
  readonly status: number;
  readonly reason?: string;
  readonly events: readonly ObsEvent[];
  readonly livekitEvent?: string;
  readonly duplicate: boolean;
  commit(): void;
}

const NO_KEYS = { eventIds: [], roomSids: [], providerKeys: [] };

export function newContext(keys: KeyRing, insecureSkipVerify = false): PipelineContext {
  return { keys: () => keys, insecureSkipVerify, clockToleranceMs: 60_000, store: new MemoryStore() };
}

/** dedup + plan for a checked event, against the context's store. */
export function planOne(event: WebhookEvent, nowMs: number, store: MemoryStore): WebhookOutcome {
  const state = new GroupState(store.read(NO_KEYS, nowMs));
  const planned = planWebhook(event, state, nowMs);
  return {
    status: 200,
    events: planned.lines,
    livekitEvent: planned.livekitEvent,
    duplicate: planned.duplicate,
    commit: () => store.commit(state, state, nowMs),
  };
}

export async function processWebhook(request: { authorization: string | undefined; body: Uint8Array; receivedAtMs: number }, context: PipelineContext): Promise<WebhookOutcome> {
  const checked = await checkWebhook(request.authorization, request.body, request.receivedAtMs, { keys: context.keys(), insecureSkipVerify: context.insecureSkipVerify, clockToleranceMs: context.clockToleranceMs });
  if (!checked.ok) {
    const { status } = REFUSALS[checked.reason];
    return { status, reason: checked.reason, events: [RECEIVED, rejectedLine(status, checked.reason, checked.detail)], duplicate: false, commit: () => {} };
  }
  return planOne(checked.event, request.receivedAtMs, context.store);
}
