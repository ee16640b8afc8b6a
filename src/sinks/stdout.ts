// Standard output, for journald (`journalctl -o cat | jq`) or a shell pipe.
//
// Writes go straight to fd 1, never through process.stdout: the stream would
// buffer asynchronously and a 200 could be sent for lines still in memory.
// A pipe or socket is written without blocking (nonblocking-fd.ts): a reader
// that stops reading makes writes fail at once (503) instead of freezing the
// daemon, and writing resumes by itself when the reader does.

import { NonBlockingWriter } from './nonblocking-fd.ts';
import { errnoCode, type Sink, type SinkStats, SinkWriteError } from './sink.ts';

const STDOUT_FD = 1;

export class StdoutSink implements Sink {
  readonly description = 'stdout';
  readonly stats: SinkStats = { writeErrors: 0, rotations: 0, symlinksRefused: 0 };
  private readonly output: NonBlockingWriter;

  constructor(fd: number = STDOUT_FD) {
    this.output = new NonBlockingWriter(fd);
  }

  write(chunk: Uint8Array): void | Promise<void> {
    try {
      const pending = this.output.write(chunk);
      if (pending === undefined) return;
      return pending.catch((error: unknown) => {
        this.stats.writeErrors++;
        throw error instanceof SinkWriteError ? error : new SinkWriteError(errnoCode(error), String(error));
      });
    } catch (error) {
      this.stats.writeErrors++;
      throw error instanceof SinkWriteError ? error : new SinkWriteError(errnoCode(error), String(error));
    }
  }

  reopen(): void {
    // Nothing to reopen: stdout belongs to whoever started us.
  }

  close(): void {
    // fd 1 stays open until exit; nothing is buffered but an unfinished write, which libuv completes if it can.
  }
}
