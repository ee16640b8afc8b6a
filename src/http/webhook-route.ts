// POST /webhook: the body is taken in (body-intake.ts), then each turn's
// complete webhooks go down the pipeline in one direction
// (docs/architecture.md):
//
//   check (verify + decode) ─▶ output (plan, write, commit) ─▶ answer
//
// A refused webhook is answered as soon as its check says so; an accepted
// one when the output stage settles it: 200 only once its lines are written
// and its state committed. The status of every refusal comes from the
// reason table (reasons.ts).

import { performance } from 'node:perf_hooks';
import type { DaemonMetrics } from '../metrics.ts';
import { RECEIVED, rejectedLine } from '../obs/webhook-lines.ts';
import type { Delivery, Output } from '../output/output.ts';
import { type CheckedWebhook, checkWebhook } from '../pipeline/check.ts';
import type { KeyRing } from '../pipeline/verify.ts';
import { ACCEPTED_ANSWER, answerConstant, answerJson, DUPLICATE_ANSWER } from './answers.ts';
import type { BodyIntake } from './body-intake.ts';
import { type Reason, REFUSALS, refusalHeaders } from './reasons.ts';
import type { RejectionLog } from './rejection-log.ts';
import type { WebhookExchange } from './webhook-exchange.ts';

export interface WebhookRouteOptions {
  /** Read for every webhook, so a SIGHUP can swap the keys. */
  readonly keys: () => KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
  readonly output: Output;
  readonly metrics: DaemonMetrics;
  readonly rejections: RejectionLog;
  readonly reportProblem: (message: string) => void;
  readonly clock: () => number;
}

const describeError = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error));

export class WebhookRoute {
  private readonly options: WebhookRouteOptions;
  private intake!: BodyIntake;
  /**
   * Webhooks whose body is complete, waiting for this turn's reads to end.
   * They are then checked together, then handed to the output in arrival
   * order, and the output writes them as one group: running each stage back
   * to back rather than between socket reads keeps its code and data hot.
   */
  private ready: WebhookExchange[] = [];
  private readonly processReady = (): void => this.processTurn();
  /** Closing: every answer closes its connection. */
  stopping = false;

  constructor(options: WebhookRouteOptions) {
    this.options = options;
  }

  /** The intake hands complete bodies over here (set once, at wiring). */
  attach(intake: BodyIntake): void {
    this.intake = intake;
  }

  /** A complete body: processed after this turn's reads. */
  enqueue(exchange: WebhookExchange): void {
    exchange.move('queued');
    if (exchange.connection) exchange.connection.busy++;
    this.ready.push(exchange);
    if (this.ready.length === 1) setImmediate(this.processReady);
  }

  /** Processes whatever is queued now (the turn's work, or at shutdown). */
  processTurn(): void {
    const batch = this.ready;
    if (batch.length === 0) return;
    this.ready = [];
    const { keys, insecureSkipVerify, clockToleranceMs, output } = this.options;
    const checkOptions = { keys: keys(), insecureSkipVerify, clockToleranceMs };
    // Checked all together first (no state involved), then handed to the output in arrival order.
    const checked: Array<CheckedWebhook | Promise<CheckedWebhook> | { readonly error: unknown }> = [];
    for (let index = 0; index < batch.length; index++) {
      const exchange = batch[index]!;
      exchange.move('processing');
      try {
        checked.push(checkWebhook(exchange.authorization, exchange.body!, exchange.receivedAtMs, checkOptions));
      } catch (error) {
        checked.push({ error });
      }
    }
    for (let index = 0; index < batch.length; index++) {
      const exchange = batch[index]!;
      const result = checked[index]!;
      if (result instanceof Promise) {
        result.then(
          (resolved) => this.afterCheck(exchange, resolved),
          (error: unknown) => this.failed(exchange, error),
        );
      } else if ('error' in result) {
        this.failed(exchange, result.error);
      } else {
        this.afterCheck(exchange, result);
      }
    }
    // The turn's group is written in this turn, not the next.
    output.flush();
  }

  private afterCheck(exchange: WebhookExchange, checked: CheckedWebhook): void {
    if (!checked.ok) {
      this.refuse(exchange, checked.reason, checked.detail);
      return;
    }
    const livekitEvent = checked.event.event;
    this.options.output.submit(checked.event, exchange.receivedAtMs, (delivery) => this.delivered(exchange, delivery, livekitEvent));
  }

  /** The output settled an accepted webhook: 200 only for `written`. */
  private delivered(exchange: WebhookExchange, delivery: Delivery, livekitEvent: string): void {
    const { metrics, rejections } = this.options;
    try {
      switch (delivery.kind) {
        case 'written': {
          const { planned } = delivery;
          const outcome = planned.duplicate ? 'duplicate' : 'accepted';
          if (planned.duplicate) metrics.duplicates.inc();
          metrics.webhooks.inc({ event: livekitEvent, outcome });
          // First deliveries only: a redelivery would count the same event twice.
          if (!planned.duplicate && planned.createdAtMs > 0) metrics.deliveryDelay.observe(Math.max(0, (this.options.clock() - planned.createdAtMs) / 1000));
          answerConstant(exchange.response, planned.duplicate ? DUPLICATE_ANSWER : ACCEPTED_ANSWER, this.stopping);
          metrics.requestDuration.observe((performance.now() - exchange.startedAt) / 1000, { outcome });
          break;
        }
        case 'output_failed':
          // The output cannot carry a line about itself failing: counted, answered, not logged.
          metrics.webhooks.inc({ event: livekitEvent, outcome: 'output_error' });
          rejections.count('output_unavailable');
          this.answerRefusal(exchange, 'output_unavailable', 'output_error');
          break;
        case 'store_failed':
          metrics.webhooks.inc({ event: livekitEvent, outcome: 'store_error' });
          rejections.log('store_unavailable', [RECEIVED, rejectedLine(REFUSALS.store_unavailable.status, 'store_unavailable', delivery.error.message.slice(0, 200))]);
          this.answerRefusal(exchange, 'store_unavailable', 'store_error');
          break;
        case 'internal_error':
          this.options.reportProblem(`internal error while writing or committing a webhook: ${describeError(delivery.error)}`);
          metrics.webhooks.inc({ event: livekitEvent, outcome: 'rejected' });
          rejections.log('internal_error', [RECEIVED, rejectedLine(500, 'internal_error')]);
          this.answerRefusal(exchange, 'internal_error', 'rejected');
          break;
      }
    } finally {
      this.answered(exchange);
    }
  }

  /** A bug, not bad input: answer 500 so LiveKit retries, and say so. */
  private failed(exchange: WebhookExchange, error: unknown): void {
    this.options.reportProblem(`internal error while processing a webhook: ${describeError(error)}`);
    this.refuse(exchange, 'internal_error');
  }

  /**
   * Refuses a webhook (the reason's status from the table), logs it
   * (rate-limited per reason) and answers it. Used for a refusal at any
   * phase: while its body is read, or after its check.
   */
  refuse(exchange: WebhookExchange, reason: Reason, detail?: string, livekitEvent = 'none'): void {
    const refusal = REFUSALS[reason];
    this.options.metrics.webhooks.inc({ event: livekitEvent, outcome: 'rejected' });
    if (refusal.logged) this.options.rejections.log(reason, [RECEIVED, rejectedLine(refusal.status, reason, detail)]);
    else this.options.rejections.count(reason);
    this.answerRefusal(exchange, reason, 'rejected');
    this.answered(exchange);
  }

  private answerRefusal(exchange: WebhookExchange, reason: Reason, outcome: string): void {
    // A refusal before the whole body was read closes the connection: the rest of the body is not read.
    const closeAfter = this.stopping || exchange.receiving;
    answerJson(exchange.response, REFUSALS[reason].status, { error: reason }, refusalHeaders(reason), closeAfter);
    this.options.metrics.requestDuration.observe((performance.now() - exchange.startedAt) / 1000, { outcome });
  }

  private answered(exchange: WebhookExchange): void {
    if (exchange.phase === 'processing' && exchange.connection) exchange.connection.busy--;
    exchange.move('answered');
    this.intake.release(exchange);
    if (exchange.responseClosed) this.intake.finish(exchange);
  }
}
