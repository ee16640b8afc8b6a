// Failures with a shared store: an instance killed (SIGKILL) in the middle
// of a burst, and Redis itself restarted in the middle of one. The sender
// retries as LiveKit does (5xx and connection errors, on whichever instance
// the load balancer picks). Nothing answered 200 may be missing from the
// outputs; the only repeats allowed are a retried webhook's own lines, with
// its webhook_id (README, "Running two or more").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeBody } from '../../src/livekit/samples.ts';
import { type Daemon, freePort, type ObsLine, postSigned, startDaemon } from '../helpers/daemon.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { RoomScript } from '../obs/sessions.helpers.ts';
import { isDerived, projectDerived, referenceLines, type RoomStream, roomStreams, seededRandom, sendBurst, tally } from '../helpers/room-streams.ts';

const missing = redisMissing();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A random instance, not the one that just failed. */
function otherThan(urls: readonly string[], failed: string | undefined): string {
  const candidates = failed === undefined ? urls : urls.filter((url) => url !== failed);
  return candidates[Math.floor(Math.random() * candidates.length)]!;
}

/** Rooms adding up to at least `webhooks` webhooks. */
function roomsFor(webhooks: number, seed: number): RoomStream[] {
  const random = seededRandom(seed);
  const rooms: RoomStream[] = [];
  let total = 0;
  while (total < webhooks) {
    const batch = roomStreams(64, random);
    for (const room of batch) {
      rooms.push(room);
      total += room.bodies.length;
      if (total >= webhooks) break;
    }
  }
  return rooms;
}

/** All instances' lines once every accepted webhook has a processing or duplicate line somewhere. */
async function linesOfAccepted(daemons: readonly Daemon[], accepted: ReadonlySet<string>): Promise<ObsLine[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = daemons.flatMap((daemon) => daemon.lines());
    const answered = new Set<string>();
    for (const line of lines) if (line.event_type === 'webhook.processing' || line.event_type === 'webhook.duplicate') answered.add(String(line.webhook_id));
    const missingIds = [...accepted].filter((id) => !answered.has(id));
    if (missingIds.length === 0) return lines;
    assert.ok(Date.now() < deadline, `${missingIds.length} webhooks answered 200 have no lines in any output, e.g. ${missingIds.slice(0, 3).join(', ')}`);
    await sleep(100);
  }
}

/** Each leg started once and ended once across all outputs (repeats only with the same webhook_id); and no line that one instance would not write. */
function assertExactlyOnce(lines: readonly ObsLine[], rooms: readonly RoomStream[], retried: ReadonlySet<string>, context: string): void {
  const legs = new Map<string, Map<string, Set<string>>>();
  for (const line of lines) {
    if (!line.event_type.startsWith('call.')) continue;
    const leg = legs.get(String(line.participant_sid)) ?? new Map<string, Set<string>>();
    legs.set(String(line.participant_sid), leg);
    const webhooks = leg.get(line.event_type) ?? new Set<string>();
    leg.set(line.event_type, webhooks);
    webhooks.add(String(line.webhook_id));
  }
  for (const [participant, leg] of legs) {
    assert.equal(leg.get('call.started')?.size, 1, `${participant} started by ${[...(leg.get('call.started') ?? [])].join(', ')} ${context}`);
    assert.equal(leg.get('call.ended')?.size, 1, `${participant} ended by ${[...(leg.get('call.ended') ?? [])].join(', ')} ${context}`);
  }
  const expected = tally(referenceLines(rooms));
  const actual = tally(lines.filter((line) => isDerived(line.event_type)).map((line) => projectDerived(line)));
  for (const line of expected.keys()) assert.ok(actual.has(line), `missing from every output ${context}: ${line}`);
  for (const [line, count] of actual) {
    assert.ok(expected.has(line), `not what one instance writes ${context}: ${line}`);
    if (count > 1) {
      const webhookId = (JSON.parse(line) as { webhook_id?: string }).webhook_id;
      assert.ok(webhookId !== undefined && retried.has(webhookId), `repeated without a retry ${context}: ${line}`);
    }
  }
}

describe('failures with a shared store', { skip: missing }, () => {
  let redis: RedisServer;
  const daemons: Daemon[] = [];

  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    for (const daemon of daemons) await daemon.stop('SIGKILL');
    await redis.close();
  });

  test('20 000 webhooks through two instances, one killed with SIGKILL mid-burst: every 200 is in an output, every call ends once', async () => {
    await redis.command('FLUSHALL');
    const seed = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000);
    const context = `(seed ${seed})`;
    const rooms = roomsFor(20_000, seed);
    const [victim, survivor] = await Promise.all(['cp-victim', 'cp-survivor'].map((name) => startDaemon({ args: ['--store', `${redis.url}/0`, '--instance-id', name] })));
    daemons.push(victim!, survivor!);
    const urls = [victim!.url, survivor!.url];
    let killedAt = 0;
    const started = Date.now();
    const report = await sendBurst(rooms, {
      concurrency: 48,
      // A load balancer without health checks: half the first attempts still go to the dead instance; a retry goes to the other.
      pick: (_attempt, failed) => otherThan(urls, failed),
      onAccepted: (accepted) => {
        if (accepted === 6_000) {
          killedAt = accepted;
          victim!.child.kill('SIGKILL');
        }
      },
    });
    const seconds = (Date.now() - started) / 1000;
    const total = rooms.reduce((sum, room) => sum + room.bodies.length, 0);
    assert.ok(killedAt > 0, 'the victim was killed mid-burst');
    assert.equal(report.accepted.size, total, 'every webhook was accepted in the end');
    assert.ok((report.failures.get('conn') ?? 0) > 0, 'the kill was felt: connection errors were retried');
    assert.equal(report.retryAfterMissing, 0, 'every 5xx carried Retry-After');
    const lines = await linesOfAccepted([victim!, survivor!], report.accepted);
    assertExactlyOnce(lines, rooms, report.retried, context);
    const repeated = lines.filter((line) => line.event_type === 'webhook.processing').length - new Set(lines.filter((line) => line.event_type === 'webhook.processing').map((line) => line.webhook_id)).size;
    console.log(
      `# failover: ${total} webhooks in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s), victim killed after ${killedAt}; failures ${JSON.stringify(Object.fromEntries(report.failures))}; webhooks processed twice: ${repeated}`,
    );
  });

  test('started while Redis is down: it starts (within the store timeout), answers 503 with Retry-After, and recovers once Redis is up', async () => {
    const port = await freePort();
    const started = Date.now();
    const daemon = await startDaemon({ args: ['--store', `redis://127.0.0.1:${port}/0`, '--instance-id', 'cp-early'] });
    daemons.push(daemon);
    assert.ok(Date.now() - started < 8_000, 'start-up is not held up for long');
    const health = await fetch(`${daemon.url}/health`);
    assert.equal(health.status, 503);
    assert.match(((await health.json()) as { error: string }).error, /^store_/);
    const body = encodeBody(new RoomScript('early').started(0));
    const refused = await postSigned(daemon.url, body);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '2');
    const late = await RedisServer.start({ port });
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const answer = await postSigned(daemon.url, body);
        if (answer.status === 200) break;
        assert.ok(Date.now() < deadline, `still ${answer.status} after Redis came up`);
        await sleep(100);
      }
      assert.equal((await fetch(`${daemon.url}/health`)).status, 200);
    } finally {
      await daemon.stop();
      await late.close();
    }
  });

  test('Redis restarted mid-burst: 503 with Retry-After and /health degraded while it is gone, then recovery by itself; nothing answered 200 is lost', async () => {
    await redis.command('FLUSHALL');
    const seed = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000) + 1;
    const rooms = roomsFor(4_000, seed);
    const pair = await Promise.all(['cp-one', 'cp-two'].map((name) => startDaemon({ args: ['--store', `${redis.url}/0`, '--instance-id', name] })));
    daemons.push(...pair);
    const urls = pair.map((daemon) => daemon.url);
    let outage: Promise<void> | undefined;
    let degraded: unknown;
    const report = await sendBurst(rooms, {
      concurrency: 16,
      pick: (_attempt, failed) => otherThan(urls, failed),
      onAccepted: (accepted) => {
        if (accepted !== 1_000) return;
        outage = (async () => {
          await redis.stop(true);
          // Let the burst run into the outage for a while.
          await sleep(300);
          degraded = await fetch(`${urls[0]}/health`).then(async (response) => ({ status: response.status, body: await response.json() }));
          await sleep(700);
          await redis.restart();
        })();
      },
    });
    await outage;
    assert.equal(report.accepted.size, rooms.reduce((sum, room) => sum + room.bodies.length, 0), 'every webhook was accepted in the end');
    assert.ok((report.failures.get('503') ?? 0) > 0, '503 while Redis was gone');
    assert.equal(report.retryAfterMissing, 0, 'every 503 carried Retry-After');
    assert.equal((degraded as { status: number }).status, 503, '/health degraded while Redis was gone');
    assert.match(String((degraded as { body: { error: string } }).body.error), /^store_/);
    const health = await fetch(`${urls[0]}/health`);
    assert.equal(health.status, 200, 'healthy again by itself');
    const metrics = await fetch(`${urls[0]}/metrics`).then((response) => response.text());
    assert.match(metrics, /control_plane_store_errors_total\{reason="[a-z_]+"\} [1-9]/, 'store errors are counted');
    // Nothing answered 200 is lost. (Persistence is off: the restarted Redis is empty, so calls open
    // across the restart are not checked for exactly-once here, as after any store that lost its data.)
    await linesOfAccepted(pair, report.accepted);
  });
});
