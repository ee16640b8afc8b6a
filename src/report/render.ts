// `control-plane report`: the summary as a table for people, or as JSON
// for machines, and the one-line-per-call listing of --calls. Pure.

import { CALL_OUTCOMES } from '../obs/transitions.ts';
import { type CallRow, DIRECTIONS, type Distribution, type ReportSummary } from './aggregate.ts';

/** `45s`, `1m04s`, `2h03m`; `-` when unknown. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

const percent = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(1)}%`);
const count = (value: number): string => value.toLocaleString('en-US');

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd()).join('\n');
}

function distribution(name: string, what: string, value: Distribution): string {
  if (value.count === 0) return `${name}: no ${what}`;
  return `${name} (${count(value.count)} ${value.count === 1 ? what.replace('calls', 'call') : what}): mean ${formatSeconds(value.meanSeconds)}, p50 ${formatSeconds(value.p50Seconds)}, p95 ${formatSeconds(value.p95Seconds)}`;
}

/** The summary as people read it. */
export function renderText(summary: ReportSummary): string {
  const out: string[] = [];
  const span = summary.span.first === null ? 'no OBS-00 lines' : `${summary.span.first} → ${summary.span.last} (${formatSeconds(summary.span.seconds)})`;
  out.push(`control-plane report: ${span}`);
  const lines = summary.lines;
  out.push(
    `lines: ${count(lines.read)} read, ${count(lines.obs00)} OBS-00, ${count(lines.skipped)} skipped (not OBS-00), ${count(lines.repeats)} repeated (same webhook_id) counted once`,
  );
  out.push(`webhooks: ${count(summary.webhooks.processed)} processed, ${count(summary.webhooks.duplicates)} duplicates, ${count(summary.webhooks.rejected)} rejected`);
  if (summary.instances.length > 0) out.push(`instances: ${summary.instances.join(', ')}`);
  out.push('');

  const header = ['calls', 'total', ...CALL_OUTCOMES, 'answered', 'answer rate'];
  const rows: string[][] = [header];
  for (const direction of DIRECTIONS) {
    const own = summary.calls.byDirection[direction];
    rows.push([direction, count(own.total), ...CALL_OUTCOMES.map((outcome) => count(own.outcomes[outcome])), count(own.answered), percent(own.answerRate)]);
  }
  const all = CALL_OUTCOMES.map((outcome) => count(DIRECTIONS.reduce((sum, direction) => sum + summary.calls.byDirection[direction].outcomes[outcome], 0)));
  rows.push(['all', count(summary.calls.total), ...all, count(summary.calls.answered), percent(summary.calls.answerRate)]);
  out.push(table(rows));
  if (summary.calls.stillOpen > 0) out.push(`${count(summary.calls.stillOpen)} call(s) started and not ended by the end of the input`);
  out.push('');

  out.push(distribution('talk time', 'answered calls with a known answer time', summary.talkTime));
  out.push(distribution('call duration', 'calls', summary.duration));
  out.push(`end reasons: ${summary.endReasons.length === 0 ? '-' : summary.endReasons.slice(0, 5).map((entry) => `${entry.reason} ${count(entry.calls)}`).join(', ')}`);
  const failures = summary.trunkFailures;
  out.push(
    `trunk failures: ${count(failures.total)}${failures.total === 0 ? '' : ` (${failures.byTrunk.slice(0, 5).map((entry) => `${entry.trunkId} ${count(entry.failures)}`).join(', ')})`}`,
  );
  out.push(`provider events: ${summary.providerEvents.length === 0 ? '-' : summary.providerEvents.map((entry) => `${entry.provider}/${entry.reason} ${count(entry.events)}`).join(', ')}`);
  const sessions = summary.sessions;
  out.push(`sessions: ${count(sessions.created)} created, ${count(sessions.connected)} connected, ${count(sessions.ended)} ended`);
  return `${out.join('\n')}\n`;
}

/** The summary for machines: snake_case like the lines themselves. */
export function summaryJson(summary: ReportSummary): Record<string, unknown> {
  const distributionJson = (value: Distribution) => ({ count: value.count, mean_seconds: value.meanSeconds, p50_seconds: value.p50Seconds, p95_seconds: value.p95Seconds });
  return {
    span: { first_ts: summary.span.first, last_ts: summary.span.last, seconds: summary.span.seconds },
    lines: summary.lines,
    webhooks: summary.webhooks,
    calls: {
      total: summary.calls.total,
      answered: summary.calls.answered,
      answer_rate: summary.calls.answerRate,
      still_open: summary.calls.stillOpen,
      by_direction: Object.fromEntries(
        DIRECTIONS.map((direction) => {
          const own = summary.calls.byDirection[direction];
          return [direction, { total: own.total, answered: own.answered, answer_rate: own.answerRate, outcomes: own.outcomes }];
        }),
      ),
    },
    talk_time: distributionJson(summary.talkTime),
    duration: distributionJson(summary.duration),
    end_reasons: summary.endReasons,
    trunk_failures: { total: summary.trunkFailures.total, by_trunk: summary.trunkFailures.byTrunk.map((entry) => ({ trunk_id: entry.trunkId, failures: entry.failures })) },
    provider_events: summary.providerEvents,
    sessions: summary.sessions,
    instances: summary.instances,
  };
}

const CALL_COLUMNS: ReadonlyArray<readonly [string, number]> = [
  ['start', 24],
  ['direction', 9],
  ['from', 16],
  ['to', 16],
  ['outcome', 9],
  ['duration', 8],
  ['talk', 8],
];

function callCells(row: CallRow): string[] {
  return [row.startedAt ?? '-', row.direction, row.from ?? '-', row.to ?? '-', row.outcome, formatSeconds(row.durationMs === undefined ? undefined : row.durationMs / 1000), formatSeconds(row.talkMs === undefined ? undefined : row.talkMs / 1000)];
}

const pad = (cells: readonly string[]): string => cells.map((cell, index) => cell.padEnd(CALL_COLUMNS[index]![1])).join('  ').trimEnd();

/** The header of the --calls listing. */
export function callHeader(): string {
  return `${pad(CALL_COLUMNS.map(([name]) => name))}\n`;
}

/** One call, one line: start time, direction, from, to, outcome, duration, talk time. */
export function callLine(row: CallRow): string {
  return `${pad(callCells(row))}\n`;
}

/** One call as a JSON line (--calls --json). */
export function callJson(row: CallRow): string {
  return `${JSON.stringify({
    kind: 'call',
    started_at: row.startedAt ?? null,
    ended_at: row.endedAt ?? null,
    direction: row.direction,
    from: row.from ?? null,
    to: row.to ?? null,
    outcome: row.outcome,
    answered: row.answered ?? null,
    reason: row.reason ?? null,
    duration_ms: row.durationMs ?? null,
    talk_ms: row.talkMs ?? null,
    session_id: row.sessionId,
    participant_sid: row.participantSid ?? null,
  })}\n`;
}
