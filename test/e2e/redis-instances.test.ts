// Several instances, one truth: three daemons share one real Redis
// (--store redis://…). Random streams of whole rooms (every call scenario,
// WebRTC rooms, egress and ingress troubles) go to random instances at
// once: each room's webhooks in its queue's order, rooms interleaved, some
// rooms sent twice concurrently (as LiveKit does for two webhook URLs) and
// some webhooks redelivered. The derived lines of the three outputs together
// must be those of one embedded-store instance fed the same rooms.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeBody } from '../../src/livekit/samples.ts';
import { type Daemon, freePort, type ObsLine, postSigned, runProgram, startDaemon, testEnv } from '../helpers/daemon.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { isDerived, projectDerived, referenceLines, type RoomStream, roomStreams, seededRandom, tally } from '../helpers/room-streams.ts';
import { RoomScript, sipLeg } from '../obs/sessions.helpers.ts';

const missing = redisMissing();
const opensslMissing = (): string | undefined => (spawnSync('openssl', ['version']).status === 0 ? undefined : 'openssl not found: install Debian\'s openssl package to test rediss://');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one webhook to a random instance until one answers 200, as LiveKit retries (5xx, connection errors). Returns the non-200 answers seen. */
async function deliver(daemons: readonly Daemon[], body: string, random: () => number, failures: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const daemon = daemons[Math.floor(random() * daemons.length)]!;
    try {
      const answer = await postSigned(daemon.url, body);
      if (answer.status === 200) return;
      assert.ok(answer.status >= 500, `a webhook was refused for good: ${answer.status} ${answer.text}`);
      failures.push(`${answer.status} ${answer.text}`);
    } catch (error) {
      failures.push(String(error));
    }
    assert.ok(attempt < 50, `no instance accepted a webhook after 50 attempts: ${failures.slice(-3).join('; ')}`);
    await sleep(20);
  }
}

const webhookIdOf = (body: string): string => (JSON.parse(body) as { id: string }).id;

/** The instances' outputs once every accepted webhook's lines are in: each 200 has a processing or duplicate line somewhere. */
async function settledLines(daemons: readonly Daemon[], accepted: number): Promise<ObsLine[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const lines = daemons.flatMap((daemon) => daemon.lines());
    const answered = lines.filter((line) => line.event_type === 'webhook.processing' || line.event_type === 'webhook.duplicate').length;
    if (answered >= accepted) return lines;
    assert.ok(Date.now() < deadline, `only ${answered} of ${accepted} accepted webhooks have their lines`);
    await sleep(50);
  }
}

describe('three instances on one Redis', { skip: missing }, () => {
  let redis: RedisServer;
  let daemons: Daemon[] = [];

  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    for (const daemon of daemons) await daemon.stop();
    await redis.close();
  });

  const startInstances = async (names: readonly string[]): Promise<Daemon[]> =>
    Promise.all(names.map((name) => startDaemon({ args: ['--store', `${redis.url}/0`, '--instance-id', name] })));

  test('random rooms to random instances, concurrently: the derived lines equal one embedded-store instance', async () => {
    await redis.command('FLUSHALL');
    daemons = await startInstances(['cp-a', 'cp-b', 'cp-c']);
    const seed = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const context = `(seed ${seed}; replay with PROPERTY_SEED=${seed})`;
    const rooms: RoomStream[] = roomStreams(36, random);
    const failures: string[] = [];
    const answeredNon200 = new Set<string>();
    let accepted = 0;

    // A room's queue: its webhooks one at a time, in order, each to a random instance; some redelivered after their 200.
    const queue = async (room: RoomStream): Promise<void> => {
      for (const body of room.bodies) {
        const before = failures.length;
        await deliver(daemons, body, random, failures);
        if (failures.length > before) answeredNon200.add(webhookIdOf(body));
        accepted++;
        if (random() < 0.15) {
          await deliver(daemons, body, random, failures);
          accepted++;
        }
      }
    };
    const queues: Array<Promise<void>> = [];
    for (const room of rooms) {
      queues.push(queue(room));
      // A second webhook URL: the same room, its own queue, concurrently.
      if (random() < 0.3) queues.push(queue(room));
    }
    await Promise.all(queues);

    const lines = await settledLines(daemons, accepted);
    const derived = lines.filter((line) => isDerived(line.event_type)).map((line) => projectDerived(line));
    const expected = tally(referenceLines(rooms));
    const actual = tally(derived);
    for (const [line, count] of expected) {
      assert.equal(count, 1, `the reference itself repeats a line ${context}: ${line}`);
      assert.ok(actual.has(line), `missing from all outputs ${context}: ${line}`);
    }
    for (const [line, count] of actual) {
      assert.ok(expected.has(line), `written but not in the reference ${context}: ${line}`);
      if (count > 1) {
        // The one allowed repeat: a webhook answered 503 after its lines were written, written again on the retry.
        const webhookId = (JSON.parse(line) as { webhook_id?: string }).webhook_id;
        assert.ok(webhookId !== undefined && answeredNon200.has(webhookId), `repeated ${count} times without a failed answer to retry ${context}: ${line}`);
      }
    }

    // Exactly once per leg, across the three outputs: one webhook started it, at most one answered it, one ended it.
    const legs = new Map<string, Map<string, Set<string>>>();
    for (const line of lines.filter((candidate) => candidate.event_type.startsWith('call.'))) {
      const leg = legs.get(String(line.participant_sid)) ?? new Map<string, Set<string>>();
      legs.set(String(line.participant_sid), leg);
      const webhooks = leg.get(line.event_type) ?? new Set<string>();
      leg.set(line.event_type, webhooks);
      webhooks.add(String(line.webhook_id));
    }
    assert.ok(legs.size >= 14, `the rooms had calls ${context}`);
    for (const [participant, leg] of legs) {
      assert.equal(leg.get('call.started')?.size, 1, `${participant}: started once ${context}`);
      assert.equal(leg.get('call.ended')?.size, 1, `${participant}: ended once ${context}`);
      assert.ok((leg.get('call.answered')?.size ?? 0) <= 1, `${participant}: answered at most once ${context}`);
    }

    // Every line names its instance; seq has no gap within each instance.
    for (const daemon of daemons) {
      const own = daemon.lines();
      const name = own[0]!.instance;
      assert.ok(own.every((line) => line.instance === name), 'instance on every line');
      assert.deepEqual(
        own.map((line) => line.seq),
        own.map((_, index) => index + 1),
        `${String(name)}: seq without gaps`,
      );
    }
    // Leases keep the instances from planning one room at once, so no commit ever found its keys changed.
    for (const daemon of daemons) {
      const metrics = await fetch(`${daemon.url}/metrics`).then((response) => response.text());
      const conflicts = /control_plane_store_errors_total\{reason="conflict"\} (\d+)/.exec(metrics)?.[1] ?? '0';
      assert.equal(conflicts, '0', `commit conflicts on ${daemon.url} ${context}`);
    }

    // Bounded: every key the instances left in Redis expires by itself.
    const keys = await redis.command('EVAL', "local n = 0 for _, key in ipairs(redis.call('KEYS', '*')) do n = n + 1 end return n", '0');
    const withoutTtl = await redis.command('EVAL', "local out = {} for _, key in ipairs(redis.call('KEYS', '*')) do if redis.call('PTTL', key) < 0 then table.insert(out, key) end end return out", '0');
    assert.ok(Number(/^:(\d+)/.exec(keys)?.[1]) > 100, `keys in Redis: ${keys}`);
    assert.equal(withoutTtl, '*0\r\n', `keys without a TTL: ${withoutTtl}`);

    // The work was shared: each instance accepted some of it.
    for (const daemon of daemons) assert.ok(daemon.lines().some((line) => line.event_type === 'webhook.processing'), 'every instance took webhooks');
  });

  test('an instance added later, or restarted, picks up the open calls from the store', async () => {
    await redis.command('FLUSHALL');
    for (const daemon of daemons) await daemon.stop();
    const [first] = (daemons = await startInstances(['cp-first']));
    const room = new RoomScript('handover');
    const leg = sipLeg('inbound', 2);
    for (const event of [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 10)]) {
      assert.equal((await postSigned(first!.url, encodeBody(event))).status, 200);
    }
    await first!.stop();
    // No state file: the new instance knows the call from Redis alone.
    const [added] = (daemons = await startInstances(['cp-added']));
    assert.equal((await postSigned(added!.url, encodeBody(room.left(leg, 70, 'CLIENT_INITIATED', 'hangup')))).status, 200);
    const ended = await added!.waitForLine((line) => line.event_type === 'call.ended');
    assert.equal(ended.participant_sid, leg.sid);
    assert.equal(ended.outcome, 'completed');
    assert.equal(ended.duration_ms, 68_000);
    assert.equal(ended.talk_ms, 60_000);
    assert.equal(ended.instance, 'cp-added');
    assert.ok(!added!.lines().some((line) => line.event_type === 'call.started'), 'the call is not started a second time');
  });

  test('the password is in no output; check-config says whether the store answers', async () => {
    const guarded = await RedisServer.start({ args: ['--requirepass', 'hunter2-secret-pass'] });
    try {
      const daemon = await startDaemon({ args: ['--store', `redis://:hunter2-secret-pass@127.0.0.1:${guarded.port}/1`, '--instance-id', 'cp-pw'] });
      daemons.push(daemon);
      const started = daemon.lines()[0]!;
      assert.equal(started.store, `redis://127.0.0.1:${guarded.port}/1`);
      const body = encodeBody(new RoomScript('pw').started(0));
      assert.equal((await postSigned(daemon.url, body)).status, 200);
      const metrics = await fetch(`${daemon.url}/metrics`).then((response) => response.text());
      await daemon.stop();
      assert.doesNotMatch(daemon.stdout + daemon.stderr + metrics, /hunter2/);

      const checked = await runProgram(['check-config', '--store', `redis://127.0.0.1:${guarded.port}`], testEnv({ CONTROL_PLANE_STORE_PASSWORD: 'hunter2-secret-pass' }));
      assert.equal(checked.code, 0, checked.stderr);
      assert.match(checked.stdout, /"store_status": "answers \(redis /);
      assert.doesNotMatch(checked.stdout + checked.stderr, /hunter2/);

      const wrong = await runProgram(['check-config', '--store', `redis://:not-it@127.0.0.1:${guarded.port}`]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stdout, /"store_status": "does not answer/);
      assert.doesNotMatch(wrong.stdout + wrong.stderr, /not-it/);
    } finally {
      await guarded.close();
    }
  });

  test('rediss://: the connection is TLS, and the server certificate is checked', { skip: opensslMissing() }, async () => {
    const directory = mkdtempSync(join(tmpdir(), 'cp-tls-'));
    const openssl = (...args: string[]) => {
      const result = spawnSync('openssl', args, { cwd: directory, encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
    };
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=control-plane test CA');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(directory, 'san.cnf'), 'subjectAltName=DNS:localhost\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.cnf');
    const tlsPort = await freePort();
    const secure = await RedisServer.start({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', join(directory, 'server.pem'), '--tls-key-file', join(directory, 'server.key'), '--tls-ca-cert-file', join(directory, 'ca.pem'), '--tls-auth-clients', 'no'],
    });
    try {
      const url = `rediss://localhost:${tlsPort}/0`;
      const daemon = await startDaemon({ args: ['--store', url, '--instance-id', 'cp-tls'], env: { NODE_EXTRA_CA_CERTS: join(directory, 'ca.pem') } });
      daemons.push(daemon);
      assert.equal(daemon.lines()[0]!.store, url);
      assert.equal((await postSigned(daemon.url, encodeBody(new RoomScript('tls').started(0)))).status, 200);
      await daemon.stop();
      // Without the CA the certificate is not trusted: no connection.
      const untrusted = await runProgram(['check-config', '--store', url]);
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stdout, /"store_status": "does not answer/);
      const trusted = await runProgram(['check-config', '--store', url], testEnv({ NODE_EXTRA_CA_CERTS: join(directory, 'ca.pem') }));
      assert.equal(trusted.code, 0, trusted.stdout + trusted.stderr);
    } finally {
      await secure.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('--state-file with a redis store stops the program at start (exit 2)', async () => {
    const result = await runProgram(['--store', `${redis.url}/0`, '--state-file', '/tmp/never.json']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--state-file: not with a shared store/);
  });
});
