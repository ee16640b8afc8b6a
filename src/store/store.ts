// The store: where sessions, calls, recent event ids and reported provider
// troubles live between webhooks (docs/architecture.md). It keeps state;
// it computes nothing. The rules that turn an event into lines and a new
// state are the pure planner's (src/pipeline/plan.ts); a store only answers
// "what is there now" for a group of webhooks and later "make it so".
//
// Every operation may complete later (a Promise) or at once (a plain
// value): the embedded memory store answers synchronously, so a burst pays
// no promise per webhook; the shared Redis store answers after a round trip.
//
// The output stage (src/output/output.ts) uses a store in this order, one
// group of webhooks at a time:
//
//   read(keys) ─▶ plan against the view ─▶ write the lines ─▶ commit(changes)
//                                        └▶ (write failed)  ─▶ abandon(view)
//
// A view is valid until it is committed or abandoned. A shared store may
// hold the keys it read (a lease) until then, so that no other instance
// plans the same room at the same moment.

import type { SessionRecord } from '../obs/sessions.ts';

/** A room whose session ended: remembered for a while so late events stay ignored. */
export const ENDED = 'ended' as const;

/** What a store holds for a room SID: its open session, or the fact that it ended. */
export type RoomState = SessionRecord | typeof ENDED;

/** The state a group of webhooks reads and may change: nothing else affects its lines. */
export interface StateKeys {
  readonly eventIds: readonly string[];
  readonly roomSids: readonly string[];
  /** Provider troubles (an egress that failed, ...) reported at most once. */
  readonly providerKeys: readonly string[];
}

/** The state as read for one group of webhooks. */
export interface StateView {
  /** Whether this event id was accepted within the dedup window. */
  idSeen(id: string, nowMs: number): boolean;
  room(sid: string): RoomState | undefined;
  providerReported(key: string): boolean;
}

/** Everything one group of webhooks changes (the last state planned for each room). */
export interface StateChanges {
  /** Event id → when it was accepted (receiver's clock, ms). */
  readonly ids: ReadonlyMap<string, number>;
  readonly rooms: ReadonlyMap<string, RoomState>;
  /** Room SID → when its session ended (receiver's clock, ms), for the rooms ended in `rooms`. */
  readonly endedAtMs: ReadonlyMap<string, number>;
  /** Provider trouble key → when it was reported (receiver's clock, ms). */
  readonly providerKeys: ReadonlyMap<string, number>;
}

/** What /metrics and `check-config` show of a store. */
export interface StoreCounts {
  readonly openSessions: number;
  readonly openCalls: number;
  readonly endedSessions: number;
  readonly rememberedIds: number;
  /** Open sessions forgotten by the idle timeout or a cap, without an ended line. */
  readonly evictedSessions: number;
}

/** Every StoreUnavailableError reason (a bounded metric label). */
export const STORE_ERROR_REASONS = ['timeout', 'connection', 'connecting', 'busy', 'conflict', 'corrupt', 'auth', 'out_of_memory', 'loading', 'read_only', 'state_file', 'error'] as const;
export type StoreErrorReason = (typeof STORE_ERROR_REASONS)[number];

/** The store could not answer or commit in time; the webhooks are answered 503 and LiveKit retries. */
export class StoreUnavailableError extends Error {
  /** A short, bounded reason for /health and the metric label (`timeout`, `connection`, `conflict`, ...). */
  readonly reason: StoreErrorReason;
  constructor(reason: StoreErrorReason, message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
    this.reason = reason;
  }
}

export interface StateStore {
  /** `memory`, `memory (state file <path>)` or the Redis URL without credentials. */
  readonly description: string;
  /** Reads the state these keys name. */
  read(keys: StateKeys, nowMs: number): StateView | Promise<StateView>;
  /**
   * Makes `changes` (planned against `view`) the state; rejects with
   * StoreUnavailableError when it cannot. `next`: the keys of the webhooks
   * already waiting for the next group, which a shared store may lease and
   * read in the same round trip (the next read() of a superset of them then
   * needs no round trip, or a smaller one).
   */
  commit(view: StateView, changes: StateChanges, nowMs: number, next?: StateKeys): void | Promise<void>;
  /** Lets go of a view without changing anything (its lines were not written). */
  abandon(view: StateView): void | Promise<void>;
  /** Applies expiry and caps when no webhook arrives (called from a timer). */
  maintain(nowMs: number): void | Promise<void>;
  counts(): StoreCounts;
  /** Why the store is not answering, or null when it is (for /health). */
  problem(): string | null;
  close(): Promise<void>;
}
