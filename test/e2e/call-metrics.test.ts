// The call metrics of GET /metrics against the real program, after every
// call scenario (src/livekit/scenarios.ts) was sent as LiveKit sends it:
// calls by direction and outcome, duration and talk-time histograms, SIP
// provider events; redeliveries and refused webhooks count nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeBody } from '../../src/livekit/samples.ts';
import { SCENARIOS } from '../../src/livekit/scenarios.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { type Daemon, OTHER_KEY, postSigned, postWebhook, startDaemon } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics, sumValues } from '../helpers/prometheus-text.ts';

describe('call metrics after known calls', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  test('every scenario once: calls, durations, talk time and trunk failures as the scenarios say', async () => {
    const initial = await scrapeMetrics(daemon.url);
    for (const direction of ['inbound', 'outbound']) {
      for (const outcome of ['completed', 'no_answer', 'rejected', 'failed', 'cancelled']) {
        assert.equal(sampleValue(initial, 'control_plane_calls_total', { direction, outcome }), 0, `${direction}/${outcome} exported at 0 before the first call`);
      }
    }

    const startS = Math.floor(Date.now() / 1000);
    const played = SCENARIOS.map((scenario) => scenario.build({ startS }));
    for (const run of played) {
      for (const webhook of run.webhooks) {
        const body = encodeBody(webhook);
        assert.equal((await postSigned(daemon.url, body)).status, 200);
        // Every call-ending webhook is redelivered once (a lost answer): counted once.
        if (webhook.event === 'participant_left') assert.equal((await postSigned(daemon.url, body)).status, 200);
      }
    }
    // A forged call end is refused and counts nothing.
    const forged = encodeBody(played[0]!.webhooks.find((webhook) => webhook.event === 'participant_left')!);
    assert.equal((await postWebhook(daemon.url, forged, { authorization: signWebhook(forged, OTHER_KEY) })).status, 401);

    const families = await scrapeMetrics(daemon.url);
    const calls = played.flatMap((run) => run.calls);
    const expectedCount = (direction: string, outcome: string) => calls.filter((call) => call.direction === direction && call.outcome === outcome).length;
    for (const direction of ['inbound', 'outbound']) {
      for (const outcome of ['completed', 'no_answer', 'rejected', 'failed', 'cancelled']) {
        assert.equal(sampleValue(families, 'control_plane_calls_total', { direction, outcome }), expectedCount(direction, outcome), `${direction}/${outcome}`);
      }
      const own = calls.filter((call) => call.direction === direction);
      const talked = own.filter((call) => call.talkMs !== undefined);
      assert.equal(sampleValue(families, 'control_plane_call_duration_seconds_count', { direction }), own.length);
      assert.ok(Math.abs(sampleValue(families, 'control_plane_call_duration_seconds_sum', { direction })! - own.reduce((sum, call) => sum + call.durationMs / 1000, 0)) < 1e-6);
      assert.equal(sampleValue(families, 'control_plane_call_talk_time_seconds_count', { direction }), talked.length);
      assert.ok(Math.abs(sampleValue(families, 'control_plane_call_talk_time_seconds_sum', { direction })! - talked.reduce((sum, call) => sum + call.talkMs! / 1000, 0)) < 1e-6);
      // Buckets: everything shorter than a minute.
      assert.equal(sampleValue(families, 'control_plane_call_duration_seconds_bucket', { direction, le: '60' }), own.filter((call) => call.durationMs <= 60_000).length);
    }
    assert.equal(sumValues(families, 'control_plane_calls_total'), calls.length);
    assert.equal(
      sampleValue(families, 'control_plane_provider_events_total', { provider: 'sip', reason: 'sip_trunk_failure' }),
      calls.filter((call) => call.trunkFailure).length,
    );

    // The ratios README's PromQL computes, from the same counters.
    const total = (direction: string) => ['completed', 'no_answer', 'rejected', 'failed', 'cancelled'].reduce((sum, outcome) => sum + sampleValue(families, 'control_plane_calls_total', { direction, outcome })!, 0);
    const outboundAsr = sampleValue(families, 'control_plane_calls_total', { direction: 'outbound', outcome: 'completed' })! / total('outbound');
    assert.equal(outboundAsr, expectedCount('outbound', 'completed') / calls.filter((call) => call.direction === 'outbound').length);
    const abandonRate = sampleValue(families, 'control_plane_calls_total', { direction: 'inbound', outcome: 'cancelled' })! / total('inbound');
    assert.ok(abandonRate > 0 && abandonRate < 1);
  });
});
