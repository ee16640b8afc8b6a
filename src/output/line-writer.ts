// Turns OBS-00 events into lines and hands them to the sink: assigns `ts`
// and the per-process `seq`, encodes the lines it is given (one webhook's,
// or a group of webhooks' from group-commit.ts) into one chunk, and writes
// it with one call. When the write fails, the sequence
// numbers are given back, so `seq` in the output has a gap only where lines
// really went missing downstream.

import { formatTimestamp, LineEncoder, type ObsEvent, type Redactor } from '../obs/schema.ts';
import { type Sink, SinkWriteError, errnoCode } from '../sinks/sink.ts';

export class LineWriter {
  private nextSeq = 1;
  private readonly sink: Sink;
  private readonly redact: Redactor | undefined;
  private readonly clock: () => number;
  private readonly encoder: LineEncoder;
  /** The error of the last failed write, until a write succeeds (drives /health). */
  lastError: SinkWriteError | null = null;

  /** `priorityPrefix`: the sink is stdout and stdout is the journal (LineEncoder). */
  constructor(sink: Sink, options: { redact?: Redactor; clock?: () => number; priorityPrefix?: boolean } = {}) {
    this.sink = sink;
    this.redact = options.redact;
    this.clock = options.clock ?? Date.now;
    this.encoder = new LineEncoder({ priorityPrefix: options.priorityPrefix });
  }

  get healthy(): boolean {
    return this.lastError === null;
  }

  get description(): string {
    return this.sink.description;
  }

  /** Size-based rotations the sink performed (for /metrics). */
  get rotations(): number {
    return this.sink.stats.rotations;
  }

  /** Lines written so far (the last `seq` used). */
  get linesWritten(): number {
    return this.nextSeq - 1;
  }

  /** Writes all `events` as one chunk. Returns null on success, the error otherwise. */
  write(events: readonly ObsEvent[]): SinkWriteError | null {
    if (events.length === 0) return null;
    // One emission time for the whole chunk, formatted once.
    const ts = formatTimestamp(this.clock());
    const encoder = this.encoder;
    encoder.clear();
    let seq = this.nextSeq;
    for (let index = 0; index < events.length; index++) encoder.append(events[index]!, seq++, ts, this.redact);
    try {
      this.sink.write(encoder.bytes());
    } catch (error) {
      this.lastError = error instanceof SinkWriteError ? error : new SinkWriteError(errnoCode(error), String(error));
      return this.lastError;
    }
    this.nextSeq = seq;
    this.lastError = null;
    return null;
  }

  reopen(): void {
    this.sink.reopen();
  }

  close(): void {
    this.sink.close();
  }
}
