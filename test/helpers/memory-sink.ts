// An in-memory Sink for tests: keeps what was written, as text, and fails
// (ENOSPC) on demand. It copies each chunk, as a real sink must: the bytes
// are LineWriter's reusable buffer.

import { type Sink, SinkWriteError } from '../../src/sinks/sink.ts';

export class MemorySink implements Sink {
  readonly description = 'memory';
  readonly stats = { writeErrors: 0, rotations: 0, symlinksRefused: 0 };
  /** The text of each successful write. */
  readonly chunks: string[] = [];
  /** Calls of write(), failed ones included. */
  writes = 0;
  /** How many of the next writes fail. */
  failNext = 0;
  private readonly failing: () => boolean;

  /** `failing` is asked before each write (after failNext): true fails it. */
  constructor(failing: () => boolean = () => false) {
    this.failing = failing;
  }

  write(chunk: Uint8Array): void {
    this.writes++;
    const fail = this.failNext > 0 || this.failing();
    if (this.failNext > 0) this.failNext--;
    if (fail) {
      this.stats.writeErrors++;
      throw new SinkWriteError('ENOSPC', 'no space left on device (test)');
    }
    this.chunks.push(Buffer.from(chunk).toString('utf8'));
  }

  get text(): string {
    return this.chunks.join('');
  }

  lines(): Array<Record<string, unknown>> {
    return this.text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  reopen(): void {}
  close(): void {}
}
