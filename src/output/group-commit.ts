// Group commit: the webhooks accepted in one turn of the event loop are
// written to the output with one write, then committed and answered
// together, instead of one write per webhook (under a burst, one write
// system call per webhook was the largest single cost after HTTP itself).
//
// Every guarantee of the one-at-a-time path holds:
// - 200 only after the webhook's lines are in the output. The lines of one
//   webhook stay contiguous, in the order the webhooks were mapped.
// - A failed write changes no state: every webhook of the group is answered
//   503 and nothing is committed (LineWriter gives the `seq`s back), so
//   LiveKit's retries are processed as first deliveries.
// - Each webhook is mapped against the state its predecessors left: before
//   an event is mapped, the pipeline hands over its state keys (its id, its
//   room's session, its egress or ingress: stateKeysOf), and if a pending
//   webhook touches any of them the group is written out first. Webhooks
//   with no key in common cannot affect each other's lines, so the output
//   is the one-at-a-time output; test/webhook/group-commit.test.ts checks
//   that over random streams, groups and failures.
// - Caps and expiry are applied once per group (commitTogether), so no
//   commit in a group evicts state another member was mapped against; the
//   caps can be exceeded by at most one group until it is committed.
//
// No I/O of its own: the output, the commit and the scheduling are passed in.

import type { ObsEvent } from '../obs/schema.ts';
import type { SinkWriteError } from '../sinks/sink.ts';
import type { SessionTracker, WebhookOutcome } from '../pipeline/pipeline.ts';

export interface LineOutput {
  /** Writes the lines as one chunk: null when they are all in the output, the error otherwise. */
  write(events: readonly ObsEvent[]): SinkWriteError | null;
}

/**
 * How a pending webhook ended: `written` (its lines are in the output and it
 * is committed), `output_failed` (nothing written, nothing committed), or
 * `internal_error` (encoding or committing threw: a bug; answered 500).
 */
export type GroupResult = { readonly kind: 'written' } | { readonly kind: 'output_failed'; readonly error: SinkWriteError } | { readonly kind: 'internal_error'; readonly error: unknown };

const WRITTEN: GroupResult = Object.freeze({ kind: 'written' });

export class GroupCommit {
  private outcomes: WebhookOutcome[] = [];
  private settlers: Array<(result: GroupResult) => void> = [];
  /** The state keys of the pending webhooks. */
  private readonly pendingKeys = new Set<string>();
  private flushScheduled = false;
  private readonly output: LineOutput;
  private readonly sessions: Pick<SessionTracker, 'commitTogether'>;
  private readonly schedule: (flush: () => void) => void;
  private readonly onWriteFailed: (error: SinkWriteError, webhooks: number) => void;
  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /**
   * `schedule` runs the flush once the current turn's ready work is done
   * (the server passes setImmediate); `onWriteFailed` hears of each failed
   * write once, however many webhooks it carried.
   */
  constructor(
    output: LineOutput,
    sessions: Pick<SessionTracker, 'commitTogether'>,
    schedule: (flush: () => void) => void,
    onWriteFailed: (error: SinkWriteError, webhooks: number) => void = () => {},
  ) {
    this.output = output;
    this.sessions = sessions;
    this.schedule = schedule;
    this.onWriteFailed = onWriteFailed;
  }

  /** Webhooks waiting for the next write. */
  get pending(): number {
    return this.outcomes.length;
  }

  /** PipelineContext.beforeMapping: writes the group out first when a pending webhook touches any of `stateKeys`. */
  beforeMapping(stateKeys: readonly string[]): void {
    if (this.pendingKeys.size === 0) return;
    for (let index = 0; index < stateKeys.length; index++) {
      if (this.pendingKeys.has(stateKeys[index]!)) return this.flush();
    }
  }

  /** Queues an accepted (200) outcome; `settle` is called exactly once, when the group is written or has failed. */
  add(outcome: WebhookOutcome, settle: (result: GroupResult) => void): void {
    this.outcomes.push(outcome);
    this.settlers.push(settle);
    for (let index = 0; index < outcome.stateKeys.length; index++) this.pendingKeys.add(outcome.stateKeys[index]!);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(this.scheduledFlush);
    }
  }

  /** Writes the pending webhooks with one write, commits them in order, and settles each. */
  flush(): void {
    const outcomes = this.outcomes;
    const settlers = this.settlers;
    if (outcomes.length === 0) return;
    this.outcomes = [];
    this.settlers = [];
    this.pendingKeys.clear();

    const results: GroupResult[] = [];
    try {
      const error = this.output.write(outcomes.length === 1 ? outcomes[0]!.events : outcomes.flatMap((outcome) => outcome.events));
      if (error !== null) {
        this.onWriteFailed(error, outcomes.length);
        const failed: GroupResult = { kind: 'output_failed', error };
        for (let index = 0; index < outcomes.length; index++) results.push(failed);
      } else {
        this.sessions.commitTogether(() => {
          for (const outcome of outcomes) {
            try {
              outcome.commit();
              results.push(WRITTEN);
            } catch (commitError) {
              results.push({ kind: 'internal_error', error: commitError });
            }
          }
        });
      }
    } catch (error) {
      // A bug in encoding or in the store's pruning: whoever is not settled yet gets it.
      while (results.length < outcomes.length) results.push({ kind: 'internal_error', error });
    }
    for (let index = 0; index < settlers.length; index++) settlers[index]!(results[index]!);
  }
}
