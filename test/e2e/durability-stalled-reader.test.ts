// stdout into a pipe whose reader stops reading (journald stalled, a FIFO
// nobody reads): the daemon must not freeze. While the output cannot take a
// write, webhooks are answered 503 with Retry-After at once, /health and
// /metrics keep answering, SIGTERM still stops it, and writing resumes by
// itself when the reader does. Nothing answered 200 is missing from the
// output; nothing answered 503 is in it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { type Daemon, postSigned, startDaemon } from '../helpers/daemon.ts';

interface Sent {
  readonly id: string;
  status?: number;
  retryAfter?: string;
  ms?: number;
}

async function send(daemon: Daemon, index: number): Promise<Sent> {
  const json = sampleWebhook('participant_joined', `stall-room-${index}`);
  const sent: Sent = { id: String(json.id) };
  const started = performance.now();
  const answer = await postSigned(daemon.url, encodeBody(json));
  sent.status = answer.status;
  sent.retryAfter = answer.headers['retry-after'] as string | undefined;
  sent.ms = performance.now() - started;
  return sent;
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work;
  return { value, ms: performance.now() - started };
}

/** Sends webhooks one after another until one is refused (the pipe and Node's buffer are full). */
async function fillUntilRefused(daemon: Daemon, sent: Sent[], pending: Array<Promise<Sent>>): Promise<void> {
  for (let index = 0; index < 5_000; index++) {
    const attempt = send(daemon, index);
    // A webhook whose group is half in the pipe waits for the reader: do not wait for it here.
    const first = await Promise.race([attempt, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000))]);
    if (first === undefined) {
      pending.push(attempt);
      continue;
    }
    sent.push(first);
    if (first.status === 503) return;
  }
  assert.fail('the output never filled up');
}

test('a stalled stdout reader: 503 at once, /health and /metrics answer, writing resumes when the reader does', { timeout: 120_000 }, async (t) => {
  const daemon = await startDaemon();
  t.after(() => daemon.child.kill('SIGKILL'));
  const stdout = daemon.child.stdout!;
  stdout.pause();

  const sent: Sent[] = [];
  const pending: Array<Promise<Sent>> = [];
  await fillUntilRefused(daemon, sent, pending);

  // Stalled: webhooks are refused at once, with Retry-After, not held.
  for (let index = 0; index < 20; index++) {
    const more = await send(daemon, 10_000 + index);
    sent.push(more);
    assert.equal(more.status, 503);
    assert.match(more.retryAfter ?? '', /^[1-5]$/);
    assert.ok(more.ms! < 1_000, `refused in ${more.ms!.toFixed(0)} ms`);
  }
  const health = await timed(request(`${daemon.url}/health`).then(async (response) => ({ status: response.statusCode, body: await response.body.json() })));
  assert.equal(health.value.status, 503);
  assert.equal((health.value.body as { status: string }).status, 'degraded');
  assert.ok(health.ms < 1_000, `/health answered in ${health.ms.toFixed(0)} ms`);
  const metrics = await timed(request(`${daemon.url}/metrics`).then(async (response) => ({ status: response.statusCode, text: await response.body.text() })));
  assert.equal(metrics.value.status, 200);
  assert.match(metrics.value.text, /control_plane_output_healthy 0/);
  t.diagnostic(`stalled: ${sent.filter((s) => s.status === 200).length} accepted before the pipe filled, ${pending.length} waiting for the reader; /health ${health.ms.toFixed(1)} ms, /metrics ${metrics.ms.toFixed(1)} ms`);

  // The reader comes back: the waiting webhooks are answered 200 and new ones are accepted again.
  stdout.resume();
  for (const waiting of await Promise.all(pending)) sent.push(waiting);
  let recovered: Sent | undefined;
  for (let attempt = 0; attempt < 50 && recovered?.status !== 200; attempt++) {
    recovered = await send(daemon, 20_000 + attempt);
    sent.push(recovered);
    if (recovered.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(recovered?.status, 200, 'writing resumed by itself');
  assert.equal((await request(`${daemon.url}/health`)).statusCode, 200);

  // Give the reader time to take everything, then account for every webhook.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const written = new Set(daemon.lines().filter((line) => line.event_type === 'livekit.participant.joined').map((line) => String(line.webhook_id)));
  for (const webhook of sent) {
    if (webhook.status === 200) assert.ok(written.has(webhook.id), `answered 200 but missing: ${webhook.id}`);
    else assert.ok(!written.has(webhook.id), `answered ${webhook.status} but written: ${webhook.id}`);
  }
  const seqs = daemon.lines().map((line) => line.seq);
  assert.deepEqual(seqs, seqs.map((_, index) => index + 1), 'no line split or lost: seq is gap-free');
});

test('a stalled stdout reader does not keep SIGTERM from stopping the daemon', { timeout: 60_000 }, async (t) => {
  const daemon = await startDaemon();
  t.after(() => daemon.child.kill('SIGKILL'));
  daemon.child.stdout!.pause();
  await fillUntilRefused(daemon, [], []);
  const stopping = performance.now();
  daemon.child.kill('SIGTERM');
  const exit = await Promise.race([daemon.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000))]);
  assert.ok(exit !== undefined, 'the daemon stopped within 20 s of SIGTERM');
  t.diagnostic(`stopped ${(performance.now() - stopping).toFixed(0)} ms after SIGTERM with the reader stalled`);
});
