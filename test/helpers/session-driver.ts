// Drives the embedded store one event at a time, the way the output stage
// does for a group of one: plan against the store's view, then commit the
// planned changes. `observe` returns the derived lines (call.*, session.*,
// provider.*) and a commit the test calls when it likes, so a test can also
// drop a commit (a failed write) and check nothing changed.

import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../../src/obs/schema.ts';
import type { SessionRecord, SessionSnapshot } from '../../src/obs/sessions.ts';
import { GroupState, planWebhook } from '../../src/pipeline/plan.ts';
import { MemoryStore, type MemoryStoreOptions } from '../../src/store/memory.ts';

const NO_KEYS = { eventIds: [], roomSids: [], providerKeys: [] };

/** The lines planWebhook puts before the derived ones: webhook.received, webhook.processing, livekit.*. */
const LEADING_LINES = 3;

export class SessionDriver {
  store: MemoryStore;
  private readonly options: MemoryStoreOptions;

  constructor(options: MemoryStoreOptions = {}) {
    this.options = options;
    this.store = new MemoryStore(options);
  }

  /**
   * The derived lines of `event` against the state now, and the commit that
   * installs its change. Without `dedup`, the event id is neither checked nor
   * remembered: what the session logic alone makes of a redelivery.
   */
  observe(event: WebhookEvent, nowMs: number, { dedup = true } = {}): { readonly events: readonly ObsEvent[]; commit(): void } {
    const store = this.store;
    const view = store.read(NO_KEYS, nowMs);
    const state = new GroupState(dedup ? view : { idSeen: () => false, room: (sid) => view.room(sid), providerReported: (key) => view.providerReported(key) });
    const planned = planWebhook(event, state, nowMs);
    if (!dedup) state.ids.clear();
    return {
      events: planned.duplicate ? [] : planned.lines.slice(LEADING_LINES),
      commit() {
        store.commit(state, state, nowMs);
      },
    };
  }

  get openSessions(): number {
    return this.store.counts().openSessions;
  }

  get openCalls(): number {
    return this.store.counts().openCalls;
  }

  get endedSessions(): number {
    return this.store.counts().endedSessions;
  }

  get evictedSessions(): number {
    return this.store.counts().evictedSessions;
  }

  prune(nowMs: number): void {
    this.store.prune(nowMs);
  }

  /** The state as plain data (least recently active sessions first). */
  snapshot(): SessionSnapshot {
    const contents = this.store.contents();
    return { version: 1, open: [...contents.open] as SessionRecord[], ended: [...contents.ended], providerKeys: [...contents.providerKeys] };
  }

  /** What a restart through a state file keeps: everything, ids included, through JSON. */
  restart(nowMs: number): void {
    const contents = this.store.contents();
    const saved = JSON.parse(JSON.stringify({ open: [...contents.open], ended: [...contents.ended], providerKeys: [...contents.providerKeys], ids: [...contents.ids] })) as {
      open: SessionRecord[];
      ended: Array<[string, number]>;
      providerKeys: Array<[string, number]>;
      ids: Array<[string, number]>;
    };
    this.store = new MemoryStore(this.options);
    this.store.load(saved);
    this.store.prune(nowMs);
  }

  /** Replaces the state with a saved one, then prunes at `nowMs`. */
  restore(snapshot: SessionSnapshot, nowMs: number): void {
    this.store = new MemoryStore(this.options);
    this.store.load({ open: snapshot.open, ended: snapshot.ended.map(([sid, at]) => [sid, at]), providerKeys: snapshot.providerKeys.map(([key, at]) => [key, at]), ids: [] });
    this.store.prune(nowMs);
  }
}
