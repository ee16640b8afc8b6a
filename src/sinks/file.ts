// The rotating log file (`--log-file`, docs/contract.md#log-file).
//
// One webhook is one `write(2)` on an O_APPEND descriptor, synchronous, before
// the request is answered: a 200 means the lines are in the file (and on
// disk with `--fsync always`, which adds an fdatasync).
//
// Before every write the sink checks (stat + fstat, ~5 µs) that the path
// still names the file it has open. When it does not — logrotate renamed it,
// someone deleted it, or the whole directory went — it follows the path
// (recreating the directory and the file), without waiting for SIGHUP. So a
// line never goes into a file that was deleted, and never into a file that
// logrotate has moved away for longer than the gap between its rename and
// our next write (SIGHUP from postrotate comes on top of that).
//
// Size rotation, when the next write would pass `--log-max-size`: the file
// is renamed to `<file>.<YYYYMMDDTHHMMSSZ>` (see rotated-files.ts for the
// naming) and a new one opened, only if the path still names our file: one
// that logrotate already moved is not ours to rename, and we simply follow
// the path. Every byte is written once, into one inode, and inodes are only
// ever renamed, so the two rotations racing on the same directory cannot
// lose, duplicate or split a line.
//
// A failed write (ENOSPC after a part of the chunk, EIO, a failed fdatasync)
// is undone: the file is truncated back to its size before the write, so
// neither a partial line nor a line that was answered 503 (and will be
// retried by LiveKit) stays behind. Then SinkWriteError is thrown. Space
// errors keep the descriptor (writing works again as soon as space is
// freed); other errors close it and the next write reopens the path, with a
// backoff (50 ms doubling to 2 s) while reopening keeps failing. A size
// rotation the directory refuses (EACCES, EROFS) fails no write: the file
// grows past the limit, the problem is reported, and it is retried in 10 s.
//
// At start, an unterminated last line (a write cut short when the process
// was killed in the middle of it, never acknowledged) is cut off.
//
// Nothing is ever written through a symbolic link: the log file is opened
// with O_NOFOLLOW, and the path only counts as ours while it is a regular
// file (lstat). Someone who may write to the log directory could otherwise
// replace the file by a link and have the daemon append to any file it can
// write. A link at the path is refused like any failing open (503, /health
// degraded, retried with the backoff), reported once per episode and
// counted in stats.symlinksRefused; it heals by itself once the link is
// gone. Rotated files are handled the same way (rotated-files.ts).

import { closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, mkdirSync, openSync, readSync, renameSync, writeSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RotatedFiles } from './rotated-files.ts';
import { type Sink, type SinkStats, SinkWriteError, errnoCode } from './sink.ts';

export type FsyncPolicy = 'never' | 'always';

export interface FileSinkOptions {
  path: string;
  /** Rotate when the next write would make the file larger than this many bytes. */
  maxSize: number;
  /** Rotated files kept; older ones (of our own naming only) are deleted. */
  keep: number;
  /** Gzip rotated files in the background. */
  compress: boolean;
  /** `always`: fdatasync before `write` returns. */
  fsync: FsyncPolicy;
  /** The clock that names rotated files (tests). */
  now?: () => Date;
  /**
   * Problems that fail no write, for the operator: background compression or
   * deletion of old files failed (retried at the next rotation), or a size
   * rotation was impossible (the file grows past the limit meanwhile).
   * Default: a process warning on stderr.
   */
  reportProblem?: (message: string) => void;
}

const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
const FILE_MODE = 0o640;
const DIRECTORY_MODE = 0o750;
const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 2000;
/** After a refused rotation, write on past the limit for this long before trying again. */
const ROTATION_RETRY_MS = 10_000;
/** How far back from the end an unterminated last line is looked for at start (one line is far smaller). */
const TAIL_WINDOW_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;
/** Errors after which the descriptor is still good: writing works again once space is freed. */
const SPACE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/** Whether `path` is a symbolic link now (false when it is anything else, or cannot be checked). */
function isSymbolicLink(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  } catch {
    return false;
  }
}

function toSinkError(error: unknown, context: string): SinkWriteError {
  if (error instanceof SinkWriteError) return error;
  const code = errnoCode(error);
  return new SinkWriteError(code, `${context}: ${(error as Error)?.message ?? String(error)}`);
}

export class FileSink implements Sink {
  readonly description: string;
  readonly stats: SinkStats = { writeErrors: 0, rotations: 0, symlinksRefused: 0 };
  /** The rotated files (naming, keep, compression). */
  readonly rotated: RotatedFiles;
  private readonly path: string;
  private readonly directory: string;
  private readonly maxSize: number;
  private readonly fsync: boolean;
  private readonly now: () => Date;
  private readonly reportProblem: (message: string) => void;
  /** After a rotation failed (not ENOENT): no new attempt before this time (ms, on `now`). */
  private rotationRetryAt = 0;
  private fd: number | null = null;
  private fdStat: Stats | null = null;
  private closed = false;
  /** Reopen backoff: no attempt before this time (ms, Date.now). */
  private retryAt = 0;
  private retryDelayMs = 0;
  private lastOpenError: SinkWriteError | null = null;
  /** A link at the path was reported; cleared by the next successful open (one report per episode). */
  private symlinkReported = false;
  /** Bytes of an unterminated last line removed at start (a write cut short by a crash or kill -9). */
  readonly droppedPartialBytes: number;
  /** A failed write whose truncation also failed: the bytes past `size` in that file are a partial chunk. */
  private unrepaired: { ino: number; dev: number; size: number } | null = null;

  constructor(options: FileSinkOptions) {
    if (!(options.maxSize > 0)) throw new Error(`--log-max-size: must be more than 0 bytes (got ${options.maxSize})`);
    if (!Number.isInteger(options.keep) || options.keep < 0) throw new Error(`--log-keep: must be a whole number ≥ 0 (got ${options.keep})`);
    this.description = options.path;
    this.path = resolve(options.path);
    this.directory = dirname(this.path);
    this.maxSize = options.maxSize;
    this.fsync = options.fsync === 'always';
    this.now = options.now ?? (() => new Date());
    this.reportProblem = options.reportProblem ?? ((message) => process.emitWarning(message, 'ControlPlaneLogFileWarning'));
    this.rotated = new RotatedFiles({
      path: this.path,
      keep: options.keep,
      compress: options.compress,
      onError: (error) => {
        if ((error as NodeJS.ErrnoException).code === 'ELOOP') this.stats.symlinksRefused++;
        this.reportProblem(error.message);
      },
    });
    try {
      this.openPath();
      this.droppedPartialBytes = this.dropUnterminatedTail();
    } catch (error) {
      this.closeFd();
      if (errnoCode(error) === 'ELOOP') {
        throw new Error(`--log-file ${options.path}: ${(error as Error).message}; give the path of a regular file (or of one to create)`);
      }
      throw new Error(
        `--log-file ${options.path}: cannot open for appending (${(error as Error).message}); ` +
          'the directory must exist or be creatable, and be writable by this user',
      );
    }
    // Finish what an earlier run left: compress its rotated files, enforce keep.
    this.rotated.request();
  }

  write(chunk: Uint8Array): void {
    try {
      if (this.closed) throw new SinkWriteError('EBADF', `${this.description}: the file sink is closed`);
      this.append(chunk);
    } catch (error) {
      this.stats.writeErrors++;
      throw toSinkError(error, `writing ${this.description}`);
    }
  }

  /** SIGHUP: follow the path if it names another file now (logrotate moved ours). Never throws. */
  reopen(): void {
    if (this.closed) return;
    this.retryAt = 0;
    this.retryDelayMs = 0;
    try {
      if (this.fd !== null && this.pathIsOurs()) return;
      this.openPath();
    } catch (error) {
      this.closeFd();
      this.noteOpenFailure(error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== null) {
      try {
        fdatasyncSync(this.fd);
      } catch {
        // Nothing left to answer; the data of every 200 was written already.
      }
    }
    this.closeFd();
  }

  /** Resolves when background compression and cleanup are done (tests, shutdown). */
  idle(): Promise<void> {
    return this.rotated.idle();
  }

  private append(bytes: Uint8Array): void {
    let fd = this.currentFd();
    let before = this.fdStat!.size;
    if (before > 0 && before + bytes.length > this.maxSize && this.now().getTime() >= this.rotationRetryAt) {
      this.rotate();
      fd = this.currentFd();
      before = this.fdStat!.size;
    }
    if (this.unrepaired) ({ bytes, before } = this.repairTail(fd, before, bytes));
    let written = 0;
    try {
      while (written < bytes.length) {
        const count = writeSync(fd, bytes, written, bytes.length - written);
        if (count === 0) throw new SinkWriteError('EIO', `write made no progress after ${written} of ${bytes.length} bytes`);
        written += count;
      }
      if (this.fsync) fdatasyncSync(fd);
    } catch (error) {
      const code = errnoCode(error);
      this.undoAppend(fd, before);
      if (!SPACE_ERRORS.has(code)) this.closeFd();
      throw toSinkError(error, `writing ${this.description} (${written} of ${bytes.length} bytes written, then undone)`);
    }
  }

  /** The descriptor to write to, (re)opened when needed; the path is checked to still name it. */
  private currentFd(): number {
    if (this.fd !== null) {
      try {
        if (this.pathIsOurs()) return this.fd;
      } catch (error) {
        // stat failed for another reason than a missing path (EACCES on the directory, EIO).
        this.closeFd();
        throw toSinkError(error, `checking ${this.description}`);
      }
      this.closeFd();
    }
    if (Date.now() < this.retryAt && this.lastOpenError) {
      throw new SinkWriteError(this.lastOpenError.code, `${this.lastOpenError.message} (next attempt in ${this.retryAt - Date.now()} ms)`);
    }
    try {
      this.openPath();
    } catch (error) {
      throw this.noteOpenFailure(error);
    }
    return this.fd!;
  }

  /**
   * Whether the path still names the open file: false once it is moved
   * away, deleted, or replaced (by another file, or by a symbolic link,
   * even one to our own file).
   */
  private pathIsOurs(): boolean {
    let atPath: Stats | undefined;
    try {
      atPath = lstatSync(this.path, { throwIfNoEntry: false });
    } catch (error) {
      // A file where the directory was: the path names nothing; opening it will say why.
      if (errnoCode(error) === 'ENOTDIR') return false;
      throw error;
    }
    if (!atPath) return false;
    this.fdStat = fstatSync(this.fd!);
    return this.fdStat.nlink > 0 && sameFile(atPath, this.fdStat);
  }

  private openPath(): void {
    let fd: number;
    try {
      fd = this.openNoFollow();
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      // The directory is missing (never made, or removed under us): make it.
      mkdirSync(this.directory, { recursive: true, mode: DIRECTORY_MODE });
      fd = this.openNoFollow();
    }
    let stats: Stats;
    try {
      stats = fstatSync(fd);
      // With fsync always, the new directory entry must be as durable as the data.
      if (this.fsync) this.syncDirectory();
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.closeFd();
    this.fd = fd;
    this.fdStat = stats;
    this.retryAt = 0;
    this.retryDelayMs = 0;
    this.lastOpenError = null;
    this.symlinkReported = false;
  }

  /** open(2) of the path for appending; a symbolic link there is refused (ELOOP) and counted. */
  private openNoFollow(): number {
    try {
      return openSync(this.path, OPEN_FLAGS, FILE_MODE);
    } catch (error) {
      // O_NOFOLLOW answers ELOOP for a link at the path (ELOOP from a loop in the directories above is left as it is).
      if (errnoCode(error) !== 'ELOOP' || !isSymbolicLink(this.path)) throw error;
      this.stats.symlinksRefused++;
      throw new SinkWriteError('ELOOP', `${this.description} is a symbolic link; refusing to write through it`);
    }
  }

  /**
   * A process killed in the middle of a write(2) that spans pages can leave
   * the first part of it (Linux checks for a fatal signal between pages).
   * That chunk was never acknowledged: remove it, back to the last newline,
   * so the file holds whole lines only. Returns the bytes removed.
   */
  private dropUnterminatedTail(): number {
    const size = this.fdStat!.size;
    if (size === 0 || !this.fdStat!.isFile()) return 0;
    const window = Math.min(size, TAIL_WINDOW_BYTES);
    const tail = Buffer.alloc(window);
    const readFd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      readSync(readFd, tail, 0, window, size - window);
    } finally {
      closeSync(readFd);
    }
    if (tail[window - 1] === NEWLINE) return 0;
    const lastNewline = tail.lastIndexOf(NEWLINE);
    // No line end anywhere near the end: not a cut-short chunk of ours; leave it alone.
    if (lastNewline === -1 && window < size) return 0;
    const keep = size - window + lastNewline + 1;
    ftruncateSync(this.fd!, keep);
    this.fdStat = fstatSync(this.fd!);
    return size - keep;
  }

  private noteOpenFailure(error: unknown): SinkWriteError {
    this.retryDelayMs = Math.min(Math.max(this.retryDelayMs * 2, FIRST_RETRY_DELAY_MS), MAX_RETRY_DELAY_MS);
    this.retryAt = Date.now() + this.retryDelayMs;
    this.lastOpenError = toSinkError(error, `opening ${this.description}`);
    if (this.lastOpenError.code === 'ELOOP' && !this.symlinkReported) {
      // The output cannot carry this line: it is the output that is refused.
      this.symlinkReported = true;
      this.reportProblem(`${this.lastOpenError.message}: writes fail (503, /health degraded) until ${this.description} is a regular file again or is removed`);
    }
    return this.lastOpenError;
  }

  /**
   * Renames the full file to its rotated name and opens a fresh one. When
   * the path no longer names our file (logrotate got there first), there is
   * nothing of ours to rename: currentFd() follows the path instead. When
   * the rename itself is refused (permission, read-only directory), the
   * file grows past the limit rather than refusing webhooks, the problem is
   * reported, and the rotation is tried again after ROTATION_RETRY_MS.
   */
  private rotate(): void {
    if (!this.pathIsOurs()) return;
    const target = this.rotated.nextName(this.now());
    try {
      renameSync(this.path, target);
    } catch (error) {
      // Moved away between the check and the rename: the file is rotated already.
      if (errnoCode(error) === 'ENOENT') return;
      this.rotationRetryAt = this.now().getTime() + ROTATION_RETRY_MS;
      this.reportProblem(`cannot rotate ${this.description} to ${target} (${errnoCode(error)}: ${(error as Error).message}); writing on past --log-max-size, next attempt in ${ROTATION_RETRY_MS / 1000} s`);
      return;
    }
    this.rotationRetryAt = 0;
    this.stats.rotations++;
    this.closeFd();
    this.rotated.request();
  }

  private syncDirectory(): void {
    const directoryFd = openSync(this.directory, constants.O_RDONLY);
    try {
      fsyncSync(directoryFd);
    } finally {
      closeSync(directoryFd);
    }
  }

  /** Removes whatever part of a failed write reached the file. */
  private undoAppend(fd: number, size: number): void {
    const stats = this.fdStat;
    try {
      ftruncateSync(fd, size);
      this.unrepaired = null;
    } catch {
      if (stats) this.unrepaired = { ino: stats.ino, dev: stats.dev, size };
    }
  }

  /**
   * Before writing after a failed truncation: try it again; if that still
   * fails, start the chunk with a newline, so the broken tail stays one
   * unparseable line of its own instead of swallowing the first line of
   * this chunk.
   */
  private repairTail(fd: number, size: number, bytes: Uint8Array): { bytes: Uint8Array; before: number } {
    const damage = this.unrepaired!;
    this.unrepaired = null;
    const stats = this.fdStat;
    if (!stats || stats.ino !== damage.ino || stats.dev !== damage.dev || size <= damage.size) return { bytes, before: size };
    try {
      ftruncateSync(fd, damage.size);
      return { bytes, before: damage.size };
    } catch {
      return { bytes: Buffer.concat([Buffer.from('\n'), bytes]), before: size };
    }
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Already unusable; nothing was pending (writes are synchronous).
    }
    this.fd = null;
    this.fdStat = null;
  }
}
