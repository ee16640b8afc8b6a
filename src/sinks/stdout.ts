// Standard output, for journald (`journalctl -o cat | jq`) or a shell pipe.
//
// Writes go straight to fd 1 with writeSync, never through process.stdout:
// the stream would buffer asynchronously and a 200 could be sent for lines
// still in memory. When fd 1 is a non-blocking pipe that is momentarily
// full (EAGAIN), we wait briefly and retry instead of spinning or dropping;
// a pipe that stays full past the deadline fails the write (503).

import { writeSync } from 'node:fs';
import { type Sink, type SinkStats, SinkWriteError, errnoCode } from './sink.ts';

const STDOUT_FD = 1;
/** How long one write (a group of webhooks) may wait for a full pipe to drain before they are answered 503. */
const FULL_PIPE_DEADLINE_MS = 2000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Writes all of `bytes` to `fd`, retrying short writes and EAGAIN until the
 * deadline. Throws SinkWriteError on any other error or when the deadline passes.
 */
export function writeAllSync(fd: number, bytes: Uint8Array, deadlineMs: number, now: () => number = Date.now): void {
  let offset = 0;
  let giveUpAt = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      const code = errnoCode(error);
      if (code !== 'EAGAIN') {
        throw new SinkWriteError(code, `write failed after ${offset} of ${bytes.length} bytes: ${code}`);
      }
      if (giveUpAt === 0) giveUpAt = now() + deadlineMs;
      if (now() >= giveUpAt) {
        throw new SinkWriteError('EAGAIN', `output stayed full for ${deadlineMs} ms (${offset} of ${bytes.length} bytes written)`);
      }
      sleepSync(1);
    }
  }
}

export class StdoutSink implements Sink {
  readonly description = 'stdout';
  readonly stats: SinkStats = { writeErrors: 0, rotations: 0, symlinksRefused: 0 };
  private readonly fd: number;

  constructor(fd: number = STDOUT_FD) {
    this.fd = fd;
  }

  write(chunk: Uint8Array): void {
    try {
      writeAllSync(this.fd, chunk, FULL_PIPE_DEADLINE_MS);
    } catch (error) {
      this.stats.writeErrors++;
      throw error instanceof SinkWriteError ? error : new SinkWriteError(errnoCode(error), String(error));
    }
  }

  reopen(): void {
    // Nothing to reopen: stdout belongs to whoever started us.
  }

  close(): void {
    // fd 1 stays open until exit; writes were synchronous, nothing is buffered.
  }
}
