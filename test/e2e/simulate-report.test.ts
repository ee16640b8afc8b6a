// control-plane simulate against the running daemon, and control-plane
// report over what the daemon wrote (its rotated, compressed files and its
// current one, or the same lines through standard input as journald gives
// them), both as the real program.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { SCENARIOS } from '../../src/livekit/scenarios.ts';
import { inWritingOrder } from '../../src/report/read.ts';
import { type Daemon, type ObsLine, programCommand, runProgram, startDaemon, testEnv } from '../helpers/daemon.ts';

const EXPECTED = SCENARIOS.flatMap((scenario) => scenario.build({ startS: 1_796_126_400 }).calls);
const TRUNK_FAILURES = EXPECTED.filter((call) => call.trunkFailure).length;
const expectedCount = (direction: string, outcome: string) => EXPECTED.filter((call) => call.direction === direction && call.outcome === outcome).length;

describe('simulate, then report', () => {
  let directory: string;
  let daemon: Daemon;
  let files: string[];
  let simulated: { code: number | null; stdout: string; stderr: string };

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'cp-report-'));
    const logFile = join(directory, 'control-plane.jsonl');
    daemon = await startDaemon({ args: ['--log-file', logFile, '--log-max-size', '16K', '--log-compress'], logFile });
    simulated = await runProgram(['simulate', '--url', `${daemon.url}/webhook`, '--speed', '2000', 'all']);
    await daemon.stop();
    // The order a shell glob gives (which is not the order of writing when two rotations fall in one second).
    files = readdirSync(directory)
      .filter((name) => name.startsWith('control-plane.jsonl'))
      .sort()
      .map((name) => join(directory, name));
  });
  after(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  const allLines = (): ObsLine[] =>
    inWritingOrder(files).flatMap((file) => {
      const bytes = readFileSync(file);
      return (file.endsWith('.gz') ? gunzipSync(bytes) : bytes)
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as ObsLine);
    });

  test('simulate sends every scenario, each room finished, and the daemon writes call.started → call.answered → call.ended for it', () => {
    assert.equal(simulated.code, 0, simulated.stderr);
    assert.equal(simulated.stdout.match(/expect call\.ended/g)?.length, EXPECTED.length);
    assert.ok(files.some((file) => file.endsWith('.gz')), 'the output rotated into compressed files');
    const lines = allLines();
    assert.deepEqual(
      lines.map((line) => line.seq),
      lines.map((_, index) => index + 1),
      'read in the order of writing: seq has no gap and never goes back',
    );
    const rooms = new Set(lines.filter((line) => line.event_type === 'livekit.room.created').map((line) => String(line.room_name)));
    assert.equal(rooms.size, SCENARIOS.length);
    for (const room of rooms) assert.match(room, /^simulated-[a-z-]+-[0-9a-f]{6}$/);
    for (const scenario of SCENARIOS) {
      const room = [...rooms].find((name) => name.startsWith(`simulated-${scenario.name}-`))!;
      const calls = lines.filter((line) => line.room_name === room && line.event_type.startsWith('call.'));
      const expected = scenario.build({ startS: 0 }).calls[0]!;
      const types = calls.map((line) => line.event_type);
      assert.equal(types[0], 'call.started', scenario.name);
      assert.equal(types.at(-1), 'call.ended', scenario.name);
      if (expected.answered) assert.deepEqual(types, ['call.started', 'call.answered', 'call.ended'], scenario.name);
      const ended = calls.at(-1)!;
      assert.equal(ended.outcome, expected.outcome, scenario.name);
      assert.equal(ended.duration_ms, expected.durationMs, `${scenario.name}: durations are LiveKit's, not compressed`);
      assert.equal(ended.talk_ms, expected.talkMs, scenario.name);
      const session = lines.filter((line) => line.room_name === room && line.event_type === 'session.state_changed').at(-1)!;
      assert.equal(session.to_state, 'ended', `${scenario.name}: no simulated session stays open`);
    }
  });

  test('report --json over the rotated .gz files and the current one: the calls the scenarios promise', async () => {
    const { code, stdout, stderr } = await runProgram(['report', '--json', ...files]);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as {
      calls: { total: number; by_direction: Record<string, { outcomes: Record<string, number> }> };
      trunk_failures: { total: number };
      sessions: { created: number; ended: number };
      lines: { skipped: number; repeats: number };
      talk_time: { count: number; p50_seconds: number };
    };
    assert.equal(report.calls.total, EXPECTED.length);
    for (const direction of ['inbound', 'outbound']) {
      for (const outcome of ['completed', 'no_answer', 'rejected', 'failed', 'cancelled']) assert.equal(report.calls.by_direction[direction]!.outcomes[outcome], expectedCount(direction, outcome), `${direction} ${outcome}`);
    }
    assert.equal(report.trunk_failures.total, TRUNK_FAILURES);
    assert.deepEqual([report.sessions.created, report.sessions.ended], [SCENARIOS.length, SCENARIOS.length]);
    assert.equal(report.lines.skipped, 0);
    assert.equal(report.talk_time.count, EXPECTED.filter((call) => call.talkMs !== undefined).length);
  });

  test('report --calls: one line per call with direction, numbers, outcome, duration and talk time, then the table', async () => {
    const { code, stdout } = await runProgram(['report', '--calls', ...files]);
    assert.equal(code, 0);
    const rows = stdout.split('\n').filter((line) => /^\d{4}-\d\d-\d\dT/.test(line));
    assert.equal(rows.length, EXPECTED.length);
    assert.match(stdout, /^start +direction +from +to +outcome +duration +talk$/m);
    assert.ok(rows.some((row) => /inbound +\+14155550123 +\+31201234589 +completed +1m04s +1m01s/.test(row)), rows.join('\n'));
    assert.ok(rows.some((row) => /outbound +\+31201234589 +\+14155550123 +rejected +/.test(row)));
    assert.match(stdout, new RegExp(`^all +${EXPECTED.length} `, 'm'));
    assert.match(stdout, new RegExp(`trunk failures: ${TRUNK_FAILURES} `));
  });

  test('report from standard input as journald gives it: priority prefixes, repeats from a retry, foreign lines', async () => {
    const text = inWritingOrder(files)
      .map((file) => (file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString('utf8'))
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .flatMap((line, index) => {
        const out = [`<6>${line}`];
        if (index % 4 === 0) out.push(line.replace(/"seq":\d+/, '"seq":1'));
        return out;
      });
    text.splice(3, 0, '-- Boot 7d1c --', 'Dec 01 12:00:00 host systemd[1]: Started control-plane.service.');
    const { code, stdout, stderr } = await runProgram(['report', '--json'], testEnv(), `${text.join('\n')}\n`);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as { calls: { total: number }; trunk_failures: { total: number }; lines: { skipped: number; repeats: number } };
    assert.equal(report.calls.total, EXPECTED.length);
    assert.equal(report.trunk_failures.total, TRUNK_FAILURES);
    assert.equal(report.lines.skipped, 2);
    assert.ok(report.lines.repeats > 0);
  });

  test('report with a file that does not exist: exit 2, naming it', async () => {
    const { code, stderr } = await runProgram(['report', join(directory, 'nope.jsonl')]);
    assert.equal(code, 2);
    assert.match(stderr, /nope\.jsonl.*ENOENT/);
  });
});

describe('simulate stopped early', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  test('Ctrl-C during a call: the room is finished anyway, the call ends once, and simulate exits 130', async () => {
    const [command, leading] = programCommand();
    const child = spawn(command, [...leading, 'simulate', '--url', `${daemon.url}/webhook`, '--speed', '1', 'outbound-answered'], { env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const started = await daemon.waitForLine((line) => line.event_type === 'call.started' && String(line.room_name).startsWith('simulated-outbound-answered-'), 20_000);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.match(stdout, /room_finished \(stopped early\) -> 200/);
    const ended = await daemon.waitForLine((line) => line.event_type === 'call.ended' && line.participant_sid === started.participant_sid);
    assert.equal(ended.reason, 'room_finished');
    await daemon.waitForLine((line) => line.event_type === 'session.state_changed' && line.session_id === started.session_id && line.to_state === 'ended');
  });
});
