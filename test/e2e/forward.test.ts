// Forwarding the derived events (--forward-url) to a real receiver that
// verifies every delivery with livekit-server-sdk's WebhookReceiver, as a
// backend would, and that can be slow, fail, answer 429 with Retry-After,
// refuse, or be down. Every event arrives exactly once after deduplication
// by its event id, in order per session; LiveKit's webhooks are answered
// 200 whatever the backend does; the spool survives kill -9.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { TokenVerifier, WebhookReceiver } from 'livekit-server-sdk';
import { encodeBody, type JsonObject } from '../../src/livekit/samples.ts';
import { type Daemon, freePort, type ObsLine, postSigned, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { RoomScript, sipLeg } from '../obs/sessions.helpers.ts';

const directory = mkdtempSync(join(tmpdir(), 'cp-forward-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let counter = 0;

interface Delivery {
  readonly eventId: string;
  readonly instance: string;
  readonly event: Record<string, unknown>;
}

/** A backend: verifies each request like a LiveKit SDK user, records what it accepted. */
class Receiver {
  readonly server: Server;
  readonly deliveries: Delivery[] = [];
  readonly batches: string[][] = [];
  readonly rejectedSignatures: string[] = [];
  /** Decides the answer of each request: 200 by default. */
  answer: (request: number) => { status: number; headers?: Record<string, string>; delayMs?: number } = () => ({ status: 200 });
  requests = 0;
  port = 0;
  private readonly receiver = new WebhookReceiver(TEST_KEY.keyId, TEST_KEY.secret);
  private readonly tokens = new TokenVerifier(TEST_KEY.keyId, TEST_KEY.secret);

  /** A single event: the SDK's WebhookReceiver, as a backend uses it. A batch is not one WebhookEvent: its token and hash, checked with the SDK's verifier. */
  private async verify(body: string, authorization: string | undefined, batch: boolean): Promise<void> {
    if (!batch) {
      await this.receiver.receive(body, authorization);
      return;
    }
    const claims = await this.tokens.verify(authorization ?? '');
    if (claims.sha256 !== createHash('sha256').update(body).digest('base64')) throw new Error('sha256 mismatch');
  }

  constructor() {
    this.server = createServer((request, response) => void this.handle(request, response));
  }

  async listen(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}/hooks/calls`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const number = this.requests++;
    const decision = this.answer(number);
    if (decision.delayMs) await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
    if (decision.status === 200) {
      try {
        await this.verify(body, request.headers.authorization, request.headers['content-type'] === 'application/x-ndjson');
      } catch (error) {
        this.rejectedSignatures.push(String(error));
        response.writeHead(401).end();
        return;
      }
      const instance = String(request.headers['x-control-plane-instance']);
      if (request.headers['content-type'] === 'application/x-ndjson') {
        const ids = String(request.headers['x-control-plane-event-ids']).split(',');
        const lines = body.split('\n').filter(Boolean);
        this.batches.push(lines);
        lines.forEach((line, index) => this.deliveries.push({ eventId: ids[index]!, instance, event: JSON.parse(line) as Record<string, unknown> }));
      } else {
        this.deliveries.push({ eventId: String(request.headers['x-control-plane-event-id']), instance, event: JSON.parse(body) as Record<string, unknown> });
      }
    }
    response.writeHead(decision.status, decision.headers ?? {}).end();
  }

  /** Deliveries deduplicated by event id (the receiver's job), in arrival order. */
  unique(): Delivery[] {
    const seen = new Set<string>();
    return this.deliveries.filter((delivery) => (seen.has(delivery.eventId) ? false : (seen.add(delivery.eventId), true)));
  }
}

function callStream(rooms: number): JsonObject[] {
  const events: JsonObject[] = [];
  for (let index = 0; index < rooms; index++) {
    const room = new RoomScript(`forward-${++counter}`);
    const leg = sipLeg(index % 2 ? 'inbound' : 'outbound', 2, `+1415555${String(2000 + index)}`);
    events.push(room.started(0), room.joined(leg, 3, index % 2 ? 'ringing' : 'dialing'), room.trackPublished(leg, 9), room.left(leg, 60, 'CLIENT_INITIATED', 'hangup'), room.finished(62));
  }
  return events;
}

async function sendAll(daemon: Daemon, events: readonly JsonObject[]): Promise<void> {
  for (const event of events) assert.equal((await postSigned(daemon.url, encodeBody(event))).status, 200);
}

const derived = (lines: readonly ObsLine[]) => lines.filter((line) => /^(call|session|provider)\./.test(line.event_type));

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every derived line of the output arrived once, with the same fields, in order per session. */
function assertDeliveredExactlyOnce(daemonLines: readonly ObsLine[], receiver: Receiver): void {
  const expected = derived(daemonLines);
  const unique = receiver.unique();
  assert.equal(unique.length, expected.length, `${unique.length} unique deliveries for ${expected.length} derived lines`);
  const bySeq = new Map(unique.map((delivery) => [delivery.event.seq, delivery.event]));
  for (const line of expected) assert.deepEqual(bySeq.get(line.seq), line, `line seq ${line.seq} arrived with the same fields`);
  const perSession = new Map<string, number[]>();
  for (const delivery of unique) {
    const session = String(delivery.event.session_id);
    perSession.set(session, [...(perSession.get(session) ?? []), delivery.event.seq as number]);
  }
  for (const [session, seqs] of perSession) assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `session ${session} delivered in order`);
}

describe('forwarding derived events', () => {
  test('a healthy backend: each derived event once, verified with the LiveKit SDK, same fields as the line, in order per session', async (t) => {
    const receiver = new Receiver();
    const url = await receiver.listen();
    t.after(() => receiver.close());
    const daemon = await startDaemon({ args: ['--forward-url', url, '--forward-spool', join(directory, `spool-${++counter}`)] });
    t.after(() => daemon.child.kill('SIGKILL'));
    await sendAll(daemon, callStream(4));
    await until(() => receiver.unique().length >= derived(daemon.lines()).length, 10_000, 'the deliveries');
    assert.deepEqual(receiver.rejectedSignatures, []);
    assertDeliveredExactlyOnce(daemon.lines(), receiver);
    assert.ok(receiver.unique().every((delivery) => /^(call|session)\./.test(String(delivery.event.event_type))), 'only the default event types');
    const health = await fetch(`${daemon.url}/health`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as { forwarding: Array<{ queued: number; url: string }> };
    assert.equal(body.forwarding[0]!.queued, 0);
    assert.equal(body.forwarding[0]!.url, url);
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`control_plane_forward_delivered_total\\{destination="${url.replace(/[./]/g, '\\$&')}"\\} ${receiver.unique().length}`));
  });

  test('a failing backend (503s, 429 with Retry-After, slow answers): every event still once, in order per session', async (t) => {
    const receiver = new Receiver();
    receiver.answer = (number) => (number % 5 === 0 ? { status: 503 } : number % 7 === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : number % 4 === 0 ? { status: 200, delayMs: 300 } : { status: 200 });
    const url = await receiver.listen();
    t.after(() => receiver.close());
    const daemon = await startDaemon({ args: ['--forward-url', url, '--forward-spool', join(directory, `spool-${++counter}`)] });
    t.after(() => daemon.child.kill('SIGKILL'));
    const started = performance.now();
    await sendAll(daemon, callStream(6));
    const answeredIn = performance.now() - started;
    await until(() => receiver.unique().length >= derived(daemon.lines()).length, 30_000, 'the deliveries');
    assertDeliveredExactlyOnce(daemon.lines(), receiver);
    t.diagnostic(`30 webhooks answered in ${answeredIn.toFixed(0)} ms while the backend failed; ${receiver.requests} delivery requests for ${receiver.unique().length} events`);
  });

  test('kill -9 with events in the spool: after the restart they are delivered', async (t) => {
    const spool = join(directory, `spool-${++counter}`);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hooks/calls`;
    const first = await startDaemon({ args: ['--forward-url', url, '--forward-spool', spool] });
    await sendAll(first, callStream(3)); // nobody listens on the backend port yet
    const expected = derived(first.lines());
    first.child.kill('SIGKILL');
    await first.exited;

    const receiver = new Receiver();
    await receiver.listen(port);
    t.after(() => receiver.close());
    const second = await startDaemon({ args: ['--forward-url', url, '--forward-spool', spool] });
    t.after(() => second.child.kill('SIGKILL'));
    await until(() => receiver.unique().length >= expected.length, 20_000, 'the spooled events');
    assertDeliveredExactlyOnce(expected, receiver);
    assert.ok(second.lines().some((line) => line.event_type === 'control_plane.warning' && /still to deliver/.test(String(line.detail))));
  });

  test('a backend down for a whole 20 000-webhook burst: webhooks answered 200 at once; everything delivered when it returns', { timeout: 300_000 }, async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hooks/calls`;
    const daemon = await startDaemon({ args: ['--forward-url', url, '--forward-spool', join(directory, `spool-${++counter}`)] });
    t.after(() => daemon.child.kill('SIGKILL'));
    // 4 000 calls (20 000 webhooks), 16 rooms at a time, each room's events in order as LiveKit sends them.
    const stream = callStream(4_000);
    const started = performance.now();
    await Promise.all(Array.from({ length: 16 }, (_, worker) => sendAll(daemon, stream.filter((_, index) => Math.floor(index / 5) % 16 === worker))));
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${stream.length} webhooks answered 200 in ${seconds.toFixed(1)} s (${(stream.length / seconds).toFixed(0)}/s) with the backend down`);
    const receiver = new Receiver();
    await receiver.listen(port);
    t.after(() => receiver.close());
    await until(() => receiver.unique().length >= derived(daemon.lines()).length, 120_000, 'the backlog');
    assertDeliveredExactlyOnce(daemon.lines(), receiver);
  });

  test('a 4xx refusal is given up with a warning line; the next events are still delivered', async (t) => {
    const receiver = new Receiver();
    receiver.answer = (number) => (number === 0 ? { status: 400 } : { status: 200 });
    const url = await receiver.listen();
    t.after(() => receiver.close());
    const daemon = await startDaemon({ args: ['--forward-url', url, '--forward-spool', join(directory, `spool-${++counter}`), '--forward-events', 'call.*'] });
    t.after(() => daemon.child.kill('SIGKILL'));
    await sendAll(daemon, callStream(2));
    const calls = derived(daemon.lines()).filter((line) => line.event_type.startsWith('call.'));
    await until(() => receiver.unique().length >= calls.length - 1, 10_000, 'the deliveries after the refusal');
    await daemon.waitForLine((line) => line.event_type === 'control_plane.warning' && /refused 1 event\(s\) with 400; not retried/.test(String(line.detail)));
    assert.equal(receiver.unique().length, calls.length - 1);
  });

  test('ndjson: batches that parse line by line and hold each event once', async (t) => {
    const receiver = new Receiver();
    const url = await receiver.listen();
    t.after(() => receiver.close());
    const daemon = await startDaemon({ args: ['--forward-url', url, '--forward-spool', join(directory, `spool-${++counter}`), '--forward-format', 'ndjson', '--forward-batch-size', '7', '--forward-linger', '50ms'] });
    t.after(() => daemon.child.kill('SIGKILL'));
    await sendAll(daemon, callStream(5));
    await until(() => receiver.unique().length >= derived(daemon.lines()).length, 10_000, 'the batches');
    assertDeliveredExactlyOnce(daemon.lines(), receiver);
    assert.ok(receiver.batches.every((batch) => batch.length <= 7));
    assert.ok(receiver.batches.some((batch) => batch.length > 1), 'lines are batched');
    assert.equal(receiver.deliveries.length, receiver.unique().length, 'no event twice without a failure');
  });
});
