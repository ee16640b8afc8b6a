// GET /metrics against the real program: the exposition is parsed by a
// strict text-format parser and every value is checked against the traffic
// this test sent.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { encodeBody, envelope, newRoom, participantJson, roomJson, sipParticipant, standardParticipant } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { authorize, type Daemon, OTHER_KEY, postWebhook, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { type Family, sampleValue, scrapeMetrics, sumValues } from '../helpers/prometheus-text.ts';

const scrape = (daemon: Daemon): Promise<Map<string, Family>> => scrapeMetrics(daemon.url);

async function post(daemon: Daemon, body: string, authorization?: string, path = '/webhook'): Promise<number> {
  return (await postWebhook(daemon.url, body, authorization === undefined ? {} : { authorization }, path)).status;
}

describe('/metrics counts what happened', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--max-body', '4K'] });
  });
  after(async () => {
    await daemon.stop();
  });

  test('webhooks by event and outcome, rejections by reason, duplicates, latency, delivery delay, sessions, calls, memory', async () => {
    const initial = await scrape(daemon);
    for (const reason of ['bad_signature', 'unknown_key', 'missing_authorization', 'body_too_large', 'not_found', 'request_timeout', 'too_many_connections']) {
      assert.equal(sampleValue(initial, 'control_plane_rejections_total', { reason }), 0, `${reason} is exported at 0 from the start`);
    }
    assert.equal(sumValues(initial, 'control_plane_webhooks_total'), 0);

    const nowS = Math.floor(Date.now() / 1000);
    const [roomA, roomB, roomC] = [newRoom('metrics-a'), newRoom('metrics-b'), newRoom('metrics-c')];
    const accepted: Array<[string, Record<string, unknown>]> = [
      ['room_started', envelope('room_started', { room: roomJson(roomA!) })],
      ['room_started', envelope('room_started', { room: roomJson(roomB!) })],
      ['room_started', envelope('room_started', { room: roomJson(roomC!) })],
      ['participant_joined', envelope('participant_joined', { room: roomJson(roomA!), participant: participantJson(standardParticipant('alice'), 'ACTIVE') })],
      // An inbound call that stays up, in room B: one open call.
      ['participant_joined', envelope('participant_joined', { room: roomJson(roomB!), participant: participantJson(sipParticipant('inbound'), 'ACTIVE') })],
      ['room_finished', envelope('room_finished', { room: roomJson(roomC!) })],
      // Delivered 100 s after LiveKit created it.
      ['room_started', envelope('room_started', { room: roomJson(newRoom('metrics-late')) }, { createdAt: nowS - 100 })],
    ];
    const bodies: string[] = [];
    for (const [, event] of accepted) {
      const body = encodeBody(event);
      bodies.push(body);
      assert.equal(await post(daemon, body, authorize(body)), 200);
    }
    // Two redeliveries of the first webhook.
    assert.equal(await post(daemon, bodies[0]!, authorize(bodies[0]!)), 200);
    assert.equal(await post(daemon, bodies[0]!, authorize(bodies[0]!)), 200);

    const forged = encodeBody(envelope('room_started', { room: roomJson(newRoom('forged')) }));
    for (let index = 0; index < 3; index++) assert.equal(await post(daemon, forged, signWebhook(forged, { keyId: TEST_KEY.keyId, secret: 'guessed' })), 401);
    for (let index = 0; index < 2; index++) assert.equal(await post(daemon, forged, signWebhook(forged, OTHER_KEY)), 401);
    assert.equal(await post(daemon, forged), 401);
    assert.equal(await post(daemon, 'not json', authorize('not json')), 400);
    const big = 'x'.repeat(5000);
    assert.equal(await post(daemon, big, authorize(big)), 413);
    assert.equal(await post(daemon, '{}', undefined, '/nope'), 404);
    assert.equal(await post(daemon, '{}', undefined, '/nope?x=1'), 404);
    assert.equal(await post(daemon, '{}', undefined, '/metrics'), 405);

    const families = await scrape(daemon);
    const webhooks = (event: string, outcome: string) => sampleValue(families, 'control_plane_webhooks_total', { event, outcome });
    assert.equal(webhooks('room_started', 'accepted'), 4);
    assert.equal(webhooks('participant_joined', 'accepted'), 2);
    assert.equal(webhooks('room_finished', 'accepted'), 1);
    assert.equal(webhooks('room_started', 'duplicate'), 2);
    assert.equal(webhooks('none', 'rejected'), 8, '6 × 401, 1 × 400, 1 × 413: none of them has a known event');
    assert.equal(sumValues(families, 'control_plane_webhooks_total'), 17);
    assert.equal(sampleValue(families, 'control_plane_duplicates_total'), 2);

    const rejections = (reason: string) => sampleValue(families, 'control_plane_rejections_total', { reason });
    assert.equal(rejections('bad_signature'), 3);
    assert.equal(rejections('unknown_key'), 2);
    assert.equal(rejections('missing_authorization'), 1);
    assert.equal(rejections('body_not_json'), 1);
    assert.equal(rejections('body_too_large'), 1);
    assert.equal(rejections('not_found'), 2);
    assert.equal(rejections('method_not_allowed'), 1);
    assert.equal(sumValues(families, 'control_plane_rejections_total'), 11);
    assert.equal(sumValues(families, 'control_plane_rejected_lines_suppressed_total'), 0, 'a handful of rejections is all logged');

    // Latency: one observation per POST /webhook, by outcome.
    const latencyCount = (outcome: string) => sampleValue(families, 'control_plane_request_duration_seconds_count', { outcome }) ?? 0;
    assert.equal(latencyCount('accepted'), 7);
    assert.equal(latencyCount('duplicate'), 2);
    assert.equal(latencyCount('rejected'), 8);
    const within = sampleValue(families, 'control_plane_request_duration_seconds_bucket', { outcome: 'accepted', le: '1' })!;
    assert.equal(within, 7, 'every accepted webhook answered within a second');

    // Delivery delay: first deliveries only; the late one is between 60 s and 120 s.
    assert.equal(sampleValue(families, 'control_plane_webhook_delivery_delay_seconds_count'), 7);
    assert.equal(sampleValue(families, 'control_plane_webhook_delivery_delay_seconds_bucket', { le: '60' }), 6);
    assert.equal(sampleValue(families, 'control_plane_webhook_delivery_delay_seconds_bucket', { le: '120' }), 7);
    const delaySum = sampleValue(families, 'control_plane_webhook_delivery_delay_seconds_sum')!;
    assert.ok(delaySum >= 100 && delaySum < 100 + 7 * 5, `delay sum ${delaySum}`);

    // State: rooms A, B and the late one are open (C finished); the inbound call in B is up.
    assert.equal(sampleValue(families, 'control_plane_open_sessions'), 3);
    assert.equal(sampleValue(families, 'control_plane_open_calls'), 1);

    assert.equal(sampleValue(families, 'control_plane_output_healthy'), 1);
    assert.equal(sumValues(families, 'control_plane_output_errors_total'), 0);
    assert.equal(sampleValue(families, 'control_plane_log_rotations_total'), 0);
    assert.ok(sampleValue(families, 'control_plane_open_connections')! >= 1, 'at least this scrape');
    const rss = sampleValue(families, 'process_resident_memory_bytes')!;
    assert.ok(rss > 20 * 1024 ** 2 && rss < 512 * 1024 ** 2, `rss ${rss}`);
    assert.ok(sampleValue(families, 'nodejs_heap_size_used_bytes')! > 1024 ** 2);
    const started = sampleValue(families, 'process_start_time_seconds')!;
    assert.ok(started <= Date.now() / 1000 && started > Date.now() / 1000 - 60, `start time ${started}`);
  });

  test('HEAD /metrics answers the headers only', async () => {
    const response = await request(`${daemon.url}/metrics`, { method: 'HEAD' });
    assert.equal(response.statusCode, 200);
    assert.ok(Number(response.headers['content-length']) > 1000);
    assert.equal(await response.body.text(), '');
  });
});

describe('/metrics and the log file', () => {
  let directory: string;
  let daemon: Daemon;
  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'control-plane-metrics-'));
  });
  after(async () => {
    await daemon?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test('rotations are counted as the files appear; failed writes are counted by code and flip output_healthy', async () => {
    const logDirectory = join(directory, 'logs');
    const logFile = join(logDirectory, 'control-plane.jsonl');
    daemon = await startDaemon({ args: ['--log-file', logFile, '--log-max-size', '4K', '--log-keep', '100'], logFile });
    for (let index = 0; index < 30; index++) {
      const body = encodeBody(envelope('room_started', { room: roomJson(newRoom(`rotate-${index}`)) }));
      assert.equal(await post(daemon, body, authorize(body)), 200);
    }
    let families = await scrape(daemon);
    const rotated = readdirSync(logDirectory).filter((name) => name.startsWith('control-plane.jsonl.'));
    assert.ok(rotated.length >= 3, `${rotated.length} rotated files`);
    assert.equal(sampleValue(families, 'control_plane_log_rotations_total'), rotated.length);

    // The log directory becomes a plain file: the sink cannot recreate it (ENOTDIR/EEXIST), even as root.
    rmSync(logDirectory, { recursive: true });
    writeFileSync(logDirectory, 'in the way\n');
    const body = encodeBody(envelope('room_started', { room: roomJson(newRoom('no-disk')) }));
    assert.equal(await post(daemon, body, authorize(body)), 503);
    assert.equal(await post(daemon, body, authorize(body)), 503);
    families = await scrape(daemon);
    assert.equal(sampleValue(families, 'control_plane_output_healthy'), 0);
    assert.ok(sumValues(families, 'control_plane_output_errors_total') >= 2);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'room_started', outcome: 'output_error' }), 2);
    assert.equal(sampleValue(families, 'control_plane_rejections_total', { reason: 'output_unavailable' }), 2);
    const health = await request(`${daemon.url}/health`);
    assert.equal(health.statusCode, 503);
    await health.body.text();

    // Writing works again: the retry is accepted, the output is healthy.
    rmSync(logDirectory);
    mkdirSync(logDirectory);
    let status = 0;
    for (let attempt = 0; attempt < 40 && status !== 200; attempt++) {
      status = await post(daemon, body, authorize(body));
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(status, 200);
    families = await scrape(daemon);
    assert.equal(sampleValue(families, 'control_plane_output_healthy'), 1);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'room_started', outcome: 'accepted' }), 31);
  });
});
