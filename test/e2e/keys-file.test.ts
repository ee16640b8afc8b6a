// The keys file read as LiveKit reads its own (README "Configuration"):
// a comment after a secret is not part of it, a secret shorter than 32
// bytes stops the program (exit 2, naming the key, never the secret), a
// file others can read gives a warning line; SIGHUP applies the same rules.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { type ObsLine, OTHER_KEY, postSigned, runProgram, startDaemon, TEST_KEY, testEnv } from '../helpers/daemon.ts';

let directory: string;
before(() => {
  directory = mkdtempSync(join(tmpdir(), 'control-plane-keys-file-'));
});
after(() => rmSync(directory, { recursive: true, force: true }));

const noEnvKey = { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' };

function keysFile(name: string, text: string, mode = 0o600): string {
  const path = join(directory, name);
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

test('a comment after the secret is not part of it: webhooks signed with the secret alone are accepted', { timeout: 30_000 }, async (t) => {
  const path = keysFile('commented', `# rotation 2026-11\n${TEST_KEY.keyId}: ${TEST_KEY.secret} # added by ops\n`);
  const daemon = await startDaemon({ args: ['--keys-file', path], env: noEnvKey });
  t.after(() => daemon.stop());
  const body = encodeBody(sampleWebhook('room_started', 'commented'));
  assert.equal((await postSigned(daemon.url, body)).status, 200);
  assert.equal(daemon.lines().filter((line) => line.event_type === 'control_plane.warning').length, 0, 'an owner-only file: no warning');
});

test('a secret shorter than 32 bytes stops the program with exit 2, naming the key and never the secret', { timeout: 30_000 }, async () => {
  const path = keysFile('short', `${TEST_KEY.keyId}: ${TEST_KEY.secret}\nAPIshort: tiny-secret-17bytes\n`);
  const result = await runProgram(['--port', '0', '--keys-file', path], testEnv(noEnvKey));
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /--keys-file .*short line 2: the secret of key "APIshort" is 19 bytes; LiveKit requires at least 32/);
  assert.doesNotMatch(result.stderr + result.stdout, /tiny-secret/);

  const fromEnv = await runProgram(['--port', '0'], testEnv({ LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'x' }));
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /LIVEKIT_API_SECRET: the secret of key "APIk" is 1 byte/);

  const checked = await runProgram(['check-config', '--keys-file', path], testEnv(noEnvKey));
  assert.equal(checked.code, 2);
  assert.match(checked.stderr, /"APIshort"/);
});

test('a keys file readable by group or others: a warning line at start, and from check-config', { timeout: 30_000 }, async (t) => {
  const path = keysFile('readable', `${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`, 0o644);
  const daemon = await startDaemon({ args: ['--keys-file', path], env: noEnvKey });
  t.after(() => daemon.stop());
  const warning = await daemon.waitForLine((line) => line.event_type === 'control_plane.warning');
  assert.equal(warning.level, 'warn');
  assert.match(String(warning.detail), /readable by group and others \(mode 0644\); chmod 600/);
  assert.ok(warning.seq > 1, 'after control_plane.started');

  const checked = await runProgram(['check-config', '--keys-file', path], testEnv(noEnvKey));
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stderr, /^warning: --keys-file .* is readable by group and others/m);
  assert.doesNotMatch(checked.stdout, /warnings|secret-that/);
});

test('SIGHUP applies the same rules: a short secret keeps the keys in use, a readable file reloads with a warning', { timeout: 30_000 }, async (t) => {
  const path = join(directory, 'reloaded');
  const replace = (text: string, mode = 0o600): void => {
    writeFileSync(`${path}.new`, text, { mode });
    chmodSync(`${path}.new`, mode);
    renameSync(`${path}.new`, path);
  };
  replace(`${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`);
  const daemon = await startDaemon({ args: ['--keys-file', path], env: noEnvKey });
  t.after(() => daemon.stop());
  const hangUp = async (predicate: (line: ObsLine) => boolean): Promise<ObsLine> => {
    const seen = daemon.lines().length;
    daemon.child.kill('SIGHUP');
    return daemon.waitForLine((line) => line.seq > seen && predicate(line), 5000);
  };

  replace(`${OTHER_KEY.keyId}: refused-tiny-secret\n`);
  const refused = await hangUp((line) => line.event_type === 'control_plane.warning');
  assert.match(String(refused.detail), /keys not reloaded, the previous keys stay in use: .*the secret of key "APIotherkey" is 19 bytes/);
  const body = encodeBody(sampleWebhook('room_started', 'after-refused-reload'));
  assert.equal((await postSigned(daemon.url, body)).status, 200, 'the previous key still works');

  replace(`${OTHER_KEY.keyId}: ${OTHER_KEY.secret}\n`, 0o640);
  const reloaded = await hangUp((line) => line.event_type === 'control_plane.keys_reloaded');
  assert.deepEqual(reloaded.key_ids, [OTHER_KEY.keyId]);
  const warning = await daemon.waitForLine((line) => line.seq === reloaded.seq + 1);
  assert.equal(warning.event_type, 'control_plane.warning');
  assert.match(String(warning.detail), /readable by group \(mode 0640\)/);
  assert.equal((await postSigned(daemon.url, body, OTHER_KEY)).status, 200);
  assert.equal((await postSigned(daemon.url, encodeBody(sampleWebhook('room_started', 'old-key')))).status, 401);
  assert.doesNotMatch(daemon.output() + daemon.stderr, /refused-tiny-secret/, 'the refused secret is never printed');
});
