// The one interface every output implements (Vector's lesson: a sink is a
// small interface; stdout and file are two implementations, chosen at start).
//
// A sink receives the encoded lines of one webhook, or of a group of
// webhooks, as a single chunk of bytes; it does not know what a line means.
// It never acknowledges bytes it did not write: `write` throws
// `SinkWriteError` when none of the chunk reached the output, returns when
// all of it did, and returns a promise when part of it did and the rest
// will follow as soon as the output takes it (a pipe whose reader is slow):
// the requests are answered only when that promise settles.

export interface SinkStats {
  /** Writes that failed (each one answered 503). */
  writeErrors: number;
  /** Size-based rotations performed by the sink itself. */
  rotations: number;
  /**
   * Opens refused because the name was a symbolic link (a file sink never
   * writes through one, for the log file or any file it creates beside it).
   */
  symlinksRefused: number;
}

export interface Sink {
  /** `stdout` or the file path, as printed in `control_plane.started`. */
  readonly description: string;
  readonly stats: SinkStats;
  /**
   * Appends `chunk` (whole `\n`-terminated lines, UTF-8) in one write.
   * Throws SinkWriteError when nothing was written. Returns a promise when
   * only part was written so far; it resolves once the rest is written (or
   * rejects with SinkWriteError if the output is closed meanwhile). The
   * bytes are the caller's reusable buffer: a sink that keeps a remainder
   * must copy it.
   */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Reopens the output (SIGHUP, for logrotate). Never throws: a failure surfaces on the next write. */
  reopen(): void;
  /** Flushes and releases the output at shutdown. Never throws. */
  close(): void;
}

/** A write that did not reach the output; `code` is the errno name (ENOSPC, EPIPE, ...) when known. */
export class SinkWriteError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SinkWriteError';
    this.code = code;
  }
}

export function errnoCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EIO';
}
