// Turns OBS-00 events into bytes and hands them to the sink: assigns `ts`
// and the per-process `seq`, encodes the lines it is given (one webhook's,
// a group of webhooks', or a process line) into one chunk, and writes it
// with one call. When nothing of a chunk was written, its sequence numbers
// are given back, so `seq` in the output has a gap only where lines really
// went missing downstream.

import { formatTimestamp, LineEncoder, type ObsEvent, type Redactor } from '../obs/schema.ts';
import { errnoCode, type Sink, SinkWriteError } from '../sinks/sink.ts';

/** What a write came to: null when the lines are in the output, the error when none of them are. */
export type WriteResult = SinkWriteError | null;

export interface LineWriterOptions {
  readonly redact?: Redactor;
  readonly clock?: () => number;
  /** Start each line with its syslog priority (`<6>`), for journald (stdout only). */
  readonly priorityPrefix?: boolean;
  /** Added to every line after `session_id` (several instances sharing a store). */
  readonly instance?: string;
}

export class LineWriter {
  private nextSeq = 1;
  private readonly sink: Sink;
  private readonly redact: Redactor | undefined;
  private readonly clock: () => number;
  private readonly encoder: LineEncoder;
  /** Encodes single lines exactly as written, minus the journald prefix (forwarding). */
  private readonly standalone: LineEncoder;
  /** The first seq and the ts of the last chunk that reached the output (in whole or in part). */
  lastFirstSeq = 0;
  lastTs = '';
  /** A chunk partly written and waiting for the output to take the rest. */
  private unfinished: Promise<void> | null = null;
  /** The error of the last failed write, until a write succeeds (drives /health). */
  lastError: SinkWriteError | null = null;

  constructor(sink: Sink, options: LineWriterOptions = {}) {
    this.sink = sink;
    this.redact = options.redact;
    this.clock = options.clock ?? Date.now;
    this.encoder = new LineEncoder({ priorityPrefix: options.priorityPrefix ?? false, instance: options.instance });
    this.standalone = new LineEncoder({ instance: options.instance });
  }

  get healthy(): boolean {
    return this.lastError === null && this.unfinished === null;
  }

  /** Why the output is not healthy (the errno name: ENOSPC, ELOOP, EAGAIN for a stalled reader), or null. */
  get problem(): string | null {
    if (this.unfinished !== null) return 'EAGAIN';
    return this.lastError === null ? null : this.lastError.code;
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

  /**
   * Writes all `events` as one chunk. Returns null when they are in the
   * output, the error when none of them are, or a promise of either when
   * the output took only part of the chunk so far. While such a chunk is
   * unfinished, every other write fails at once (the output is stalled):
   * nothing may come between the two halves of a line.
   */
  write(events: readonly ObsEvent[]): WriteResult | Promise<WriteResult> {
    if (events.length === 0) return null;
    if (this.unfinished !== null) return new SinkWriteError('EAGAIN', 'the output has not taken the previous lines yet (reader stalled)');
    // One emission time for the whole chunk, formatted once.
    const ts = formatTimestamp(this.clock());
    const encoder = this.encoder;
    encoder.clear();
    let seq = this.nextSeq;
    for (let index = 0; index < events.length; index++) encoder.append(events[index]!, seq++, ts, this.redact);
    let pending: void | Promise<void>;
    try {
      pending = this.sink.write(encoder.bytes());
    } catch (error) {
      return this.failed(error);
    }
    // Part of the chunk is in the output: its seqs are spent either way.
    this.lastFirstSeq = this.nextSeq;
    this.lastTs = ts;
    this.nextSeq = seq;
    if (pending === undefined) {
      this.lastError = null;
      return null;
    }
    this.unfinished = pending;
    return pending.then(
      () => {
        this.unfinished = null;
        this.lastError = null;
        return null;
      },
      (error: unknown) => {
        this.unfinished = null;
        return this.failed(error);
      },
    );
  }

  /**
   * Writes lines that answer no request (process lines, rejections,
   * warnings): nothing waits for them, and a failure, now or once an
   * unfinished write gives up, is handed to `onFailure`, never retried.
   */
  writeUnanswered(events: readonly ObsEvent[], onFailure: (error: SinkWriteError) => void): void {
    const result = this.write(events);
    if (result instanceof Promise) {
      void result.then((failure) => failure && onFailure(failure));
    } else if (result !== null) {
      onFailure(result);
    }
  }

  /** One line as it was written with `seq` and `ts` (same fields, redaction and instance), as JSON without its newline. */
  encodeWritten(event: ObsEvent, seq: number, ts: string): string {
    this.standalone.clear();
    this.standalone.append(event, seq, ts, this.redact);
    const bytes = this.standalone.bytes();
    return bytes.toString('utf8', 0, bytes.length - 1);
  }

  private failed(error: unknown): SinkWriteError {
    this.lastError = error instanceof SinkWriteError ? error : new SinkWriteError(errnoCode(error), String(error));
    return this.lastError;
  }

  reopen(): void {
    this.sink.reopen();
  }

  close(): void {
    this.sink.close();
  }
}
