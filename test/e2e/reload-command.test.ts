// `control-plane reload`: what the unit's ExecReload= runs. It signals the
// daemon and reports what the daemon itself says about its keys file, so
// `systemctl reload` fails when the keys did not load (the daemon keeps its
// previous keys).

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { freePort, OTHER_KEY, postSigned, runProgram, startDaemon, TEST_KEY, testEnv } from '../helpers/daemon.ts';

describe('control-plane reload', () => {
  let directory = '';
  let keysFile = '';
  const writeKeys = (text: string): void => {
    writeFileSync(`${keysFile}.new`, text, { mode: 0o600 });
    renameSync(`${keysFile}.new`, keysFile);
  };
  const keysEnv = () => testEnv({ LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '', LIVEKIT_KEYS_FILE: keysFile });

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'cp-reload-'));
    keysFile = join(directory, 'keys');
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  test('exit 0 once the daemon reloaded the keys file; exit 1 when it did not, and the old keys stay', async () => {
    writeKeys(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`);
    const daemon = await startDaemon({ env: { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '', LIVEKIT_KEYS_FILE: keysFile } });
    try {
      // As systemd runs it: the daemon's environment (PORT), its PID in $MAINPID.
      const env = { ...keysEnv(), HOST: '127.0.0.1', PORT: String(daemon.port), MAINPID: String(daemon.child.pid) };
      writeKeys(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n${OTHER_KEY.keyId}: ${OTHER_KEY.secret}\n`);
      const good = await runProgram(['reload'], env);
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /^reload: keys file .* reloaded\n$/);
      const reloaded = await daemon.waitForLine((line) => line.event_type === 'control_plane.keys_reloaded');
      assert.deepEqual(reloaded.key_ids, [TEST_KEY.keyId, OTHER_KEY.keyId]);

      writeKeys('this is not a keys file\n');
      const bad = await runProgram(['reload'], env);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^control-plane: reload: the keys file .* did not load; the daemon keeps its previous keys/);
      await daemon.waitForLine((line) => line.event_type === 'control_plane.warning' && /keys not reloaded/.test(String(line.detail)));
      // Both keys of the last good file still verify.
      for (const key of [TEST_KEY, OTHER_KEY]) {
        assert.equal((await postSigned(daemon.url, encodeBody(sampleWebhook('room_started', `reload-${key.keyId}`)), key)).status, 200);
      }
    } finally {
      await daemon.stop();
    }
  });

  test('reads /metrics from --metrics-port when it is set', async () => {
    writeKeys(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`);
    const metricsPort = await freePort();
    const daemon = await startDaemon({ args: ['--metrics-port', String(metricsPort)], env: { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '', LIVEKIT_KEYS_FILE: keysFile } });
    try {
      const result = await runProgram(['reload', '--pid', String(daemon.child.pid), '--port', String(daemon.port), '--host', '127.0.0.1', '--metrics-port', String(metricsPort)], keysEnv());
      assert.equal(result.code, 0, result.stderr);
    } finally {
      await daemon.stop();
    }
  });

  test('without a keys file it only signals (the log file is reopened)', async () => {
    const daemon = await startDaemon();
    try {
      const result = await runProgram(['reload', '--pid', String(daemon.child.pid)]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /no keys file configured/);
      assert.equal(daemon.child.exitCode, null, 'SIGHUP does not stop it');
    } finally {
      await daemon.stop();
    }
  });

  test('refuses without a PID, and fails for a PID that is gone', async () => {
    const missing = await runProgram(['reload']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--pid/);
    const gone = await runProgram(['reload', '--pid', '999999999']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /cannot signal PID 999999999 \(ESRCH\)/);
  });
});
