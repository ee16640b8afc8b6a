// The worked example of README's "Running two or more": Debian's HAProxy
// with the shipped packaging/haproxy/haproxy.cfg in front of two instances
// that share one Redis. One instance is stopped while webhooks flow: every
// webhook is still answered 200, on the first try, and each call ends once.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type Daemon, freePort, REPO_ROOT, startDaemon } from '../helpers/daemon.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { roomStreams, seededRandom, sendBurst } from '../helpers/room-streams.ts';

const CONFIG = `${REPO_ROOT}packaging/haproxy/haproxy.cfg`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function haproxyMissing(): string | undefined {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return "haproxy not found: install Debian's haproxy package (apt-get install haproxy) to run the load-balancer test";
  return undefined;
}

const missing = redisMissing() ?? haproxyMissing();

describe('HAProxy in front of two instances (packaging/haproxy/haproxy.cfg)', { skip: missing }, () => {
  let redis: RedisServer;
  let instances: Daemon[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyLog = '';
  let frontend = '';

  before(async () => {
    redis = await RedisServer.start();
    instances = await Promise.all(['cp-a', 'cp-b'].map((name) => startDaemon({ args: ['--store', `${redis.url}/0`, '--instance-id', name] })));
    const listen = await freePort();
    frontend = `http://127.0.0.1:${listen}`;
    // The shipped file as it is; only the addresses, through the variables it reads.
    haproxy = spawn('haproxy', ['-db', '-f', CONFIG], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin', CP_LISTEN: `127.0.0.1:${listen}`, CP_A: `127.0.0.1:${instances[0]!.port}`, CP_B: `127.0.0.1:${instances[1]!.port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    haproxy.stdout!.setEncoding('utf8').on('data', (chunk: string) => (haproxyLog += chunk));
    haproxy.stderr!.setEncoding('utf8').on('data', (chunk: string) => (haproxyLog += chunk));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await fetch(`${frontend}/health`).then((response) => response.status === 200, () => false);
      if (up) break;
      assert.ok(haproxy.exitCode === null, `haproxy exited: ${haproxyLog}`);
      assert.ok(Date.now() < deadline, `haproxy never answered: ${haproxyLog}`);
      await sleep(100);
    }
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((resolve) => haproxy!.once('exit', resolve));
      haproxy.kill('SIGTERM');
      await exited;
    }
    for (const instance of instances) await instance.stop();
    await redis.close();
  });

  test('one instance stopped mid-stream: every webhook is answered 200 on the first try', async () => {
    const rooms = roomStreams(120, seededRandom(7));
    let stopped: Promise<unknown> | undefined;
    const report = await sendBurst(rooms, {
      concurrency: 8,
      pick: () => `${frontend}`,
      onAccepted: (accepted) => {
        if (accepted === 200) stopped = instances[0]!.stop('SIGTERM');
      },
    });
    await stopped;
    const total = rooms.reduce((sum, room) => sum + room.bodies.length, 0);
    assert.equal(report.accepted.size, total);
    assert.deepEqual(Object.fromEntries(report.failures), {}, `LiveKit would have seen failures; haproxy: ${haproxyLog.slice(-2000)}`);
    // Both instances took webhooks, and the survivor took all of them after the stop.
    const processedBy = (instance: Daemon) => instance.lines().filter((line) => line.event_type === 'webhook.processing').length;
    assert.ok(processedBy(instances[0]!) > 0 && processedBy(instances[1]!) > 0, 'both instances took webhooks');
    assert.equal(processedBy(instances[0]!) + processedBy(instances[1]!), total, 'each webhook processed once');
    // Each leg ended once, across both outputs.
    const ended = instances.flatMap((instance) => instance.lines()).filter((line) => line.event_type === 'call.ended');
    assert.equal(new Set(ended.map((line) => line.participant_sid)).size, ended.length);
  });
});
