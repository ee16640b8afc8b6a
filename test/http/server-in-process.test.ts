// The server in process, with a failing session store or output: a webhook
// decided on the synchronous (LiveKit token) path and one decided by jose
// must be answered alike, and nothing is remembered from a webhook that was
// not answered 200.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DaemonMetrics } from '../../src/metrics.ts';
import { SessionStore } from '../../src/obs/sessions.ts';
import { WebhookServer } from '../../src/http/server.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import { RecentIds } from '../../src/store/recent-ids.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { KeyRing } from '../../src/pipeline/verify.ts';
import { MemorySink } from '../helpers/memory-sink.ts';

const KEY = { keyId: 'APIinprocess', secret: 'in-process-secret-long-enough-0123456789abcdef' };

describe('the server in process', () => {
  const sink = new MemorySink();
  const writer = new LineWriter(sink);
  const sessions = new SessionStore();
  let throwOnObserve = 0;
  const observe = sessions.observe.bind(sessions);
  sessions.observe = (event, nowMs) => {
    if (throwOnObserve > 0) {
      throwOnObserve--;
      throw new Error('session store bug (test)');
    }
    return observe(event, nowMs);
  };
  const problems: string[] = [];
  const keys = new KeyRing([KEY]);
  const server = new WebhookServer({
    pipeline: { keys: () => keys, insecureSkipVerify: false, clockToleranceMs: 60_000, recentIds: new RecentIds(), sessions },
    writer,
    metrics: new DaemonMetrics({ openSessions: () => 0, openCalls: () => 0, sinkRotations: () => 0, outputHealthy: () => writer.healthy }),
    maxBody: 1024 * 1024,
    maxConnections: 64,
    reportProblem: (message) => problems.push(message),
  });
  let base = '';
  before(async () => {
    const { port } = await server.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server.shutdown(100));

  let counter = 0;
  function roomStarted(): string {
    counter++;
    const room = { sid: `RM_inproc${counter}`, name: `room-${counter}`, creationTime: '1700000000' };
    return JSON.stringify({ event: 'room_started', room, id: `EV_inproc${counter}`, createdAt: String(Math.floor(Date.now() / 1000)) });
  }
  async function post(body: string, viaJose: boolean): Promise<{ status: number; body: string; retryAfter: string | null }> {
    // A `kid` in the header keeps the token off the synchronous path: jose decides it.
    const token = signWebhook(body, KEY, viaJose ? { header: { kid: 'k1' } } : {});
    const response = await fetch(`${base}/webhook`, { method: 'POST', body, headers: { Authorization: token, 'Content-Type': 'application/webhook+json' } });
    return { status: response.status, body: await response.text(), retryAfter: response.headers.get('retry-after') };
  }

  for (const viaJose of [false, true]) {
    const path = viaJose ? 'jose' : 'the synchronous path';
    it(`answers 200 accepted, then duplicate (${path})`, async () => {
      const body = roomStarted();
      assert.deepEqual(await post(body, viaJose), { status: 200, body: '{"status":"accepted"}', retryAfter: null });
      assert.deepEqual(await post(body, viaJose), { status: 200, body: '{"status":"duplicate"}', retryAfter: null });
    });

    it(`answers 500 internal_error when processing throws, remembers nothing, and the retry is a first delivery (${path})`, async () => {
      const body = roomStarted();
      const problemsBefore = problems.length;
      throwOnObserve = 1;
      assert.deepEqual(await post(body, viaJose), { status: 500, body: '{"error":"internal_error"}', retryAfter: '2' });
      assert.equal(problems.length, problemsBefore + 1);
      assert.match(problems.at(-1)!, /internal error while processing a webhook: .*session store bug/);
      assert.deepEqual(await post(body, viaJose), { status: 200, body: '{"status":"accepted"}', retryAfter: null });
      const id = (JSON.parse(body) as { id: string }).id;
      assert.equal(sink.lines().filter((line) => line.event_type === 'livekit.room.created' && line.webhook_id === id).length, 1);
    });

    it(`answers 503 when the output fails, remembers nothing, and the retry is a first delivery (${path})`, async () => {
      const body = roomStarted();
      sink.failNext = 1;
      assert.deepEqual(await post(body, viaJose), { status: 503, body: '{"error":"output_unavailable"}', retryAfter: '2' });
      assert.deepEqual(await post(body, viaJose), { status: 200, body: '{"status":"accepted"}', retryAfter: null });
    });
  }

  it('keeps seq contiguous across all of the above', () => {
    const seqs = sink.lines().map((line) => line.seq as number);
    assert.deepEqual(seqs, seqs.map((_, index) => index + 1));
  });
});
