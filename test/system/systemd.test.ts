// The production path under a real systemd 252 and journald (Debian 12, the
// systemd-sandbox), as README's Production section tells an operator: build
// the Debian package (lintian finds no error), `apt-get install` it on a
// Debian without libatomic1, configure, `systemctl enable --now` (which
// returns only once /health answers), read the journal the way README says
// (JSON that jq parses, priorities that `journalctl -p` filters on), survive a
// burst, fail a restart with a bad setting, reload keys (and see what a
// reload of a credential really does), run the file sink with the shipped
// logrotate config and the log-readers drop-in, upgrade to a second build
// keeping settings and state, purge leaving nothing, and finally
// packaging/install.sh for other distributions. The steps build on each
// other and run in order.

import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createServer } from 'node:http';
import { WebhookReceiver } from 'livekit-server-sdk';
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
import { freePort, type ObsLine, OTHER_KEY, REPO_ROOT, TEST_KEY } from '../helpers/daemon.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { hostPath, inside, insideOk, run, sandboxDown, sandboxUnavailable, sandboxUp, unitProperties } from './sandbox.ts';

const UNIT = 'control-plane.service';
const RELEASE_DIR = '/root/control-plane-release';
const ENV_FILE = '/etc/control-plane/control-plane.env';
const SECRET_FILE = '/etc/control-plane/livekit_api_secret';
const KEYS_FILE = '/etc/control-plane/livekit_keys';
const DROP_INS = '/etc/systemd/system/control-plane.service.d';
const EXAMPLES = '/usr/share/doc/control-plane/examples';
const STATE_FILE = '/var/lib/private/control-plane/state.json';
const LOG_DIR = '/var/log/private/control-plane';
const BURST_SIZE = 20_000;
const BURST_IN_FLIGHT = 64;
/** `systemd-analyze security` of the unit before this work: it may only go down. */
const MAX_EXPOSURE = 1.1;
const VERSION = (JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string }).version;
const PACKAGE = `control-plane_${VERSION}_amd64.deb`;
/** The second build the upgrade installs. */
const NEXT_VERSION = `${VERSION}+1`;
const NEXT_PACKAGE = `control-plane_${NEXT_VERSION}_amd64.deb`;
/** Everything the package, the service and the operator's setup put on the machine: purge leaves none of it. */
const LEFT_BY_THE_SERVICE = [
  '/usr/bin/control-plane',
  '/usr/lib/systemd/system/control-plane.service',
  '/etc/control-plane',
  '/etc/logrotate.d/control-plane',
  DROP_INS,
  '/etc/systemd/system/multi-user.target.wants/control-plane.service',
  '/var/lib/private/control-plane',
  '/var/lib/control-plane',
  '/var/log/private/control-plane',
  '/var/log/control-plane',
  '/usr/share/doc/control-plane',
  '/usr/share/man/man1/control-plane.1.gz',
];

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

/** The same body signed again now, as LiveKit signs each redelivery (a token lives 5 minutes). */
function resigned(webhook: Signed): Signed {
  return { ...webhook, authorization: signWebhook(webhook.body, TEST_KEY) };
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

/** The output lines (the ones with `seq`; stderr's control_plane.diagnostic lines have none) number 1, 2, 3, ... */
function assertContiguousSeq(all: readonly ObsLine[], source: string): void {
  const lines = all.filter((line) => line.seq !== undefined);
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

  /** Takes a setting out of the env file again (an empty value would still override the unit's Environment=). */
  async function unsetEnv(name: string): Promise<void> {
    const path = hostPath(ENV_FILE);
    writeFileSync(path, readFileSync(path, 'utf8').split('\n').filter((line) => !line.startsWith(`${name}=`)).join('\n'));
  }

  /** Waits until a file of the sandbox satisfies `predicate`. */
  async function waitForFile(path: string, predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = existsSync(hostPath(path)) ? readFileSync(hostPath(path), 'utf8') : '';
      if (predicate(text)) return text;
      if (Date.now() > deadline) assert.fail(`${path} never had what was expected:\n${text.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    await sandboxUp();
    // Leftovers of an earlier run: the sandbox tree is kept between runs.
    await inside(['systemctl', 'disable', '--now', UNIT]);
    await inside(['systemctl', 'reset-failed', UNIT]);
    await inside(['sh', '-c', 'dpkg -s control-plane >/dev/null 2>&1 && apt-get purge -y -qq control-plane'], { timeoutMs: 120_000 });
    // "A Debian without libatomic1": the package must bring it.
    await insideOk(['sh', '-c', 'if dpkg -s libatomic1 >/dev/null 2>&1; then apt-get purge -y -qq libatomic1; fi'], { timeoutMs: 120_000 });
    // The accounts of the log-readers step (the member first, so that the group goes with its user).
    await inside(['userdel', 'log-shipper']);
    await inside(['userdel', 'control-plane']);
    await inside(['groupdel', 'control-plane']);
    for (const path of [
      ...LEFT_BY_THE_SERVICE,
      '/usr/local/bin/control-plane',
      '/etc/systemd/system/control-plane.service',
      RELEASE_DIR,
      `/root/${PACKAGE}`,
      `/root/${NEXT_PACKAGE}`,
    ]) {
      rmSync(hostPath(path), { recursive: true, force: true });
    }
    await insideOk(['systemctl', 'daemon-reload']);
    // apt-get needs the package lists to resolve the Depends: line.
    await insideOk(['apt-get', 'update', '-qq'], { timeoutMs: 300_000 });
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

  it('npm run package: a .deb whose Depends: name what the executable links, with its conffiles', { timeout: 300_000 }, async (t) => {
    const build = await run(process.execPath, ['build.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000 });
    assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
    const started = performance.now();
    const packaged = await run(process.execPath, ['packaging/deb/package.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000 });
    assert.equal(packaged.code, 0, `npm run package failed:\n${packaged.stdout}\n${packaged.stderr}`);
    t.diagnostic(`${packaged.stdout.trim()} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const deb = `${REPO_ROOT}dist/${PACKAGE}`;
    const field = async (name: string) => (await run('dpkg-deb', ['-f', deb, name])).stdout.trim();
    assert.equal(await field('Package'), 'control-plane');
    assert.equal(await field('Version'), VERSION);
    assert.equal(await field('Architecture'), 'amd64');
    const depends = await field('Depends');
    for (const library of ['libatomic1', 'libstdc++6', 'libc6']) assert.match(depends, new RegExp(`(^|, )${library.replace('+', '\\+')} \\(>= [\\d.]+\\)`), `Depends: ${depends}`);
    const files = (await run('dpkg-deb', ['-c', deb])).stdout;
    for (const path of ['./usr/bin/control-plane', './usr/lib/systemd/system/control-plane.service', './etc/logrotate.d/control-plane', './etc/control-plane/control-plane.env', './usr/share/man/man1/control-plane.1.gz']) {
      assert.match(files, new RegExp(` ${path.replaceAll('.', '\\.')}\n`), `${path} in the package`);
    }
    assert.match(files, /^-rw------- root\/root .* \.\/etc\/control-plane\/control-plane\.env$/m, 'the settings file is root only');
    const control = `${REPO_ROOT}dist/.deb-control`;
    rmSync(control, { recursive: true, force: true });
    assert.equal((await run('dpkg-deb', ['-e', deb, control])).code, 0);
    assert.deepEqual(readFileSync(`${control}/conffiles`, 'utf8').trim().split('\n').sort(), ['/etc/control-plane/control-plane.env', '/etc/logrotate.d/control-plane']);
    rmSync(control, { recursive: true, force: true });
  });

  it('lintian finds no error, and every warning left is explained in the overrides', { timeout: 300_000 }, async (t) => {
    if ((await run('sh', ['-c', 'command -v lintian'])).code !== 0) return t.skip('lintian is not installed (Debian: apt-get install lintian)');
    const lintian = await run('lintian', ['--fail-on', 'error,warning', '--display-info', `${REPO_ROOT}dist/${PACKAGE}`], { timeoutMs: 280_000 });
    assert.doesNotMatch(lintian.stdout, /^[EW]: /m, `lintian:\n${lintian.stdout}`);
    assert.equal(lintian.code, 0, `lintian:\n${lintian.stdout}${lintian.stderr}`);
    // Each override has its reason above it.
    const overrides = readFileSync(`${REPO_ROOT}packaging/deb/lintian-overrides`, 'utf8').split('\n');
    overrides.forEach((line, index) => {
      if (!line.startsWith('control-plane:')) return;
      // The comment above it, or above the block of overrides it belongs to.
      let above = index - 1;
      while (above >= 0 && overrides[above]!.startsWith('control-plane:')) above--;
      assert.ok(above >= 0 && overrides[above]!.startsWith('#'), `override without a reason: ${line}`);
    });
  });

  it('apt-get install ./control-plane_<version>_amd64.deb on a Debian without libatomic1 pulls it in and starts nothing', { timeout: 300_000 }, async () => {
    assert.notEqual((await inside(['dpkg', '-s', 'libatomic1'])).code, 0, 'the sandbox starts without libatomic1');
    // The sandbox has no Node.js: only the executable can run there.
    assert.notEqual((await inside(['sh', '-c', 'command -v node'])).code, 0, 'the sandbox must not have node');
    cpSync(`${REPO_ROOT}dist/${PACKAGE}`, hostPath(`/root/${PACKAGE}`));
    // README, word for word (in /root, where the package was copied).
    const installed = await insideOk(['sh', '-c', `cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./${PACKAGE}`], { timeoutMs: 280_000 });
    assert.match(installed, /Setting up libatomic1/);
    assert.match(installed, /set LIVEKIT_API_KEY in \/etc\/control-plane\/control-plane\.env/);
    assert.equal((await inside(['dpkg', '-s', 'libatomic1'])).code, 0);
    assert.match(await insideOk(['/usr/bin/control-plane', '--version']), /^control-plane \d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+\)\n$/);
    // Not started, not enabled: it has no key yet, and would only refuse.
    const properties = await unitProperties(UNIT, ['LoadState', 'ActiveState', 'UnitFileState', 'FragmentPath']);
    assert.equal(properties.LoadState, 'loaded');
    assert.equal(properties.ActiveState, 'inactive');
    assert.equal(properties.UnitFileState, 'disabled');
    assert.match(properties.FragmentPath!, /^(\/usr)?\/lib\/systemd\/system\/control-plane\.service$/);
    assert.equal((statSync(hostPath('/etc/control-plane')).mode & 0o777).toString(8), '700');
    assert.equal((statSync(hostPath(ENV_FILE)).mode & 0o777).toString(8), '600');
  });

  it(`the unit's systemd-analyze security exposure is at most ${MAX_EXPOSURE}, as before this unit waited for /health`, async (t) => {
    const analysis = await inside(['systemd-analyze', 'security', '--offline=yes', '--no-pager', '/usr/lib/systemd/system/control-plane.service']);
    assert.doesNotMatch(analysis.stderr, /Invalid|Unknown|ignoring/i, `systemd does not accept a line of the unit:\n${analysis.stderr}`);
    const match = /Overall exposure level for control-plane\.service: (\d+\.\d+)/.exec(analysis.stdout);
    assert.ok(match, `no exposure in:\n${analysis.stdout}\n${analysis.stderr}`);
    const exposure = Number(match[1]);
    t.diagnostic(`exposure ${exposure}`);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}:\n${analysis.stdout}`);
    // --man=no: the sandbox has no man(1) to open Documentation=man:control-plane(1) with.
    const verify = await inside(['systemd-analyze', 'verify', '--man=no', '/usr/lib/systemd/system/control-plane.service']);
    assert.equal(verify.code, 0, `systemd-analyze verify:\n${verify.stdout}\n${verify.stderr}`);
  });

  it('README: configure, `systemctl enable --now` returns once /health answers, the journal reads with jq', { timeout: 60_000 }, async (t) => {
    // editor /etc/control-plane/control-plane.env
    await setEnv('LIVEKIT_API_KEY', TEST_KEY.keyId);
    await setEnv('HOST', '127.0.0.1');
    await setEnv('PORT', String(port));
    // (umask 077; cat > /etc/control-plane/livekit_api_secret)
    await insideOk(['sh', '-c', `(umask 077; cat > ${SECRET_FILE})`], { input: `${TEST_KEY.secret}\n` });
    assert.equal((statSync(hostPath(SECRET_FILE)).mode & 0o777).toString(8), '600');

    const before = performance.now();
    await insideOk(['systemctl', 'enable', '--now', 'control-plane']);
    const startTook = performance.now() - before;
    // At once, no retry: start returned only when the daemon answered.
    const health = await insideOk(['curl', '-s', `http://127.0.0.1:${port}/health`]);
    assert.deepEqual(JSON.parse(health), { status: 'ok', component: 'control_plane' });
    t.diagnostic(`systemctl enable --now: ${Math.round(startTook)} ms, and /health answered right after`);
    // (After this run's start: a sandbox kept between runs has older versions' lines.)
    const jq = await inside(['sh', '-c', `journalctl -o cat _SYSTEMD_UNIT=control-plane.service --after-cursor='${suiteCursor}' | jq -c .`]);
    assert.equal(jq.code, 0, `jq:\n${jq.stderr}`);

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
    // ps and systemctl status name it control-plane, not node-MainThread.
    assert.match(status, /^Name:\s+control-plane$/m);
    const shownStatus = await insideOk(['systemctl', 'status', '--no-pager', '--lines=0', UNIT]);
    assert.match(shownStatus, new RegExp(`Main PID: ${MainPID} \\(control-plane\\)`));
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

    // Each line's syslog priority is its level: journald took it from the
    // <n> prefix, which -o cat does not show.
    const entries = (await insideOk(['journalctl', '--no-pager', '-o', 'json', `_SYSTEMD_UNIT=${UNIT}`, `_SYSTEMD_INVOCATION_ID=${invocation}`]))
      .split('\n')
      .filter(Boolean)
      .map((text) => JSON.parse(text) as { PRIORITY: string; MESSAGE: string });
    const priorityOf: Record<string, string> = { error: '3', warn: '4', info: '6' };
    for (const entry of entries) {
      assert.ok(entry.MESSAGE.startsWith('{'), `the prefix is not part of the message: ${entry.MESSAGE.slice(0, 80)}`);
      assert.equal(entry.PRIORITY, priorityOf[(JSON.parse(entry.MESSAGE) as ObsLine).level], entry.MESSAGE.slice(0, 200));
    }
    const warnings = parseLines(await insideOk(['journalctl', '--no-pager', '-o', 'cat', '-p', 'warning', `_SYSTEMD_UNIT=${UNIT}`, `_SYSTEMD_INVOCATION_ID=${invocation}`]), 'journalctl -p warning');
    assert.ok(warnings.length > 0 && warnings.length < lines.length);
    assert.ok(warnings.every((line) => line.level === 'warn' || line.level === 'error'));
    assert.ok(warnings.some((line) => line.event_type === 'provider.event'), 'journalctl -p warning shows the provider event');

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
    await postOk(resigned(firstRun[2]!));
    const lines = await waitForJournal(second, (all) => all.some((line) => line.event_type === 'webhook.duplicate'));
    assert.equal(lines.find((line) => line.event_type === 'webhook.duplicate')!.webhook_id, firstRun[2]!.id);
  });

  it('a bad setting: `systemctl restart` fails at once, says why in JSON, and the daemon is not restarted', { timeout: 60_000 }, async () => {
    await setEnv('CONTROL_PLANE_MAX_BODY', 'lots');
    const started = performance.now();
    const restart = await inside(['systemctl', 'restart', UNIT]);
    const took = performance.now() - started;
    assert.notEqual(restart.code, 0, 'systemctl restart reports the failure');
    assert.ok(took < 10_000, `it failed at once (${Math.round(took)} ms)`);
    const failed = await unitProperties(UNIT, ['ActiveState', 'Result', 'ExecMainStatus', 'NRestarts']);
    assert.equal(failed.ActiveState, 'failed');
    assert.equal(failed.ExecMainStatus, '2');
    // The reason, as JSON that jq reads, at priority err.
    const invocation = await invocationId();
    const lines = await journalLines(invocation);
    const refusal = lines.find((line) => line.level === 'error' && /CONTROL_PLANE_MAX_BODY/.test(String(line.detail)));
    assert.ok(refusal, `the refusal is in the journal: ${JSON.stringify(lines)}`);
    assert.equal(refusal.event_type, 'control_plane.diagnostic');
    const errors = await insideOk(['journalctl', '--no-pager', '-o', 'cat', '-p', 'err', `_SYSTEMD_UNIT=${UNIT}`, `_SYSTEMD_INVOCATION_ID=${invocation}`]);
    assert.match(errors, /CONTROL_PLANE_MAX_BODY/);
    const status = await inside(['systemctl', 'status', '--no-pager', '--full', UNIT]);
    assert.match(status.stdout, /CONTROL_PLANE_MAX_BODY: \\"lots\\" is not a size/, 'systemctl status shows why');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await unitProperties(UNIT, ['NRestarts'])).NRestarts, failed.NRestarts, 'exit status 2 is not restarted');

    await setEnv('CONTROL_PLANE_MAX_BODY', '1M');
    await insideOk(['systemctl', 'start', UNIT]);
    assert.deepEqual(JSON.parse(await insideOk(['curl', '-s', `${baseUrl}/health`])), { status: 'ok', component: 'control_plane' });
  });

  it('keys as a credential (examples/keys-credential.conf): a reload re-reads the copy taken at start, a restart takes the new keys', { timeout: 60_000 }, async () => {
    mkdirSync(hostPath(DROP_INS), { recursive: true });
    await insideOk(['cp', `${EXAMPLES}/keys-credential.conf`, `${DROP_INS}/`]);
    await insideOk(['sh', '-c', `(umask 077; cat > ${KEYS_FILE})`], { input: `${TEST_KEY.keyId}: ${TEST_KEY.secret}\n` });
    await setEnv('LIVEKIT_KEYS_FILE', '/run/credentials/control-plane.service/livekit_keys');
    await insideOk(['systemctl', 'daemon-reload']);
    await insideOk(['systemctl', 'restart', UNIT]);
    const otherKeyWebhook = (): Signed => signed(sampleWebhook('room_started', 'credential-rotation'), OTHER_KEY);
    assert.equal((await post(otherKeyWebhook())).status, 401);

    await insideOk(['sh', '-c', `(umask 077; cat > ${KEYS_FILE})`], { input: `${TEST_KEY.keyId}: ${TEST_KEY.secret}\n${OTHER_KEY.keyId}: ${OTHER_KEY.secret}\n` });
    const invocation = await invocationId();
    await insideOk(['systemctl', 'reload', UNIT]);
    const reloaded = (await waitForJournal(invocation, (lines) => lines.some((line) => line.event_type === 'control_plane.keys_reloaded'))).find(
      (line) => line.event_type === 'control_plane.keys_reloaded',
    )!;
    assert.deepEqual(reloaded.key_ids, [TEST_KEY.keyId], 'the reload read the copy systemd made at start');
    assert.equal((await post(otherKeyWebhook())).status, 401, 'the new key is not in use after a reload');

    await insideOk(['systemctl', 'restart', UNIT]);
    assert.equal((await post(otherKeyWebhook())).status, 200, 'a restart takes the new keys');
  });

  it('a keys file the daemon reads itself: `systemctl reload` fails on a broken file and the daemon keeps its keys; a good one is taken', { timeout: 60_000 }, async () => {
    // In the state directory, owned by the service's user (the reload path of README's key rotation under the unit).
    rmSync(hostPath(`${DROP_INS}/keys-credential.conf`));
    await setEnv('LIVEKIT_KEYS_FILE', '/var/lib/control-plane/livekit_keys');
    const writeKeys = async (text: string): Promise<void> => {
      const path = '/var/lib/private/control-plane/livekit_keys';
      await insideOk(['sh', '-c', `(umask 077; cat > ${path}.new) && chown --reference=/var/lib/private/control-plane ${path}.new && mv ${path}.new ${path}`], { input: text });
    };
    await writeKeys(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`);
    await insideOk(['systemctl', 'daemon-reload']);
    await insideOk(['systemctl', 'restart', UNIT]);
    const invocation = await invocationId();

    await writeKeys('this is not a keys file\n');
    const broken = await inside(['systemctl', 'reload', UNIT]);
    assert.notEqual(broken.code, 0, 'systemctl reload reports the broken keys file');
    assert.equal((await unitProperties(UNIT, ['ActiveState'])).ActiveState, 'active', 'the daemon runs on');
    await postOk(signed(sampleWebhook('room_started', 'kept-keys')));
    const lines = await waitForJournal(invocation, (all) => all.some((line) => /reload: the keys file/.test(String(line.detail))));
    assert.ok(lines.some((line) => line.event_type === 'control_plane.warning' && /keys not reloaded/.test(String(line.detail))));
    assertContiguousSeq(lines, 'journal');

    await writeKeys(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n${OTHER_KEY.keyId}: ${OTHER_KEY.secret}\n`);
    await insideOk(['systemctl', 'reload', UNIT]);
    assert.equal((await post(signed(sampleWebhook('room_started', 'reloaded-keys'), OTHER_KEY))).status, 200);

    // Back to the plain setup for the steps below.
    await setEnv('LIVEKIT_KEYS_FILE', '');
    await insideOk(['systemctl', 'restart', UNIT]);
  });

  it('forwarding and a shared Redis store, set in the env file as README says: signed call events reach a backend, every line names its instance', { timeout: 120_000 }, async (t) => {
    // A backend on this machine (the sandbox shares its network), verifying each delivery as a LiveKit SDK user would.
    const verifier = new WebhookReceiver(TEST_KEY.keyId, TEST_KEY.secret);
    const received: Array<Record<string, unknown>> = [];
    const backend = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        verifier.receive(body, request.headers.authorization).then(
          () => {
            received.push(JSON.parse(body) as Record<string, unknown>);
            response.writeHead(200).end();
          },
          () => response.writeHead(401).end(),
        );
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', () => resolve()));
    t.after(() => backend.close());
    const backendPort = (backend.address() as { port: number }).port;
    const missingRedis = redisMissing();
    const redis = missingRedis ? null : await RedisServer.start();
    t.after(() => redis?.close());
    if (missingRedis) t.diagnostic(`the shared-store part is skipped: ${missingRedis}`);

    await setEnv('CONTROL_PLANE_FORWARD_URL', `http://127.0.0.1:${backendPort}/hooks/calls`);
    if (redis) {
      await setEnv('CONTROL_PLANE_STORE', `${redis.url}/0`);
      // The unit sets a state file; a shared store refuses one (README, Running two or more).
      await setEnv('CONTROL_PLANE_STATE_FILE', '');
      await setEnv('CONTROL_PLANE_INSTANCE_ID', 'cp-sandbox');
    }
    await insideOk(['systemctl', 'restart', UNIT]);
    const invocation = await invocationId();
    const health = (await (await request(`${baseUrl}/health`)).body.json()) as { status: string; forwarding: Array<{ url: string }> };
    assert.equal(health.status, 'ok');
    assert.equal(health.forwarding[0]!.url, `http://127.0.0.1:${backendPort}/hooks/calls`);

    const room = newRoom('forwarded-call', Math.floor(Date.now() / 1000) - 60);
    const leg = sipParticipant('inbound', { joinedAtMs: Date.now() - 50_000 });
    const at = (event: string, fields: JsonObject, secondsAgo: number) => signed(envelope(event, { room: roomJson(room), ...fields }, { createdAt: Math.floor(Date.now() / 1000) - secondsAgo }));
    for (const webhook of [
      at('room_started', {}, 60),
      at('participant_joined', { participant: participantJson(leg, 'ACTIVE', { callStatus: 'ringing' }) }, 50),
      at('track_published', { participant: { sid: leg.sid, identity: leg.identity }, track: { sid: 'TR_forwarded', type: 'AUDIO', source: 'MICROPHONE' } }, 45),
      at('participant_left', { participant: participantJson(leg, 'DISCONNECTED', { callStatus: 'hangup', disconnectReason: 'CLIENT_INITIATED' }) }, 5),
      at('room_finished', {}, 1),
    ]) {
      await postOk(webhook);
    }
    const deadline = Date.now() + 20_000;
    while (!received.some((event) => event.event_type === 'call.ended')) {
      assert.ok(Date.now() < deadline, `the backend got ${received.map((event) => event.event_type).join(', ') || 'nothing'}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(
      received.filter((event) => String(event.event_type).startsWith('call.')).map((event) => event.event_type),
      ['call.started', 'call.answered', 'call.ended'],
    );
    const lines = await journalLines(invocation);
    assert.deepEqual(received.find((event) => event.event_type === 'call.ended'), lines.find((line) => line.event_type === 'call.ended'), 'the backend gets the line as written');
    if (redis) {
      const started = lines.find((line) => line.event_type === 'control_plane.started')!;
      assert.equal(started.store, `${redis.url}/0`);
      assert.ok(lines.every((line) => line.instance === 'cp-sandbox'), 'every line names its instance');
    }

    // Back to the plain setup for the steps below.
    for (const name of ['CONTROL_PLANE_FORWARD_URL', 'CONTROL_PLANE_STORE', 'CONTROL_PLANE_STATE_FILE', 'CONTROL_PLANE_INSTANCE_ID']) await unsetEnv(name);
    await insideOk(['systemctl', 'restart', UNIT]);
    await waitHealthy();
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
    // A snapshot: its header line, then one JSON line per session, id, ...
    const [header] = readFileSync(hostPath(STATE_FILE), 'utf8').split('\n');
    assert.equal((JSON.parse(header!) as { format: string }).format, 'control-plane-state');
  });

  it('runs with the file sink and the shipped logrotate config without losing a line', { timeout: 120_000 }, async (t) => {
    assert.ok(existsSync(hostPath('/etc/logrotate.d/control-plane')), 'the package installed /etc/logrotate.d/control-plane');
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
    // `systemctl reload` sends the same SIGHUP (ExecReload=, control-plane reload).
    await insideOk(['systemctl', 'reload', UNIT]);
    assert.equal((await unitProperties(UNIT, ['ActiveState'])).ActiveState, 'active');
    const afterRotation = await send(1500);
    // The state survived the stop: a webhook of the first run is a duplicate.
    await postOk(resigned(firstRun[3]!));
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

  it('examples/log-readers.conf: a group can read the log file, the hardening stays, state and logs move along', { timeout: 60_000 }, async (t) => {
    await insideOk(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'control-plane']);
    await insideOk(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'log-shipper']);
    await insideOk(['usermod', '-a', '-G', 'control-plane', 'log-shipper']);
    mkdirSync(hostPath(DROP_INS), { recursive: true });
    await insideOk(['cp', `${EXAMPLES}/log-readers.conf`, `${DROP_INS}/`]);
    await insideOk(['systemctl', 'daemon-reload']);
    await insideOk(['systemctl', 'start', UNIT]);

    const analysis = await insideOk(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const exposure = Number(/Overall exposure level for control-plane\.service: (\d+\.\d+)/.exec(analysis)![1]);
    t.diagnostic(`exposure with log-readers.conf: ${exposure}`);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}`);

    // systemd moved the state out of /var/lib/private: it is still there
    // (a redelivery, signed anew as LiveKit does, is known).
    await postOk(resigned(firstRun[4]!));
    await waitForFile('/var/log/control-plane/control-plane.log', (text) =>
      text.split('\n').some((line) => line.includes('"event_type":"webhook.duplicate"') && line.includes(`"webhook_id":"${firstRun[4]!.id}"`)),
    );
    assert.ok(!existsSync(hostPath(STATE_FILE)) && existsSync(hostPath('/var/lib/control-plane/state.json')), 'the state file moved to /var/lib/control-plane');
    // The files written before the switch were 0600 (the drop-in says to chmod them once); a new one is 0640.
    assert.equal((statSync(hostPath('/var/log/control-plane/control-plane.log')).mode & 0o777).toString(8), '600');
    await insideOk(['sh', '-c', 'chmod g+r /var/log/control-plane/*']);
    const asShipper = await inside(['su', '-s', '/bin/sh', 'log-shipper', '-c', 'head -n 1 /var/log/control-plane/control-plane.log']);
    assert.equal(asShipper.code, 0, asShipper.stderr);
    assert.equal(typeof (JSON.parse(asShipper.stdout) as ObsLine).event_type, 'string', 'a whole JSON line');
    const asNobody = await inside(['su', '-s', '/bin/sh', 'nobody', '-c', 'head -n 1 /var/log/control-plane/control-plane.log']);
    assert.notEqual(asNobody.code, 0, 'others still cannot read it');
    const { MainPID } = await unitProperties(UNIT, ['MainPID']);
    const status = await insideOk(['cat', `/proc/${MainPID}/status`]);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
  });

  it('apt-get install of a second build: settings, secret and state are kept, the running daemon moves to it', { timeout: 300_000 }, async (t) => {
    const started = performance.now();
    const packaged = await run(process.execPath, ['packaging/deb/package.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000, env: { ...process.env, DEB_VERSION: NEXT_VERSION, DEB_COMPRESSION: 'gzip' } });
    assert.equal(packaged.code, 0, `the second build failed:\n${packaged.stdout}\n${packaged.stderr}`);
    t.diagnostic(`second build: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    cpSync(`${REPO_ROOT}dist/${NEXT_PACKAGE}`, hostPath(`/root/${NEXT_PACKAGE}`));
    const settings = readFileSync(hostPath(ENV_FILE), 'utf8');
    const beforeUpgrade = signed(sampleWebhook('room_started', 'before-the-upgrade'));
    await postOk(beforeUpgrade);
    const { MainPID: before } = await unitProperties(UNIT, ['MainPID']);

    const upgrade = await insideOk(['sh', '-c', `cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./${NEXT_PACKAGE}`], { timeoutMs: 280_000 });
    assert.match(upgrade, new RegExp(`Unpacking control-plane \\(${NEXT_VERSION.replaceAll('.', '\\.').replace('+', '\\+')}\\) over \\(${VERSION.replaceAll('.', '\\.')}\\)`));
    assert.match(await insideOk(['dpkg-query', '-W', '-f', '${Version}', 'control-plane']), new RegExp(`^${NEXT_VERSION.replace('+', '\\+')}$`));
    assert.equal(readFileSync(hostPath(ENV_FILE), 'utf8'), settings, 'the settings file is the operator\'s');
    assert.equal(readFileSync(hostPath(SECRET_FILE), 'utf8'), `${TEST_KEY.secret}\n`);
    assert.ok(existsSync(hostPath(`${DROP_INS}/log-readers.conf`)), 'drop-ins stay');
    const after = await unitProperties(UNIT, ['MainPID', 'ActiveState']);
    assert.equal(after.ActiveState, 'active');
    assert.notEqual(after.MainPID, before, 'the daemon was restarted on the new executable');
    // Its state came along: a webhook the previous version took is a duplicate.
    const answer = await post(resigned(beforeUpgrade));
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body), { status: 'duplicate' });
  });

  it('apt-get purge leaves nothing: program, unit, settings, secret, drop-ins, state, logs', { timeout: 120_000 }, async () => {
    await insideOk(['sh', '-c', 'DEBIAN_FRONTEND=noninteractive apt-get purge -y control-plane'], { timeoutMs: 110_000 });
    const left = LEFT_BY_THE_SERVICE.filter((path) => existsSync(hostPath(path)));
    assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
    assert.notEqual((await inside(['dpkg', '-s', 'control-plane'])).code, 0, 'dpkg no longer knows the package (not even as config-files)');
    assert.equal((await unitProperties(UNIT, ['LoadState'])).LoadState, 'not-found');
    assert.notEqual((await inside(['curl', '-s', `${baseUrl}/health`])).code, 0, 'nothing listens any more');
    // The operator's own accounts are the operator's.
    await insideOk(['userdel', 'log-shipper']);
    await insideOk(['userdel', 'control-plane']);
  });

  it('packaging/install.sh, for other distributions: installs in /usr/local, starts, uninstalls keeping settings and state', { timeout: 120_000 }, async () => {
    // What an operator copies to the machine: the executable and packaging/.
    mkdirSync(hostPath(`${RELEASE_DIR}/dist`), { recursive: true });
    cpSync(`${REPO_ROOT}dist/control-plane`, hostPath(`${RELEASE_DIR}/dist/control-plane`));
    cpSync(`${REPO_ROOT}packaging`, hostPath(`${RELEASE_DIR}/packaging`), { recursive: true });
    const install = await insideOk([`${RELEASE_DIR}/packaging/install.sh`]);
    assert.match(install, /installed +\/usr\/local\/bin\/control-plane/);
    assert.match(install, /installed +\/etc\/systemd\/system\/control-plane\.service/);
    assert.match(install, /reloaded +systemd units/);
    assert.match(install, /checked +control-plane \d/, 'install.sh ran the installed executable');
    const again = await insideOk([`${RELEASE_DIR}/packaging/install.sh`]);
    assert.doesNotMatch(again, /^installed/m, 'a second run changes nothing');

    await setEnv('LIVEKIT_API_KEY', TEST_KEY.keyId);
    await setEnv('HOST', '127.0.0.1');
    await setEnv('PORT', String(port));
    writeFileSync(hostPath(SECRET_FILE), `${TEST_KEY.secret}\n`, { mode: 0o600 });
    chmodSync(hostPath(SECRET_FILE), 0o600);
    await insideOk(['systemctl', 'start', UNIT]);
    assert.deepEqual(JSON.parse(await insideOk(['curl', '-s', `${baseUrl}/health`])), { status: 'ok', component: 'control_plane' });
    assert.equal((await unitProperties(UNIT, ['FragmentPath'])).FragmentPath, '/etc/systemd/system/control-plane.service');

    const output = await insideOk([`${RELEASE_DIR}/packaging/install.sh`, '--uninstall']);
    assert.match(output, /removed +\/usr\/local\/bin\/control-plane/);
    assert.ok(!existsSync(hostPath('/usr/local/bin/control-plane')));
    assert.ok(!existsSync(hostPath('/etc/systemd/system/control-plane.service')));
    assert.ok(existsSync(hostPath(ENV_FILE)));
    assert.ok(existsSync(hostPath(STATE_FILE)));
    assert.equal((await unitProperties(UNIT, ['LoadState'])).LoadState, 'not-found');
  });
});
