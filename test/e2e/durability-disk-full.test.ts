// The log file's filesystem fills up under load (a small tmpfs: needs root,
// as CI has): webhooks are answered 503 with Retry-After, /health says
// degraded, and once space is freed the daemon answers 200 again by itself.
// Nothing answered 200 is missing, nothing is split, seq has no gap.

import assert from 'node:assert/strict';
import { statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { type Daemon, startDaemon } from '../helpers/daemon.ts';
import { assertCompleteOutput, parseLogFiles, readLogFiles, sendWebhooks, sleep } from '../sinks/log-files.ts';
import { mountTmpfs, tmpfsUnavailable } from '../sinks/tmpfs.ts';

const skip = tmpfsUnavailable();

async function health(daemon: Daemon): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(`${daemon.url}/health`);
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test('disk full under load: 503 + Retry-After, /health degraded, then 200 again once space is freed; nothing acknowledged is missing', { skip, timeout: 60_000 }, async (t) => {
  const directory = mountTmpfs(t, 1024 * 1024, 'durability-disk-full-');
  const logFile = join(directory, 'control-plane.log');
  const daemon = await startDaemon({ args: ['--log-file', logFile], logFile });
  t.after(() => daemon.stop('SIGKILL'));

  // Leave room for a few dozen webhooks only.
  const filler = join(directory, 'filler');
  const { bavail, bsize } = statfsSync(directory);
  writeFileSync(filler, Buffer.alloc(bavail * bsize - 48 * 1024));

  let unavailable = 0;
  let acceptedAfterFreeing = 0;
  let freed = false;
  let loading = true;
  const load = sendWebhooks(daemon.url, {
    workers: 4,
    keepGoing: () => loading,
    onAnswer: (status) => {
      if (status === 503) unavailable++;
      if (status === 200 && freed) acceptedAfterFreeing++;
    },
  });

  await waitFor('webhooks are answered 503', () => unavailable >= 20);
  const degraded = await health(daemon);
  assert.equal(degraded.status, 503, 'health fails while the disk is full');
  assert.equal(degraded.body.status, 'degraded');
  assert.equal(degraded.body.component, 'control_plane');

  unlinkSync(filler);
  freed = true;
  await waitFor('webhooks are answered 200 again', () => acceptedAfterFreeing >= 50);
  await waitFor('health is ok again', async () => (await health(daemon)).status === 200);
  assert.deepEqual((await health(daemon)).body, { status: 'ok', component: 'control_plane' });
  loading = false;
  const result = await load;
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0, `clean exit; stderr: ${daemon.stderr}`);

  assert.deepEqual([...result.statuses.keys()].sort(), [200, 503], `only 200 and 503 answers: ${JSON.stringify([...result.statuses])}`);
  assert.ok(result.retryAfter.length >= 20, 'every 503 carries Retry-After');
  for (const value of result.retryAfter) assert.ok(/^[1-5]$/.test(value), `Retry-After of 1–5 s, got ${value}`);
  assert.match(daemon.stderr, /ENOSPC/, 'the failure is reported on stderr');

  const lines = assertCompleteOutput(parseLogFiles(readLogFiles(directory, 'control-plane.log')), result.accepted);
  assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
  t.diagnostic(`${result.accepted.length} accepted, ${unavailable} answered 503, ${lines.length} lines`);
});
