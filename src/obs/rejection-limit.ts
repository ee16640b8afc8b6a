// Rate limit for the lines of rejected requests (docs/contract.md#http-answers): a flood of
// forged or broken requests must not drown the log or fill the disk. Each
// reason gets REJECTED_LINES_PER_WINDOW lines per window, and all reasons
// together at most REJECTED_LINES_TOTAL_PER_WINDOW (a flood that cycles
// through every reason stays bounded too); beyond that the lines are
// counted, not written, and one `webhook.rejected_suppressed` line per
// reason carries the count when its window closes. Real (verified) webhooks
// never pass through here. Pure: time is passed in.

import type { ObsEvent } from './schema.ts';
import { suppressedLine } from './webhook-lines.ts';

export const REJECTED_LINES_PER_WINDOW = 20;
export const REJECTED_LINES_TOTAL_PER_WINDOW = 100;
export const REJECTION_WINDOW_MS = 10_000;

interface ReasonWindow {
  startedAtMs: number;
  written: number;
  suppressed: number;
}

export class RejectionLimiter {
  private readonly windows = new Map<string, ReasonWindow>();
  private total: { startedAtMs: number; written: number } | undefined;

  constructor(
    private readonly linesPerWindow = REJECTED_LINES_PER_WINDOW,
    private readonly windowMs = REJECTION_WINDOW_MS,
    private readonly totalLinesPerWindow = REJECTED_LINES_TOTAL_PER_WINDOW,
  ) {}

  /**
   * Whether the lines of one more rejection with `reason` may be written now.
   * Also returns the summary lines of windows that have closed, to be
   * written first.
   */
  admit(reason: string, nowMs: number): { readonly allowed: boolean; readonly summaries: ObsEvent[] } {
    const summaries = this.closeWindows(nowMs);
    let window = this.windows.get(reason);
    if (!window) {
      window = { startedAtMs: nowMs, written: 0, suppressed: 0 };
      this.windows.set(reason, window);
    }
    if (this.total === undefined || !this.isOpen(this.total.startedAtMs, nowMs)) this.total = { startedAtMs: nowMs, written: 0 };
    if (window.written < this.linesPerWindow && this.total.written < this.totalLinesPerWindow) {
      window.written++;
      this.total.written++;
      return { allowed: true, summaries };
    }
    window.suppressed++;
    return { allowed: false, summaries };
  }

  /** Summary lines for every window that ended before `nowMs` with something suppressed; forgets ended windows. */
  closeWindows(nowMs: number): ObsEvent[] {
    const summaries: ObsEvent[] = [];
    for (const [reason, window] of this.windows) {
      if (this.isOpen(window.startedAtMs, nowMs)) continue;
      if (window.suppressed > 0) summaries.push(suppressedLine(reason, window.suppressed));
      this.windows.delete(reason);
    }
    return summaries;
  }

  /** A window is open for `windowMs` after it started; a clock that stepped back closes it rather than stalling it. */
  private isOpen(startedAtMs: number, nowMs: number): boolean {
    return nowMs >= startedAtMs && nowMs - startedAtMs < this.windowMs;
  }
}
