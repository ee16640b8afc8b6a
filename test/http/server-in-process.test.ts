// The server in process, with a failing store or output: a webhook
// decided on the synchronous (LiveKit token) path and one decided by jose
// must be answered alike, and nothing is remembered from a webhook that was
// not answered 200.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DaemonMetrics } from '../../src/metrics.ts';
import { WebhookServer } from '../../src/http/server.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import { Output } from '../../src/output/output.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { StoreUnavailableError } from '../../src/store/store.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { KeyRing } from '../../src/pipeline/verify.ts';
import { MemorySink } from '../helpers/memory-sink.ts';

const KEY = { keyId: 'APIinprocess', secret: 'in-process-secret-long-enough-0123456789abcdef' };

describe('the server in process', () => {
  const sink = new MemorySink();
  const writer = new LineWriter(sink);
  const store = new MemoryStore();
  let throwOnRead = 0;
  let failCommits = 0;
  const room = store.room.bind(store);
  store.room = (sid) => {
    if (throwOnRead > 0) {
      throwOnRead--;
      throw new Error('session store bug (test)');
    }
    return room(sid);
  };
  const commit = store.commit.bind(store);
  store.commit = (view, changes, nowMs) => {
    if (failCommits > 0) {
      failCommits--;
      throw new StoreUnavailableError('timeout', 'the store did not answer in time (test)');
    }
    return commit(view, changes, nowMs);
  };
  const problems: string[] = [];
  const keys = new KeyRing([KEY]);
  const metrics = new DaemonMetrics({ store: () => store.counts(), sinkRotations: () => 0, outputHealthy: () => writer.healthy });
  const output = new Output({ writer, store, storeReadsKeys: false, schedule: setImmediate });
  const server = new WebhookServer({
    keys: () => keys,
    insecureSkipVerify: false,
    clockToleranceMs: 60_000,
    output,
    writer,
    metrics,
    maxBody: 1024 * 1024,
    maxBodyMemory: 64 * 1024 * 1024,
    maxConnections: 64,
    problem: () => writer.problem,
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
      throwOnRead = 1;
      assert.deepEqual(await post(body, viaJose), { status: 500, body: '{"error":"internal_error"}', retryAfter: '2' });
      assert.equal(problems.length, problemsBefore + 1);
      assert.match(problems.at(-1)!, /internal error while writing or committing a webhook: .*session store bug/);
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

  it('answers 503 store_unavailable when the commit fails; the retry writes the lines again with the same webhook_id (at least once)', async () => {
    const body = roomStarted();
    const id = (JSON.parse(body) as { id: string }).id;
    failCommits = 1;
    assert.deepEqual(await post(body, false), { status: 503, body: '{"error":"store_unavailable"}', retryAfter: '2' });
    assert.deepEqual(await post(body, false), { status: 200, body: '{"status":"accepted"}', retryAfter: null });
    assert.deepEqual(await post(body, false), { status: 200, body: '{"status":"duplicate"}', retryAfter: null });
    const created = sink.lines().filter((line) => line.event_type === 'livekit.room.created' && line.webhook_id === id);
    assert.equal(created.length, 2, 'written before the failed commit, and again on the retry');
  });

  it('keeps seq contiguous across all of the above', () => {
    const seqs = sink.lines().map((line) => line.seq as number);
    assert.deepEqual(seqs, seqs.map((_, index) => index + 1));
  });
});
