import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Counter, DaemonMetrics, formatValue, Gauge, Histogram, LabelValues, MAX_SERIES, maxFileDescriptors, Registry, SampledMetric } from '../src/metrics.ts';
import { LIVEKIT_EVENT_TYPES } from '../src/obs/livekit.ts';
import { parsePrometheusText, sampleValue } from './helpers/prometheus-text.ts';

const COUNTS = { openSessions: 3, openCalls: 1, endedSessions: 0, rememberedIds: 0, evictedSessions: 0 };

function daemonMetrics(overrides: Partial<ConstructorParameters<typeof DaemonMetrics>[0]> = {}): DaemonMetrics {
  return new DaemonMetrics({ store: () => COUNTS, sinkRotations: () => 7, outputHealthy: () => true, ...overrides });
}

test('a counter renders HELP, TYPE and one line per label set, in the declared label order', () => {
  const counter = new Counter('demo_requests_total', 'Requests.', ['event', 'outcome']);
  counter.inc({ event: 'room_started', outcome: 'accepted' });
  counter.inc({ outcome: 'accepted', event: 'room_started' }, 2);
  counter.inc({ event: 'room_finished', outcome: 'rejected' });
  assert.equal(
    counter.render(),
    '# HELP demo_requests_total Requests.\n# TYPE demo_requests_total counter\n' +
      'demo_requests_total{event="room_started",outcome="accepted"} 3\n' +
      'demo_requests_total{event="room_finished",outcome="rejected"} 1\n',
  );
  assert.equal(counter.get({ outcome: 'accepted', event: 'room_started' }), 3);
});

test('a counter refuses to go down, a missing label, and a name without _total', () => {
  const counter = new Counter('demo_total', 'x', ['reason']);
  assert.throws(() => counter.inc({ reason: 'a' }, -1), /only goes up/);
  assert.throws(() => counter.inc({}), /label reason missing/);
  assert.throws(() => new Counter('demo_count', 'x'), /_total/);
  assert.throws(() => new Counter('demo-x_total', 'x'), /invalid metric name/);
  assert.throws(() => new Counter('demo_total', 'x', ['__reserved']), /invalid label name/);
  assert.throws(() => new Counter('demo_total', 'x', ['le']), /invalid label name/);
});

test('an unlabelled counter is exported at 0 before its first increment; init() does the same for a label set', () => {
  assert.match(new Counter('demo_total', 'x').render(), /^demo_total 0$/m);
  const labelled = new Counter('demo_labelled_total', 'x', ['reason']);
  assert.doesNotMatch(labelled.render(), /^demo_labelled_total/m);
  labelled.init({ reason: 'bad_signature' });
  assert.match(labelled.render(), /^demo_labelled_total\{reason="bad_signature"\} 0$/m);
});

test('label values are escaped (backslash, quote, newline) and survive a strict parser', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 60 }), (value, help) => {
      const counter = new Counter('demo_total', help, ['value']);
      counter.inc({ value });
      const families = parsePrometheusText(counter.render());
      assert.equal(families.get('demo_total')!.help, help);
      assert.equal(sampleValue(families, 'demo_total', { value }), 1);
    }),
    { numRuns: 500 },
  );
});

test('past MAX_SERIES label sets, new ones are folded into "other": hostile values cannot grow memory', () => {
  const counter = new Counter('demo_total', 'x', ['event', 'outcome']);
  for (let index = 0; index < MAX_SERIES + 50; index++) counter.inc({ event: `event_${index}`, outcome: 'accepted' });
  const families = parsePrometheusText(counter.render());
  assert.equal(families.get('demo_total')!.samples.length, MAX_SERIES + 1, 'MAX_SERIES label sets and one overflow series');
  assert.equal(sampleValue(families, 'demo_total', { event: 'other', outcome: 'other' }), 50);
  counter.inc({ event: 'event_3', outcome: 'accepted' });
  assert.equal(counter.get({ event: 'event_3', outcome: 'accepted' }), 2, 'known label sets keep counting');
});

test('a label with declared values counts anything else under its fallback, and init() declares more', () => {
  const reasons = new LabelValues(['bad_signature'], 'other');
  const counter = new Counter('demo_reasons_total', 'x', ['reason'], { reason: reasons });
  counter.inc({ reason: 'bad_signature' });
  counter.inc({ reason: 'x'.repeat(1000) });
  counter.inc({ reason: 'made_up' });
  assert.equal(counter.get({ reason: 'bad_signature' }), 1);
  assert.equal(counter.get({ reason: 'other' }), 2);
  assert.equal(counter.get({ reason: 'made_up' }), 2, 'read back through the same fallback');
  counter.init({ reason: 'expired' });
  counter.inc({ reason: 'expired' });
  assert.equal(counter.get({ reason: 'expired' }), 1, 'declared by init()');
  assert.doesNotMatch(counter.render(), /made_up|xxxx/);
});

describe('DaemonMetrics: every label value comes from a known list', () => {
  test('a LiveKit event name the product does not know is counted as unknown: a 1 MiB name leaves the exposition small', () => {
    const metrics = daemonMetrics();
    const before = metrics.registry.render().length;
    metrics.webhooks.inc({ event: 'e'.repeat(1024 * 1024), outcome: 'accepted' });
    metrics.webhooks.inc({ event: 'room_exploded', outcome: 'accepted' });
    metrics.webhooks.inc({ event: 'room_started', outcome: 'accepted' });
    const text = metrics.registry.render();
    assert.ok(text.length < before + 1000, `${text.length - before} bytes more`);
    const families = parsePrometheusText(text);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'unknown', outcome: 'accepted' }), 2);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'room_started', outcome: 'accepted' }), 1);
  });

  test('every LiveKit event name and none are known', () => {
    const metrics = daemonMetrics();
    for (const event of [...Object.keys(LIVEKIT_EVENT_TYPES), 'none']) metrics.webhooks.inc({ event, outcome: 'rejected' });
    const families = parsePrometheusText(metrics.registry.render());
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'unknown', outcome: 'rejected' }), undefined);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'agent_job_ended', outcome: 'rejected' }), 1);
  });

  test('after thousands of hostile values, a first output_error still gets its own series (room kept for the product)', () => {
    const metrics = daemonMetrics();
    for (let index = 0; index < 5 * MAX_SERIES; index++) {
      metrics.webhooks.inc({ event: `forged_${index}`, outcome: 'accepted' });
      metrics.outputErrors.inc({ code: `E_FAKE_${index}` });
      metrics.rejections.inc({ reason: `reason_${index}` });
      metrics.requestDuration.observe(0.001, { outcome: `outcome_${index}` });
    }
    metrics.webhooks.inc({ event: 'participant_left', outcome: 'output_error' });
    metrics.outputErrors.inc({ code: 'ENOSPC' });
    const families = parsePrometheusText(metrics.registry.render());
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'participant_left', outcome: 'output_error' }), 1);
    assert.equal(sampleValue(families, 'control_plane_webhooks_total', { event: 'other', outcome: 'other' }), undefined, 'nothing folded into the overflow');
    assert.equal(sampleValue(families, 'control_plane_output_errors_total', { code: 'ENOSPC' }), 1);
    assert.equal(sampleValue(families, 'control_plane_output_errors_total', { code: 'other' }), 5 * MAX_SERIES);
    assert.equal(sampleValue(families, 'control_plane_rejections_total', { reason: 'other' }), 5 * MAX_SERIES);
    for (const family of families.values()) assert.ok(family.samples.length < 100, `${family.name}: ${family.samples.length} samples`);
  });

  test('reasons are the declared ones: init() by the server declares them', () => {
    const metrics = daemonMetrics();
    metrics.rejections.init({ reason: 'bad_signature' });
    metrics.rejections.inc({ reason: 'bad_signature' });
    metrics.rejectedLinesSuppressed.inc({ reason: 'bad_signature' });
    metrics.rejectedLinesSuppressed.inc({ reason: 'not_declared' });
    assert.equal(metrics.rejections.get({ reason: 'bad_signature' }), 1);
    assert.equal(metrics.rejectedLinesSuppressed.get({ reason: 'bad_signature' }), 1, 'the same list as rejections');
    assert.equal(metrics.rejectedLinesSuppressed.get({ reason: 'other' }), 1);
  });

  test('output error codes: the errno names a sink reports, others as other', () => {
    const metrics = daemonMetrics();
    for (const code of ['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EPIPE', 'EAGAIN', 'EACCES', 'EROFS', 'ENOENT', 'ENOTDIR', 'ELOOP', 'EBADF']) metrics.outputErrors.inc({ code });
    metrics.outputErrors.inc({ code: 'ERR_SOMETHING_NEW' });
    const families = parsePrometheusText(metrics.registry.render());
    assert.equal(sampleValue(families, 'control_plane_output_errors_total', { code: 'ELOOP' }), 1);
    assert.equal(sampleValue(families, 'control_plane_output_errors_total', { code: 'other' }), 1);
  });
});

test('a histogram counts each observation in its bucket and renders cumulative buckets ending at +Inf', () => {
  const histogram = new Histogram('demo_seconds', 'x', [0.1, 1, 10], ['outcome']);
  for (const value of [0.05, 0.1, 0.5, 2, 20, 20]) histogram.observe(value, { outcome: 'accepted' });
  histogram.observe(NaN, { outcome: 'accepted' });
  const snapshot = histogram.get({ outcome: 'accepted' })!;
  assert.deepEqual(snapshot.buckets, [[0.1, 2], [1, 3], [10, 4], [Infinity, 6]]);
  assert.equal(snapshot.count, 6, 'NaN is ignored');
  assert.equal(snapshot.sum, 42.65);
  const families = parsePrometheusText(histogram.render());
  assert.equal(families.get('demo_seconds')!.type, 'histogram');
  assert.equal(sampleValue(families, 'demo_seconds_bucket', { outcome: 'accepted', le: '1' }), 3);
  assert.equal(sampleValue(families, 'demo_seconds_bucket', { outcome: 'accepted', le: '+Inf' }), 6);
  assert.equal(sampleValue(families, 'demo_seconds_count', { outcome: 'accepted' }), 6);
  assert.throws(() => new Histogram('demo_seconds', 'x', [1, 1]), /increasing/);
});

test('histogram buckets stay consistent for any observations', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -1, max: 1000, noNaN: true }), { maxLength: 50 }), (values) => {
      const histogram = new Histogram('demo_seconds', 'x', [0.001, 0.01, 0.1, 1, 10, 100]);
      for (const value of values) histogram.observe(value);
      if (values.length === 0) return;
      const snapshot = histogram.get()!;
      for (const [bound, count] of snapshot.buckets) assert.equal(count, values.filter((value) => value <= bound).length);
      parsePrometheusText(histogram.render());
    }),
    { numRuns: 300 },
  );
});

test('values use the Prometheus spelling of infinities and NaN', () => {
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue(1e-7), '1e-7');
  const gauge = new Gauge('demo_value', 'x');
  gauge.set(Infinity);
  assert.equal(sampleValue(parsePrometheusText(gauge.render()), 'demo_value'), Infinity);
});

test('a registry refuses the same name twice', () => {
  const registry = new Registry();
  registry.register(new Gauge('demo_value', 'x'));
  assert.throws(() => registry.register(new SampledMetric('demo_value', 'x', 'gauge', () => 1)), /twice/);
});

test('DaemonMetrics renders a valid exposition whose names follow the conventions', () => {
  const metrics = daemonMetrics();
  metrics.webhooks.inc({ event: 'room_started', outcome: 'accepted' });
  metrics.rejections.inc({ reason: 'bad_signature' });
  metrics.requestDuration.observe(0.002, { outcome: 'accepted' });
  metrics.deliveryDelay.observe(3);
  const families = parsePrometheusText(metrics.registry.render());
  for (const family of families.values()) {
    assert.ok(family.help && family.help.length > 5, `${family.name} has a HELP text`);
    assert.match(family.name, /^(control_plane|process|nodejs)_[a-z0-9_]+$/);
    if (family.type === 'counter') assert.match(family.name, /_total$/, `${family.name}: counters end in _total`);
    else assert.doesNotMatch(family.name, /_total$/, `${family.name}: only counters end in _total`);
    if (/seconds|delay|duration|latency/.test(family.name)) assert.match(family.name, /_seconds(_total)?$/, `${family.name}: time in seconds`);
    if (/memory|heap|bytes/.test(family.name)) assert.match(family.name, /_bytes$/, `${family.name}: sizes in bytes`);
  }
  assert.equal(sampleValue(families, 'control_plane_open_sessions'), 3);
  assert.equal(sampleValue(families, 'control_plane_open_calls'), 1);
  assert.equal(sampleValue(families, 'control_plane_log_rotations_total'), 7);
  assert.equal(families.get('control_plane_log_rotations_total')!.type, 'counter');
  assert.equal(sampleValue(families, 'control_plane_output_healthy'), 1);
  assert.equal(sampleValue(families, 'control_plane_key_reloads_total', { result: 'failure' }), 0);
  assert.equal(sampleValue(families, 'control_plane_sessions_evicted_total'), 0);
  const rss = sampleValue(families, 'process_resident_memory_bytes')!;
  assert.ok(rss > 10 * 1024 * 1024 && rss < 4 * 1024 ** 3, `rss ${rss}`);
  const started = sampleValue(families, 'process_start_time_seconds')!;
  assert.ok(Math.abs(started - (Date.now() / 1000 - process.uptime())) < 2, 'start time is the process start');
  assert.ok(sampleValue(families, 'process_cpu_seconds_total')! > 0);
  if (process.platform === 'linux') assert.ok(sampleValue(families, 'process_open_fds')! > 2);
});

test('DaemonMetrics reads its sources at scrape time', () => {
  let healthy = true;
  let evicted = 0;
  let symlinks = 0;
  const metrics = daemonMetrics({ outputHealthy: () => healthy, store: () => ({ ...COUNTS, evictedSessions: evicted }), outputSymlinksRefused: () => symlinks });
  healthy = false;
  evicted = 4;
  symlinks = 2;
  const families = parsePrometheusText(metrics.registry.render());
  assert.equal(sampleValue(families, 'control_plane_output_healthy'), 0);
  assert.equal(sampleValue(families, 'control_plane_sessions_evicted_total'), 4);
  assert.equal(sampleValue(families, 'control_plane_output_symlinks_refused_total'), 2);
  assert.equal(families.get('control_plane_output_symlinks_refused_total')!.type, 'counter');
});

test('the refused-symlink counter is exported at 0 when the output is stdout', () => {
  assert.equal(sampleValue(parsePrometheusText(daemonMetrics().registry.render()), 'control_plane_output_symlinks_refused_total'), 0);
});

test('the test parser is strict: it rejects what Prometheus would reject', () => {
  const bad: Array<[string, RegExp]> = [
    ['a_total 1', /newline/],
    ['a_total{x="1"} 1\na_total{x="1"} 2\n', /duplicate series/],
    ['# TYPE a_total counter\na_total -1\n', /counter/],
    ['a 1\n# TYPE a gauge\n', /after its samples/],
    ['a 1\nb 1\na{x="y"} 2\n', /reopened|not contiguous/],
    ['a{x="\\t"} 1\n', /bad escape/],
    ['a{x="1",x="2"} 1\n', /duplicate label/],
    ['a 1.2.3\n', /not a float/],
    ['a Infinity\n', /not a float/],
    ['\n', /empty line/],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not cumulative/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /!= _count/],
  ];
  for (const [text, error] of bad) assert.throws(() => parsePrometheusText(text), error, JSON.stringify(text));
  const good = parsePrometheusText('# HELP a_total Things \\\\ done.\\nSecond line.\n# TYPE a_total counter\na_total{x="q\\"\\n"} 2 1700000000000\n');
  assert.equal(good.get('a_total')!.help, 'Things \\ done.\nSecond line.');
  assert.equal(sampleValue(good, 'a_total', { x: 'q"\n' }), 2);
});

test('observeWrittenLines counts ended calls by direction and outcome, their duration and talk time, and provider events', () => {
  const metrics = daemonMetrics();
  const families = () => parsePrometheusText(metrics.registry.render());
  const before = families();
  assert.equal(sampleValue(before, 'control_plane_calls_total', { direction: 'outbound', outcome: 'failed' }), 0, 'every direction and outcome is exported at 0');
  assert.equal(sampleValue(before, 'control_plane_provider_events_total', { provider: 'sip', reason: 'sip_trunk_failure' }), 0);
  metrics.observeWrittenLines([
    { level: 'info', event_type: 'webhook.received', session_id: null },
    { level: 'info', event_type: 'call.started', session_id: 'RM_a', direction: 'inbound' },
    { level: 'info', event_type: 'call.ended', session_id: 'RM_a', direction: 'inbound', outcome: 'completed', answered: true, duration_ms: 64_400, talk_ms: 61_000 },
    { level: 'info', event_type: 'call.ended', session_id: 'RM_b', direction: 'outbound', outcome: 'completed', answered: true, duration_ms: 58_000 },
    { level: 'info', event_type: 'call.ended', session_id: 'RM_c', direction: 'outbound', outcome: 'failed', answered: false, duration_ms: 1_000 },
    { level: 'warn', event_type: 'provider.event', session_id: 'RM_c', provider: 'sip', reason: 'sip_trunk_failure' },
  ]);
  const after = families();
  assert.equal(sampleValue(after, 'control_plane_calls_total', { direction: 'inbound', outcome: 'completed' }), 1);
  assert.equal(sampleValue(after, 'control_plane_calls_total', { direction: 'outbound', outcome: 'completed' }), 1);
  assert.equal(sampleValue(after, 'control_plane_calls_total', { direction: 'outbound', outcome: 'failed' }), 1);
  assert.equal(sampleValue(after, 'control_plane_call_duration_seconds_count', { direction: 'outbound' }), 2);
  assert.equal(sampleValue(after, 'control_plane_call_duration_seconds_sum', { direction: 'outbound' }), 59);
  assert.equal(sampleValue(after, 'control_plane_call_duration_seconds_sum', { direction: 'inbound' }), 64.4);
  // Talk time only where the answer time is known.
  assert.equal(sampleValue(after, 'control_plane_call_talk_time_seconds_count', { direction: 'inbound' }), 1);
  assert.equal(sampleValue(after, 'control_plane_call_talk_time_seconds_sum', { direction: 'inbound' }), 61);
  assert.equal(sampleValue(after, 'control_plane_call_talk_time_seconds_count', { direction: 'outbound' }), 0);
  assert.equal(sampleValue(after, 'control_plane_provider_events_total', { provider: 'sip', reason: 'sip_trunk_failure' }), 1);
});

test('build info, event-loop lag and the file descriptor limit are exported', async () => {
  const metrics = daemonMetrics({ version: '9.8.7' });
  try {
    // Block the loop for a while, so the lag sampler sees it.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const blockedUntil = Date.now() + 60;
    while (Date.now() < blockedUntil);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const families = parsePrometheusText(metrics.registry.render());
    assert.equal(sampleValue(families, 'control_plane_build_info', { version: '9.8.7', node: process.version }), 1);
    const max = sampleValue(families, 'nodejs_eventloop_lag_max_seconds')!;
    assert.ok(max >= 0.04, `the 60 ms block shows as lag (max ${max} s)`);
    assert.ok(sampleValue(families, 'nodejs_eventloop_lag_p99_seconds')! <= max);
    assert.ok(sampleValue(families, 'nodejs_eventloop_lag_p50_seconds')! >= 0);
    // Since the previous scrape: the block is not reported twice.
    const again = parsePrometheusText(metrics.registry.render());
    assert.ok(sampleValue(again, 'nodejs_eventloop_lag_max_seconds')! < 0.04);
    const limit = sampleValue(families, 'process_max_fds')!;
    assert.ok(limit > 0 && limit >= sampleValue(families, 'process_open_fds')!);
  } finally {
    metrics.close();
  }
});

test('maxFileDescriptors reads the soft limit from /proc/self/limits', () => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n';
  assert.equal(maxFileDescriptors(() => limits), 1024);
  assert.equal(maxFileDescriptors(() => limits.replace('1024   ', 'unlimited')), Infinity);
  assert.equal(maxFileDescriptors(() => 'nothing'), undefined);
  assert.equal(maxFileDescriptors(() => { throw new Error('ENOENT'); }), undefined);
});
