// Taking in a webhook's body, within three bounds:
// - --max-body per request: a larger body is refused 413 and not read;
// - UNVERIFIED_BODY_LIMIT before the token is known valid: real webhooks
//   are a few KiB; a larger body is read on only after its token verifies
//   (signature, key, expiry), so a client without a key can make the daemon
//   hold at most this much per connection;
// - --max-body-memory across all connections: bodies held at once. One
//   captured valid token can be replayed on many connections, each
//   declaring a large body; beyond this budget a request is answered 503
//   with Retry-After (it may succeed later) and its bytes are let go.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DaemonMetrics } from '../metrics.ts';
import { checkTokenWithoutBody, type KeyRing } from '../pipeline/verify.ts';
import type { ConnectionState } from './connections.ts';
import { type ExchangeHandler, WebhookExchange } from './webhook-exchange.ts';

/** Body bytes read before the token is checked (see above). */
export const UNVERIFIED_BODY_LIMIT = 16 * 1024;

export interface BodyIntakeOptions {
  readonly maxBody: number;
  readonly maxBodyMemory: number;
  readonly keys: () => KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
  /** The webhook route: takes complete bodies, answers refusals. */
  readonly route: ExchangeHandler;
  readonly metrics: DaemonMetrics;
  readonly clock: () => number;
}

const ignoreError = (): void => {};

/**
 * The first value of a header, read from rawHeaders: the first is what
 * `request.headers` keeps for Authorization and Content-Length, and a
 * webhook needs only these two, so the headers object (one more object and
 * a step per header, built on first access) is never built for it.
 */
export function firstHeader(request: IncomingMessage, lowerCaseName: string): string | undefined {
  const raw = request.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index]!;
    if (name.length === lowerCaseName.length && (name === lowerCaseName || name.toLowerCase() === lowerCaseName)) return raw[index + 1];
  }
  return undefined;
}

function declaredLength(request: IncomingMessage): number | undefined {
  const header = firstHeader(request, 'content-length');
  if (header === undefined) return undefined;
  const value = Number(header);
  return Number.isFinite(value) ? value : undefined;
}

export class BodyIntake {
  private readonly options: BodyIntakeOptions;
  /** Body bytes held now, across all connections. */
  private heldBytes = 0;
  /** Exchanges started and not done (answered and closed, or abandoned by the client). */
  private open = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(options: BodyIntakeOptions) {
    this.options = options;
  }

  /** Body bytes held in memory now (for /metrics). */
  get bodyBytesHeld(): number {
    return this.heldBytes;
  }

  /** Exchanges not done yet. */
  get inFlight(): number {
    return this.open;
  }

  /** Starts a POST /webhook; its body is handed to the route once complete. */
  start(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean, connection: ConnectionState | undefined, stopping: boolean): void {
    const { route } = this.options;
    const exchange = new WebhookExchange(request, response, performance.now(), this.options.clock(), connection, this.options.insecureSkipVerify, expectsContinue);
    this.open++;
    // `on`, not `once`: a response closes once, and once() wraps the listener in one more object per request.
    response.on('close', () => {
      exchange.responseClosed = true;
      // The client left while its body was still coming: nobody to answer.
      if (exchange.receiving) {
        exchange.move('done');
        this.release(exchange);
        this.counted();
      } else if (exchange.phase === 'answered') {
        this.finish(exchange);
      }
    });

    if (stopping) return route.refuse(exchange, 'shutting_down');
    const declared = declaredLength(request);
    if (declared !== undefined && declared > this.options.maxBody) return this.tooLarge(exchange);
    if (declared !== undefined && this.heldBytes + declared > this.options.maxBodyMemory) return this.overBudget(exchange);

    request.on('data', (chunk: Buffer) => this.take(exchange, chunk));
    request.on('end', () => {
      exchange.bodyComplete = true;
      this.complete(exchange);
    });
    // The client went away mid-body: there is nobody to answer.
    request.on('error', ignoreError);

    // A body announced larger than what is read unverified: check the token before reading any of it.
    if (!exchange.tokenVerified && declared !== undefined && declared > UNVERIFIED_BODY_LIMIT) this.checkToken(exchange);
    else this.resume(exchange);
  }

  /** Lets go of the exchange's body bytes (answered, or handed on and checked). */
  release(exchange: WebhookExchange): void {
    this.heldBytes -= exchange.size;
    exchange.size = 0;
    exchange.chunks.length = 0;
    exchange.body = null;
  }

  /** The answered exchange's response closed: it is done. */
  finish(exchange: WebhookExchange): void {
    if (!exchange.can('done')) return;
    exchange.move('done');
    this.counted();
  }

  /** Resolves when every exchange is done. */
  idle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private counted(): void {
    this.open--;
    if (this.open === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private take(exchange: WebhookExchange, chunk: Buffer): void {
    if (!exchange.receiving) return;
    exchange.size += chunk.length;
    this.heldBytes += chunk.length;
    if (exchange.size > this.options.maxBody) return this.tooLarge(exchange);
    if (this.heldBytes > this.options.maxBodyMemory) return this.overBudget(exchange);
    exchange.chunks.push(chunk);
    if (!exchange.tokenVerified && exchange.phase === 'reading' && exchange.size > UNVERIFIED_BODY_LIMIT) this.checkToken(exchange);
  }

  private resume(exchange: WebhookExchange): void {
    if (exchange.expectsContinue) {
      exchange.expectsContinue = false;
      exchange.response.writeContinue();
    }
    exchange.request.resume();
  }

  /** Pauses the body and checks the token before reading more of it. */
  private checkToken(exchange: WebhookExchange): void {
    exchange.move('checking_token');
    exchange.request.pause();
    const { keys, clockToleranceMs } = this.options;
    const verdict = checkTokenWithoutBody(firstHeader(exchange.request, 'authorization'), keys(), this.options.clock(), clockToleranceMs);
    Promise.resolve(verdict).then(
      (result) => {
        if (exchange.phase !== 'checking_token') return;
        if (!result.ok) return this.options.route.refuse(exchange, result.reason);
        exchange.tokenVerified = true;
        exchange.move('reading');
        this.resume(exchange);
        this.complete(exchange);
      },
      // Let the pipeline meet the same problem and answer 500.
      () => {
        if (exchange.phase !== 'checking_token') return;
        exchange.tokenVerified = true;
        exchange.move('reading');
        this.resume(exchange);
        this.complete(exchange);
      },
    );
  }

  /** Once the body is complete (and a large one's token checked): queued for this turn's processing. */
  private complete(exchange: WebhookExchange): void {
    if (exchange.phase !== 'reading' || !exchange.bodyComplete) return;
    const { chunks } = exchange;
    exchange.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, exchange.size);
    chunks.length = 0;
    exchange.authorization = firstHeader(exchange.request, 'authorization');
    this.options.route.enqueue(exchange);
  }

  private tooLarge(exchange: WebhookExchange): void {
    // Stop reading: the rest of the body is not buffered, and the connection is closed after the answer.
    exchange.request.pause();
    this.options.route.refuse(exchange, 'body_too_large', `larger than --max-body ${this.options.maxBody} bytes`);
  }

  private overBudget(exchange: WebhookExchange): void {
    exchange.request.pause();
    this.options.metrics.bodyMemoryRefusals.inc();
    this.options.route.refuse(exchange, 'too_much_body_in_memory', `request bodies held would pass --max-body-memory ${this.options.maxBodyMemory} bytes`);
  }
}
