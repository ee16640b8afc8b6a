// --metrics-port: /metrics on a listener of its own (127.0.0.1 by default),
// the public port answering /metrics 404; and the process facts every
// scrape carries (build info, event-loop lag, the descriptor limit).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { freePort, postSigned, runProgram, startDaemon } from '../helpers/daemon.ts';
import { sampleValue, scrapeMetrics } from '../helpers/prometheus-text.ts';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('metrics', () => {
  test('every scrape has control_plane_build_info, event-loop lag and process_max_fds', async () => {
    const daemon = await startDaemon();
    try {
      const families = await scrapeMetrics(daemon.url);
      const [info] = families.get('control_plane_build_info')!.samples;
      assert.equal(info!.value, 1);
      assert.equal(info!.labels.version, packageVersion);
      assert.match(info!.labels.node!, /^v\d+\.\d+\.\d+$/);
      for (const name of ['nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds']) {
        const value = sampleValue(families, name)!;
        assert.ok(value >= 0 && value < 5, `${name} ${value}`);
      }
      assert.ok(sampleValue(families, 'process_max_fds')! >= 1024);
    } finally {
      await daemon.stop();
    }
  });

  test('--metrics-port: /metrics there, 404 on the public port, and nothing else on the metrics port', async () => {
    const metricsPort = await freePort();
    const daemon = await startDaemon({ args: ['--metrics-port', String(metricsPort)] });
    try {
      const started = daemon.lines().find((line) => line.event_type === 'control_plane.started')!;
      assert.equal(started.detail, `/metrics on 127.0.0.1:${metricsPort}`);
      assert.equal((await postSigned(daemon.url, encodeBody(sampleWebhook('room_started', 'metrics-port-room')))).status, 200);

      const metricsUrl = `http://127.0.0.1:${metricsPort}`;
      const families = await scrapeMetrics(metricsUrl);
      assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'room_started', outcome: 'accepted' }), 1);

      const publicMetrics = await request(`${daemon.url}/metrics`);
      assert.equal(publicMetrics.statusCode, 404);
      assert.deepEqual(await publicMetrics.body.json(), { error: 'not_found' });
      const health = await request(`${daemon.url}/health`);
      assert.equal(health.statusCode, 200);
      await health.body.dump();

      const other = await request(`${metricsUrl}/webhook`, { method: 'POST', body: '{}' });
      assert.equal(other.statusCode, 404);
      await other.body.dump();
      const post = await request(`${metricsUrl}/metrics`, { method: 'POST', body: '{}' });
      assert.equal(post.statusCode, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      await post.body.dump();
      const head = await request(`${metricsUrl}/metrics`, { method: 'HEAD' });
      assert.equal(head.statusCode, 200);
      assert.equal(await head.body.text(), '');
    } finally {
      const exit = await daemon.stop();
      assert.equal(exit.code, 0);
    }
    // The public /metrics 404 is a rejection like any unknown path; what the
    // scraper did on the metrics port is no output line: it sends no webhooks.
    assert.deepEqual(daemon.lines().filter((line) => line.event_type === 'webhook.rejected').map((line) => line.reason), ['not_found']);
    assert.equal(daemon.lines().at(-1)!.event_type, 'control_plane.stopped');
  });

  test('a metrics port that cannot be bound refuses the start, exit 2', async () => {
    const daemon = await startDaemon();
    try {
      const { code, stderr } = await runProgram(['--host', '127.0.0.1', '--port', '0', '--metrics-port', String(daemon.port)]);
      assert.equal(code, 2);
      assert.match(stderr, /--metrics-host\/--metrics-port: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    } finally {
      await daemon.stop();
    }
  });
});
