// The production path under a real systemd 252 and journald (Debian 12, the
// systemd-sandbox): build the executable, install it with
// packaging/install.sh, `systemctl start`, read the journal the way README
// tells operators to, survive a burst, run the file sink with the shipped
// logrotate config, and restart/stop cleanly with the state file kept.
// The steps build on each other and run in order.

import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Pool, request } from 'undici';
import type { KeyPair } from '../../src/config.ts';
import { EVENT_TYPES } from '../../src/obs/schema.ts';
import {
  encodeBody,
  envelope,
  type JsonObject,
  livekitId,
  newRoom,
  participantJson,
  roomJson,
  SAMPLE_EVENTS,
  sampleWebhook,
  sipParticipant,
  standardParticipant,
} from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { freePort, type ObsLine, REPO_ROOT, TEST_KEY } from '../helpers/daemon.ts';
import { hostPath, inside, insideOk, run, sandboxDown, sandboxUnavailable, sandboxUp, unitProperties } from './sandbox.ts';

const UNIT = 'control-plane.service';
const RELEASE_DIR = '/root/control-plane-release';
const ENV_FILE = '/etc/control-plane/control-plane.env';
const SECRET_FILE = '/etc/control-plane/livekit_api_secret';
const STATE_FILE = '/var/lib/private/control-plane/state.json';
const LOG_DIR = '/var/log/private/control-plane';
const BURST_SIZE = 20_000;
const BURST_IN_FLIGHT = 64;
const MAX_EXPOSURE = 1.5;

/** Event types that need conditions this test does not create (a keys file, a rejection flood, a start-up warning). */
// control_plane.diagnostic goes to stderr only when something is wrong.
const NOT_PROVOKED = new Set(['control_plane.warning', 'control_plane.keys_reloaded', 'webhook.rejected_suppressed', 'control_plane.diagnostic']);

const unavailable = sandboxUnavailable();

interface Signed {
  readonly id: string;
  readonly body: string;
  readonly authorization: string;
}

function signed(event: JsonObject, key: KeyPair = TEST_KEY): Signed {
  const body = encodeBody(event);
  return { id: event.id as string, body, authorization: signWebhook(body, key) };
}

function parseLines(text: string, source: string): ObsLine[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line, index) => {
      try {
        return JSON.parse(line) as ObsLine;
      } catch {
        throw new Error(`${source} line ${index + 1} is not JSON: ${line.slice(0, 300)}`);
      }
    });
}

function assertContiguousSeq(lines: readonly ObsLine[], source: string): void {
  for (let index = 0; index < lines.length; index++) {
    if (lines[index]!.seq !== index + 1) {
      assert.fail(`${source}: line ${index + 1} has seq ${lines[index]!.seq}, expected ${index + 1} (a lost, repeated or reordered line)`);
    }
  }
}

describe('control-plane under systemd (Debian 12 sandbox)', { skip: unavailable ?? false }, () => {
  let port = 0;
  let baseUrl = '';
  let pool: Pool;
  let suiteCursor = '';
  /** Webhooks sent in the first run, replayed later to prove the state file carried them. */
  const firstRun: Signed[] = [];

  async function post(webhook: Signed): Promise<{ status: number; body: string }> {
    const response = await pool.request({
      path: '/webhook',
      method: 'POST',
      headers: { 'content-type': 'application/webhook+json', authorization: webhook.authorization, 'user-agent': 'LiveKit' },
      body: webhook.body,
    });
    return { status: response.statusCode, body: await response.body.text() };
  }

  async function postOk(webhook: Signed): Promise<void> {
    const answer = await post(webhook);
    assert.equal(answer.status, 200, `webhook ${webhook.id}: ${answer.status} ${answer.body}`);
  }

  async function waitHealthy(timeoutMs = 15_000): Promise<number> {
    const started = performance.now();
    for (;;) {
      const answer = await request(`${baseUrl}/health`).then(
        async (response) => ({ status: response.statusCode, text: await response.body.text() }),
        () => null, // not listening yet
      );
      if (answer?.status === 200) {
        assert.deepEqual(JSON.parse(answer.text), { status: 'ok', component: 'control_plane' });
        return performance.now() - started;
      }
      if (performance.now() - started > timeoutMs) {
        const status = await inside(['systemctl', 'status', '--no-pager', UNIT]);
        assert.fail(`/health not healthy within ${timeoutMs} ms\n${status.stdout}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async function invocationId(): Promise<string> {
    const { InvocationID } = await unitProperties(UNIT, ['InvocationID']);
    assert.ok(InvocationID, 'the unit has an invocation id');
    return InvocationID;
  }

  /** README's way to read the events: only what the program wrote, one JSON object a line. */
  async function journalLines(invocation: string): Promise<ObsLine[]> {
    const text = await insideOk(['journalctl', '--no-pager', '-o', 'cat', `_SYSTEMD_UNIT=${UNIT}`, `_SYSTEMD_INVOCATION_ID=${invocation}`]);
    return parseLines(text, `journal of invocation ${invocation}`);
  }

  /**
   * Where the journal ends now. Every sandbox boot shares this machine's boot
   * id, so `journalctl -b` would also show earlier runs: read after a cursor.
   */
  async function journalCursor(): Promise<string> {
    const text = await insideOk(['journalctl', '--no-pager', '-n', '1', '--show-cursor', '-o', 'cat']);
    const match = /^-- cursor: (.+)$/m.exec(text);
    assert.ok(match, `no cursor in: ${text}`);
    return match[1]!;
  }

  /** Everything in the journal (any unit, journald's own messages) after `cursor`. */
  async function journalAfter(cursor: string): Promise<string> {
    return insideOk(['journalctl', '--no-pager', '-o', 'cat', `--after-cursor=${cursor}`]);
  }

  async function suppressedMessages(cursor: string): Promise<string[]> {
    return (await journalAfter(cursor)).split('\n').filter((line) => /Suppressed \d+ messages/.test(line));
  }

  /** Waits until the invocation's journal satisfies `predicate`; fails once it stops growing for `stallMs` without doing so. */
  async function waitForJournal(invocation: string, predicate: (lines: ObsLine[]) => boolean, stallMs = 10_000): Promise<ObsLine[]> {
    let count = -1;
    let grewAt = Date.now();
    for (;;) {
      const lines = await journalLines(invocation);
      if (predicate(lines)) return lines;
      if (lines.length !== count) {
        count = lines.length;
        grewAt = Date.now();
      } else if (Date.now() - grewAt > stallMs) {
        const suppressed = await suppressedMessages(suiteCursor);
        assert.fail(`the journal stopped at ${lines.length} lines without the expected ones${suppressed.length ? `; journald: ${suppressed.join('; ')}` : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function setEnv(name: string, value: string): Promise<void> {
    const path = hostPath(ENV_FILE);
    const lines = readFileSync(path, 'utf8').split('\n');
    const index = lines.findIndex((line) => line.startsWith(`${name}=`));
    if (index >= 0) lines[index] = `${name}=${value}`;
    else lines.splice(lines.length - 1, 0, `${name}=${value}`);
    writeFileSync(path, lines.join('\n'));
  }

  before(async () => {
    await sandboxUp();
    // Leftovers of an earlier run: the sandbox tree is kept between runs.
    await inside(['systemctl', 'disable', '--now', UNIT]);
    await inside(['systemctl', 'reset-failed', UNIT]);
    for (const path of [
      '/usr/local/bin/control-plane',
      '/etc/systemd/system/control-plane.service',
      '/etc/systemd/system/multi-user.target.wants/control-plane.service',
      '/etc/systemd/system/control-plane.service.d',
      '/etc/logrotate.d/control-plane',
      '/etc/control-plane',
      '/var/lib/private/control-plane',
      '/var/lib/control-plane',
      LOG_DIR,
      '/var/log/control-plane',
      RELEASE_DIR,
    ]) {
      rmSync(hostPath(path), { recursive: true, force: true });
    }
    await insideOk(['systemctl', 'daemon-reload']);
    suiteCursor = await journalCursor();
    port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    pool = new Pool(baseUrl, { connections: BURST_IN_FLIGHT, pipelining: 1 });
  }, { timeout: 20 * 60_000 });

  after(async () => {
    await pool?.close();
    await inside(['systemctl', 'stop', UNIT]);
    await sandboxDown();
  }, { timeout: 120_000 });

  it('builds the executable and installs it with packaging/install.sh', { timeout: 300_000 }, async (t) => {
    const build = await run(process.execPath, ['build.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000 });
    assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
    t.diagnostic(build.stdout.trim());

    // What an operator copies to the VM: the executable and packaging/.
    mkdirSync(hostPath(`${RELEASE_DIR}/dist`), { recursive: true });
    cpSync(`${REPO_ROOT}dist/control-plane`, hostPath(`${RELEASE_DIR}/dist/control-plane`));
    cpSync(`${REPO_ROOT}packaging`, hostPath(`${RELEASE_DIR}/packaging`), { recursive: true });

    // The sandbox has no Node.js: only the executable can run there.
    assert.notEqual((await inside(['sh', '-c', 'command -v node'])).code, 0, 'the sandbox must not have node');

    // README's prerequisite: the C++ runtime's libatomic (a no-op when the image has it).
    await insideOk(['sh', '-c', 'dpkg -s libatomic1 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libatomic1; }'], { timeoutMs: 300_000 });
    const install = await insideOk([`${RELEASE_DIR}/packaging/install.sh`]);
    assert.match(install, /installed +\/usr\/local\/bin\/control-plane/);
    assert.match(install, /installed +\/etc\/systemd\/system\/control-plane\.service/);
    assert.match(install, /reloaded +systemd units/);
    assert.match(install, /checked +control-plane \d/, 'install.sh ran the installed executable');
    // Idempotent: a second run changes nothing.
    const again = await insideOk([`${RELEASE_DIR}/packaging/install.sh`]);
    assert.doesNotMatch(again, /^installed/m);
    assert.match(again, /kept +\/etc\/control-plane\/control-plane\.env/);

    const version = await insideOk(['/usr/local/bin/control-plane', '--version']);
    assert.match(version, /^control-plane \d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+\)\n$/);
    const properties = await unitProperties(UNIT, ['LoadState', 'FragmentPath']);
    assert.equal(properties.LoadState, 'loaded');
    assert.equal(properties.FragmentPath, '/etc/systemd/system/control-plane.service');
  });

  it(`the unit's systemd-analyze security exposure is at most ${MAX_EXPOSURE}`, async (t) => {
    const analysis = await inside(['systemd-analyze', 'security', '--offline=yes', '--no-pager', '/etc/systemd/system/control-plane.service']);
    assert.doesNotMatch(analysis.stderr, /Invalid|Unknown|ignoring/i, `systemd does not accept a line of the unit:\n${analysis.stderr}`);
    const match = /Overall exposure level for control-plane\.service: (\d+\.\d+)/.exec(analysis.stdout);
    assert.ok(match, `no exposure in:\n${analysis.stdout}\n${analysis.stderr}`);
    const exposure = Number(match[1]);
    t.diagnostic(`exposure ${exposure}`);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}:\n${analysis.stdout}`);
    const verify = await inside(['systemd-analyze', 'verify', '/etc/systemd/system/control-plane.service']);
    assert.equal(verify.code, 0, `systemd-analyze verify:\n${verify.stdout}\n${verify.stderr}`);
  });

  it('starts with systemctl, the secret as a credential, and answers /health', { timeout: 60_000 }, async (t) => {
    // The operator's configuration: the key id in the env file, the secret root-only.
    await setEnv('LIVEKIT_API_KEY', TEST_KEY.keyId);
    await setEnv('HOST', '127.0.0.1');
    await setEnv('PORT', String(port));
    writeFileSync(hostPath(SECRET_FILE), `${TEST_KEY.secret}\n`, { mode: 0o600 });
    chmodSync(hostPath(SECRET_FILE), 0o600);

    await insideOk(['systemctl', 'enable', UNIT]);
    const before = performance.now();
    await insideOk(['systemctl', 'start', UNIT]);
    const startReturned = performance.now();
    await waitHealthy();
    t.diagnostic(`systemctl start → healthy /health: ${Math.round(performance.now() - before)} ms (systemctl start itself: ${Math.round(startReturned - before)} ms)`);

    const invocation = await invocationId();
    const [startedLine] = await waitForJournal(invocation, (lines) => lines.length > 0);
    assert.equal(startedLine!.event_type, 'control_plane.started');
    assert.equal(startedLine!.seq, 1);
    assert.equal(startedLine!.listen, `127.0.0.1:${port}`);
    assert.equal(startedLine!.sink, 'stdout');
    assert.deepEqual(startedLine!.key_ids, [TEST_KEY.keyId]);

    // The hardening is in force on the running process, not only on paper.
    const { MainPID } = await unitProperties(UNIT, ['MainPID']);
    const status = await insideOk(['cat', `/proc/${MainPID}/status`]);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.doesNotMatch(status, /^Uid:\s+0\s/m, 'runs as a dynamic user, not root');
    // The secret is not in the unit's environment (it came as a credential).
    const shown = await insideOk(['systemctl', 'show', UNIT]);
    assert.ok(!shown.includes(TEST_KEY.secret), 'the secret shows in systemctl show');
  });

  it('writes every event kind to the journal, each line JSON that jq parses', { timeout: 60_000 }, async () => {
    const invocation = await invocationId();
    const nowMs = Date.now();
    const createdAt = Math.floor(nowMs / 1000);

    // A video session: room, participant, track, egress, ingress, agent job.
    const room = newRoom('system-test-room', createdAt - 60);
    const alice = standardParticipant('alice', nowMs - 30_000);
    const bob = standardParticipant('bob', nowMs - 20_000);
    const track = { sid: livekitId('TR'), name: 'microphone', source: 'MICROPHONE', mimeType: 'audio/opus' };
    const trackEvent = (event: string): JsonObject =>
      envelope(event, { room: roomJson(room, false), participant: { sid: alice.sid, identity: alice.identity }, track }, { createdAt });
    const session = [
      envelope('room_started', { room: roomJson(room) }, { createdAt }),
      envelope('participant_joined', { room: roomJson(room), participant: participantJson(alice, 'ACTIVE') }, { createdAt }),
      trackEvent('track_published'),
      trackEvent('track_unpublished'),
      envelope('participant_connection_aborted', { room: roomJson(room), participant: participantJson(bob, 'DISCONNECTED') }, { createdAt }),
      ...['egress_started', 'egress_updated', 'egress_ended', 'ingress_started', 'ingress_ended', 'agent_job_started', 'agent_job_ended'].map((event) =>
        sampleWebhook(event, room.name, nowMs),
      ),
      envelope('participant_left', { room: roomJson(room), participant: participantJson(alice, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED' }) }, { createdAt }),
      envelope('room_finished', { room: roomJson(room) }, { createdAt }),
    ];

    // A phone call that is answered (its audio track) and hung up.
    const callRoom = newRoom('call-_+14155550123_k2Zq', createdAt - 30);
    const caller = sipParticipant('inbound', { joinedAtMs: nowMs - 25_000 });
    const call = [
      envelope('room_started', { room: roomJson(callRoom) }, { createdAt: createdAt - 30 }),
      envelope('participant_joined', { room: roomJson(callRoom), participant: participantJson(caller, 'ACTIVE') }, { createdAt: createdAt - 25 }),
      envelope('track_published', {
        room: roomJson(callRoom, false),
        participant: { sid: caller.sid, identity: caller.identity },
        track: { sid: livekitId('TR'), source: 'MICROPHONE', mimeType: 'audio/opus' },
      }, { createdAt: createdAt - 20 }),
      envelope('participant_left', {
        room: roomJson(callRoom),
        participant: participantJson(caller, 'DISCONNECTED', { disconnectReason: 'CLIENT_INITIATED', callStatus: 'hangup' }),
      }, { createdAt }),
    ];

    // An outbound call the SIP trunk failed: a provider event.
    const failedRoom = newRoom('outbound-room', createdAt - 10);
    const callee = sipParticipant('outbound', { joinedAtMs: nowMs - 8000 });
    const failed = [
      envelope('participant_joined', { room: roomJson(failedRoom), participant: participantJson(callee, 'ACTIVE') }, { createdAt: createdAt - 8 }),
      envelope('participant_left', { room: roomJson(failedRoom), participant: participantJson(callee, 'DISCONNECTED', { disconnectReason: 'SIP_TRUNK_FAILURE' }) }, { createdAt }),
    ];

    const webhooks = [...session, ...call, ...failed, envelope('room_event_from_the_future', { room: roomJson(newRoom()) })].map((event) => signed(event));
    for (const webhook of webhooks) await postOk(webhook);
    firstRun.push(...webhooks);

    // A redelivery and a forgery.
    const redelivered = await post(webhooks[0]!);
    assert.equal(redelivered.status, 200);
    const forged = await post({ ...webhooks[1]!, authorization: signWebhook(webhooks[1]!.body, { keyId: TEST_KEY.keyId, secret: 'not-the-secret' }) });
    assert.equal(forged.status, 401);

    const lines = await waitForJournal(invocation, (all) => all.filter((line) => line.event_type === 'webhook.rejected').length === 1);
    const seen = new Set(lines.map((line) => line.event_type));
    const expected = EVENT_TYPES.filter((type) => !NOT_PROVOKED.has(type) && type !== 'control_plane.stopped');
    const missing = expected.filter((type) => !seen.has(type));
    assert.deepEqual(missing, [], `event types missing from the journal: ${missing.join(', ')}`);
    assertContiguousSeq(lines, 'journal');

    // The exact command README gives operators; jq must accept every line.
    const viaJq = await inside(['sh', '-c', `journalctl --no-pager -o cat _SYSTEMD_UNIT=${UNIT} _SYSTEMD_INVOCATION_ID=${invocation} | jq -c .`]);
    assert.equal(viaJq.code, 0, `jq rejected the journal:\n${viaJq.stderr}`);
    assert.ok(viaJq.stdout.split('\n').filter(Boolean).length >= lines.length);

    // Nothing secret reached the journal: not the API secret, not the payloads' credentials.
    const everything = await journalAfter(suiteCursor);
    for (const secret of [TEST_KEY.secret, 'turn-secret-never-logged', 'stream-key-never-logged']) {
      assert.ok(!everything.includes(secret), `${secret} appears in the journal`);
    }
  });

  it(`loses no line of a ${BURST_SIZE}-webhook burst: journald suppresses nothing`, { timeout: 300_000 }, async (t) => {
    const limits = await unitProperties(UNIT, ['LogRateLimitIntervalUSec', 'LogRateLimitBurst']);
    assert.equal(limits.LogRateLimitIntervalUSec, '1s');
    assert.equal(limits.LogRateLimitBurst, '1000000');

    const invocation = await invocationId();
    const burstCursor = await journalCursor();
    const linesBefore = (await journalLines(invocation)).length;
    const burst: Signed[] = [];
    for (let index = 0; index < BURST_SIZE; index++) {
      burst.push(signed(sampleWebhook(SAMPLE_EVENTS[index % SAMPLE_EVENTS.length]!, `burst-room-${index % 997}`)));
    }
    assert.equal(new Set(burst.map((webhook) => webhook.id)).size, BURST_SIZE, 'burst ids are unique');

    const started = performance.now();
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: BURST_IN_FLIGHT }, async () => {
        while (next < burst.length) {
          const webhook = burst[next++]!;
          const { status } = await post(webhook);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`burst: ${BURST_SIZE} webhooks in ${seconds.toFixed(1)} s (${Math.round(BURST_SIZE / seconds)}/s, ${BURST_IN_FLIGHT} in flight)`);
    assert.deepEqual([...statuses], [[200, BURST_SIZE]], 'every webhook of the burst is answered 200');

    const burstIds = new Set(burst.map((webhook) => webhook.id));
    const countLivekitLines = (lines: ObsLine[]): number =>
      lines.filter((line) => line.event_type.startsWith('livekit.') && burstIds.has(line.webhook_id as string)).length;
    const lines = await waitForJournal(invocation, (all) => countLivekitLines(all) >= BURST_SIZE);
    t.diagnostic(`journal: ${lines.length - linesBefore} lines for the burst`);

    assertContiguousSeq(lines, 'journal');
    const processed = new Map<string, number>();
    for (const line of lines) {
      if (line.event_type === 'webhook.processing' && burstIds.has(line.webhook_id as string)) {
        processed.set(line.webhook_id as string, (processed.get(line.webhook_id as string) ?? 0) + 1);
      }
    }
    assert.equal(processed.size, BURST_SIZE, 'every burst webhook has its webhook.processing line');
    assert.ok([...processed.values()].every((count) => count === 1), 'no line is duplicated');
    assert.equal(countLivekitLines(lines), BURST_SIZE);

    assert.deepEqual(await suppressedMessages(burstCursor), [], 'journald suppressed lines');
  });

  it('restarts cleanly: control_plane.stopped, exit 0, the state file carries the seen event ids', { timeout: 60_000 }, async () => {
    const first = await invocationId();
    await insideOk(['systemctl', 'restart', UNIT]);
    await waitHealthy();
    const second = await invocationId();
    assert.notEqual(second, first);

    const previous = await journalLines(first);
    assertContiguousSeq(previous, 'journal of the first run');
    assert.equal(previous.at(-1)!.event_type, 'control_plane.stopped');
    // systemd's own account of the first run's end (PID 1 logs to the journal, as on a VM).
    const exit = await insideOk(['journalctl', '--no-pager', '-o', 'cat', '_PID=1', `UNIT=${UNIT}`, `INVOCATION_ID=${first}`]);
    assert.match(exit, /Deactivated successfully/, `systemd's lines about the first run:\n${exit}`);
    assert.doesNotMatch(exit, /status=|Failed/, `systemd reports a failure of the first run:\n${exit}`);

    // A webhook the first run wrote comes again: known from the state file.
    await postOk(firstRun[2]!);
    const lines = await waitForJournal(second, (all) => all.some((line) => line.event_type === 'webhook.duplicate'));
    assert.equal(lines.find((line) => line.event_type === 'webhook.duplicate')!.webhook_id, firstRun[2]!.id);
  });

  it('stops cleanly: control_plane.stopped, exit status 0, state file kept', { timeout: 60_000 }, async () => {
    const invocation = await invocationId();
    await insideOk(['systemctl', 'stop', UNIT]);
    const properties = await unitProperties(UNIT, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
    assert.equal(properties.ActiveState, 'inactive');
    assert.equal(properties.Result, 'success');
    assert.equal(properties.ExecMainCode, '1', 'the main process exited (CLD_EXITED), it was not killed');
    assert.equal(properties.ExecMainStatus, '0');
    const lines = await journalLines(invocation);
    assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
    assert.ok(existsSync(hostPath(STATE_FILE)), `${STATE_FILE} is kept after stop`);
    JSON.parse(readFileSync(hostPath(STATE_FILE), 'utf8'));
  });

  it('runs with the file sink and the shipped logrotate config without losing a line', { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(hostPath('/etc/logrotate.d/control-plane')), 'install.sh installed /etc/logrotate.d/control-plane');
    await setEnv('CONTROL_PLANE_LOG_FILE', '/var/log/control-plane/control-plane.log');
    // Small enough that the built-in size rotation also runs beside logrotate.
    await setEnv('CONTROL_PLANE_LOG_MAX_SIZE', '1M');
    await insideOk(['systemctl', 'start', UNIT]);
    await waitHealthy();
    const invocation = await invocationId();

    const send = async (count: number): Promise<Signed[]> => {
      const batch = Array.from({ length: count }, (_, index) => signed(sampleWebhook(SAMPLE_EVENTS[index % SAMPLE_EVENTS.length]!, `file-room-${index % 50}`)));
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < batch.length) await postOk(batch[next++]!);
        }),
      );
      return batch;
    };
    const beforeRotation = await send(1500);
    const rotation = await inside(['logrotate', '--force', '/etc/logrotate.d/control-plane']);
    assert.equal(rotation.code, 0, `logrotate failed:\n${rotation.stdout}\n${rotation.stderr}`);
    assert.equal(rotation.stderr, '', 'logrotate printed warnings');
    // `systemctl reload` sends the same SIGHUP (ExecReload=).
    await insideOk(['systemctl', 'reload', UNIT]);
    assert.equal((await unitProperties(UNIT, ['ActiveState'])).ActiveState, 'active');
    const afterRotation = await send(1500);
    // The state survived the stop: a webhook of the first run is a duplicate.
    await postOk(firstRun[3]!);
    await insideOk(['systemctl', 'stop', UNIT]);
    const { Result, ExecMainStatus } = await unitProperties(UNIT, ['Result', 'ExecMainStatus']);
    assert.equal(Result, 'success');
    assert.equal(ExecMainStatus, '0');

    const files = readdirSync(hostPath(LOG_DIR)).sort();
    t.diagnostic(`log files: ${files.join(' ')}`);
    // Both rotations ran on the same directory: logrotate's (.1) and the built-in one (.<UTC stamp>).
    assert.ok(files.some((name) => /^control-plane\.log\.\d+(\.gz)?$/.test(name)), `logrotate rotated the file (files: ${files.join(', ')})`);
    assert.ok(files.some((name) => /^control-plane\.log\.\d{8}T\d{6}Z/.test(name)), `the built-in size rotation ran (files: ${files.join(', ')})`);
    const lines: ObsLine[] = [];
    for (const name of files) {
      const raw = readFileSync(hostPath(`${LOG_DIR}/${name}`));
      const text = name.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      assert.ok(text === '' || text.endsWith('\n'), `${name} ends with a whole line`);
      lines.push(...parseLines(text, name));
    }
    lines.sort((a, b) => a.seq - b.seq);
    assertContiguousSeq(lines, 'log files');
    assert.equal(lines[0]!.event_type, 'control_plane.started');
    assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
    const processed = lines.filter((line) => line.event_type === 'webhook.processing').map((line) => line.webhook_id);
    for (const webhook of [...beforeRotation, ...afterRotation]) assert.ok(processed.includes(webhook.id), `webhook ${webhook.id} is in the files`);
    assert.equal(lines.find((line) => line.event_type === 'webhook.duplicate')?.webhook_id, firstRun[3]!.id);
    // The live file was reopened after logrotate moved it: the last webhooks are in it.
    const live = parseLines(readFileSync(hostPath(`${LOG_DIR}/control-plane.log`), 'utf8'), 'control-plane.log');
    assert.ok(live.some((line) => line.event_type === 'control_plane.stopped'), 'the stop line is in the live file');
    // Nothing went to the journal as an event in file mode.
    const journal = await insideOk(['journalctl', '--no-pager', '-o', 'cat', `_SYSTEMD_UNIT=${UNIT}`, `_SYSTEMD_INVOCATION_ID=${invocation}`]);
    assert.equal(journal, '', 'the file sink run wrote to stdout/stderr');
  });

  it('install.sh --uninstall removes the program and keeps settings and state', { timeout: 60_000 }, async () => {
    const output = await insideOk([`${RELEASE_DIR}/packaging/install.sh`, '--uninstall']);
    assert.match(output, /removed +\/usr\/local\/bin\/control-plane/);
    assert.ok(!existsSync(hostPath('/usr/local/bin/control-plane')));
    assert.ok(!existsSync(hostPath('/etc/systemd/system/control-plane.service')));
    assert.ok(existsSync(hostPath(ENV_FILE)));
    assert.ok(existsSync(hostPath(STATE_FILE)));
    const { LoadState } = await unitProperties(UNIT, ['LoadState']);
    assert.equal(LoadState, 'not-found');
  });
});
