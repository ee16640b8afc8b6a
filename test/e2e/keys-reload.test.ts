// Key rotation without a restart (docs/contract.md#http-answers, SIGHUP): while webhooks flow,
// the keys file gains the new key (both work), then loses the old one (it
// is refused with unknown_key); a broken file keeps the keys in use and says
// why. No webhook signed with a valid key is refused at any point.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import type { KeyPair } from '../../src/config.ts';
import { encodeBody, sampleWebhook, SAMPLE_EVENTS } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { type Daemon, type ObsLine, OTHER_KEY, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let directory: string;
let keysFile: string;

/** Replaces the keys file the way an operator should: write a new file, rename it over the old one. */
function writeKeys(text: string): void {
  const next = `${keysFile}.new`;
  writeFileSync(next, text, { mode: 0o600 });
  renameSync(next, keysFile);
}

const keyLine = (key: KeyPair) => `${key.keyId}: ${key.secret}\n`;

/** Sends webhooks signed with `key` from `parallel` loops until stopped; collects every status. */
function webhookFlow(pool: Pool, key: KeyPair, parallel = 3) {
  let stopped = false;
  const statuses: Array<{ status: number; at: number; reason?: string }> = [];
  const loops = Array.from({ length: parallel }, async (_, loop) => {
    for (let index = 0; !stopped; index++) {
      const body = encodeBody(sampleWebhook(SAMPLE_EVENTS[(index + loop) % SAMPLE_EVENTS.length]!, `rotation-${key.keyId}`));
      const response = await pool.request({ path: '/webhook', method: 'POST', body, headers: { authorization: signWebhook(body, key) } });
      const answer = (await response.body.json()) as { error?: string };
      statuses.push({ status: response.statusCode, at: Date.now(), reason: answer.error });
      await sleep(5);
    }
  });
  return {
    statuses,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return statuses;
    },
  };
}

async function post(pool: Pool, key: KeyPair): Promise<{ status: number; error?: string }> {
  const body = encodeBody(sampleWebhook('room_started', 'probe'));
  const response = await pool.request({ path: '/webhook', method: 'POST', body, headers: { authorization: signWebhook(body, key) } });
  const answer = (await response.body.json()) as { error?: string };
  return { status: response.statusCode, error: answer.error };
}

/** Sends SIGHUP and waits for the next line matching `predicate` written after it. */
async function hangUp(daemon: Daemon, predicate: (line: ObsLine) => boolean): Promise<ObsLine> {
  const seen = daemon.lines().length;
  daemon.child.kill('SIGHUP');
  return daemon.waitForLine((line) => line.seq > seen && predicate(line), 5000);
}

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'control-plane-keys-'));
  keysFile = join(directory, 'livekit-keys');
});

after(() => {
  rmSync(directory, { recursive: true, force: true });
});

test('key rotation by SIGHUP while webhooks flow: overlap accepts both keys, the removed key is refused, a broken file changes nothing', async () => {
  writeKeys(keyLine(TEST_KEY));
  // Only the keys file: no key from the environment.
  const daemon = await startDaemon({ args: ['--keys-file', keysFile], env: { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' } });
  const pool = new Pool(daemon.url, { connections: 8 });
  try {
    assert.deepEqual(daemon.lines()[0]!.key_ids, [TEST_KEY.keyId]);
    assert.deepEqual(await post(pool, OTHER_KEY), { status: 401, error: 'unknown_key' }, 'the new key is not known yet');

    // 1. Add the new key while webhooks signed with the old one flow.
    const oldKeyFlow = webhookFlow(pool, TEST_KEY);
    await sleep(300);
    writeKeys(keyLine(TEST_KEY) + keyLine(OTHER_KEY));
    const added = await hangUp(daemon, (line) => line.event_type === 'control_plane.keys_reloaded');
    assert.deepEqual(added.key_ids, [TEST_KEY.keyId, OTHER_KEY.keyId]);

    // 2. Overlap: both keys work, from concurrent senders (LiveKit switching its signing key).
    const newKeyFlow = webhookFlow(pool, OTHER_KEY);
    await sleep(400);
    const oldKeyStatuses = await oldKeyFlow.stop();
    assert.ok(oldKeyStatuses.length >= 20, `${oldKeyStatuses.length} webhooks with the old key`);
    assert.deepEqual(oldKeyStatuses.filter((entry) => entry.status !== 200), [], 'the old key worked throughout, before, during and after the reload');
    assert.ok(oldKeyStatuses.some((entry) => entry.at > Date.parse(String(added.ts))), 'and some of them ran during the overlap');

    // 3. Remove the old key while webhooks signed with the new one flow.
    writeKeys(keyLine(OTHER_KEY));
    const removed = await hangUp(daemon, (line) => line.event_type === 'control_plane.keys_reloaded');
    assert.deepEqual(removed.key_ids, [OTHER_KEY.keyId]);
    assert.deepEqual(await post(pool, TEST_KEY), { status: 401, error: 'unknown_key' }, 'the removed key is refused');

    // 4. A broken file, then a missing one: the keys in use stay, the reason is logged.
    writeKeys('this line is not "key: secret"\n');
    const broken = await hangUp(daemon, (line) => line.event_type === 'control_plane.warning');
    assert.equal(broken.level, 'warn');
    assert.match(String(broken.detail), /keys not reloaded.*previous keys stay in use.*line 1/);
    assert.equal((await post(pool, OTHER_KEY)).status, 200);
    assert.deepEqual(await post(pool, TEST_KEY), { status: 401, error: 'unknown_key' });

    rmSync(keysFile);
    const missing = await hangUp(daemon, (line) => line.event_type === 'control_plane.warning');
    assert.match(String(missing.detail), /ENOENT/);
    assert.equal((await post(pool, OTHER_KEY)).status, 200);

    const newKeyStatuses = await newKeyFlow.stop();
    assert.ok(newKeyStatuses.length >= 20, `${newKeyStatuses.length} webhooks with the new key`);
    assert.deepEqual(newKeyStatuses.filter((entry) => entry.status !== 200), [], 'the new key worked throughout');
    console.log(`# rotation: ${oldKeyStatuses.length} webhooks with the old key, ${newKeyStatuses.length} with the new one, none refused`);

    assert.match(daemon.stderr, /keys not reloaded/, 'the operator also sees it on stderr (journal)');
    const families = parsePrometheusText(await (await pool.request({ path: '/metrics', method: 'GET' })).body.text());
    assert.equal(sampleValue(families, 'control_plane_key_reloads_total', { result: 'success' }), 2);
    assert.equal(sampleValue(families, 'control_plane_key_reloads_total', { result: 'failure' }), 2);
    for (const secret of [TEST_KEY.secret, OTHER_KEY.secret]) assert.doesNotMatch(daemon.output() + daemon.stderr, new RegExp(secret), 'no secret in any output');
  } finally {
    await pool.close();
    await daemon.stop();
  }
});
