// node:http shell around the pipeline: routes, limits, timeouts, answers,
// and the write-before-answer rule. Under load it works in turns of the
// event loop: the webhooks whose bodies completed in one turn are processed
// together right after it (processReady), and the accepted ones are written
// with one write and then answered (src/output/group-commit.ts). The decisions
// about a webhook are made in src/pipeline/pipeline.ts; what lives here is
// how the daemon stays standing under hostile traffic (SPEC §2):
//
// - Every request gets a JSON answer and at most one `webhook.rejected`
//   line, also malformed HTTP, CONNECT, timeouts and refused connections;
//   rejection lines are rate-limited per reason (src/obs/rejection-limit.ts).
// - A client that has not proved it holds a key cannot make the daemon hold
//   more than UNVERIFIED_BODY_LIMIT bytes of its body: past that, the token
//   is checked before another byte is read.
// - --max-connections bounds the sockets held open. When it is reached, the
//   connection that has waited longest without a request in processing (an
//   idle keep-alive socket, or a client trickling headers or a body) is closed
//   to make room, so stalled clients cannot lock real webhooks out; slow
//   ones are also cut off by the header (10 s) and request (30 s) timeouts.

import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, type DaemonMetrics } from '../metrics.ts';
import { RejectionLimiter } from '../obs/rejection-limit.ts';
import type { ObsEvent } from '../obs/schema.ts';
import type { LineWriter } from '../output/line-writer.ts';
import { DECODE_REASONS } from '../pipeline/decode.ts';
import { GroupCommit, type GroupResult } from '../output/group-commit.ts';
import { type CheckedWebhook, checkWebhookNow, mapChecked, type PipelineContext, RECEIVED, rejectedLine, type WebhookOutcome, type WebhookRequest } from '../pipeline/pipeline.ts';
import { VERIFY_REASONS, verifyWebhook } from '../pipeline/verify.ts';

export const WEBHOOK_PATH = '/webhook';
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 15_000;
/** How often Node sweeps connections for the two timeouts above (its default, 30 s, would stretch 10 s to 40 s). */
export const TIMEOUT_SWEEP_MS = 1_000;
/** LiveKit drops events that waited 30 s; a short Retry-After keeps retries inside that. */
export const RETRY_AFTER_SECONDS = 2;
/**
 * Body bytes read before the token is checked. Real webhooks are a few KiB,
 * so they are verified once, by the pipeline; a larger body is read on only
 * after its token verifies (signature, key, expiry), so an attacker without a
 * key can make the daemon buffer at most this much per connection.
 */
export const UNVERIFIED_BODY_LIMIT = 16 * 1024;

/** How many of the oldest idle connections eviction looks at for one that has sent something. */
const EVICTION_SCAN = 64;

/** Every reason the server itself answers with (besides verify and decode reasons). */
export const SERVER_REASONS = [
  'body_too_large',
  'not_found',
  'method_not_allowed',
  'expectation_failed',
  'request_timeout',
  'headers_too_large',
  'malformed_http_request',
  'too_many_connections',
  'shutting_down',
  'output_unavailable',
  'internal_error',
] as const;

/** A JSON answer whose bytes never change, with its headers (as answerJson writes them). */
interface ConstantAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

function constantAnswer(status: number, body: object): ConstantAnswer {
  const text = JSON.stringify(body);
  return Object.freeze({ status, body: text, headers: Object.freeze({ 'Content-Length': String(Buffer.byteLength(text)), 'Content-Type': 'application/json' }) });
}

const ACCEPTED_ANSWER = constantAnswer(200, { status: 'accepted' });
const DUPLICATE_ANSWER = constantAnswer(200, { status: 'duplicate' });

const HEALTHY_BODY = '{"status":"ok","component":"control_plane"}';
const EMPTY_BODY = new Uint8Array(0);

export interface ServerOptions {
  readonly pipeline: PipelineContext;
  readonly writer: LineWriter;
  readonly metrics: DaemonMetrics;
  readonly maxBody: number;
  readonly maxConnections: number;
  /** Where to report things the output itself cannot carry (the output failing). */
  readonly reportProblem: (message: string) => void;
  readonly clock?: () => number;
  /** false when /metrics has its own listener (--metrics-port): this port then answers /metrics 404. */
  readonly servesMetrics?: boolean;
}

/** One POST /webhook, from its headers to its answer. */
interface WebhookExchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly startedAt: number;
  readonly receivedAtMs: number;
  readonly connection: ConnectionState | undefined;
  /** `Expect: 100-continue` not answered yet. */
  expectsContinue: boolean;
  readonly chunks: Buffer[];
  size: number;
  bodyComplete: boolean;
  /** Answered or handed to the pipeline: nothing more to read for. */
  settled: boolean;
  token: 'unchecked' | 'checking' | 'valid';
  /** Handed to the pipeline and not answered yet. */
  processing: boolean;
  responseClosed: boolean;
  /** Counted out of inFlight. */
  finished: boolean;
  /** What the pipeline is given, once the body is complete. */
  webhook: WebhookRequest | null;
}

const ignoreError = (): void => {};

/** Per open connection: how many of its requests are being processed (verified, written, answered). */
interface ConnectionState {
  busy: number;
}

/** The path of a request target: origin-form `/webhook?x`, or absolute-form `http://host/webhook` (RFC 9112 §3.2.2). */
export function requestPath(target: string): string {
  let path = target;
  if (!target.startsWith('/')) {
    const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i.exec(target);
    if (absolute) path = absolute[1] || '/';
  }
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}

/** A complete HTTP/1.1 answer for a socket that has no ServerResponse to write it with. */
function rawAnswer(status: number, reason: string, extraHeaders = ''): string {
  const body = JSON.stringify({ error: reason });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`
  );
}

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

export class WebhookServer {
  readonly server: Server;
  private readonly options: ServerOptions;
  private readonly clock: () => number;
  private readonly limiter = new RejectionLimiter();
  /** Accepted webhooks waiting for this turn's one write (src/output/group-commit.ts). */
  private readonly group: GroupCommit;
  /** options.pipeline, plus the group commit's hook. */
  private readonly pipeline: PipelineContext;
  /** Open sockets, least recently active first (a request starting moves its socket to the end). */
  private readonly connections = new Map<Socket, ConnectionState>();
  /** Sockets answered 503 at the connection cap: whatever they send is ignored until they close. */
  private readonly refusedSockets = new WeakSet<Socket>();
  /** Sockets whose HTTP stream broke (malformed, timed out): answered once, then closed. */
  private readonly brokenSockets = new WeakSet<Socket>();
  /**
   * Webhooks whose body is complete, waiting for this turn's reads to end.
   * They are then processed stage by stage (all verified and decoded, then
   * all mapped in arrival order), written as one group and answered:
   * running each stage back to back rather than between socket reads keeps
   * its code and data hot (same-run bench: main-thread CPU per webhook
   * 44.5 -> 37.5-39 us, p99 -5 to -10%).
   */
  private ready: WebhookExchange[] = [];
  private readonly processReady = (): void => {
    const batch = this.ready;
    this.ready = [];
    const pipeline = this.pipeline;
    // Verification and decoding for all of them first (no state involved), then mapping in arrival order.
    const checked: Array<CheckedWebhook | Promise<CheckedWebhook> | { readonly error: unknown }> = [];
    for (let index = 0; index < batch.length; index++) {
      try {
        checked.push(checkWebhookNow(batch[index]!.webhook!, pipeline));
      } catch (error) {
        checked.push({ error });
      }
    }
    for (let index = 0; index < batch.length; index++) {
      const exchange = batch[index]!;
      const result = checked[index]!;
      try {
        if ('error' in result) throw result.error;
        if (result instanceof Promise) {
          result.then((resolved) => mapChecked(resolved, exchange.webhook!, pipeline)).then(
            (outcome) => this.deliver(exchange, outcome),
            (error: unknown) => this.processingFailed(exchange, error),
          );
          continue;
        }
        this.deliver(exchange, mapChecked(result, exchange.webhook!, pipeline));
      } catch (error) {
        this.processingFailed(exchange, error);
      }
    }
    // Their group is written in this turn, not the next.
    this.group.flush();
  };
  private inFlight = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: ServerOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.group = new GroupCommit(options.writer, options.pipeline.sessions, setImmediate, (error, webhooks) => {
      options.metrics.outputErrors.inc({ code: error.code });
      options.reportProblem(`output write failed (${error.code}): ${error.message}; answering 503 to ${webhooks} webhook(s)`);
    });
    this.pipeline = { ...options.pipeline, beforeMapping: (stateKeys) => this.group.beforeMapping(stateKeys) };
    this.server = createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: TIMEOUT_SWEEP_MS,
        // Node answers a Host-less HTTP/1.1 request with a bare 400 of its
        // own (no JSON, no line); let it reach the router like any other.
        requireHostHeader: false,
      },
      (request, response) => this.route(request, response, false),
    );
    // Registered after Node's own connection listener: the socket already has its parser.
    this.server.on('connection', (socket: Socket) => this.admitConnection(socket));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(error, socket as Socket));
    // Without these listeners Node closes a CONNECT silently and answers
    // `Expect: 100-continue` and other expectations by itself.
    this.server.on('connect', (request: IncomingMessage, socket: Duplex) => this.onConnect(request, socket as Socket));
    this.server.on('checkContinue', (request, response) => this.route(request, response, true));
    this.server.on('checkExpectation', (request, response) => this.refuse(request, response, 417, 'expectation_failed'));

    const metrics = options.metrics;
    for (const reason of [...VERIFY_REASONS, ...DECODE_REASONS, ...SERVER_REASONS]) metrics.rejections.init({ reason });
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
    // Normally processed and written within the turn they arrived in; never left behind.
    this.processReady();
    this.server.closeAllConnections();
    await closed;
    // Windows still open would lose their suppressed counts with the process.
    this.writeLines(this.limiter.closeWindows(Infinity));
  }

  /** Writes summary lines of rate-limit windows that have closed (called periodically). */
  flushRejectionSummaries(): void {
    this.writeLines(this.limiter.closeWindows(this.clock()));
  }

  // --- connections -----------------------------------------------------

  private admitConnection(socket: Socket): void {
    const metrics = this.options.metrics;
    if (this.connections.size >= this.options.maxConnections && !this.evictOne()) {
      this.refuseConnection(socket);
      return;
    }
    this.connections.set(socket, { busy: 0 });
    metrics.openConnections.set(this.connections.size);
    socket.once('close', () => {
      if (this.connections.delete(socket)) metrics.openConnections.set(this.connections.size);
    });
  }

  /**
   * Closes the longest-waiting connection that has no request in
   * processing; false when every one is busy. Among the oldest
   * EVICTION_SCAN, one that has sent bytes without completing a request (a
   * trickler, or an idle keep-alive socket) goes before one that has not
   * been read from yet: under a connection flood, a new connection whose
   * request is still unread in the kernel is most likely a real client.
   */
  private evictOne(): boolean {
    let fallback: Socket | undefined;
    let scanned = 0;
    for (const [socket, state] of this.connections) {
      if (state.busy > 0) continue;
      if (socket.bytesRead > 0) {
        fallback = socket;
        break;
      }
      fallback ??= socket;
      if (++scanned >= EVICTION_SCAN) break;
    }
    if (fallback === undefined) return false;
    this.connections.delete(fallback);
    this.options.metrics.openConnections.set(this.connections.size);
    this.options.metrics.connectionsEvicted.inc();
    fallback.destroy();
    return true;
  }

  private refuseConnection(socket: Socket): void {
    this.refusedSockets.add(socket);
    this.options.metrics.connectionsRefused.inc();
    this.logRejection('too_many_connections', [rejectedLine(503, 'too_many_connections', `--max-connections ${this.options.maxConnections} reached`)]);
    socket.end(rawAnswer(503, 'too_many_connections', `Retry-After: ${RETRY_AFTER_SECONDS}\r\n`), () => socket.destroy());
  }

  /** Marks a socket as just active: it becomes the last candidate for eviction. */
  private touch(socket: Socket): void {
    const state = this.connections.get(socket);
    if (state === undefined) return;
    this.connections.delete(socket);
    this.connections.set(socket, state);
  }

  // --- routing ------------------------------------------------------------

  private route(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const socket = request.socket;
    if (this.refusedSockets.has(socket)) {
      request.resume();
      return;
    }
    // A request in processing is never evicted (busy); one just answered
    // was touched when it started, milliseconds ago: no need to touch it
    // again when it finishes.
    this.touch(socket);
    const path = requestPath(request.url ?? '/');
    const method = request.method ?? 'GET';
    if (path === WEBHOOK_PATH) {
      if (method === 'POST') return this.receiveWebhook(request, response, expectsContinue);
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'POST' });
    }
    if (path === '/health') {
      if (method === 'GET' || method === 'HEAD') return this.health(request, response, method === 'HEAD');
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'GET, HEAD' });
    }
    if (path === '/metrics' && this.options.servesMetrics !== false) {
      if (method === 'GET' || method === 'HEAD') {
        request.resume();
        const body = this.options.metrics.registry.render();
        return this.answer(response, 200, method === 'HEAD' ? '' : body, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)) });
      }
      return this.refuse(request, response, 405, 'method_not_allowed', { Allow: 'GET, HEAD' });
    }
    this.refuse(request, response, 404, 'not_found');
  }

  private health(request: IncomingMessage, response: ServerResponse, headOnly: boolean): void {
    request.resume();
    const error = this.options.writer.lastError;
    const body = error === null ? HEALTHY_BODY : JSON.stringify({ status: 'degraded', component: 'control_plane', error: error.code });
    this.answer(response, error === null ? 200 : 503, headOnly ? '' : body, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  }

  // --- POST /webhook --------------------------------------------------------

  private receiveWebhook(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const exchange: WebhookExchange = {
      request,
      response,
      startedAt: performance.now(),
      receivedAtMs: this.clock(),
      connection: this.connections.get(request.socket),
      expectsContinue,
      chunks: [],
      size: 0,
      bodyComplete: false,
      settled: false,
      token: this.pipeline.insecureSkipVerify ? 'valid' : 'unchecked',
      processing: false,
      responseClosed: false,
      finished: false,
      webhook: null,
    };
    // In flight from here until answered and closed, or abandoned by the client.
    this.inFlight++;
    // `on`, not `once`: a response closes once, and once() wraps the listener in one more object per request.
    response.on('close', () => {
      exchange.responseClosed = true;
      if (!exchange.processing) this.exchangeFinished(exchange);
    });

    if (this.stopping) {
      return this.finishWebhook(response, exchange.startedAt, 503, 'shutting_down', [RECEIVED, rejectedLine(503, 'shutting_down')]);
    }
    const declared = declaredLength(request);
    if (declared !== undefined && declared > this.options.maxBody) return this.tooLarge(request, response, exchange.startedAt);

    request.on('data', (chunk: Buffer) => this.webhookData(exchange, chunk));
    request.on('end', () => {
      exchange.bodyComplete = true;
      this.handOver(exchange);
    });
    // The client went away mid-body: there is nobody to answer.
    request.on('error', ignoreError);

    // A body announced larger than what is read unverified: check the token before reading any of it.
    if (exchange.token === 'unchecked' && declared !== undefined && declared > UNVERIFIED_BODY_LIMIT) this.checkToken(exchange);
    else this.startReading(exchange);
  }

  private webhookData(exchange: WebhookExchange, chunk: Buffer): void {
    if (exchange.settled) return;
    exchange.size += chunk.length;
    if (exchange.size > this.options.maxBody) {
      exchange.settled = true;
      exchange.chunks.length = 0;
      return this.tooLarge(exchange.request, exchange.response, exchange.startedAt);
    }
    exchange.chunks.push(chunk);
    if (exchange.token === 'unchecked' && exchange.size > UNVERIFIED_BODY_LIMIT) this.checkToken(exchange);
  }

  private startReading(exchange: WebhookExchange): void {
    if (exchange.expectsContinue) {
      exchange.expectsContinue = false;
      exchange.response.writeContinue();
    }
    exchange.request.resume();
  }

  /** Pauses the body and checks the token before reading more of it. */
  private checkToken(exchange: WebhookExchange): void {
    exchange.token = 'checking';
    exchange.request.pause();
    this.tokenRefusal(firstHeader(exchange.request, 'authorization')).then((reason) => {
      if (exchange.settled) return;
      if (reason === undefined) {
        exchange.token = 'valid';
        this.startReading(exchange);
        return this.handOver(exchange);
      }
      exchange.settled = true;
      exchange.chunks.length = 0;
      // The rest of the body is not read: close the connection after the answer.
      exchange.response.shouldKeepAlive = false;
      this.finishWebhook(exchange.response, exchange.startedAt, 401, reason, [RECEIVED, rejectedLine(401, reason)]);
    });
  }

  /** Once the body is complete (and a large one's token checked): queued for this turn's processReady. */
  private handOver(exchange: WebhookExchange): void {
    if (exchange.settled || !exchange.bodyComplete || exchange.token === 'checking') return;
    exchange.settled = true;
    exchange.processing = true;
    if (exchange.connection) exchange.connection.busy++;
    const { chunks } = exchange;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, exchange.size);
    chunks.length = 0;
    exchange.webhook = { authorization: firstHeader(exchange.request, 'authorization'), body, receivedAtMs: exchange.receivedAtMs };
    this.ready.push(exchange);
    if (this.ready.length === 1) setImmediate(this.processReady);
  }

  /** The webhook is answered: the connection may be evicted again, and a closed response ends the exchange. */
  private processingDone(exchange: WebhookExchange): void {
    if (!exchange.processing) return;
    exchange.processing = false;
    if (exchange.connection) exchange.connection.busy--;
    if (exchange.responseClosed) this.exchangeFinished(exchange);
  }

  /** A bug, not bad input: answer 500 so LiveKit retries, and say so. */
  private processingFailed(exchange: WebhookExchange, error: unknown): void {
    try {
      this.options.reportProblem(`internal error while processing a webhook: ${error instanceof Error ? error.stack : String(error)}`);
      this.finishWebhook(exchange.response, exchange.startedAt, 500, 'internal_error', [RECEIVED, rejectedLine(500, 'internal_error')]);
    } finally {
      this.processingDone(exchange);
    }
  }

  private exchangeFinished(exchange: WebhookExchange): void {
    if (exchange.finished) return;
    exchange.finished = true;
    this.requestDone();
  }

  /**
   * Checks the token without the body: the reason it can never be accepted,
   * or undefined when it verifies (only the body hash is left to check).
   * The pipeline verifies everything again once the body is complete.
   */
  private async tokenRefusal(authorization: string | undefined): Promise<string | undefined> {
    try {
      const { pipeline } = this.options;
      const verdict = await verifyWebhook(authorization, EMPTY_BODY, { keys: pipeline.keys(), nowMs: this.clock(), clockToleranceMs: pipeline.clockToleranceMs });
      return verdict.ok || verdict.reason === 'body_hash_mismatch' ? undefined : verdict.reason;
    } catch {
      // Let the pipeline meet the same problem and answer 500.
      return undefined;
    }
  }

  private tooLarge(request: IncomingMessage, response: ServerResponse, startedAt: number): void {
    // Stop reading: the rest of the body is not buffered, and the
    // connection is closed after the answer.
    request.pause();
    response.shouldKeepAlive = false;
    this.finishWebhook(response, startedAt, 413, 'body_too_large', [RECEIVED, rejectedLine(413, 'body_too_large', `larger than --max-body ${this.options.maxBody} bytes`)]);
  }

  /**
   * Answers a refused webhook now; queues an accepted one for this turn's
   * group write, answered once its lines are in the output.
   */
  private deliver(exchange: WebhookExchange, outcome: WebhookOutcome): void {
    if (outcome.status !== 200) {
      try {
        this.finishWebhook(exchange.response, exchange.startedAt, outcome.status, outcome.reason ?? 'rejected', outcome.events, outcome.livekitEvent);
      } finally {
        this.processingDone(exchange);
      }
      return;
    }
    this.group.add(outcome, (result) => {
      try {
        this.answerAccepted(exchange.response, exchange.startedAt, outcome, result);
      } catch (error) {
        this.options.reportProblem(`internal error while answering a webhook: ${error instanceof Error ? error.stack : String(error)}`);
      } finally {
        this.processingDone(exchange);
      }
    });
  }

  /** 200 only if the lines are in the output; 503 (LiveKit retries) if the write failed. */
  private answerAccepted(response: ServerResponse, startedAt: number, outcome: WebhookOutcome, result: GroupResult): void {
    const metrics = this.options.metrics;
    const event = outcome.livekitEvent ?? 'none';
    if (result.kind === 'output_failed') {
      metrics.webhooks.inc({ event, outcome: 'output_error' });
      metrics.rejections.inc({ reason: 'output_unavailable' });
      this.answerJson(response, 503, { error: 'output_unavailable' }, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
      metrics.requestDuration.observe((performance.now() - startedAt) / 1000, { outcome: 'output_error' });
      return;
    }
    if (result.kind === 'internal_error') {
      this.options.reportProblem(`internal error while writing or committing a webhook: ${result.error instanceof Error ? result.error.stack : String(result.error)}`);
      return this.finishWebhook(response, startedAt, 500, 'internal_error', [RECEIVED, rejectedLine(500, 'internal_error')], event);
    }
    if (outcome.duplicate) metrics.duplicates.inc();
    const answered = outcome.duplicate ? 'duplicate' : 'accepted';
    metrics.webhooks.inc({ event, outcome: answered });
    // First deliveries only: a redelivery would count the same event twice.
    if (!outcome.duplicate && outcome.createdAtMs !== undefined && outcome.createdAtMs > 0) metrics.deliveryDelay.observe(Math.max(0, (this.clock() - outcome.createdAtMs) / 1000));
    this.answerConstant(response, outcome.duplicate ? DUPLICATE_ANSWER : ACCEPTED_ANSWER);
    metrics.requestDuration.observe((performance.now() - startedAt) / 1000, { outcome: answered });
  }

  /** Answers a refused webhook request and logs it (rate-limited per reason). */
  private finishWebhook(response: ServerResponse, startedAt: number, status: number, reason: string, lines: readonly ObsEvent[], event = 'none'): void {
    const metrics = this.options.metrics;
    metrics.webhooks.inc({ event, outcome: 'rejected' });
    this.logRejection(reason, lines);
    const headers: Record<string, string> = status >= 500 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {};
    this.answerJson(response, status, { error: reason }, headers);
    metrics.requestDuration.observe((performance.now() - startedAt) / 1000, { outcome: 'rejected' });
  }

  /** Refuses a request outside the webhook path (404/405/417): answered and logged, rate-limited. */
  private refuse(request: IncomingMessage, response: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
    // Whatever body came with it is read and dropped, so the connection stays usable.
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

  // --- what never reaches the router ------------------------------------

  /**
   * Malformed HTTP (llhttp's HPE_* errors) and the header/request timeouts:
   * one JSON answer and one line. A client that vanished (ECONNRESET, EPIPE)
   * gets neither: there is nobody to answer and nothing it did is news.
   */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    // llhttp stays in its error state and reports it again for every later
    // chunk on this socket: answer and log the first report only.
    if (this.brokenSockets.has(socket)) return;
    this.brokenSockets.add(socket);
    const code = error.code ?? '';
    const timedOut = code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (this.refusedSockets.has(socket) || !(timedOut || code.startsWith('HPE_'))) {
      socket.destroy();
      return;
    }
    const [status, reason] =
      timedOut ? [408, 'request_timeout']
      : code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large']
      : [400, 'malformed_http_request'];
    const answerAndClose = (): void => {
      if (socket.writable) socket.end(rawAnswer(status, reason), () => socket.destroy());
      else socket.destroy();
    };
    const log = (): void => this.logRejection(reason, [rejectedLine(status, reason, timedOut ? undefined : code)]);
    // Our side is already closing (after an answer that ends the connection): nobody is left to answer.
    if (!socket.writable) return;
    const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    // No request in progress, or the one in progress is the broken one (its
    // body did not parse, or it timed out): its handler will never answer.
    if (!pending || (!pending.headersSent && !pending.req.complete)) {
      log();
      return answerAndClose();
    }
    // An earlier request is still being answered and a pipelined one behind
    // it is broken. If that answer closes the connection (HTTP/1.0,
    // `Connection: close`), the bytes behind it are not a request: nothing
    // to answer or log. Otherwise answer in order, then close.
    if (!pending.shouldKeepAlive) return;
    log();
    pending.once('finish', answerAndClose);
    pending.once('close', () => {
      if (!pending.writableFinished) socket.destroy();
    });
  }

  private onConnect(request: IncomingMessage, socket: Socket): void {
    this.logRejection('method_not_allowed', [rejectedLine(405, 'method_not_allowed', `CONNECT ${String(request.url).slice(0, 100)}`)]);
    socket.on('error', () => {});
    socket.end(rawAnswer(405, 'method_not_allowed', 'Allow: POST\r\n'), () => socket.destroy());
  }

  // --- answers ----------------------------------------------------------------

  private answerJson(response: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
    this.answer(response, status, JSON.stringify(body), { 'Content-Type': 'application/json', ...headers });
  }

  /** answerJson for an answer built once: the same bytes, without building them per request. */
  private answerConstant(response: ServerResponse, answer: ConstantAnswer): void {
    if (response.headersSent || response.destroyed || response.socket?.destroyed === true) return;
    if (this.stopping) response.shouldKeepAlive = false;
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body);
  }

  private answer(response: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    // A pipelined response has no socket yet (it is queued behind the one before): still answer it.
    if (response.headersSent || response.destroyed || response.socket?.destroyed === true) return;
    if (this.stopping) response.shouldKeepAlive = false;
    // writeHead() fixes the header before end() sees the body: without a length Node would frame it chunked.
    response.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
    response.end(body);
  }

  private requestDone(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }
}
