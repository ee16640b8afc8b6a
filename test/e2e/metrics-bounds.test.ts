// /metrics stays small and keeps room for the product's own label sets,
// whatever the webhooks say: a signed webhook with a 1 MiB event name is
// counted under event="unknown", and a flood of made-up names does not push
// a real new label set (a first output_error) into "other".

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { encodeBody, envelope, newRoom, roomJson } from '../../src/livekit/samples.ts';
import { postSigned, startDaemon } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics } from '../helpers/prometheus-text.ts';

test('event names from webhooks cannot bloat /metrics or crowd out real label sets', { timeout: 60_000 }, async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'metrics-bounds-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const logDirectory = join(directory, 'logs');
  const daemon = await startDaemon({ args: ['--max-body', '2M', '--log-file', join(logDirectory, 'control-plane.log')], logFile: join(logDirectory, 'control-plane.log') });
  t.after(() => daemon.stop());

  const huge = encodeBody(envelope('e'.repeat(1024 * 1024), {}));
  assert.equal((await postSigned(daemon.url, huge)).status, 200);
  for (let index = 0; index < 250; index++) {
    assert.equal((await postSigned(daemon.url, encodeBody(envelope(`made_up_event_${index}`, {})))).status, 200);
  }

  const response = await request(`${daemon.url}/metrics`);
  const text = await response.body.text();
  assert.ok(text.length < 64 * 1024, `/metrics is ${text.length} bytes`);
  let families = await scrapeMetrics(daemon.url);
  assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'unknown', outcome: 'accepted' }), 251);

  // The output fails: a first output_error for a known event has its own series.
  rmSync(logDirectory, { recursive: true });
  writeFileSync(logDirectory, 'in the way\n');
  const body = encodeBody(envelope('room_started', { room: roomJson(newRoom('bounds')) }));
  assert.equal((await postSigned(daemon.url, body)).status, 503);
  families = await scrapeMetrics(daemon.url);
  assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'room_started', outcome: 'output_error' }), 1);
  assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'other', outcome: 'other' }), undefined);
  rmSync(logDirectory);
});
