// The separate /metrics listener (--metrics-port, --metrics-host): the
// Prometheus text on an address of its own, typically 127.0.0.1 or a
// private network, so that the public port that LiveKit reaches need not
// expose it. It serves GET/HEAD /metrics and nothing else, writes no output
// line (a scraper is not a webhook sender) and keeps its own small limits.

import { createServer, type Server } from 'node:http';
import { CONTENT_TYPE, type Registry } from '../metrics.ts';

/** Scrapers are few; a connection flood here must not cost file descriptors the webhook port needs. */
const MAX_CONNECTIONS = 64;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

function json(body: object): { text: string; headers: Record<string, string> } {
  const text = JSON.stringify(body);
  return { text, headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } };
}

export class MetricsListener {
  private readonly server: Server;

  constructor(registry: Registry) {
    this.server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5_000 }, (request, response) => {
      request.resume();
      const path = (request.url ?? '/').split('?')[0];
      const method = request.method ?? 'GET';
      if (path !== '/metrics') {
        const answer = json({ error: 'not_found' });
        response.writeHead(404, answer.headers).end(answer.text);
        return;
      }
      if (method !== 'GET' && method !== 'HEAD') {
        const answer = json({ error: 'method_not_allowed' });
        response.writeHead(405, { ...answer.headers, Allow: 'GET, HEAD' }).end(answer.text);
        return;
      }
      const body = registry.render();
      response.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)) }).end(method === 'HEAD' ? undefined : body);
    });
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Resolves with the address it listens on; rejects (EADDRINUSE, EADDRNOTAVAIL, ...) like WebhookServer.listen. */
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

  /** Stops listening and closes every connection: a scrape in flight is not worth waiting for at shutdown. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }
}
