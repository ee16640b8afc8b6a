// The separate /metrics listener (--metrics-port, --metrics-host): the
// Prometheus text on an address of its own, typically 127.0.0.1 or a
// private network, so that the public port that LiveKit reaches need not
// expose it. It serves GET/HEAD /metrics and nothing else, writes no output
// line (a scraper is not a webhook sender) and keeps its own small limits.

import { createServer, type Server } from 'node:http';
import type { Registry } from '../metrics.ts';
import { answerJson } from './answers.ts';
import { REFUSALS } from './reasons.ts';
import { answerMetricsText, listenOn, requestPath } from './server.ts';

/** Scrapers are few; a connection flood here must not cost file descriptors the webhook port needs. */
const MAX_CONNECTIONS = 64;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export class MetricsListener {
  private readonly server: Server;

  constructor(registry: Registry) {
    this.server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5_000 }, (request, response) => {
      request.resume();
      const method = request.method ?? 'GET';
      if (requestPath(request.url ?? '/') !== '/metrics') return answerJson(response, REFUSALS.not_found.status, { error: 'not_found' });
      if (method !== 'GET' && method !== 'HEAD') return answerJson(response, REFUSALS.method_not_allowed.status, { error: 'method_not_allowed' }, { Allow: 'GET, HEAD' });
      answerMetricsText(response, registry, method === 'HEAD');
    });
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Resolves with the address it listens on; rejects (EADDRINUSE, EADDRNOTAVAIL, ...) like WebhookServer.listen. */
  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return listenOn(this.server, port, host);
  }

  /** Stops listening and closes every connection: a scrape in flight is not worth waiting for at shutdown. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }
}
