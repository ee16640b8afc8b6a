// Oldest-first eviction in constant time, beside a Map that does the
// lookups.
//
// Why not evict by iterating the Map from its start: V8 leaves a deleted
// entry as a hole until the table is rehashed, and an iteration from the
// start walks every hole again, so each eviction at a cap costs more than
// the one before (measured: inserts into a full 200 000-key Map fell from
// 72 600/s to 12 000/s over 250 000 evictions). Here the order lives in two
// parallel arrays with a moving head; an entry whose key was deleted or
// re-stamped since it was queued is stale and is skipped (each queued entry
// is looked at once), and the arrays are compacted when the dead head grows
// past half of them, so the work per operation is amortised O(1).

export class EvictionQueue {
  private keys: string[] = [];
  /** Parallel to keys: the stamp the key had when it was queued (a time or a counter). */
  private stamps: number[] = [];
  private head = 0;

  /** Entries queued and not yet shifted (stale ones included). */
  get length(): number {
    return this.keys.length - this.head;
  }

  push(key: string, stamp: number): void {
    this.keys.push(key);
    this.stamps.push(stamp);
  }

  /** The oldest queued key, or undefined. */
  peekKey(): string | undefined {
    return this.head < this.keys.length ? this.keys[this.head] : undefined;
  }

  /** The oldest queued stamp (NaN when empty). */
  peekStamp(): number {
    return this.head < this.stamps.length ? this.stamps[this.head]! : Number.NaN;
  }

  shift(): void {
    if (this.head >= this.keys.length) return;
    // Let go of the string now: the arrays keep the slot until compaction.
    this.keys[this.head] = '';
    this.head++;
    if (this.head === this.keys.length) {
      this.keys = [];
      this.stamps = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Rebuilds the queue from the entries `isCurrent` keeps (in order), when
   * stale entries outnumber live ones: a key re-stamped often (a busy room)
   * would otherwise queue one entry per touch.
   */
  compactIfMostlyStale(liveCount: number, isCurrent: (key: string, stamp: number) => boolean): void {
    const queued = this.keys.length - this.head;
    if (queued < 1024 || queued < liveCount * 2) return;
    const keys: string[] = [];
    const stamps: number[] = [];
    for (let index = this.head; index < this.keys.length; index++) {
      const key = this.keys[index]!;
      const stamp = this.stamps[index]!;
      if (isCurrent(key, stamp)) {
        keys.push(key);
        stamps.push(stamp);
      }
    }
    this.keys = keys;
    this.stamps = stamps;
    this.head = 0;
  }

  /**
   * The keys still current, oldest first. Lazy: a snapshot reads it over
   * several turns; entries made stale meanwhile are skipped, entries queued
   * after the queue was compacted are not visited.
   */
  *current(isCurrent: (key: string, stamp: number) => boolean): IterableIterator<string> {
    const keys = this.keys;
    const stamps = this.stamps;
    for (let index = this.head; index < keys.length; index++) {
      const key = keys[index]!;
      if (key !== '' && isCurrent(key, stamps[index]!)) yield key;
    }
  }

  clear(): void {
    this.keys = [];
    this.stamps = [];
    this.head = 0;
  }
}
