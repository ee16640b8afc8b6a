// --state-file: the embedded store made durable. Whatever was answered 200
// survives a crash (kill -9) at any moment: every group's changes are
// appended to a journal before the group is answered, and a start replays
// the journal on top of the last snapshot. With --fsync always the append
// is fdatasync'ed too, so it also survives a power cut; with `never` it is
// in the kernel's page cache when the answer goes out (a process crash
// loses nothing, a power cut can lose the last seconds).
//
// Files, all beside the state file, owner-only (0600: they hold phone
// numbers and identities as LiveKit sent them):
//   <file>            the snapshot: a header line, then one JSON line per
//                     open session, ended session, provider key and event id;
//   <file>.journal.N  the changes since that snapshot, one JSON line per
//                     committed group (the header names the first N to replay).
//
// Compaction writes a new snapshot in small slices between webhooks (no
// long stall of the event loop), while new changes already go to the next
// journal segment; the snapshot is renamed into place atomically and only
// then are the older segments deleted. A crash at any step leaves a
// snapshot and the segments that follow it. Replaying is idempotent: a
// change carries whole session records, the last one wins.

import { closeSync, fdatasyncSync, fsync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, constants as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isTimedKey } from '../obs/json-values.ts';
import { ENDED, isSessionRecord, parseSessionSnapshot, type RoomState, type SessionRecord } from '../obs/sessions.ts';
import type { ChangeJournal, MemoryStore, StoreContents } from './memory.ts';
import { type StateChanges, StoreUnavailableError } from './store.ts';

export const STATE_FORMAT = 'control-plane-state';
export const STATE_VERSION = 2;

/** A journal segment past this size starts a compaction (or twice the last snapshot, if larger). */
const COMPACT_AFTER_BYTES = 32 * 1024 * 1024;
/** Snapshot lines joined per write. */
const SNAPSHOT_SLICE = 500;
/** A background snapshot writes for at most this long before it lets the event loop run. */
const SLICE_BUDGET_MS = 5;

export interface StateJournalOptions {
  readonly path: string;
  readonly fsync: 'never' | 'always';
  /** Problems worth a line (a corrupt file moved aside, a compaction that failed). */
  readonly warn: (message: string) => void;
  readonly now?: () => number;
}

interface SnapshotHeader {
  readonly format: typeof STATE_FORMAT;
  readonly version: typeof STATE_VERSION;
  readonly saved_at: string;
  /** The first journal segment to replay after this snapshot. */
  readonly journal: number;
}

const describe = (error: unknown): string => (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.name : 'error');

const utcStamp = (ms: number): string => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');


/** The journal line for one committed group. */
export function encodeChanges(changes: StateChanges, nowMs: number): string {
  const rooms: Array<[string, RoomState]> = [];
  for (const entry of changes.rooms) rooms.push(entry);
  return `${JSON.stringify({ t: nowMs, i: [...changes.ids], r: rooms, e: [...changes.endedAtMs], p: [...changes.providerKeys] })}\n`;
}

/** A journal line back into changes, or undefined when it is not one (a torn last line, damage). */
export function decodeChanges(line: string): { changes: StateChanges; nowMs: number } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as { t?: unknown; i?: unknown; r?: unknown; e?: unknown; p?: unknown };
  if (!Number.isFinite(record.t) || !Array.isArray(record.i) || !Array.isArray(record.r) || !Array.isArray(record.e) || !Array.isArray(record.p)) return undefined;
  if (!record.i.every(isTimedKey) || !record.e.every(isTimedKey) || !record.p.every(isTimedKey)) return undefined;
  const rooms = new Map<string, RoomState>();
  for (const entry of record.r) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') return undefined;
    const state: unknown = entry[1];
    if (state === ENDED) rooms.set(entry[0], ENDED);
    else if (isSessionRecord(state) && state.sid === entry[0]) rooms.set(entry[0], state);
    else return undefined;
  }
  return { changes: { ids: new Map(record.i), rooms, endedAtMs: new Map(record.e), providerKeys: new Map(record.p) }, nowMs: record.t as number };
}

/** Snapshot lines, after the header: one entry each. */
type SnapshotLine = ['o', SessionRecord] | ['e', string, number] | ['p', string, number] | ['i', string, number];

function* snapshotLines(contents: StoreContents): Generator<string> {
  for (const record of contents.open) yield JSON.stringify(['o', record] satisfies SnapshotLine);
  for (const [sid, atMs] of contents.ended) yield JSON.stringify(['e', sid, atMs] satisfies SnapshotLine);
  for (const [key, atMs] of contents.providerKeys) yield JSON.stringify(['p', key, atMs] satisfies SnapshotLine);
  for (const [id, atMs] of contents.ids) yield JSON.stringify(['i', id, atMs] satisfies SnapshotLine);
}

/** What a start found on disk. */
export interface Recovery {
  readonly contents: StoreContents | undefined;
  /** Journal segments to replay after the contents, oldest first (with their numbers). */
  readonly segments: ReadonlyArray<{ readonly number: number; readonly path: string }>;
  readonly warnings: readonly string[];
}

export class StateJournal implements ChangeJournal {
  private readonly path: string;
  private readonly directory: string;
  private readonly fsyncMode: 'never' | 'always';
  private readonly warn: (message: string) => void;
  private readonly now: () => number;
  private segmentNumber = 0;
  private segmentFd: number | null = null;
  private segmentBytes = 0;
  /** The segment took a partial line (a failed write): the next append starts a new one. */
  private segmentBroken = false;
  private lastSnapshotBytes = 0;
  private compaction: { cancelled: boolean; done: Promise<void> } | null = null;
  private store: MemoryStore | null = null;

  constructor(options: StateJournalOptions) {
    this.path = options.path;
    this.directory = dirname(options.path);
    this.fsyncMode = options.fsync;
    this.warn = options.warn;
    this.now = options.now ?? Date.now;
  }

  /**
   * Loads the saved state into `store`, writes a fresh snapshot, opens a new
   * journal segment and attaches itself to the store. Returns the warnings
   * to write as lines. Throws StoreUnavailableError when the state file's
   * directory cannot be written at all (the daemon refuses to start).
   */
  open(store: MemoryStore): string[] {
    this.store = store;
    try {
      mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreUnavailableError('state_file', `--state-file: cannot create the directory ${this.directory} (${describe(error)})`);
    }
    const warnings: string[] = [];
    this.removeStaleTemporaries(warnings);
    const recovery = this.recover(warnings);
    if (recovery.contents) store.load(recovery.contents);
    let replayed = 0;
    for (const segment of recovery.segments) replayed += this.replay(segment.path, store, warnings);
    store.prune(this.now());
    const latest = recovery.segments.reduce((highest, segment) => Math.max(highest, segment.number), 0);
    this.segmentNumber = latest;
    // A clean start: the replayed state as one snapshot, then an empty segment after it.
    this.openSegment(latest + 1);
    this.writeSnapshotNow(warnings);
    store.attachJournal(this);
    if (replayed > 0) warnings.push(`state file ${this.path}: ${replayed} committed change(s) recovered from the journal (the previous run did not stop cleanly)`);
    return warnings;
  }

  append(changes: StateChanges, nowMs: number): void {
    if (this.segmentBroken || this.segmentFd === null) this.openSegment(this.segmentNumber + 1);
    const bytes = Buffer.from(encodeChanges(changes, nowMs), 'utf8');
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(this.segmentFd!, bytes, written, bytes.length - written);
      if (this.fsyncMode === 'always') fdatasyncSync(this.segmentFd!);
    } catch (error) {
      // Part of a line may be in the segment: never append after it.
      this.segmentBroken = true;
      throw new StoreUnavailableError('state_file', `cannot append to the state journal ${this.segmentPath(this.segmentNumber)} (${describe(error)})`);
    }
    this.segmentBytes += bytes.length;
    if (this.compaction === null && this.segmentBytes > Math.max(COMPACT_AFTER_BYTES, this.lastSnapshotBytes * 2)) this.startCompaction();
  }

  /** At shutdown: a complete snapshot written synchronously, and the journal closed. */
  close(): void {
    if (this.compaction) this.compaction.cancelled = true;
    const warnings: string[] = [];
    this.openSegment(this.segmentNumber + 1);
    this.writeSnapshotNow(warnings);
    for (const warning of warnings) this.warn(warning);
    if (this.segmentFd !== null) closeSync(this.segmentFd);
    this.segmentFd = null;
    this.store?.attachJournal({ append: () => {} });
  }

  /** Resolves when no compaction is running (tests). */
  async settled(): Promise<void> {
    while (this.compaction) await this.compaction.done;
  }

  private segmentPath(number: number): string {
    return `${this.path}.journal.${number}`;
  }

  private openSegment(number: number): void {
    if (this.segmentFd !== null) {
      try {
        closeSync(this.segmentFd);
      } catch {
        // closing an fd we are done with
      }
    }
    this.segmentFd = null;
    this.segmentNumber = number;
    this.segmentBytes = 0;
    this.segmentBroken = false;
    try {
      this.segmentFd = openSync(this.segmentPath(number), fs.O_WRONLY | fs.O_CREAT | fs.O_APPEND | fs.O_NOFOLLOW, 0o600);
    } catch (error) {
      this.segmentBroken = true;
      throw new StoreUnavailableError('state_file', `cannot open the state journal ${this.segmentPath(number)} (${describe(error)})`);
    }
  }

  private removeStaleTemporaries(warnings: string[]): void {
    const prefix = `.${basename(this.path)}.`;
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
      try {
        unlinkSync(join(this.directory, name));
        warnings.push(`state file: removed ${name}, left by a save that was interrupted`);
      } catch {
        // another process's file, or already gone
      }
    }
  }

  /** Moves an unusable state file aside (never overwritten) and says so without quoting it. */
  private setAside(what: string, warnings: string[]): void {
    const aside = `${this.path}.corrupt-${utcStamp(this.now())}`;
    try {
      renameSync(this.path, aside);
      warnings.push(`state file ${this.path} is not usable (${what}); moved aside to ${aside}; starting without it`);
    } catch (error) {
      warnings.push(`state file ${this.path} is not usable (${what}) and could not be moved aside (${describe(error)}); starting without it`);
    }
  }

  private recover(warnings: string[]): Recovery {
    const segments = this.listSegments();
    let text: string | undefined;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warnings.push(`state file ${this.path} cannot be read (${describe(error)}); starting without it`);
    }
    if (text === undefined) return { contents: undefined, segments, warnings };
    const firstLineEnd = text.indexOf('\n');
    const firstLine = firstLineEnd === -1 ? text : text.slice(0, firstLineEnd);
    let header: unknown;
    try {
      header = JSON.parse(firstLine);
    } catch {
      this.setAside('not JSON', warnings);
      return { contents: undefined, segments, warnings };
    }
    const fields = typeof header === 'object' && header !== null ? (header as Record<string, unknown>) : {};
    if (fields.format !== STATE_FORMAT) {
      this.setAside(`no "format": "${STATE_FORMAT}"`, warnings);
      return { contents: undefined, segments, warnings };
    }
    if (fields.version === 1) return { contents: this.upgradeVersion1(fields, warnings), segments, warnings };
    if (fields.version !== STATE_VERSION || !Number.isSafeInteger(fields.journal)) {
      this.setAside(`unsupported version ${typeof fields.version === 'number' ? fields.version : 'missing'}`, warnings);
      return { contents: undefined, segments, warnings };
    }
    const first = fields.journal as number;
    const contents = this.parseSnapshot(text.slice(firstLineEnd + 1), warnings);
    for (const segment of segments) if (segment.number < first) this.remove(segment.path);
    return { contents, segments: segments.filter((segment) => segment.number >= first), warnings };
  }

  private upgradeVersion1(file: Record<string, unknown>, warnings: string[]): StoreContents | undefined {
    const sessions = parseSessionSnapshot(file.sessions);
    const ids = file.recentIds;
    if (!sessions.ok || !Array.isArray(ids) || !ids.every(isTimedKey)) {
      this.setAside(sessions.ok ? 'recentIds is not a list of [id, ms]' : sessions.error, warnings);
      return undefined;
    }
    return {
      open: sessions.snapshot.open,
      ended: sessions.snapshot.ended.map(([sid, atMs]): [string, number] => [sid, atMs]),
      providerKeys: sessions.snapshot.providerKeys.map(([key, atMs]): [string, number] => [key, atMs]),
      ids: ids as Array<[string, number]>,
    };
  }

  private parseSnapshot(body: string, warnings: string[]): StoreContents {
    const open: SessionRecord[] = [];
    const ended: Array<[string, number]> = [];
    const providerKeys: Array<[string, number]> = [];
    const ids: Array<[string, number]> = [];
    let damaged = 0;
    for (const text of body.split('\n')) {
      if (text === '') continue;
      let entry: unknown;
      try {
        entry = JSON.parse(text);
      } catch {
        damaged++;
        continue;
      }
      if (!Array.isArray(entry)) {
        damaged++;
        continue;
      }
      const [kind, first, second] = entry as unknown[];
      if (kind === 'o' && isSessionRecord(first)) open.push(first);
      else if (kind === 'e' && isTimedKey([first, second])) ended.push([first as string, second as number]);
      else if (kind === 'p' && isTimedKey([first, second])) providerKeys.push([first as string, second as number]);
      else if (kind === 'i' && isTimedKey([first, second])) ids.push([first as string, second as number]);
      else damaged++;
    }
    if (damaged > 0) warnings.push(`state file ${this.path}: ${damaged} damaged line(s) skipped`);
    return { open, ended, providerKeys, ids };
  }

  private listSegments(): Array<{ number: number; path: string }> {
    const prefix = `${basename(this.path)}.journal.`;
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch {
      return [];
    }
    const segments: Array<{ number: number; path: string }> = [];
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const number = Number(name.slice(prefix.length));
      if (Number.isSafeInteger(number) && number > 0) segments.push({ number, path: join(this.directory, name) });
    }
    return segments.sort((a, b) => a.number - b.number);
  }

  /** Applies a segment's changes in order; returns how many it applied. */
  private replay(path: string, store: MemoryStore, warnings: string[]): number {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      warnings.push(`state journal ${path} cannot be read (${describe(error)}); its changes are lost`);
      return 0;
    }
    let applied = 0;
    let damaged = 0;
    const lines = text.split('\n');
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index]!;
      if (line === '') continue;
      const decoded = decodeChanges(line);
      if (decoded === undefined) {
        // The last line of a segment may be torn by a crash or a full disk: it was never acknowledged.
        if (index !== lines.length - 1) damaged++;
        continue;
      }
      store.apply(decoded.changes, decoded.nowMs);
      applied++;
    }
    if (damaged > 0) warnings.push(`state journal ${path}: ${damaged} damaged line(s) skipped`);
    return applied;
  }

  private remove(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }

  private temporaryPath(firstSegment: number): string {
    return join(this.directory, `.${basename(this.path)}.${process.pid}.${firstSegment}.tmp`);
  }

  /** The snapshot's first line: it holds everything committed before segment `firstSegment`. */
  private header(firstSegment: number): string {
    const header: SnapshotHeader = { format: STATE_FORMAT, version: STATE_VERSION, saved_at: new Date(this.now()).toISOString(), journal: firstSegment };
    return `${JSON.stringify(header)}\n`;
  }

  /** The whole snapshot in one go (at start and at stop), then the older segments go. */
  private writeSnapshotNow(warnings: string[]): void {
    if (!this.store) return;
    const first = this.segmentNumber;
    const temporary = this.temporaryPath(first);
    let fd: number | undefined;
    try {
      fd = openSync(temporary, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | fs.O_NOFOLLOW, 0o600);
      let bytes = writeText(fd, this.header(first));
      let batch: string[] = [];
      for (const line of snapshotLines(this.store.contents())) {
        batch.push(line);
        if (batch.length === SNAPSHOT_SLICE) {
          bytes += writeText(fd, `${batch.join('\n')}\n`);
          batch = [];
        }
      }
      if (batch.length > 0) bytes += writeText(fd, `${batch.join('\n')}\n`);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      this.installSnapshot(temporary, bytes, first);
    } catch (error) {
      if (fd !== undefined) closeQuietly(fd);
      this.remove(temporary);
      warnings.push(`state file ${this.path}: cannot write a snapshot (${describe(error)}); the journal keeps the state meanwhile`);
    }
  }

  private installSnapshot(temporary: string, bytes: number, firstSegment: number): void {
    renameSync(temporary, this.path);
    syncDirectory(this.directory);
    this.lastSnapshotBytes = bytes;
    for (const segment of this.listSegments()) if (segment.number < firstSegment) this.remove(segment.path);
  }

  /** A snapshot written a slice per turn; changes go to a new segment meanwhile. */
  private startCompaction(): void {
    if (!this.store) return;
    try {
      this.openSegment(this.segmentNumber + 1);
    } catch (error) {
      this.warn(error instanceof Error ? error.message : String(error));
      return;
    }
    const first = this.segmentNumber;
    const temporary = this.temporaryPath(first);
    const lines = snapshotLines(this.store.contents());
    const state = { cancelled: false, done: Promise.resolve() };
    let fd: number;
    try {
      fd = openSync(temporary, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | fs.O_NOFOLLOW, 0o600);
    } catch (error) {
      this.warn(`state file ${this.path}: cannot start a snapshot (${describe(error)}); will try again`);
      return;
    }
    let bytes = 0;
    state.done = new Promise<void>((resolve) => {
      const fail = (error: unknown): void => {
        closeQuietly(fd);
        this.remove(temporary);
        if (!state.cancelled) this.warn(`state file ${this.path}: snapshot failed (${describe(error)}); the journal keeps the state meanwhile`);
        this.compaction = null;
        resolve();
      };
      const slice = (): void => {
        if (state.cancelled) return fail(new Error('cancelled'));
        try {
          if (bytes === 0) bytes += writeText(fd, this.header(first));
          const sliceStarted = performance.now();
          let more = true;
          while (more && performance.now() - sliceStarted < SLICE_BUDGET_MS) {
            const batch: string[] = [];
            for (let next = lines.next(); !next.done; next = batch.length < SNAPSHOT_SLICE ? lines.next() : { done: true, value: undefined }) batch.push(next.value);
            if (batch.length > 0) bytes += writeText(fd, `${batch.join('\n')}\n`);
            more = batch.length === SNAPSHOT_SLICE;
          }
          if (more) {
            setImmediate(slice);
            return;
          }
        } catch (error) {
          return fail(error);
        }
        // Flushed to disk off the event loop, then renamed into place.
        fsync(fd, (error) => {
          if (error) return fail(error);
          if (state.cancelled) return fail(new Error('cancelled'));
          try {
            closeSync(fd);
            this.installSnapshot(temporary, bytes, first);
          } catch (installError) {
            return fail(installError);
          }
          this.compaction = null;
          resolve();
        });
      };
      setImmediate(slice);
    });
    this.compaction = state;
  }
}

function writeText(fd: number, text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
  return bytes.length;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already reporting the first error
  }
}

/** Makes a rename durable; some file systems refuse fsync on a directory (the rename still happened). */
function syncDirectory(directory: string): void {
  try {
    const fd = openSync(directory, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // see above
  }
}

/** The size of the state file and its journal (check-config, tests). */
export function stateFileBytes(path: string): number {
  let total = 0;
  const prefix = `${basename(path)}.journal.`;
  try {
    total += statSync(path).size;
  } catch {
    // none yet
  }
  try {
    for (const name of readdirSync(dirname(path))) if (name.startsWith(prefix)) total += statSync(join(dirname(path), name)).size;
  } catch {
    // none yet
  }
  return total;
}
