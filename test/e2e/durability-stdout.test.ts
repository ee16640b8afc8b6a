// The stdout sink when stdout cannot take the lines: /dev/full (ENOSPC) and
// a pipe whose reader went away (EPIPE). Webhooks are answered 503 with
// Retry-After (never 200 for lines that were not written), /health says
// degraded, and the process stays up.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { Daemon, freePort, postSigned, programCommand, startDaemon, testEnv } from '../helpers/daemon.ts';
import { sleep } from '../sinks/log-files.ts';

async function postWebhook(url: string) {
  const answer = await postSigned(url, encodeBody(sampleWebhook('room_started', 'stdout-room')));
  return { status: answer.status, retryAfter: answer.headers['retry-after'], body: JSON.parse(answer.text) as Record<string, unknown> };
}

async function getHealth(url: string) {
  const response = await request(`${url}/health`);
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

function assertUnavailable(answer: Awaited<ReturnType<typeof postWebhook>>): void {
  assert.equal(answer.status, 503);
  assert.ok(typeof answer.retryAfter === 'string' && /^[1-5]$/.test(answer.retryAfter), `Retry-After of 1–5 s, got ${String(answer.retryAfter)}`);
  assert.equal(typeof answer.body.error, 'string');
}

test('stdout on /dev/full: every webhook is answered 503 with Retry-After, /health is degraded, the process stays up', { timeout: 30_000 }, async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const full = openSync('/dev/full', 'w');
  const [command, leading] = programCommand();
  const child = spawn(command, [...leading, '--host', '127.0.0.1', '--port', String(port)], { env: testEnv(), stdio: ['ignore', full, 'pipe'] });
  closeSync(full);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));

  // The start line could not be written either: the port is the one we chose.
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await getHealth(url);
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) assert.fail(`the daemon did not come up (${String(error)}); stderr: ${stderr}`);
      await sleep(50);
    }
  }
  const initial = await getHealth(url);
  assert.equal(initial.status, 503, 'degraded from the start: the start line failed');
  assert.equal(initial.body.status, 'degraded');

  for (let attempt = 0; attempt < 5; attempt++) assertUnavailable(await postWebhook(url));
  const degraded = await getHealth(url);
  assert.equal(degraded.status, 503);
  assert.equal(degraded.body.status, 'degraded');
  assert.match(stderr, /ENOSPC/, 'the failure is reported on stderr');
  assert.equal(child.exitCode, null, 'still running');

  child.kill('SIGTERM');
  assert.notEqual(await exited, null, 'exits on SIGTERM');
});

test('stdout a pipe whose reader is gone: 503 with Retry-After, /health degraded, the process stays up', { timeout: 30_000 }, async (t) => {
  const daemon: Daemon = await startDaemon();
  t.after(() => daemon.stop('SIGKILL'));
  const accepted = await postWebhook(daemon.url);
  assert.equal(accepted.status, 200, 'accepted while stdout is read');
  assert.equal((await getHealth(daemon.url)).status, 200);

  daemon.child.stdout!.destroy(); // the reader goes away: the next write gets EPIPE
  await sleep(50);
  for (let attempt = 0; attempt < 3; attempt++) assertUnavailable(await postWebhook(daemon.url));
  const degraded = await getHealth(daemon.url);
  assert.equal(degraded.status, 503);
  assert.equal(degraded.body.status, 'degraded');
  assert.match(daemon.stderr, /EPIPE/);
  assert.equal(daemon.child.exitCode, null, 'still running');
});
