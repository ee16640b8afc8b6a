// A flood of forged webhooks against the real program, with real ones mixed
// in: every real webhook is answered 200 and fully logged, the rejection
// lines stay within the rate limit, and every rejection is accounted for,
// either as a line or in a summary's `suppressed` count.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Pool } from 'undici';
import { REJECTED_LINES_PER_WINDOW, REJECTED_LINES_TOTAL_PER_WINDOW, REJECTION_WINDOW_MS } from '../../src/obs/rejection-limit.ts';
import { encodeBody, sampleWebhook, SAMPLE_EVENTS } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { authorize, OTHER_KEY, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const FORGED = 4000;
const REAL_EVERY = 20;
const IN_FLIGHT = 32;

/** Forged requests, one kind per reason the daemon gives for it. */
const forgeries: Array<[string, (body: string) => Record<string, string>]> = [
  ['bad_signature', (body) => ({ authorization: signWebhook(body, { keyId: TEST_KEY.keyId, secret: 'a-guessed-secret' }) })],
  ['unknown_key', (body) => ({ authorization: signWebhook(body, OTHER_KEY) })],
  ['missing_authorization', () => ({})],
  ['malformed_token', () => ({ authorization: 'Bearer not.a.jwt' })],
  ['expired', (body) => ({ authorization: signWebhook(body, TEST_KEY, { issuedAt: Math.floor(Date.now() / 1000) - 7200 }) })],
  ['wrong_algorithm', (body) => ({ authorization: signWebhook(body, TEST_KEY, { header: { alg: 'none' } }) })],
];

test('a forged-signature flood: real webhooks all answered 200 and logged, rejection lines bounded and accounted for', async () => {
  const daemon = await startDaemon();
  const pool = new Pool(daemon.url, { connections: IN_FLIGHT });
  try {
    const sent = new Map<string, number>();
    const realIds: string[] = [];
    const realLatencies: number[] = [];
    const realFailures: string[] = [];
    const jobs: Array<() => Promise<void>> = [];
    for (let index = 0; index < FORGED; index++) {
      const [reason, headers] = forgeries[index % forgeries.length]!;
      const body = encodeBody(sampleWebhook(SAMPLE_EVENTS[index % SAMPLE_EVENTS.length]!, 'forged-room'));
      const headerValues = headers(body);
      jobs.push(async () => {
        const response = await pool.request({ path: '/webhook', method: 'POST', body, headers: headerValues });
        const answer = await response.body.json();
        assert.equal(response.statusCode, 401);
        assert.deepEqual(answer, { error: reason });
        sent.set(reason, (sent.get(reason) ?? 0) + 1);
      });
      if (index % REAL_EVERY === 0) {
        const event = sampleWebhook(SAMPLE_EVENTS[(index / REAL_EVERY) % SAMPLE_EVENTS.length]!, `real-room-${index}`);
        const realBody = encodeBody(event);
        realIds.push(String(event.id));
        jobs.push(async () => {
          const started = performance.now();
          const response = await pool.request({ path: '/webhook', method: 'POST', body: realBody, headers: { authorization: authorize(realBody) } });
          await response.body.text();
          realLatencies.push(performance.now() - started);
          if (response.statusCode !== 200) realFailures.push(`${event.id}: ${response.statusCode}`);
        });
      }
    }
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < jobs.length) await jobs[next++]!();
      }),
    );
    const floodMs = performance.now() - started;
    const families = parsePrometheusText(await (await pool.request({ path: '/metrics', method: 'GET' })).body.text());
    await pool.close();

    assert.deepEqual(realFailures, [], 'real webhooks are never refused');
    realLatencies.sort((a, b) => a - b);
    const p99 = realLatencies[Math.floor(realLatencies.length * 0.99)]!;
    console.log(`# flood: ${FORGED} forged + ${realIds.length} real in ${floodMs.toFixed(0)} ms (${((FORGED + realIds.length) / (floodMs / 1000)).toFixed(0)} req/s); real p50 ${realLatencies[Math.floor(realLatencies.length / 2)]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    assert.ok(p99 < 1000, `real webhooks answered fast during the flood (p99 ${p99.toFixed(1)} ms)`);

    for (const [reason] of forgeries) {
      assert.equal(sampleValue(families, 'control_plane_rejections_total', { reason }), sent.get(reason), `${reason} counted`);
    }

    const stop = await daemon.stop();
    assert.equal(stop.code, 0);
    const lines = daemon.lines();
    const processed = new Set(lines.filter((line) => line.event_type === 'webhook.processing').map((line) => line.webhook_id));
    assert.deepEqual(realIds.filter((id) => !processed.has(id)), [], 'every real webhook is in the output');

    // Windows of 10 s: a flood of D ms spans at most floor(D / 10 s) + 1 of them.
    const windows = Math.floor(floodMs / REJECTION_WINDOW_MS) + 1;
    const rejected = lines.filter((line) => line.event_type === 'webhook.rejected');
    assert.ok(rejected.length <= REJECTED_LINES_TOTAL_PER_WINDOW * windows, `${rejected.length} rejection lines`);
    for (const [reason] of forgeries) {
      const written = rejected.filter((line) => line.reason === reason).length;
      assert.ok(written >= 1 && written <= REJECTED_LINES_PER_WINDOW * windows, `${reason}: ${written} lines`);
      const suppressed = lines
        .filter((line) => line.event_type === 'webhook.rejected_suppressed' && line.reason === reason)
        .reduce((total, line) => total + Number(line.suppressed), 0);
      assert.equal(written + suppressed, sent.get(reason), `${reason}: every rejection is a line or in a summary`);
    }
    // What a flood costs the log: the real webhooks' lines, plus a bounded number per reason.
    // (each logged rejection is webhook.received + webhook.rejected; the real webhooks have one webhook.received each).
    const count = (type: string) => lines.filter((line) => line.event_type === type).length;
    const floodLines = count('webhook.received') - realIds.length + count('webhook.rejected') + count('webhook.rejected_suppressed');
    assert.equal(count('webhook.received') - realIds.length, rejected.length, 'a suppressed rejection writes no webhook.received either');
    assert.ok(floodLines <= 2 * REJECTED_LINES_TOTAL_PER_WINDOW * windows + forgeries.length * (windows + 1), `${floodLines} lines for ${FORGED} forged requests`);
    console.log(`# flood: ${FORGED} forged requests cost ${floodLines} lines (${rejected.length} webhook.rejected); ${daemon.output().length} bytes of output in all`);
  } finally {
    await pool.destroy();
    await daemon.stop();
  }
});
