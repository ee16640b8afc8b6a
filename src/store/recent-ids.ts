// dedup: has this event id been written already? LiveKit redelivers the
// same bytes (same id) after a 5xx or a dropped connection, and several
// webhook URLs or egress-request webhooks can carry copies.
//
// Ids are remembered for DEDUP_WINDOW_MS (the 5 min token lifetime plus
// LiveKit's retry window, with a wide margin) and at most DEDUP_CAPACITY of
// them (about 120 bytes each in a Map: ~24 MB at the cap), oldest evicted
// first, so a flood of distinct ids cannot grow memory without bound.
// Pure: the caller passes the time in.

export const DEDUP_WINDOW_MS = 10 * 60_000;
export const DEDUP_CAPACITY = 200_000;

export class RecentIds {
  /** id → time first written (ms); Map keeps insertion order, oldest first. */
  private readonly seenAt = new Map<string, number>();
  private readonly windowMs: number;
  private readonly capacity: number;

  constructor(windowMs = DEDUP_WINDOW_MS, capacity = DEDUP_CAPACITY) {
    this.windowMs = windowMs;
    this.capacity = capacity;
  }

  get size(): number {
    return this.seenAt.size;
  }

  has(id: string, nowMs: number): boolean {
    const seen = this.seenAt.get(id);
    return seen !== undefined && nowMs - seen < this.windowMs;
  }

  remember(id: string, nowMs: number): void {
    if (this.seenAt.has(id)) return;
    this.seenAt.set(id, nowMs);
    this.prune(nowMs);
  }

  /** Drops expired ids (from the oldest end) and enforces the cap. */
  prune(nowMs: number): void {
    for (const [id, seen] of this.seenAt) {
      if (this.seenAt.size <= this.capacity && nowMs - seen < this.windowMs) break;
      this.seenAt.delete(id);
    }
  }

  /** For the state file: [id, seenAtMs] pairs, oldest first. */
  entries(): Array<[string, number]> {
    return [...this.seenAt];
  }

  restore(entries: Iterable<readonly [string, number]>, nowMs: number): void {
    for (const [id, seen] of entries) {
      if (typeof id === 'string' && Number.isFinite(seen)) this.seenAt.set(id, seen);
    }
    this.prune(nowMs);
  }
}
