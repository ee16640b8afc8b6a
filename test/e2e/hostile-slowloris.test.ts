// Slow clients against the real program on 127.0.0.1: hundreds of
// connections trickling headers or bodies, while signed webhooks keep
// arriving on fresh connections and must be answered 200, fast.
//
// 1. More trickling connections than --max-connections, reconnecting as
//    soon as they are cut: the cap holds, the longest-waiting stalled
//    sockets are evicted to make room, real webhooks get through.
// 2. Fewer than the cap, trickling one header line a second: the 10 s
//    header timeout cuts every one of them off with a JSON 408, and the
//    lines they cause stay within the rate limit.
// Both run at once (about 12 s: the header timeout is 10 s by the contract).

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { Client } from 'undici';
import { encodeBody, sampleWebhook, SAMPLE_EVENTS } from '../../src/livekit/samples.ts';
import { authorize, type Daemon, startDaemon } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics } from '../helpers/prometheus-text.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const metrics = (daemon: Daemon) => scrapeMetrics(daemon.url);

/** Sends one signed webhook on a connection of its own (as LiveKit does after an idle connection closed). */
async function sendWebhook(daemon: Daemon, index: number): Promise<{ status: number; ms: number }> {
  const body = encodeBody(sampleWebhook(SAMPLE_EVENTS[index % SAMPLE_EVENTS.length]!, `slow-room-${index}`));
  const client = new Client(daemon.url, { pipelining: 0 });
  const started = performance.now();
  try {
    const response = await client.request({ path: '/webhook', method: 'POST', body, headers: { authorization: authorize(body) } });
    await response.body.text();
    return { status: response.statusCode, ms: performance.now() - started };
  } catch (error) {
    return { status: -1, ms: performance.now() - started, error: String(error) } as { status: number; ms: number };
  } finally {
    await client.destroy();
  }
}

/** Sends webhooks one after another, `intervalMs` apart, until `stop()` says so. */
async function webhookStream(daemon: Daemon, intervalMs: number, stop: () => boolean): Promise<Array<{ status: number; ms: number }>> {
  const results: Array<{ status: number; ms: number }> = [];
  for (let index = 0; !stop(); index++) {
    results.push(await sendWebhook(daemon, index));
    await sleep(intervalMs);
  }
  return results;
}

interface Trickler {
  readonly socket: Socket;
  readonly openedAt: number;
  closedAt?: number;
  received: string;
}

/** A connection that sends `head`, then `drip` every `everyMs`, and never finishes its request. */
function trickle(port: number, head: string, drip: string, everyMs: number): Trickler {
  const socket = connect(port, '127.0.0.1');
  const trickler: Trickler = { socket, openedAt: performance.now(), received: '' };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (trickler.received += chunk));
  socket.on('error', () => {});
  const timer = setInterval(() => {
    if (socket.writable) socket.write(drip);
  }, everyMs);
  socket.on('close', () => {
    clearInterval(timer);
    trickler.closedAt = performance.now();
  });
  socket.on('connect', () => socket.write(head));
  return trickler;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

describe('slowloris', { concurrency: true }, () => {
  test('over --max-connections: stalled sockets are evicted, webhooks on new connections still answered 200 fast', async () => {
    const CAP = 200;
    const ATTACKERS = 500;
    const DURATION_MS = 5000;
    const RECONNECT_MS = 500;
    const daemon = await startDaemon({ args: ['--max-connections', String(CAP)] });
    try {
      const before = await metrics(daemon);
      const rssBefore = sampleValue(before, 'process_resident_memory_bytes')!;
      let stopping = false;
      let opened = 0;
      const all: Trickler[] = [];
      // Half trickle headers, half send complete headers and trickle a body; each one reconnects once cut off.
      const attacker = (index: number): void => {
        if (stopping) return;
        opened++;
        const trickler =
          index % 2 === 0
            ? trickle(daemon.port, 'POST /webhook HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n', 250)
            : trickle(daemon.port, 'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 12000\r\nAuthorization: forged\r\n\r\n', '{"event":"x",', 250);
        all.push(trickler);
        trickler.socket.on('close', () => setTimeout(() => attacker(index), RECONNECT_MS * (1 + Math.random())));
      };
      // The attackers arrive within half a second, then each one comes back 0.5–1 s after it was cut off.
      for (let index = 0; index < ATTACKERS; index++) setTimeout(() => attacker(index), Math.random() * 500);
      await sleep(1000);

      let maxOpen = 0;
      const watcher = (async () => {
        while (!stopping) {
          const open = sampleValue(await metrics(daemon), 'control_plane_open_connections')!;
          maxOpen = Math.max(maxOpen, open);
          await sleep(200);
        }
      })();
      const timer = setTimeout(() => (stopping = true), DURATION_MS - 500);
      const results = await webhookStream(daemon, 40, () => stopping);
      clearTimeout(timer);
      await watcher;
      const during = await metrics(daemon);
      for (const trickler of all) trickler.socket.destroy();

      const failed = results.filter((result) => result.status !== 200);
      const latencies = results.map((result) => result.ms);
      const summary = `${results.length} webhooks, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms; ${opened} attacker connections; max open ${maxOpen}`;
      console.log(`# slowloris over the cap: ${summary}`);
      assert.ok(results.length >= 30, summary);
      assert.deepEqual(failed, [], `every webhook answered 200 (${summary})`);
      // Far inside LiveKit's 30 s (the client, the attackers and the daemon share 2 cores here).
      assert.ok(percentile(latencies, 50) < 50, `median under 50 ms (${summary})`);
      assert.ok(Math.max(...latencies) < 2000, `every one within 2 s (${summary})`);
      assert.ok(opened > ATTACKERS, 'attackers were cut off and came back');
      assert.ok(maxOpen <= CAP, `open connections stayed within the cap (${maxOpen})`);
      const evicted = sampleValue(during, 'control_plane_connections_evicted_total')!;
      assert.ok(evicted >= opened - CAP - results.length, `evicted ${evicted}`);
      const rssDuring = sampleValue(during, 'process_resident_memory_bytes')!;
      console.log(`# slowloris over the cap: RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB before, ${(rssDuring / 2 ** 20).toFixed(1)} MiB during`);
      assert.ok(rssDuring - rssBefore < 64 * 2 ** 20, `RSS grew by ${((rssDuring - rssBefore) / 2 ** 20).toFixed(1)} MiB`);
      const client = new Client(daemon.url);
      const health = await client.request({ path: '/health', method: 'GET' });
      assert.equal(health.statusCode, 200);
      await health.body.text();
      await client.destroy();
    } finally {
      await daemon.stop();
    }
  });

  test('under the cap: trickling headers are cut off by the 10 s header timeout with a JSON 408; lines stay rate-limited', async () => {
    const SLOW = 200;
    const daemon = await startDaemon();
    try {
      const tricklers = Array.from({ length: SLOW }, () => trickle(daemon.port, 'GET /health HTTP/1.1\r\n', 'X-Slow: 1\r\n', 1000));
      await sleep(300);
      assert.equal(sampleValue(await metrics(daemon), 'control_plane_open_connections')! >= SLOW, true, 'all trickling connections are open');

      let stopping = false;
      const stream = webhookStream(daemon, 100, () => stopping);
      const deadline = performance.now() + 15_000;
      while (tricklers.some((trickler) => trickler.closedAt === undefined) && performance.now() < deadline) await sleep(100);
      stopping = true;
      const results = await stream;

      for (const trickler of tricklers) {
        assert.notEqual(trickler.closedAt, undefined, 'cut off');
        const lifetime = trickler.closedAt! - trickler.openedAt;
        assert.ok(lifetime > 9000 && lifetime < 13_000, `cut off after ${lifetime.toFixed(0)} ms`);
        const [head, body] = trickler.received.split('\r\n\r\n');
        assert.match(head!, /^HTTP\/1\.1 408 /);
        assert.match(head!, /\r\nConnection: close(\r\n|$)/);
        assert.deepEqual(JSON.parse(body!), { error: 'request_timeout' });
      }
      assert.ok(results.length >= 50);
      assert.deepEqual(results.filter((result) => result.status !== 200), [], 'webhooks answered 200 throughout');

      const families = await metrics(daemon);
      assert.equal(sampleValue(families, 'control_plane_rejections_total', { reason: 'request_timeout' }), SLOW);
      const written = daemon.lines().filter((line) => line.event_type === 'webhook.rejected' && line.reason === 'request_timeout').length;
      assert.ok(written <= 20, `${written} request_timeout lines`);
      assert.equal(sampleValue(families, 'control_plane_rejected_lines_suppressed_total', { reason: 'request_timeout' }), SLOW - written);

      await daemon.stop();
      const summary = daemon.lines().filter((line) => line.event_type === 'webhook.rejected_suppressed' && line.reason === 'request_timeout');
      assert.equal(summary.reduce((total, line) => total + Number(line.suppressed), 0), SLOW - written, 'the summary carries every suppressed line');
    } finally {
      await daemon.stop();
    }
  });
});
