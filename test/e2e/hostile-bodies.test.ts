// Large bodies from clients without a key: past 16 KiB (UNVERIFIED_BODY_LIMIT)
// the daemon checks the token before reading on, so a keyless client is
// answered 401 without its megabyte being buffered. Signed large bodies are
// still read and accepted.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from 'undici';
import { UNVERIFIED_BODY_LIMIT } from '../../src/http/server.ts';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { authorize, type Daemon, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics } from '../helpers/prometheus-text.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `head` and `first`, then stalls (never sends the rest); resolves with what the server answered and whether it closed. */
function stalledUpload(port: number, head: string, first: Buffer, waitMs: number): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    socket.on('connect', () => {
      socket.write(head);
      socket.write(first);
    });
    setTimeout(() => {
      socket.destroy();
      resolve({ received, closed });
    }, waitMs);
  });
}

function statusOf(received: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1] ?? 0);
}

function bodyOf(received: string): unknown {
  return JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
}

const scrape = (daemon: Daemon) => scrapeMetrics(daemon.url);

/** A real webhook padded with an unknown field (ignored by decoding) to `size` bytes. */
function paddedWebhook(size: number): string {
  const event = sampleWebhook('room_started', 'padded-room');
  const base = encodeBody({ ...event, padding: '' });
  return encodeBody({ ...event, padding: 'p'.repeat(size - base.length) });
}

describe('bodies from clients without a key', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  test('100 uploads announcing ~1 MB with a forged token are answered 401 before the body is read, and the memory does not grow by their size', async () => {
    const rssBefore = sampleValue(await scrape(daemon), 'process_resident_memory_bytes')!;
    const body = Buffer.alloc(1_000_000, 0x61);
    const forged = signWebhook(body, { keyId: TEST_KEY.keyId, secret: 'guessed' });
    const head = `POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: ${forged}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const results = await Promise.all(Array.from({ length: 100 }, () => stalledUpload(daemon.port, head, body.subarray(0, 64 * 1024), 1500)));
    for (const { received, closed } of results) {
      assert.equal(statusOf(received), 401, received.slice(0, 200));
      assert.deepEqual(bodyOf(received), { error: 'bad_signature' });
      assert.ok(closed, 'the connection is closed after the answer: the rest of the body is not read');
    }
    const rssAfter = sampleValue(await scrape(daemon), 'process_resident_memory_bytes')!;
    console.log(`# unverified uploads: RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB for 100 × 1 MB announced`);
    assert.ok(rssAfter - rssBefore < 40 * 2 ** 20, `RSS grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB`);
  });

  test('a chunked upload without a token is answered 401 once it passes 16 KiB, not when it ends', async () => {
    const chunk = Buffer.alloc(UNVERIFIED_BODY_LIMIT + 1024, 0x61);
    const head = 'POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const { received } = await stalledUpload(daemon.port, head, framed, 800);
    assert.equal(statusOf(received), 401);
    assert.deepEqual(bodyOf(received), { error: 'missing_authorization' });
  });

  test('a small stalled upload without a token is not answered early (it may still be a real one on a slow link)', async () => {
    const { received, closed } = await stalledUpload(daemon.port, 'POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n', Buffer.alloc(1000, 0x61), 500);
    assert.equal(received, '');
    assert.equal(closed, false);
  });

  test('a signed 200 KB webhook is read in full and accepted; the same body with a foreign token is refused early; a valid token for other bytes is refused after reading', async () => {
    const body = paddedWebhook(200_000);
    const client = new Client(daemon.url);
    try {
      const accepted = await client.request({ path: '/webhook', method: 'POST', body, headers: { authorization: authorize(body) } });
      assert.equal(accepted.statusCode, 200);
      assert.deepEqual(await accepted.body.json(), { status: 'accepted' });

      const foreign = await client.request({ path: '/webhook', method: 'POST', body, headers: { authorization: signWebhook(body, { keyId: 'APIunknown', secret: 'x' }) } }).catch((error: Error) => error);
      // Answered before the body was read, then closed: the client sees the 401 or, if it was still sending, a reset.
      if (!(foreign instanceof Error)) {
        assert.equal(foreign.statusCode, 401);
        assert.deepEqual(await foreign.body.json(), { error: 'unknown_key' });
      }

      const other = paddedWebhook(200_001);
      const mismatch = await client.request({ path: '/webhook', method: 'POST', body: other, headers: { authorization: authorize(body) } });
      assert.equal(mismatch.statusCode, 401);
      assert.deepEqual(await mismatch.body.json(), { error: 'body_hash_mismatch' });
    } finally {
      await client.destroy();
    }
    await sleep(50);
    const lines = daemon.lines().filter((line) => line.event_type === 'webhook.rejected');
    assert.ok(lines.some((line) => line.reason === 'unknown_key'));
    assert.ok(lines.some((line) => line.reason === 'body_hash_mismatch'));
  });
});
