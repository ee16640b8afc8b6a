// Someone who may write to the log directory replaces the log file by a
// symbolic link to a file elsewhere. The daemon must not append a single
// byte to that file, not even the lines of an unauthenticated request: it
// refuses (503, /health degraded, a diagnostic on stderr, a metric) and
// recovers by itself once the link is gone.

import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { encodeBody, envelope, newRoom, roomJson } from '../../src/livekit/samples.ts';
import { authorize, postWebhook, startDaemon } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics } from '../helpers/prometheus-text.ts';

const OUTSIDE_TEXT = 'an outside file the daemon must never touch\n';

test('a symlink in place of the log file is never written through; the daemon refuses, says so, and recovers', { timeout: 60_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'hostile-symlinks-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const logFile = join(root, 'logs', 'control-plane.log');
  const outside = join(root, 'outside.txt');
  writeFileSync(outside, OUTSIDE_TEXT);
  const daemon = await startDaemon({ args: ['--log-file', logFile], logFile });
  t.after(() => daemon.stop('SIGKILL'));

  const webhook = (name: string): string => encodeBody(envelope('room_started', { room: roomJson(newRoom(name)) }));
  const first = webhook('before-the-link');
  assert.equal((await postWebhook(daemon.url, first, { authorization: authorize(first) })).status, 200);

  unlinkSync(logFile);
  symlinkSync(outside, logFile);
  // An unauthenticated request: its rejection lines must not reach the outside file either.
  assert.equal((await postWebhook(daemon.url, '{"event":"room_started"}')).status, 401);
  const refused = webhook('while-linked');
  const answer = await postWebhook(daemon.url, refused, { authorization: authorize(refused) });
  assert.equal(answer.status, 503, answer.text);
  assert.ok(answer.headers['retry-after'], 'a Retry-After, so LiveKit retries');
  const health = await request(`${daemon.url}/health`);
  assert.equal(health.statusCode, 503);
  assert.equal((JSON.parse(await health.body.text()) as { error: string }).error, 'ELOOP');
  const families = await scrapeMetrics(daemon.url);
  assert.ok(sampleValue(families, 'control_plane_output_symlinks_refused_total')! >= 1);
  assert.equal(sampleValue(families, 'control_plane_output_healthy'), 0);
  assert.equal(readFileSync(outside, 'utf8'), OUTSIDE_TEXT, 'not one byte appended to the outside file');
  assert.match(daemon.stderr, /"event_type":"control_plane\.diagnostic".*control-plane\.log is a symbolic link/);

  // The link is removed: the retry of the refused webhook is accepted into a new regular file.
  unlinkSync(logFile);
  let status = 0;
  for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
    status = (await postWebhook(daemon.url, refused, { authorization: authorize(refused) })).status;
    if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(status, 200);
  assert.ok(lstatSync(logFile).isFile());
  assert.match(readFileSync(logFile, 'utf8'), /"room_name":"while-linked"/);
  assert.equal(readFileSync(outside, 'utf8'), OUTSIDE_TEXT);
  const healed = await request(`${daemon.url}/health`);
  assert.equal(healed.statusCode, 200);
  await healed.body.text();
});
