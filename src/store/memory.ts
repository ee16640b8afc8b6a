// The embedded store: sessions, calls, recent event ids and reported
// provider troubles in this process's memory, optionally made durable by a
// state journal (state-journal.ts, --state-file). It answers synchronously,
// so a burst costs no promise per webhook.
//
// Memory is bounded (docs/architecture.md, "Bounded memory"): ended
// sessions shrink to a tombstone (the SID and the time it ended) kept for a
// grace period so late events stay ignored; open sessions idle longer than
// the idle timeout (their room_finished was lost) are forgotten; hard caps
// evict the least recently active sessions first. Caps and expiry are
// applied once per committed group, after all of its changes, so nothing a
// group was planned against is evicted by a commit in the same group; the
// caps can be exceeded by one group until its commit ends.

import { ENDED, type RoomState, type SessionRecord } from '../obs/sessions.ts';
import { EvictionQueue } from './eviction-queue.ts';
import { RecentIds, TimedKeys } from './recent-ids.ts';
import type { StateChanges, StateKeys, StateStore, StateView, StoreCounts } from './store.ts';

export interface MemoryStoreOptions {
  /** Open sessions kept at most; the least recently active are forgotten first. */
  readonly maxOpenSessions?: number;
  /** Call legs (open and ended) kept at most across all open sessions. */
  readonly maxCalls?: number;
  /** Ended-session tombstones kept at most. */
  readonly maxEndedSessions?: number;
  /** How long an ended session is remembered, so late events for it stay ignored. */
  readonly endedGraceMs?: number;
  /** An open session with no event for this long is forgotten (its room_finished was lost). */
  readonly idleTimeoutMs?: number;
  /** Provider troubles remembered (so one egress failure reported twice is one line). */
  readonly maxProviderKeys?: number;
  readonly providerKeyWindowMs?: number;
  /** Event ids remembered for dedup. */
  readonly dedupWindowMs?: number;
  readonly maxRecentIds?: number;
}

export const MEMORY_DEFAULTS: Required<MemoryStoreOptions> = {
  maxOpenSessions: 100_000,
  maxCalls: 100_000,
  maxEndedSessions: 100_000,
  endedGraceMs: 30 * 60_000,
  idleTimeoutMs: 24 * 60 * 60_000,
  maxProviderKeys: 10_000,
  providerKeyWindowMs: 60 * 60_000,
  dedupWindowMs: 10 * 60_000,
  maxRecentIds: 200_000,
};

/** Where committed changes are made durable before they are applied (state-journal.ts). */
export interface ChangeJournal {
  /** Appends one group's changes; throws when they are not durable (the group is answered 503). */
  append(changes: StateChanges, nowMs: number): void;
}

/** Everything the store holds, in an order that restores it (for snapshots). */
export interface StoreContents {
  /** Least recently active first. */
  readonly open: Iterable<SessionRecord>;
  /** [room SID, time it ended], oldest first. */
  readonly ended: Iterable<[string, number]>;
  readonly providerKeys: Iterable<[string, number]>;
  readonly ids: Iterable<[string, number]>;
}

const liveLegs = (record: SessionRecord): number => {
  let live = 0;
  for (const leg of record.calls) if (leg.phase !== 'ended') live++;
  return live;
};

export class MemoryStore implements StateStore, StateView {
  readonly description: string;
  readonly options: Required<MemoryStoreOptions>;
  private readonly open = new Map<string, SessionRecord>();
  /** Room SID → the touch counter of its latest change; the eviction queue holds older touches as stale entries. */
  private readonly openTouch = new Map<string, number>();
  private readonly openOrder = new EvictionQueue();
  private touchCounter = 0;
  private readonly ended: TimedKeys;
  private readonly reported: TimedKeys;
  private readonly ids: RecentIds;
  private legRecords = 0;
  private liveCalls = 0;
  private evictedOpen = 0;
  private journal: ChangeJournal | null = null;
  /** The journal refused the last commit (the state file's disk is full, ...): /health says so until one succeeds. */
  private journalFailing = false;

  constructor(options: MemoryStoreOptions = {}, description = 'memory') {
    this.options = { ...MEMORY_DEFAULTS, ...options };
    this.description = description;
    this.ended = new TimedKeys(this.options.endedGraceMs, this.options.maxEndedSessions);
    this.reported = new TimedKeys(this.options.providerKeyWindowMs, this.options.maxProviderKeys);
    this.ids = new RecentIds(this.options.dedupWindowMs, this.options.maxRecentIds);
  }

  /** Makes every later commit durable through `journal` first. */
  attachJournal(journal: ChangeJournal): void {
    this.journal = journal;
  }

  // --- StateView: the memory store is its own view (nothing to copy) ----

  read(_keys: StateKeys, _nowMs: number): StateView {
    return this;
  }

  idSeen(id: string, nowMs: number): boolean {
    return this.ids.has(id, nowMs);
  }

  room(sid: string): RoomState | undefined {
    if (this.ended.timeOf(sid) !== undefined) return ENDED;
    return this.open.get(sid);
  }

  providerReported(key: string): boolean {
    return this.reported.timeOf(key) !== undefined;
  }

  // --- changes ------------------------------------------------------------

  commit(_view: StateView, changes: StateChanges, nowMs: number): void {
    // Durable first: a journal that cannot take the changes fails the group before anything is applied.
    try {
      this.journal?.append(changes, nowMs);
    } catch (error) {
      this.journalFailing = true;
      throw error;
    }
    this.journalFailing = false;
    this.apply(changes, nowMs);
    this.prune(nowMs);
  }

  abandon(_view: StateView): void {
    // Nothing was held.
  }

  maintain(nowMs: number): void {
    this.prune(nowMs);
  }

  /** Applies changes without the journal or pruning (commit, and replaying a journal at start). */
  apply(changes: StateChanges, nowMs: number): void {
    for (const [id, atMs] of changes.ids) this.ids.add(id, atMs);
    for (const [sid, state] of changes.rooms) {
      if (state === ENDED) this.endSession(sid, changes.endedAtMs.get(sid) ?? nowMs);
      else this.putOpen(state);
    }
    for (const [key, atMs] of changes.providerKeys) this.reported.add(key, atMs);
  }

  private endSession(sid: string, atMs: number): void {
    this.dropOpen(sid);
    this.ended.delete(sid);
    this.ended.add(sid, atMs);
  }

  private putOpen(record: SessionRecord): void {
    this.dropOpen(record.sid);
    this.ended.delete(record.sid);
    this.open.set(record.sid, record);
    const touch = ++this.touchCounter;
    this.openTouch.set(record.sid, touch);
    this.openOrder.push(record.sid, touch);
    this.legRecords += record.calls.length;
    this.liveCalls += liveLegs(record);
  }

  private dropOpen(sid: string): void {
    const previous = this.open.get(sid);
    if (!previous) return;
    this.open.delete(sid);
    this.openTouch.delete(sid);
    this.legRecords -= previous.calls.length;
    this.liveCalls -= liveLegs(previous);
  }

  /** Applies the idle timeout, the grace periods and the caps, oldest first. */
  prune(nowMs: number): void {
    const o = this.options;
    const order = this.openOrder;
    for (;;) {
      const sid = order.peekKey();
      if (sid === undefined) break;
      if (this.openTouch.get(sid) !== order.peekStamp()) {
        order.shift();
        continue;
      }
      const record = this.open.get(sid)!;
      if (this.open.size <= o.maxOpenSessions && this.legRecords <= o.maxCalls && nowMs - record.touchedAtMs < o.idleTimeoutMs) break;
      this.dropOpen(sid);
      order.shift();
      this.evictedOpen++;
    }
    order.compactIfMostlyStale(this.open.size, (key, stamp) => this.openTouch.get(key) === stamp);
    this.ended.prune(nowMs);
    this.reported.prune(nowMs);
    this.ids.prune(nowMs);
  }

  counts(): StoreCounts {
    return { openSessions: this.open.size, openCalls: this.liveCalls, endedSessions: this.ended.size, rememberedIds: this.ids.size, evictedSessions: this.evictedOpen };
  }

  problem(): string | null {
    return this.journalFailing ? 'store_state_file' : null;
  }

  async close(): Promise<void> {}

  /** Everything held, for a snapshot. Iterators over the live maps: read them before the next change. */
  contents(): StoreContents {
    const open = this.open;
    const openTouch = this.openTouch;
    const isCurrent = (sid: string, touch: number): boolean => openTouch.get(sid) === touch;
    const inOrder = this.openOrder.current(isCurrent);
    return {
      // Least recently active first: the eviction queue's order.
      open: (function* () {
        for (const sid of inOrder) {
          const record = open.get(sid);
          if (record) yield record;
        }
      })(),
      ended: this.ended.entries(),
      providerKeys: this.reported.entries(),
      ids: this.ids.entries(),
    };
  }

  /** Loads saved contents (a snapshot), in order; prune afterwards. */
  load(contents: StoreContents): void {
    for (const record of contents.open) this.putOpen(record);
    for (const [sid, atMs] of contents.ended) this.endSession(sid, atMs);
    for (const [key, atMs] of contents.providerKeys) this.reported.add(key, atMs);
    for (const [id, atMs] of contents.ids) this.ids.add(id, atMs);
  }
}
