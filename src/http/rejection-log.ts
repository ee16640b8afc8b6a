// Refused requests: counted by reason, and logged as webhook.rejected lines
// rate-limited per reason (src/obs/rejection-limit.ts), so a flood of bad
// requests cannot drown the output; real webhooks are never rate-limited.

import type { DaemonMetrics } from '../metrics.ts';
import { RejectionLimiter } from '../obs/rejection-limit.ts';
import type { ObsEvent } from '../obs/schema.ts';
import type { LineWriter } from '../output/line-writer.ts';

export class RejectionLog {
  private readonly limiter = new RejectionLimiter();
  private readonly writer: LineWriter;
  private readonly metrics: DaemonMetrics;
  private readonly clock: () => number;
  private readonly reportProblem: (message: string) => void;

  constructor(writer: LineWriter, metrics: DaemonMetrics, clock: () => number, reportProblem: (message: string) => void) {
    this.writer = writer;
    this.metrics = metrics;
    this.clock = clock;
    this.reportProblem = reportProblem;
  }

  /** Counts a refusal and writes its lines, unless its reason's window is full. */
  log(reason: string, lines: readonly ObsEvent[]): void {
    this.metrics.rejections.inc({ reason });
    const { allowed, summaries } = this.limiter.admit(reason, this.clock());
    if (!allowed) this.metrics.rejectedLinesSuppressed.inc({ reason });
    this.writeLines(allowed ? [...summaries, ...lines] : summaries);
  }

  /** Counts a refusal whose line cannot be written (the output itself failed). */
  count(reason: string): void {
    this.metrics.rejections.inc({ reason });
  }

  /** Writes the summary lines of rate-limit windows that have closed (all of them at shutdown). */
  flushSummaries(all = false): void {
    this.writeLines(this.limiter.closeWindows(all ? Infinity : this.clock()));
  }

  /** Lines that answer nothing by themselves: a failure is counted and reported, never retried. */
  private writeLines(lines: readonly ObsEvent[]): void {
    if (lines.length === 0) return;
    this.writer.writeUnanswered(lines, (failure) => this.failed(failure.code, failure.message));
  }

  private failed(code: string, message: string): void {
    this.metrics.outputErrors.inc({ code });
    this.reportProblem(`output write failed (${code}): ${message}`);
  }
}
