// The command line and the start-up refusals (docs/contract.md#command-line, #configuration).

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeyRing, verifyWebhook } from '../../src/pipeline/verify.ts';
import { freePort, programCommand, runProgram, startDaemon, TEST_KEY, testEnv } from '../helpers/daemon.ts';

describe('command line', () => {
  test('--version prints the version and the Node runtime', async () => {
    const { code, stdout } = await runProgram(['--version']);
    assert.equal(code, 0);
    assert.match(stdout, /^control-plane \d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+\)\n$/);
  });

  for (const command of ['serve', 'sign', 'send', 'simulate', 'report', 'check-config', 'wait-healthy', 'reload']) {
    test(`${command} --help and --version work`, async () => {
      const help = await runProgram([command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Usage:/);
      assert.match(help.stdout, /--log-file/);
      const version = await runProgram([command, '--version']);
      assert.equal(version.code, 0);
      assert.match(version.stdout, /^control-plane /);
    });
  }

  test('an unknown flag stops the program with one line naming it and exit 2', async () => {
    const { code, stderr, stdout } = await runProgram(['--frobnicate']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(stderr.trim().split('\n').length, 1);
    assert.match(stderr, /--frobnicate/);
  });

  test('a malformed value names the setting, exit 2', async () => {
    const { code, stderr } = await runProgram(['--max-body', 'lots']);
    assert.equal(code, 2);
    assert.match(stderr, /--max-body/);
  });

  test('no key configured: refuses to start (fail closed), exit 2', async () => {
    const { code, stderr } = await runProgram([], testEnv({ LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' }));
    assert.equal(code, 2);
    assert.match(stderr, /no LiveKit key configured/);
  });

  test('a port already in use is a clear error, exit 2', async () => {
    const daemon = await startDaemon();
    try {
      const { code, stderr } = await runProgram(['--host', '127.0.0.1', '--port', String(daemon.port)]);
      assert.equal(code, 2);
      assert.match(stderr, /EADDRINUSE/);
    } finally {
      await daemon.stop();
    }
  });

  test('check-config prints a summary with key ids and never a secret', async () => {
    const { code, stdout } = await runProgram(['check-config', '--port', '9100']);
    assert.equal(code, 0);
    const summary = JSON.parse(stdout);
    assert.equal(summary.port, 9100);
    assert.deepEqual(summary.key_ids, [TEST_KEY.keyId]);
    assert.doesNotMatch(stdout, new RegExp(TEST_KEY.secret));
  });

  test('check-config exits 2 on a bad configuration', async () => {
    const { code } = await runProgram(['check-config', '--fsync', 'maybe', '--log-file', '/tmp/x.log']);
    assert.equal(code, 2);
  });

  test('sign prints the bare token LiveKit would send for the file bytes, and for stdin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-sign-'));
    const bodyPath = join(dir, 'body.json');
    const body = '{"event":"room_started", "id":"EV_signTest1234"}';
    writeFileSync(bodyPath, body);
    const keys = new KeyRing([TEST_KEY]);
    for (const args of [['sign', bodyPath], ['sign', '--key', TEST_KEY.keyId, '-']]) {
      const { code, stdout } = await runProgram(args, testEnv(), body);
      assert.equal(code, 0);
      const token = stdout.trim();
      assert.doesNotMatch(token, /^Bearer/);
      assert.deepEqual(await verifyWebhook(token, Buffer.from(body), { keys, nowMs: Date.now(), clockToleranceMs: 0 }), { ok: true, keyId: TEST_KEY.keyId });
    }
  });

  test('sign --key with a key that is not configured exits 2', async () => {
    const { code, stderr } = await runProgram(['sign', '--key', 'APInope', '-'], testEnv(), '{}');
    assert.equal(code, 2);
    assert.match(stderr, /APInope/);
  });

  test('send delivers a signed sample webhook to a running daemon and prints the answer', async () => {
    const daemon = await startDaemon();
    try {
      const { code, stdout } = await runProgram(['send', '--url', `${daemon.url}/webhook`, 'participant_joined', '--room', 'sent-room']);
      assert.equal(code, 0);
      assert.match(stdout, /^200 /);
      const line = await daemon.waitForLine((candidate) => candidate.event_type === 'livekit.participant.joined');
      assert.equal(line.room_name, 'sent-room');
    } finally {
      await daemon.stop();
    }
  });

  test('send to a daemon with another key gets 401 and exits 1', async () => {
    const daemon = await startDaemon();
    try {
      const { code, stdout } = await runProgram(['send', '--url', `${daemon.url}/webhook`, 'room_started'], testEnv({ LIVEKIT_API_KEY: 'APIwrong', LIVEKIT_API_SECRET: 'a-wrong-secret-but-long-enough-0123456789' }));
      assert.equal(code, 1);
      assert.match(stdout, /^401 .*unknown_key/);
    } finally {
      await daemon.stop();
    }
  });

  test('send refuses an event name it does not know, exit 2, and sends nothing', async () => {
    const daemon = await startDaemon();
    try {
      const { code, stdout, stderr } = await runProgram(['send', '--url', `${daemon.url}/webhook`, 'room_startd']);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, /unknown event "room_startd"; one of room_started, /);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(daemon.lines().filter((line) => line.event_type === 'webhook.received').length, 0);
    } finally {
      await daemon.stop();
    }
  });

  test('simulate refuses an unknown scenario and a speed that is not a positive number, exit 2', async () => {
    const unknown = await runProgram(['simulate', 'inbound-answerd']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown scenario "inbound-answerd"; one of inbound-answered, /);
    const none = await runProgram(['simulate']);
    assert.equal(none.code, 2);
    for (const speed of ['0', '-3', 'fast']) {
      const bad = await runProgram(['simulate', '--speed', speed, 'inbound-answered']);
      assert.equal(bad.code, 2, speed);
      assert.match(bad.stderr, /--speed/);
    }
  });

  test('simulate to nothing listening: exit 1, saying the room could not be finished', async () => {
    const closedPort = await freePort();
    const { code, stdout, stderr } = await runProgram(['simulate', '--url', `http://127.0.0.1:${closedPort}/webhook`, 'outbound-busy']);
    assert.equal(code, 1);
    assert.match(stdout, /room_started -> ECONNREFUSED/);
    assert.match(stderr, /could not finish room simulated-outbound-busy-/);
  });

  test('send to nothing listening reports the connection error, exit 1', async () => {
    const closedPort = await freePort();
    const { code, stderr } = await runProgram(['send', '--url', `http://127.0.0.1:${closedPort}/webhook`, 'room_started']);
    assert.equal(code, 1);
    assert.match(stderr, /ECONNREFUSED/);
  });

  test('-- ends the flags: sign -- FILE, also a file named like a flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-sign-dashdash-'));
    const body = '{"event":"room_started","id":"EV_dashDash0001"}';
    writeFileSync(join(dir, 'body.json'), body);
    writeFileSync(join(dir, '--help'), body);
    const keys = new KeyRing([TEST_KEY]);
    for (const file of ['body.json', '--help']) {
      const [command, leading] = programCommand();
      // Run in `dir` so that the name is exactly `--help`; tsx resolved from here.
      const args = leading.map((argument) => (argument === 'tsx' ? import.meta.resolve('tsx') : argument));
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(command, [...args, 'sign', '--', file], { cwd: dir, env: testEnv() }, (error, out, err) => resolve({ code: error ? (error.code as number) : 0, stdout: out, stderr: err }));
      });
      assert.equal(code, 0, `sign -- ${file}: ${stderr}`);
      assert.deepEqual(await verifyWebhook(stdout.trim(), Buffer.from(body), { keys, nowMs: Date.now(), clockToleranceMs: 0 }), { ok: true, keyId: TEST_KEY.keyId });
    }
  });

  test('check-config --quiet prints nothing when the configuration is good, and the reason when not', async () => {
    const good = await runProgram(['check-config', '--quiet']);
    assert.deepEqual([good.code, good.stdout, good.stderr], [0, '', '']);
    const bad = await runProgram(['check-config', '--quiet', '--keys-file', '/nonexistent/keys']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /^control-plane: --keys-file: cannot read \/nonexistent\/keys \(ENOENT\)\n$/);
  });

  test('wait-healthy exits 0 once /health answers 200, reading --port like the daemon', async () => {
    const daemon = await startDaemon();
    try {
      const byUrl = await runProgram(['wait-healthy', '--url', `${daemon.url}/health`]);
      assert.equal(byUrl.code, 0, byUrl.stderr);
      assert.match(byUrl.stdout, /^healthy: http:\/\/127\.0\.0\.1:\d+\/health answered 200 after \d+ ms\n$/);
      // The unit runs it with the daemon's own environment: PORT, and HOST 0.0.0.0 reached on loopback.
      const byEnv = await runProgram(['wait-healthy'], testEnv({ PORT: String(daemon.port), HOST: '0.0.0.0' }));
      assert.equal(byEnv.code, 0, byEnv.stderr);
    } finally {
      await daemon.stop();
    }
  });

  test('wait-healthy waits for a daemon that is still starting', async () => {
    const port = await freePort();
    const waiting = runProgram(['wait-healthy', '--port', String(port), '--timeout', '20s']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [command, leading] = programCommand();
    const child = spawn(command, [...leading, '--host', '127.0.0.1', '--port', String(port)], { env: testEnv(), stdio: 'ignore' });
    try {
      const { code, stderr } = await waiting;
      assert.equal(code, 0, stderr);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });

  test('wait-healthy fails after --timeout when nothing answers, naming the URL and what it got', async () => {
    const port = await freePort();
    const started = Date.now();
    const { code, stderr } = await runProgram(['wait-healthy', '--port', String(port), '--timeout', '400ms']);
    assert.equal(code, 1);
    assert.ok(Date.now() - started < 10_000);
    assert.match(stderr, new RegExp(`^control-plane: wait-healthy: http://127\\.0\\.0\\.1:${port}/health did not answer 200 within 400ms \\(last: ECONNREFUSED\\)\n$`));
  });

  test('wait-healthy gives up at once when the daemon process ($MAINPID) is gone', async () => {
    const port = await freePort();
    const gone = spawn('true');
    await new Promise((resolve) => gone.on('exit', resolve));
    const started = Date.now();
    const { code, stderr } = await runProgram(['wait-healthy', '--port', String(port), '--timeout', '60s'], testEnv({ MAINPID: String(gone.pid) }));
    assert.equal(code, 1);
    assert.ok(Date.now() - started < 10_000, 'did not wait for the timeout');
    assert.match(stderr, new RegExp(`wait-healthy: the daemon \\(PID ${gone.pid}\\) exited before`));
  });

  test('wait-healthy refuses what it cannot wait for, exit 2', async () => {
    const zero = await runProgram(['wait-healthy', '--port', '0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--port is 0/);
    const badTimeout = await runProgram(['wait-healthy', '--timeout', 'soon']);
    assert.equal(badTimeout.code, 2);
    assert.match(badTimeout.stderr, /--timeout: "soon" is not a duration/);
    const badUrl = await runProgram(['wait-healthy', '--url', 'not a url']);
    assert.equal(badUrl.code, 2);
  });
});
