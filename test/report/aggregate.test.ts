// control-plane report's aggregation: real OBS-00 lines (the scenarios of
// src/livekit/scenarios.ts through the pipeline and the line encoder) in,
// the summary and the per-call rows out; repeats, junk and journald
// prefixes do not change what is counted.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeLine, type ObsEvent } from '../../src/obs/schema.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { planOne } from '../helpers/pipeline-driver.ts';
import { SCENARIOS, type ScenarioRun } from '../../src/livekit/scenarios.ts';
import { type CallRow, parseObsLine, ReportAggregator } from '../../src/report/aggregate.ts';
import { renderText, summaryJson } from '../../src/report/render.ts';
import { decode, T0 } from '../obs/sessions.helpers.ts';

const PLAYED: readonly ScenarioRun[] = SCENARIOS.map((scenario, index) => scenario.build({ startS: T0 + index * 600 }));

/** The daemon's output for these webhooks, one text line per OBS-00 line (no newline). */
function outputOf(runs: readonly ScenarioRun[]): string[] {
  const store = new MemoryStore();
  const lines: string[] = [];
  let seq = 0;
  for (const run of runs) {
    for (const webhook of run.webhooks) {
      const nowMs = Number(webhook.createdAt) * 1000 + 150;
      const outcome = planOne(decode(webhook), nowMs, store);
      for (const event of outcome.events) lines.push(encodeLine(event, ++seq, nowMs).trimEnd());
      outcome.commit();
    }
  }
  return lines;
}

function summarise(lines: readonly string[], onCall?: (row: CallRow) => void) {
  const aggregator = new ReportAggregator(onCall);
  for (const line of lines) aggregator.line(line);
  return aggregator.finish();
}

const ALL = outputOf(PLAYED);
const CALLS = PLAYED.flatMap((run) => run.calls);
const TRUNK_FAILURES = CALLS.filter((call) => call.trunkFailure).length;

describe('report aggregation', () => {
  test('calls by direction and outcome, answer rate, trunk failures, end reasons and sessions as the scenarios say', () => {
    const summary = summarise(ALL);
    for (const direction of ['inbound', 'outbound'] as const) {
      const own = CALLS.filter((call) => call.direction === direction);
      assert.equal(summary.calls.byDirection[direction].total, own.length);
      assert.equal(summary.calls.byDirection[direction].answered, own.filter((call) => call.answered).length);
      for (const outcome of ['completed', 'no_answer', 'rejected', 'failed', 'cancelled'] as const) {
        assert.equal(summary.calls.byDirection[direction].outcomes[outcome], own.filter((call) => call.outcome === outcome).length, `${direction} ${outcome}`);
      }
    }
    assert.equal(summary.calls.total, CALLS.length);
    assert.equal(summary.calls.answerRate, CALLS.filter((call) => call.answered).length / CALLS.length);
    assert.equal(summary.calls.stillOpen, 0);
    assert.equal(summary.trunkFailures.total, TRUNK_FAILURES);
    assert.equal(summary.talkTime.count, CALLS.filter((call) => call.talkMs !== undefined).length);
    assert.equal(summary.endReasons[0]!.reason, 'client_initiated');
    const connectedLines = ALL.filter((line) => line.includes('"to_state":"connected"')).length;
    assert.ok(connectedLines >= 4);
    assert.deepEqual(summary.sessions, { created: PLAYED.length, connected: connectedLines, ended: PLAYED.length });
    assert.equal(summary.lines.read, ALL.length);
    assert.equal(summary.lines.skipped, 0);
    assert.equal(summary.lines.repeats, 0);
    assert.equal(summary.webhooks.processed, PLAYED.reduce((sum, run) => sum + run.webhooks.length, 0));
    assert.equal(summary.span.first! < summary.span.last!, true);
  });

  test('repeated lines (same webhook_id, another seq, from another instance) count once; junk and journald prefixes are skipped or stripped', () => {
    const reference = summarise(ALL);
    const noisy: string[] = ['-- Boot 3f2a --', '', 'not json {', '{"event_type":"call.ended","component":"someone_else","ts":"2026-12-01T12:00:00.000Z"}', '[1,2]'];
    ALL.forEach((line, index) => {
      noisy.push(index % 3 === 0 ? `<6>${line}` : line);
      // Every call line is written again later, as a crash before the commit makes the daemon repeat it on LiveKit's retry.
      if (/"event_type":"(call|session|provider)\./.test(line)) noisy.push(line.replace(/"seq":\d+/, '"seq":999999').replace('"session_id"', '"instance":"vm-2","session_id"'));
    });
    const summary = summarise(noisy);
    assert.deepEqual(summary.calls, reference.calls);
    assert.deepEqual(summary.trunkFailures, reference.trunkFailures);
    assert.deepEqual(summary.sessions, reference.sessions);
    assert.deepEqual(summary.talkTime, reference.talkTime);
    assert.equal(summary.lines.skipped, 5);
    assert.ok(summary.lines.repeats > CALLS.length * 2, `${summary.lines.repeats} repeats`);
    assert.deepEqual(summary.instances, ['vm-2']);
  });

  test('lines of one webhook that share a type are not repeats of each other (created, then connected)', () => {
    const line = (toState: string, seq: number) =>
      JSON.stringify({ ts: '2026-12-01T12:00:00.000Z', seq, level: 'info', component: 'control_plane', event_type: 'session.state_changed', session_id: 'RM_x', webhook_id: 'EV_one', to_state: toState });
    const summary = summarise([line('created', 1), line('connected', 2), line('connected', 3)]);
    assert.deepEqual(summary.sessions, { created: 1, connected: 1, ended: 0 });
    assert.equal(summary.lines.repeats, 1);
  });

  test('talk time mean, p50 and p95 (nearest rank), to the second', () => {
    const lines = Array.from({ length: 100 }, (_, index) =>
      JSON.stringify({ ts: '2026-12-01T12:00:00.000Z', seq: index, level: 'info', component: 'control_plane', event_type: 'call.ended', session_id: `RM_${index}`, webhook_id: `EV_${index}`, participant_sid: 'PA_1', direction: 'inbound', outcome: 'completed', answered: true, duration_ms: (index + 1) * 1000 + 500, talk_ms: (index + 1) * 1000 }),
    );
    const summary = summarise(lines);
    assert.deepEqual(summary.talkTime, { count: 100, meanSeconds: 50.5, p50Seconds: 50, p95Seconds: 95 });
    assert.equal(summary.duration.p50Seconds, 50);
  });

  test('beyond an hour the distribution keeps 1 % buckets', () => {
    const summary = summarise([
      JSON.stringify({ ts: '2026-12-01T12:00:00.000Z', seq: 1, component: 'control_plane', event_type: 'call.ended', session_id: 'RM_1', direction: 'outbound', outcome: 'completed', answered: true, duration_ms: 7_300_000, talk_ms: 7_200_000 }),
    ]);
    assert.ok(Math.abs(summary.talkTime.p50Seconds! - 7200) / 7200 < 0.01, String(summary.talkTime.p50Seconds));
    assert.equal(summary.talkTime.meanSeconds, 7200);
  });

  test('--calls rows: one per call when it ends, with its start time, and the calls still open at the end', () => {
    const rows: CallRow[] = [];
    const unfinished = outputOf(PLAYED.slice(0, 1)).filter((line) => !/"event_type":"call.ended"/.test(line));
    const summary = summarise([...ALL, ...unfinished.map((line) => line.replace(/"session_id":"RM_/g, '"session_id":"RM_other').replace(/"webhook_id":"EV_/g, '"webhook_id":"EV_other'))], (row) => rows.push(row));
    assert.equal(rows.length, CALLS.length + 1);
    const first = rows[0]!;
    const startLine = JSON.parse(ALL.find((line) => line.includes('"call.started"'))!) as { ts: string; from: string; to: string };
    assert.equal(first.startedAt, startLine.ts);
    assert.equal(first.from, startLine.from);
    assert.equal(first.outcome, 'completed');
    assert.equal(rows.at(-1)!.outcome, 'open');
    assert.equal(summary.calls.stillOpen, 1);
  });

  test('a call.ended read before its call.started (inputs given out of order) leaves no call open', () => {
    const lines = outputOf(PLAYED.slice(0, 1));
    const summary = summarise([...lines.filter((line) => !line.includes('"call.started"')), ...lines.filter((line) => line.includes('"call.started"'))]);
    assert.equal(summary.calls.total, 1);
    assert.equal(summary.calls.stillOpen, 0);
  });

  test('the rendered table and JSON carry the numbers', () => {
    const summary = summarise(ALL);
    const text = renderText(summary);
    assert.match(text, /^inbound +\d+ +\d+/m);
    assert.match(text, new RegExp(`trunk failures: ${TRUNK_FAILURES} `));
    assert.match(text, /talk time \(\d+ answered calls with a known answer time\): mean \dm\d\ds, p50 /);
    const json = summaryJson(summary) as { calls: { by_direction: { outbound: { outcomes: Record<string, number> } } }; trunk_failures: { total: number } };
    assert.equal(json.trunk_failures.total, TRUNK_FAILURES);
    assert.equal(json.calls.by_direction.outbound.outcomes.rejected, 1);
  });

  test('parseObsLine takes OBS-00 lines only', () => {
    const line: ObsEvent = { level: 'info', event_type: 'control_plane.started', session_id: null };
    const text = encodeLine(line, 1, 0).trimEnd();
    assert.equal(parseObsLine(text)?.event_type, 'control_plane.started');
    assert.equal(parseObsLine(`<6>${text}`)?.event_type, 'control_plane.started');
    assert.equal(parseObsLine(`${text}\r`)?.event_type, 'control_plane.started');
    for (const junk of ['', 'hello', '{"ts":"x","event_type":"a"}', '{"component":"control_plane","event_type":"a"}', 'null', text.slice(0, -1)]) assert.equal(parseObsLine(junk), undefined, junk);
  });
});
