// Keys remembered for a window, at most `capacity` of them, oldest forgotten
// first: the event ids already accepted (dedup), the sessions that ended
// (so a late event does not revive them) and the provider troubles already
// reported. Eviction is O(1) (eviction-queue.ts). Pure: the caller passes
// the time in.
//
// Event ids: LiveKit redelivers the same bytes (same id) after a 5xx or a
// dropped connection, and several webhook URLs or egress-request webhooks
// carry copies (docs/livekit-facts.md). Ids are remembered for
// DEDUP_WINDOW_MS (the 5 min token lifetime plus LiveKit's retry window,
// with a wide margin).

import { EvictionQueue } from './eviction-queue.ts';

export const DEDUP_WINDOW_MS = 10 * 60_000;
export const DEDUP_CAPACITY = 200_000;

export class TimedKeys {
  /** key → time remembered (ms). A key is stamped once: remembering it again changes nothing. */
  private readonly times = new Map<string, number>();
  private readonly order = new EvictionQueue();
  readonly windowMs: number;
  readonly capacity: number;

  constructor(windowMs: number, capacity: number) {
    this.windowMs = windowMs;
    this.capacity = capacity;
  }

  get size(): number {
    return this.times.size;
  }

  /** Remembered and not yet expired at `nowMs`. */
  has(key: string, nowMs: number): boolean {
    const at = this.times.get(key);
    return at !== undefined && nowMs - at < this.windowMs;
  }

  /** When `key` was remembered, if it still is. */
  timeOf(key: string): number | undefined {
    return this.times.get(key);
  }

  /** Remembers `key` (a no-op when it already is); evict with prune(). */
  add(key: string, atMs: number): void {
    if (this.times.has(key)) return;
    this.times.set(key, atMs);
    this.order.push(key, atMs);
  }

  delete(key: string): void {
    this.times.delete(key);
  }

  /** Forgets expired keys and enforces the cap, oldest first. */
  prune(nowMs: number): void {
    const { times, order } = this;
    for (;;) {
      const key = order.peekKey();
      if (key === undefined) return;
      const stamp = order.peekStamp();
      if (times.get(key) !== stamp) {
        // Deleted (or forgotten and remembered again later) since it was queued.
        order.shift();
        continue;
      }
      if (times.size <= this.capacity && nowMs - stamp < this.windowMs) return;
      times.delete(key);
      order.shift();
    }
  }

  /** [key, ms] pairs in the order remembered (for the state file). */
  *entries(): IterableIterator<[string, number]> {
    yield* this.times;
  }

  clear(): void {
    this.times.clear();
    this.order.clear();
  }
}

/** The event ids already accepted. */
export class RecentIds extends TimedKeys {
  constructor(windowMs = DEDUP_WINDOW_MS, capacity = DEDUP_CAPACITY) {
    super(windowMs, capacity);
  }

  remember(id: string, nowMs: number): void {
    this.add(id, nowMs);
    this.prune(nowMs);
  }

  restore(entries: Iterable<readonly [string, number]>, nowMs: number): void {
    for (const [id, seen] of entries) {
      if (typeof id === 'string' && Number.isFinite(seen)) this.add(id, seen);
    }
    this.prune(nowMs);
  }
}
