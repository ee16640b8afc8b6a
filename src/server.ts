// node:http shell around the pipeline: routes, body limit, timeouts,
// answers, and the write-before-answer rule. Nothing clever happens here;
// the decisions are made in src/webhook/pipeline.ts.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { DaemonMetrics } from './metrics.ts';
import { RejectionLimiter } from './obs/rejection-limit.ts';
import type { ObsEvent } from './obs/schema.ts';
import type { LineWriter } from './sinks/line-writer.ts';
import { type PipelineContext, processWebhook, RECEIVED, rejectedLine, type WebhookOutcome } from './webhook/pipeline.ts';

export const WEBHOOK_PATH = '/webhook';
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 15_000;
/** LiveKit drops events that waited 30 s; a short Retry-After keeps retries inside that. */
export const RETRY_AFTER_SECONDS = 2;

const HEALTHY_BODY = '{"status":"ok","component":"control_plane"}';

export interface ServerOptions {
  readonly pipeline: PipelineContext;
  readonly writer: LineWriter;
  readonly metrics: DaemonMetrics;
  readonly maxBody: number;
  readonly maxConnections: number;
  /** Where to report things the output itself cannot carry (the output failing). */
  readonly reportProblem: (message: string) => void;
  readonly clock?: () => number;
}

export class WebhookServer {
  readonly server: Server;
  private readonly options: ServerOptions;
  private readonly clock: () => number;
  private readonly limiter = new RejectionLimiter();
  private inFlight = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: ServerOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.server = createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        // Timeouts are enforced by a periodic sweep (30 s by default): make
        // it fine-grained enough that the 10 s header limit means 10 s.
        connectionsCheckingInterval: 1000,
      },
      (request, response) => this.route(request, response),
    );
    this.server.maxConnections = options.maxConnections;
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string') return reject(new Error('no TCP address'));
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes every connection. */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    this.server.closeAllConnections();
    await closed;
  }

  /** Writes summary lines of rate-limit windows that have closed (called periodically). */
  flushRejectionSummaries(): void {
    this.writeLines(this.limiter.closeWindows(this.clock()));
  }

  private route(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?', 1)[0];
    const method = request.method ?? 'GET';
    if (path === WEBHOOK_PATH) {
      if (method === 'POST') return this.receiveWebhook(request, response);
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'POST' });
    }
    if (path === '/health') {
      if (method === 'GET' || method === 'HEAD') return this.health(response, method === 'HEAD');
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'GET, HEAD' });
    }
    if (path === '/metrics') {
      if (method === 'GET') return this.answer(response, 200, this.options.metrics.registry.render(), { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'GET' });
    }
    this.refuse(request, response, 404, 'not_found');
  }

  private health(response: ServerResponse, headOnly: boolean): void {
    const error = this.options.writer.lastError;
    const body = error === null ? HEALTHY_BODY : JSON.stringify({ status: 'degraded', component: 'control_plane', error: error.code });
    this.answer(response, error === null ? 200 : 503, headOnly ? '' : body, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  }

  private receiveWebhook(request: IncomingMessage, response: ServerResponse): void {
    const startedAt = performance.now();
    const receivedAtMs = this.clock();
    const { maxBody } = this.options;
    this.inFlight++;
    response.once('close', () => this.requestDone());

    if (this.stopping) {
      return this.finishWebhook(response, startedAt, 503, { error: 'shutting_down' }, [], undefined, 'shutting_down');
    }
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) return this.tooLarge(request, response, startedAt);

    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBody) {
        refused = true;
        chunks.length = 0;
        this.tooLarge(request, response, startedAt);
        return;
      }
      chunks.push(chunk);
    });
    request.on('error', () => {
      // The client went away mid-body: there is nobody to answer.
    });
    request.on('end', () => {
      if (refused) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      processWebhook({ authorization: request.headers.authorization, body, receivedAtMs }, this.options.pipeline).then(
        (outcome) => this.deliver(response, startedAt, outcome),
        (error: unknown) => {
          // A bug, not bad input: answer 500 so LiveKit retries, and say so.
          this.options.reportProblem(`internal error while processing a webhook: ${error instanceof Error ? error.stack : String(error)}`);
          this.finishWebhook(response, startedAt, 500, { error: 'internal_error' }, [RECEIVED, rejectedLine(500, 'internal_error')], undefined, 'internal_error');
        },
      );
    });
  }

  private tooLarge(request: IncomingMessage, response: ServerResponse, startedAt: number): void {
    // Stop reading: the rest of the body is not buffered, and the
    // connection is closed after the answer.
    request.pause();
    response.shouldKeepAlive = false;
    this.finishWebhook(response, startedAt, 413, { error: 'body_too_large' }, [RECEIVED, rejectedLine(413, 'body_too_large', `larger than --max-body ${this.options.maxBody} bytes`)], undefined, 'body_too_large');
  }

  /** Writes the outcome's lines, then answers: 200 only if the lines are in the output. */
  private deliver(response: ServerResponse, startedAt: number, outcome: WebhookOutcome): void {
    const metrics = this.options.metrics;
    const event = outcome.livekitEvent ?? 'unverified';
    if (outcome.status !== 200) {
      return this.finishWebhook(response, startedAt, outcome.status, { error: outcome.reason }, outcome.events, event, outcome.reason!);
    }
    const failure = this.options.writer.write(outcome.events);
    if (failure) {
      metrics.outputErrors.inc({ code: failure.code });
      metrics.webhooks.inc({ event, outcome: 'output_error' });
      this.options.reportProblem(`output write failed (${failure.code}): ${failure.message}; answering 503`);
      this.answerJson(response, 503, { error: 'output_unavailable' }, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
      metrics.requestDuration.observe((performance.now() - startedAt) / 1000);
      return;
    }
    outcome.commit();
    if (outcome.duplicate) metrics.duplicates.inc();
    metrics.webhooks.inc({ event, outcome: outcome.duplicate ? 'duplicate' : 'accepted' });
    if (outcome.createdAtMs && outcome.createdAtMs > 0) metrics.deliveryDelay.observe(Math.max(0, (this.clock() - outcome.createdAtMs) / 1000));
    this.answerJson(response, 200, { status: outcome.duplicate ? 'duplicate' : 'accepted' });
    metrics.requestDuration.observe((performance.now() - startedAt) / 1000);
  }

  /** Answers a refused webhook request and logs it (rate-limited per reason). */
  private finishWebhook(response: ServerResponse, startedAt: number, status: number, body: object, lines: readonly ObsEvent[], event: string | undefined, reason: string): void {
    this.options.metrics.webhooks.inc({ event: event ?? 'unverified', outcome: 'rejected' });
    this.logRejection(reason, lines);
    const headers: Record<string, string> = status === 503 || status === 500 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {};
    this.answerJson(response, status, body, headers);
    this.options.metrics.requestDuration.observe((performance.now() - startedAt) / 1000);
  }

  /** Refuses a request outside the webhook path (404/405): answered and logged, rate-limited. */
  private refuse(request: IncomingMessage, response: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
    request.resume();
    this.logRejection(reason, [rejectedLine(status, reason, `${request.method} ${String(request.url).slice(0, 100)}`)]);
    this.answerJson(response, status, { error: reason }, headers);
  }

  private logRejection(reason: string, lines: readonly ObsEvent[]): void {
    this.options.metrics.rejections.inc({ reason });
    const { allowed, summaries } = this.limiter.admit(reason, this.clock());
    if (!allowed) this.options.metrics.rejectedLinesSuppressed.inc({ reason });
    this.writeLines(allowed ? [...summaries, ...lines] : summaries);
  }

  /** Writes lines that answer nothing by themselves (rejections, summaries); a failure is only reported. */
  private writeLines(lines: readonly ObsEvent[]): void {
    if (lines.length === 0) return;
    const failure = this.options.writer.write(lines);
    if (failure) {
      this.options.metrics.outputErrors.inc({ code: failure.code });
      this.options.reportProblem(`output write failed (${failure.code}): ${failure.message}`);
    }
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const [status, reason] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout']
      : error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large']
      : error.code === 'ECONNRESET' ? [0, 'connection_reset']
      : [400, 'malformed_http_request'];
    if (status !== 0) this.logRejection(reason, [rejectedLine(status, reason)]);
    if (status !== 0 && socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      const body = JSON.stringify({ error: reason });
      socket.end(`HTTP/1.1 ${status} ${reason.replace(/_/g, ' ')}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroySoon();
  }

  private answerJson(response: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
    this.answer(response, status, JSON.stringify(body), { 'Content-Type': 'application/json', ...headers });
  }

  private answer(response: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    if (response.headersSent || response.destroyed) return;
    if (this.stopping) response.shouldKeepAlive = false;
    response.writeHead(status, headers);
    response.end(body);
  }

  private requestDone(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }
}
