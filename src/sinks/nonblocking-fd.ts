// Writing to an inherited descriptor that may be a pipe or a socket (stdout
// under systemd is a socket to journald; `| jq` is a pipe) without ever
// blocking the event loop. Such a descriptor is usually blocking: a reader
// that stops reading (journald stalled, a FIFO nobody reads) would freeze
// the whole daemon in write(2), /health and SIGTERM included.
//
// So a pipe or socket is switched to non-blocking mode (libuv does it when
// it opens the descriptor as a stream), and each chunk is written with one
// write(2):
// - all of it taken: done;
// - none of it taken (EAGAIN): SinkWriteError, nothing is in the output;
// - part of it taken: the rest must follow before anything else (a line is
//   never split), so it is handed to libuv, which writes it when the reader
//   makes room; the returned promise settles then. The owner writes nothing
//   else meanwhile (LineWriter refuses other writes while one is unfinished).
// A regular file, a character device or a terminal is written as before:
// they do not stall on a reader.

import { fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { errnoCode, SinkWriteError } from './sink.ts';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Writes all of `bytes` to a descriptor that does not stall on a reader,
 * retrying short writes and EAGAIN until the deadline. Throws SinkWriteError
 * on any other error or when the deadline passes.
 */
export function writeAllSync(fd: number, bytes: Uint8Array, deadlineMs: number, now: () => number = Date.now): void {
  let offset = 0;
  let giveUpAt = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      const code = errnoCode(error);
      if (code !== 'EAGAIN') throw new SinkWriteError(code, `write failed after ${offset} of ${bytes.length} bytes: ${code}`);
      if (giveUpAt === 0) giveUpAt = now() + deadlineMs;
      if (now() >= giveUpAt) throw new SinkWriteError('EAGAIN', `output stayed full for ${deadlineMs} ms (${offset} of ${bytes.length} bytes written)`);
      sleepSync(1);
    }
  }
}

/** Whether `fd` is a pipe (FIFO) or a socket: the kinds whose reader can stall us. */
export function isStreamDescriptor(fd: number): boolean {
  try {
    const stats = fstatSync(fd);
    return stats.isFIFO() || stats.isSocket();
  } catch {
    return false;
  }
}

/** How long a terminal or other blocking descriptor may stay full before a write fails. */
const BLOCKING_DEADLINE_MS = 2000;

export class NonBlockingWriter {
  readonly fd: number;
  /** libuv's stream over the descriptor (pipes and sockets only); it made the descriptor non-blocking. */
  private readonly stream: Socket | null;

  constructor(fd: number) {
    this.fd = fd;
    if (isStreamDescriptor(fd)) {
      const stream = new Socket({ fd, readable: false, writable: true });
      // It must not keep the process alive, nor crash it: errors surface on the next write.
      stream.unref();
      stream.on('error', () => {});
      this.stream = stream;
    } else {
      this.stream = null;
    }
  }

  /** Whether writes can be left unfinished (the descriptor is a pipe or socket). */
  get nonBlocking(): boolean {
    return this.stream !== null;
  }

  /**
   * One write: returns when all of `bytes` is out, throws SinkWriteError when
   * none is, returns a promise when part is and the rest follows.
   */
  write(bytes: Uint8Array): void | Promise<void> {
    if (this.stream === null) return writeAllSync(this.fd, bytes, BLOCKING_DEADLINE_MS);
    let written: number;
    try {
      written = writeSync(this.fd, bytes, 0, bytes.length);
    } catch (error) {
      const code = errnoCode(error);
      throw new SinkWriteError(code, code === 'EAGAIN' ? 'the reader is not taking the output (pipe or socket full)' : `write failed: ${code}`);
    }
    if (written === bytes.length) return;
    // The caller's buffer is reused after we return: keep a copy of the rest.
    const rest = Buffer.from(bytes.subarray(written));
    const stream = this.stream;
    return new Promise<void>((resolve, reject) => {
      // Held by a pending write only: the process may still exit at shutdown.
      stream.ref();
      stream.write(rest, (error) => {
        stream.unref();
        if (error) reject(new SinkWriteError(errnoCode(error), `write failed after ${written} of ${bytes.length} bytes: ${errnoCode(error)}`));
        else resolve();
      });
    });
  }
}
