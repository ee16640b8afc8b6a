// The node:http shell: listens, routes, answers /health and /metrics, and
// keeps standing under hostile traffic (docs/contract.md, "HTTP answers"):
//
// - every request gets a JSON answer and at most one webhook.rejected line,
//   also malformed HTTP, CONNECT, timeouts and refused connections
//   (malformed-requests.ts); rejection lines are rate-limited per reason;
// - --max-connections bounds the sockets held open (connections.ts);
// - bodies are bounded per request, before the token is known, and across
//   all connections (body-intake.ts);
// - slow clients are cut off by the header (10 s) and request (30 s) timeouts.
//
// What happens to a webhook is webhook-route.ts's: check, then the output
// stage, then the answer. Nothing here decides about a webhook.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, type DaemonMetrics, type Registry } from '../metrics.ts';
import { rejectedLine } from '../obs/webhook-lines.ts';
import type { LineWriter } from '../output/line-writer.ts';
import type { Output } from '../output/output.ts';
import type { KeyRing } from '../pipeline/verify.ts';
import { answer, answerJson, rawAnswer } from './answers.ts';
import { BodyIntake } from './body-intake.ts';
import { ConnectionTable } from './connections.ts';
import { MalformedRequests } from './malformed-requests.ts';
import { ALL_REASONS, REFUSALS, RETRY_AFTER_SECONDS } from './reasons.ts';
import { RejectionLog } from './rejection-log.ts';
import { WebhookRoute } from './webhook-route.ts';

export { firstHeader, UNVERIFIED_BODY_LIMIT } from './body-intake.ts';
export { RETRY_AFTER_SECONDS } from './reasons.ts';

export const WEBHOOK_PATH = '/webhook';
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 15_000;
/** How often Node sweeps connections for the two timeouts above (its default, 30 s, would stretch 10 s to 40 s). */
export const TIMEOUT_SWEEP_MS = 1_000;

const HEALTHY_BODY = '{"status":"ok","component":"control_plane"}';

export interface ServerOptions {
  readonly keys: () => KeyRing;
  readonly insecureSkipVerify: boolean;
  readonly clockToleranceMs: number;
  readonly output: Output;
  readonly writer: LineWriter;
  readonly metrics: DaemonMetrics;
  readonly maxBody: number;
  readonly maxBodyMemory: number;
  readonly maxConnections: number;
  /** Why the daemon is degraded (the output or the store failing), or null: drives /health. */
  readonly problem: () => string | null;
  /** Extra fields in /health's body (forwarding's state); they never make it degraded. */
  readonly healthDetails?: () => Record<string, unknown> | undefined;
  /** Where to report things the output itself cannot carry (the output failing). */
  readonly reportProblem: (message: string) => void;
  readonly clock?: () => number;
  /** false when /metrics has its own listener (--metrics-port): this port then answers /metrics 404. */
  readonly servesMetrics?: boolean;
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

/** /health: 200 ok, or 503 degraded with the reason. */
export function answerHealth(response: ServerResponse, problem: string | null, headOnly: boolean, details?: Record<string, unknown>): void {
  const body =
    problem === null ? (details ? JSON.stringify({ status: 'ok', component: 'control_plane', ...details }) : HEALTHY_BODY) : JSON.stringify({ status: 'degraded', component: 'control_plane', error: problem, ...details });
  answer(response, problem === null ? 200 : 503, headOnly ? '' : body, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
}

/** /metrics: the Prometheus text (on the public port, or the metrics listener's). */
export function answerMetricsText(response: ServerResponse, registry: Registry, headOnly: boolean): void {
  const body = registry.render();
  answer(response, 200, headOnly ? '' : body, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)) });
}

/** Listens; resolves with the real address (the port 0 asked for becomes a real one), rejects with EADDRINUSE and the like. */
export function listenOn(server: Server, port: number, host: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no TCP address'));
      resolve({ host: address.address, port: address.port });
    });
  });
}

export class WebhookServer {
  readonly server: Server;
  private readonly options: ServerOptions;
  private readonly connections: ConnectionTable;
  private readonly rejections: RejectionLog;
  private readonly route: WebhookRoute;
  private readonly intake: BodyIntake;
  private readonly malformed: MalformedRequests;
  /** Sockets answered 503 at the connection cap: whatever they send is ignored until they close. */
  private readonly refusedSockets = new WeakSet<Socket>();
  private stopping = false;

  constructor(options: ServerOptions) {
    this.options = options;
    const clock = options.clock ?? Date.now;
    const { metrics } = options;
    this.rejections = new RejectionLog(options.writer, metrics, clock, options.reportProblem);
    this.connections = new ConnectionTable(options.maxConnections, {
      onCountChanged: (open) => metrics.openConnections.set(open),
      onEvicted: () => metrics.connectionsEvicted.inc(),
    });
    const verification = { keys: options.keys, insecureSkipVerify: options.insecureSkipVerify, clockToleranceMs: options.clockToleranceMs };
    this.route = new WebhookRoute({ ...verification, output: options.output, metrics, rejections: this.rejections, reportProblem: options.reportProblem, clock });
    this.intake = new BodyIntake({ ...verification, maxBody: options.maxBody, maxBodyMemory: options.maxBodyMemory, route: this.route, metrics, clock });
    this.route.attach(this.intake);
    this.malformed = new MalformedRequests(this.rejections, this.refusedSockets);
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
      (request, response) => this.dispatch(request, response, false),
    );
    // Registered after Node's own connection listener: the socket already has its parser.
    this.server.on('connection', (socket: Socket) => this.admit(socket));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.malformed.onClientError(error, socket as Socket));
    // Without these listeners Node closes a CONNECT silently and answers
    // `Expect: 100-continue` and other expectations by itself.
    this.server.on('connect', (request: IncomingMessage, socket: Duplex) => this.malformed.onConnect(request, socket as Socket));
    this.server.on('checkContinue', (request, response) => this.dispatch(request, response, true));
    this.server.on('checkExpectation', (request, response) => this.refuse(request, response, 'expectation_failed'));

    metrics.bodyBytesHeld.setSource(() => this.intake.bodyBytesHeld);
    for (const reason of ALL_REASONS) metrics.rejections.init({ reason });
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return listenOn(this.server, port, host);
  }

  /** Stops accepting, lets requests in flight finish (at most `graceMs`), then closes every connection. */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    this.route.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Normally processed and written within the turn they arrived in; never left behind.
    this.route.processTurn();
    await Promise.race([this.intake.idle(), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
    this.server.closeAllConnections();
    await closed;
    // Windows still open would lose their suppressed counts with the process.
    this.rejections.flushSummaries(true);
  }

  /** Webhooks being received or processed now (forwarding yields to them). */
  get webhooksInFlight(): number {
    return this.intake.inFlight;
  }

  /** Writes summary lines of rate-limit windows that have closed (called periodically). */
  flushRejectionSummaries(): void {
    this.rejections.flushSummaries();
  }

  private admit(socket: Socket): void {
    if (this.connections.admit(socket)) return;
    this.refusedSockets.add(socket);
    this.options.metrics.connectionsRefused.inc();
    this.rejections.log('too_many_connections', [rejectedLine(REFUSALS.too_many_connections.status, 'too_many_connections', `--max-connections ${this.options.maxConnections} reached`)]);
    socket.end(rawAnswer(REFUSALS.too_many_connections.status, 'too_many_connections', `Retry-After: ${RETRY_AFTER_SECONDS}\r\n`), () => socket.destroy());
  }

  private dispatch(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const socket = request.socket;
    if (this.refusedSockets.has(socket)) {
      request.resume();
      return;
    }
    // A request in processing is never evicted (busy); one just answered was
    // touched when it started, milliseconds ago: no need to touch it again.
    this.connections.touch(socket);
    const path = requestPath(request.url ?? '/');
    const method = request.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';
    if (path === WEBHOOK_PATH) {
      if (method === 'POST') return this.intake.start(request, response, expectsContinue, this.connections.stateOf(socket), this.stopping);
      return this.refuse(request, response, 'method_not_allowed', { Allow: 'POST' });
    }
    if (path === '/health') {
      if (!readOnly) return this.refuse(request, response, 'method_not_allowed', { Allow: 'GET, HEAD' });
      request.resume();
      return answerHealth(response, this.options.problem(), method === 'HEAD', this.options.healthDetails?.());
    }
    if (path === '/metrics' && this.options.servesMetrics !== false) {
      if (!readOnly) return this.refuse(request, response, 'method_not_allowed', { Allow: 'GET, HEAD' });
      request.resume();
      return answerMetricsText(response, this.options.metrics.registry, method === 'HEAD');
    }
    this.refuse(request, response, 'not_found');
  }

  /** Refuses a request outside the webhook route (404/405/417): answered and logged, rate-limited. */
  private refuse(request: IncomingMessage, response: ServerResponse, reason: 'not_found' | 'method_not_allowed' | 'expectation_failed', headers: Record<string, string> = {}): void {
    // Whatever body came with it is read and dropped, so the connection stays usable.
    request.resume();
    const { status } = REFUSALS[reason];
    this.rejections.log(reason, [rejectedLine(status, reason, `${request.method} ${String(request.url).slice(0, 100)}`)]);
    answerJson(response, status, { error: reason }, headers, this.stopping);
  }
}
