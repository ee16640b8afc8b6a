// The output stage: where accepted webhooks become lines in the output and
// state in the store, in one direction (docs/architecture.md):
//
//   read the state ─▶ plan each webhook ─▶ write all their lines ─▶ commit ─▶ acknowledge
//
// Webhooks are handled in groups: everything submitted since the last group
// started is planned together and written with one write (under a burst,
// one write per webhook was the largest cost after HTTP itself), then its
// changes are committed with one store operation. One group is in flight at
// a time, so each webhook is planned against exactly the state its
// predecessors left, and a group that waits for a shared store or a slow
// reader gathers the next one behind it.
//
// Every webhook of a group is settled exactly once:
// - `written`: its lines are in the output and its state is committed;
// - `output_failed`: none of the group's lines are in the output and
//   nothing is committed (LiveKit's retry is processed as a first delivery);
// - `store_failed`: the state could not be read or committed; if the lines
//   were already written, LiveKit's retry writes them again with the same
//   webhook_id (at least once, never zero);
// - `internal_error`: a bug in planning or committing; that webhook only
//   where it can be told apart.
// The caller answers 200 only for `written`.

import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../obs/schema.ts';
import { GroupState, type PlannedWebhook, planWebhook, stateKeysOf } from '../pipeline/plan.ts';
import { SinkWriteError } from '../sinks/sink.ts';
import { type StateStore, type StateView, StoreUnavailableError } from '../store/store.ts';
import type { LineWriter, WriteResult } from './line-writer.ts';

/** How one submitted webhook ended. */
export type Delivery =
  | { readonly kind: 'written'; readonly planned: PlannedWebhook }
  | { readonly kind: 'output_failed'; readonly error: SinkWriteError }
  | { readonly kind: 'store_failed'; readonly error: StoreUnavailableError }
  | { readonly kind: 'internal_error'; readonly error: unknown };

export interface OutputOptions {
  readonly writer: LineWriter;
  readonly store: StateStore;
  /** Whether the store is shared: only then are the keys a group reads worked out for it. */
  readonly storeReadsKeys: boolean;
  /** Runs a group soon, once the current turn's submissions are in (the daemon passes setImmediate). */
  readonly schedule: (run: () => void) => void;
  /** Hears of each failed write once, however many webhooks it carried. */
  readonly onWriteFailed?: (error: SinkWriteError, webhooks: number) => void;
  readonly onStoreFailed?: (error: StoreUnavailableError, webhooks: number) => void;
  /**
   * The webhooks just acknowledged, in the order their lines were written:
   * the first line has seq `firstSeq`, every line the emission time `ts`
   * (call metrics, forwarding).
   */
  readonly onAcknowledged?: (planned: readonly PlannedWebhook[], firstSeq: number, ts: string) => void;
  readonly clock?: () => number;
}

interface Submission {
  readonly event: WebhookEvent;
  readonly receivedAtMs: number;
  readonly settle: (delivery: Delivery) => void;
}

const isPromise = <T>(value: T | Promise<T>): value is Promise<T> => value instanceof Promise;

function asStoreError(error: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError ? error : new StoreUnavailableError('error', error instanceof Error ? error.message : String(error));
}

export class Output {
  private queue: Submission[] = [];
  private inFlight = false;
  /** The group in flight is waiting for the output to take the rest of its lines. */
  private writing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private readonly options: OutputOptions;
  private readonly clock: () => number;
  private readonly scheduledRun = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(options: OutputOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  /** Webhooks submitted and not settled yet. */
  get pending(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  /**
   * Queues a verified, decoded webhook; `settle` is called exactly once.
   * While the output is stalled (a reader that stopped reading), it is
   * settled at once as output_failed instead of waiting behind it.
   */
  submit(event: WebhookEvent, receivedAtMs: number, settle: (delivery: Delivery) => void): void {
    if (this.writing) {
      settle({ kind: 'output_failed', error: new SinkWriteError('EAGAIN', 'the output is not taking lines (reader stalled)') });
      return;
    }
    this.queue.push({ event, receivedAtMs, settle });
    if (!this.scheduled && !this.inFlight) {
      this.scheduled = true;
      this.options.schedule(this.scheduledRun);
    }
  }

  /** Starts a group with everything queued, unless one is in flight (it starts the next itself). */
  flush(): void {
    if (this.inFlight || this.queue.length === 0) {
      if (!this.inFlight) this.wakeIdle();
      return;
    }
    const group = this.queue;
    this.queue = [];
    this.inFlight = true;
    let keys;
    let view: StateView | Promise<StateView>;
    try {
      keys = this.options.storeReadsKeys ? stateKeysOf(group.map((submission) => submission.event)) : { eventIds: [], roomSids: [], providerKeys: [] };
      view = this.options.store.read(keys, this.clock());
    } catch (error) {
      return this.readFailed(group, error);
    }
    if (isPromise(view)) {
      view.then(
        (ready) => this.planAndWrite(group, ready),
        (error: unknown) => this.readFailed(group, error),
      );
    } else {
      this.planAndWrite(group, view);
    }
  }

  private readFailed(group: readonly Submission[], error: unknown): void {
    const storeError = asStoreError(error);
    this.options.onStoreFailed?.(storeError, group.length);
    this.finish(group, { kind: 'store_failed', error: storeError });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.inFlight && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private planAndWrite(group: readonly Submission[], view: StateView): void {
    const state = new GroupState(view);
    const planned: Array<PlannedWebhook | undefined> = [];
    const deliveries: Array<Delivery | undefined> = [];
    const lines: ObsEvent[] = [];
    for (let index = 0; index < group.length; index++) {
      const submission = group[index]!;
      try {
        const plan = planWebhook(submission.event, state, submission.receivedAtMs);
        planned.push(plan);
        deliveries.push(undefined);
        for (let at = 0; at < plan.lines.length; at++) lines.push(plan.lines[at]!);
      } catch (error) {
        // A bug in mapping this event: it alone is answered 500 (its changes were never recorded).
        planned.push(undefined);
        deliveries.push({ kind: 'internal_error', error });
      }
    }

    let written: WriteResult | Promise<WriteResult>;
    const writer = this.options.writer;
    try {
      written = writer.write(lines);
    } catch (error) {
      return this.abandonAndFinish(group, view, deliveries, { kind: 'internal_error', error });
    }
    // Read now: no other write can come between this one and these two.
    const position = { firstSeq: writer.lastFirstSeq, ts: writer.lastTs };
    if (isPromise(written)) {
      this.writing = true;
      written.then(
        (result) => {
          this.writing = false;
          this.afterWrite(group, view, state, planned, deliveries, result, position);
        },
        (error: unknown) => {
          this.writing = false;
          this.abandonAndFinish(group, view, deliveries, { kind: 'internal_error', error });
        },
      );
    } else {
      this.afterWrite(group, view, state, planned, deliveries, written, position);
    }
  }

  private afterWrite(
    group: readonly Submission[],
    view: StateView,
    state: GroupState,
    planned: ReadonlyArray<PlannedWebhook | undefined>,
    deliveries: Array<Delivery | undefined>,
    result: WriteResult,
    position: { readonly firstSeq: number; readonly ts: string },
  ): void {
    if (result !== null) {
      this.options.onWriteFailed?.(result, group.length);
      return this.abandonAndFinish(group, view, deliveries, { kind: 'output_failed', error: result });
    }
    let committed: void | Promise<void>;
    try {
      // What arrived meanwhile is the next group: a shared store reads its keys in the same round trip as this commit.
      const next = this.options.storeReadsKeys && this.queue.length > 0 ? stateKeysOf(this.queue.map((submission) => submission.event)) : undefined;
      committed = this.options.store.commit(view, state, this.commitTime(group), next);
    } catch (error) {
      return this.committed(group, planned, deliveries, position, error);
    }
    if (isPromise(committed)) {
      committed.then(
        () => this.committed(group, planned, deliveries, position, undefined),
        (error: unknown) => this.committed(group, planned, deliveries, position, error),
      );
    } else {
      this.committed(group, planned, deliveries, position, undefined);
    }
  }

  private committed(
    group: readonly Submission[],
    planned: ReadonlyArray<PlannedWebhook | undefined>,
    deliveries: Array<Delivery | undefined>,
    position: { readonly firstSeq: number; readonly ts: string },
    error: unknown,
  ): void {
    if (error !== undefined) {
      const storeError = asStoreError(error);
      this.options.onStoreFailed?.(storeError, group.length);
      return this.finish(group, { kind: 'store_failed', error: storeError }, deliveries);
    }
    const acknowledged: PlannedWebhook[] = [];
    for (let index = 0; index < group.length; index++) {
      const plan = planned[index];
      if (deliveries[index] === undefined && plan !== undefined) {
        deliveries[index] = { kind: 'written', planned: plan };
        acknowledged.push(plan);
      }
    }
    try {
      if (acknowledged.length > 0) this.options.onAcknowledged?.(acknowledged, position.firstSeq, position.ts);
    } finally {
      this.finish(group, undefined, deliveries);
    }
  }

  /** The commit's time: the latest arrival in the group (expiry and caps are applied as of then). */
  private commitTime(group: readonly Submission[]): number {
    let latest = 0;
    for (const submission of group) if (submission.receivedAtMs > latest) latest = submission.receivedAtMs;
    return latest;
  }

  private abandonAndFinish(group: readonly Submission[], view: StateView, deliveries: Array<Delivery | undefined>, failure: Delivery): void {
    let abandoned: void | Promise<void>;
    try {
      abandoned = this.options.store.abandon(view);
    } catch {
      abandoned = undefined;
    }
    // The webhooks are answered now; a shared store's leases are released (or expire) in the background.
    if (isPromise(abandoned)) abandoned.catch(() => {});
    this.finish(group, failure, deliveries);
  }

  /** Settles every member not yet settled with `fallback`, then starts the next group. */
  private finish(group: readonly Submission[], fallback: Delivery | undefined, deliveries?: ReadonlyArray<Delivery | undefined>): void {
    this.inFlight = false;
    for (let index = 0; index < group.length; index++) {
      const delivery = deliveries?.[index] ?? fallback;
      try {
        group[index]!.settle(delivery ?? { kind: 'internal_error', error: new Error('webhook left unsettled') });
      } catch {
        // An answer that throws must not keep the others from being answered.
      }
    }
    if (this.queue.length > 0) {
      if (!this.scheduled) {
        this.scheduled = true;
        this.options.schedule(this.scheduledRun);
      }
    } else {
      this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    if (this.idleWaiters.length === 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
