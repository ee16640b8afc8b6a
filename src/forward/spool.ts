// The forwarding spool: derived events waiting for delivery to the
// operator's backend, on disk so that they survive a restart or kill -9,
// and bounded so that a backend down for days cannot fill the disk.
//
// Layout, in the spool directory (owner-only):
//   segment.<N>          records appended as events are acknowledged, one
//                        line each: `<record seq>\t<lane key>\t<event id>\t<body>`
//                        (the body is a JSON line, so it holds no tab or newline);
//   cursor.<destination> the record seq up to which that destination has
//                        everything delivered (or given up), rewritten
//                        atomically now and then.
// A start reads every segment from the lowest cursor on and queues what each
// destination has not had yet; what was delivered after the last cursor
// write is delivered again (at least once; the event id lets the receiver
// deduplicate). A segment goes once every destination is past it. When the
// spool passes its size, the oldest segments are dropped, undelivered
// events with them, and the count is reported.

import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, constants as fs } from 'node:fs';
import { join } from 'node:path';

/** A segment is closed past this size, so old ones can be deleted whole. */
const SEGMENT_BYTES = 4 * 1024 * 1024;

export interface SpoolRecord {
  readonly seq: number;
  /** Records with the same lane key are delivered in order (the session). */
  readonly lane: string;
  /** Stable across redeliveries and repeats: the receiver deduplicates by it. */
  readonly eventId: string;
  /** The OBS-00 line as JSON, without its newline. */
  readonly body: string;
}

interface Segment {
  readonly number: number;
  readonly path: string;
  bytes: number;
  /** Seq of the last record in it (0 when empty). */
  lastSeq: number;
  firstSeq: number;
}

export interface SpoolOptions {
  readonly directory: string;
  readonly maxBytes: number;
  /** Destinations by a short stable name (their cursor files). */
  readonly destinations: readonly string[];
}

export interface SpoolOpened {
  /** Per destination, the records it has not had, oldest first. */
  readonly pending: ReadonlyMap<string, SpoolRecord[]>;
  readonly warnings: readonly string[];
}

const describe = (error: unknown): string => (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));

function parseRecord(line: string): SpoolRecord | undefined {
  const first = line.indexOf('\t');
  const second = line.indexOf('\t', first + 1);
  const third = line.indexOf('\t', second + 1);
  if (first < 1 || second < 0 || third < 0) return undefined;
  const seq = Number(line.slice(0, first));
  if (!Number.isSafeInteger(seq) || seq < 1) return undefined;
  const body = line.slice(third + 1);
  if (!body.startsWith('{') || !body.endsWith('}')) return undefined;
  return { seq, lane: line.slice(first + 1, second), eventId: line.slice(second + 1, third), body };
}

export class Spool {
  private readonly directory: string;
  private readonly maxBytes: number;
  private readonly cursors = new Map<string, number>();
  /** What was last written to each cursor file. */
  private readonly savedCursors = new Map<string, number>();
  private segments: Segment[] = [];
  private fd: number | null = null;
  private nextSeq = 1;
  private totalBytes = 0;
  /** Records dropped because the spool was full, not yet reported. */
  droppedUnreported = 0;

  constructor(options: SpoolOptions) {
    this.directory = options.directory;
    this.maxBytes = options.maxBytes;
    for (const destination of options.destinations) this.cursors.set(destination, 0);
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Reads what earlier runs left; throws when the directory cannot be used at all. */
  open(): SpoolOpened {
    mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    const warnings: string[] = [];
    for (const destination of this.cursors.keys()) {
      try {
        const value = Number(readFileSync(join(this.directory, `cursor.${destination}`), 'utf8').trim());
        if (Number.isSafeInteger(value) && value >= 0) {
          this.cursors.set(destination, value);
          this.savedCursors.set(destination, value);
        }
      } catch {
        // a new destination starts from the oldest record kept
      }
    }
    const numbers = readdirSync(this.directory)
      .filter((name) => /^segment\.\d+$/.test(name))
      .map((name) => Number(name.slice('segment.'.length)))
      .sort((a, b) => a - b);
    const pending = new Map<string, SpoolRecord[]>([...this.cursors.keys()].map((destination) => [destination, []]));
    let damaged = 0;
    for (const number of numbers) {
      const path = join(this.directory, `segment.${number}`);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (error) {
        warnings.push(`forwarding spool: ${path} cannot be read (${describe(error)}); its events are lost`);
        continue;
      }
      const segment: Segment = { number, path, bytes: Buffer.byteLength(text), lastSeq: 0, firstSeq: 0 };
      const lines = text.split('\n');
      for (let index = 0; index < lines.length; index++) {
        if (lines[index] === '') continue;
        const record = parseRecord(lines[index]!);
        if (!record) {
          // A torn last line is a crash mid-append: it was never acknowledged anywhere.
          if (index !== lines.length - 1) damaged++;
          continue;
        }
        if (segment.firstSeq === 0) segment.firstSeq = record.seq;
        segment.lastSeq = record.seq;
        this.nextSeq = Math.max(this.nextSeq, record.seq + 1);
        for (const [destination, cursor] of this.cursors) if (record.seq > cursor) pending.get(destination)!.push(record);
      }
      this.segments.push(segment);
      this.totalBytes += segment.bytes;
    }
    if (damaged > 0) warnings.push(`forwarding spool: ${damaged} damaged record(s) skipped`);
    this.collect();
    return { pending, warnings };
  }

  /** Appends one group's records with one write; returns them with their seqs. Throws when the disk refuses. */
  append(entries: ReadonlyArray<Omit<SpoolRecord, 'seq'>>): SpoolRecord[] {
    if (entries.length === 0) return [];
    const records = entries.map((entry) => ({ ...entry, seq: this.nextSeq++ }));
    let text = '';
    for (const record of records) text += `${record.seq}\t${record.lane}\t${record.eventId}\t${record.body}\n`;
    const bytes = Buffer.from(text, 'utf8');
    let segment = this.segments.at(-1);
    if (this.fd === null || segment === undefined || segment.bytes >= SEGMENT_BYTES) segment = this.startSegment();
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd!, bytes, written, bytes.length - written);
    } catch (error) {
      // A partial record would be a torn line mid-segment: the next append starts a new segment.
      this.closeSegment();
      throw error;
    }
    if (segment.firstSeq === 0) segment.firstSeq = records[0]!.seq;
    segment.lastSeq = records.at(-1)!.seq;
    segment.bytes += bytes.length;
    this.totalBytes += bytes.length;
    return records;
  }

  /**
   * Drops the oldest segments while the spool is over its size; returns the
   * seq up to which records are gone (every destination's cursor moves past
   * it) and how many undelivered records went with them.
   */
  enforceLimit(undeliveredAtOrBelow: (seq: number) => number): { droppedThrough: number; undelivered: number } {
    let droppedThrough = 0;
    let undelivered = 0;
    while (this.totalBytes > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      this.totalBytes -= oldest.bytes;
      this.remove(oldest.path);
      droppedThrough = Math.max(droppedThrough, oldest.lastSeq);
    }
    if (droppedThrough > 0) {
      undelivered = undeliveredAtOrBelow(droppedThrough);
      for (const [destination, cursor] of this.cursors) if (cursor < droppedThrough) this.cursors.set(destination, droppedThrough);
      this.droppedUnreported += undelivered;
    }
    return { droppedThrough, undelivered };
  }

  /** Everything up to `seq` is delivered (or given up) for `destination`. */
  advance(destination: string, seq: number): void {
    if (seq > (this.cursors.get(destination) ?? 0)) this.cursors.set(destination, seq);
  }

  /** Writes changed cursors (atomically) and deletes segments every destination is past. */
  persist(): void {
    for (const [destination, cursor] of this.cursors) {
      if (this.savedCursors.get(destination) === cursor) continue;
      const path = join(this.directory, `cursor.${destination}`);
      const temporary = `${path}.tmp`;
      try {
        const fd = openSync(temporary, fs.O_WRONLY | fs.O_CREAT | fs.O_TRUNC | fs.O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, `${cursor}\n`);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(temporary, path);
        this.savedCursors.set(destination, cursor);
      } catch {
        // Tried again at the next persist; until then a restart redelivers a little more.
      }
    }
    this.collect();
  }

  close(): void {
    this.persist();
    this.closeSegment();
  }

  /** Deletes closed segments that every destination has passed. */
  private collect(): void {
    const lowest = Math.min(...this.cursors.values());
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      const isCurrent = this.segments.length === 1 && this.fd !== null;
      if (isCurrent || oldest.lastSeq === 0 || oldest.lastSeq > lowest) break;
      this.segments.shift();
      this.totalBytes -= oldest.bytes;
      this.remove(oldest.path);
    }
  }

  private startSegment(): Segment {
    this.closeSegment();
    const number = (this.segments.at(-1)?.number ?? 0) + 1;
    const path = join(this.directory, `segment.${number}`);
    this.fd = openSync(path, fs.O_WRONLY | fs.O_CREAT | fs.O_APPEND | fs.O_NOFOLLOW, 0o600);
    const segment: Segment = { number, path, bytes: statSync(path).size, lastSeq: 0, firstSeq: 0 };
    this.totalBytes += segment.bytes;
    this.segments.push(segment);
    return segment;
  }

  private closeSegment(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // done with it
    }
    this.fd = null;
  }

  private remove(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
