// Restarts with --state-file: a call in progress when the daemon stops
// still ends exactly once afterwards, with its direction and LiveKit
// duration; redelivered ids stay duplicates, also after kill -9 at any
// moment (every answered change is in the journal before the answer); a
// corrupt state file is moved aside with a warning line and an empty start,
// never a crash.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { encodeBody, type JsonObject } from '../../src/livekit/samples.ts';
import { authorize, type Daemon, type ObsLine, startDaemon } from '../helpers/daemon.ts';
import { agentParticipant, RoomScript, sipLeg } from '../obs/sessions.helpers.ts';

const directory = mkdtempSync(join(tmpdir(), 'cp-restart-'));
after(() => rmSync(directory, { recursive: true, force: true }));

/** Posts one signed webhook and returns the lines written for it (read from the daemon's stdout once they arrive). */
async function send(daemon: Daemon, event: JsonObject): Promise<ObsLine[]> {
  const from = daemon.lines().length;
  const body = encodeBody(event);
  const response = await request(`${daemon.url}/webhook`, { method: 'POST', body, headers: { authorization: authorize(body) } });
  await response.body.text();
  assert.equal(response.statusCode, 200);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const lines = daemon.lines().slice(from);
    if (daemon.output().endsWith('\n') && lines.some((line) => line.webhook_id === event.id && /^webhook\.(processing|duplicate)$/.test(line.event_type))) return lines;
    assert.ok(Date.now() < deadline, `the lines of ${String(event.id)} never arrived`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function sendAll(daemon: Daemon, events: JsonObject[]): Promise<ObsLine[]> {
  const lines: ObsLine[] = [];
  for (const event of events) lines.push(...(await send(daemon, event)));
  return lines;
}

const derived = (lines: readonly ObsLine[]) => lines.filter((line) => /^(call|session|provider)\./.test(line.event_type));
const warnings = (daemon: Daemon) => daemon.lines().filter((line) => line.event_type === 'control_plane.warning').map((line) => String(line.detail));

describe('restarts with --state-file', () => {
  test('SIGTERM mid-call: after the restart the call ends exactly once, outbound, with its LiveKit duration', async () => {
    const stateFile = join(directory, 'sigterm.json');
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const answer = room.trackPublished(leg, 12);

    const first = await startDaemon({ args: ['--state-file', stateFile] });
    let firstLines: ObsLine[];
    try {
      assert.deepEqual(warnings(first), [], 'a state file that does not exist yet is a normal first start');
      firstLines = await sendAll(first, [room.started(0), room.joined(agentParticipant(), 1), room.joined(leg, 3, 'dialing'), answer]);
    } finally {
      assert.equal((await first.stop('SIGTERM')).code, 0);
    }
    assert.deepEqual(derived(firstLines).map((line) => line.event_type), ['session.state_changed', 'call.started', 'call.answered', 'session.state_changed']);
    assert.ok(existsSync(stateFile));
    assert.equal(statSync(stateFile).mode & 0o777, 0o600);

    const second = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      assert.deepEqual(warnings(second), [], 'the saved state loads without a warning');
      // LiveKit redelivers an event the first process had already written: still a duplicate.
      const redelivered = await send(second, answer);
      assert.deepEqual(redelivered.map((line) => line.event_type), ['webhook.received', 'webhook.duplicate']);

      const rest = derived(await sendAll(second, [room.left(leg, 132, 'CLIENT_INITIATED', 'hangup'), room.finished(150)]));
      assert.deepEqual(rest.map((line) => [line.event_type, line.to_state ?? line.outcome]), [
        ['call.ended', 'completed'],
        ['session.state_changed', 'ended'],
      ]);
      const [ended] = rest;
      assert.equal(ended!.direction, 'outbound');
      assert.equal(ended!.participant_sid, leg.sid);
      assert.equal(ended!.duration_ms, 130_000);
      assert.equal(ended!.talk_ms, 120_000);
      assert.equal(ended!.answered, true);
      assert.equal(ended!.from, '+31201234589');
      assert.equal(ended!.to, '+14155550123');
      assert.equal(rest[1]!.from_state, 'connected');
    } finally {
      assert.equal((await second.stop('SIGTERM')).code, 0);
    }
  });

  test('kill -9 right after the answers: the journal carries the call across, no waiting for a save', async () => {
    const stateFile = join(directory, 'sigkill.json');
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);

    const first = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      await sendAll(first, [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 8)]);
    } finally {
      await first.stop('SIGKILL');
    }

    const second = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      assert.ok(warnings(second).some((detail) => /recovered from the journal/.test(detail)), 'the recovery is said');
      const lines = derived(await sendAll(second, [room.left(leg, 68, 'CLIENT_INITIATED', 'hangup'), room.finished(70)]));
      assert.deepEqual(lines.map((line) => `${line.event_type}:${line.outcome ?? line.to_state}`), ['call.ended:completed', 'session.state_changed:ended']);
      assert.equal(lines[0]!.direction, 'inbound');
      assert.equal(lines[0]!.duration_ms, 66_000);
      assert.equal(lines[0]!.talk_ms, 60_000);
    } finally {
      await second.stop('SIGTERM');
    }
  });

  test('kill -9 after a call ended: the redelivered participant_left is a duplicate and the call does not end twice', async () => {
    const stateFile = join(directory, 'ended-then-killed.json');
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const left = room.left(leg, 40, 'CLIENT_INITIATED', 'hangup');

    const first = await startDaemon({ args: ['--state-file', stateFile] });
    let firstDerived: ObsLine[];
    try {
      firstDerived = derived(await sendAll(first, [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 10), left]));
    } finally {
      await first.stop('SIGKILL');
    }
    assert.equal(firstDerived.filter((line) => line.event_type === 'call.ended').length, 1);

    const second = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      const finished = derived(await send(second, room.finished(45)));
      assert.deepEqual(finished.map((line) => `${line.event_type}:${line.to_state}`), ['session.state_changed:ended'], 'room_finished ends the session, not the call again');
      const again = await send(second, left);
      assert.deepEqual(again.map((line) => line.event_type), ['webhook.received', 'webhook.duplicate']);
    } finally {
      await second.stop('SIGTERM');
    }
  });

  test('a corrupt state file: a warning line, an empty start, webhooks still served, and a good file at shutdown', async () => {
    const stateFile = join(directory, 'corrupt.json');
    writeFileSync(stateFile, '{"format":"control-plane-state","version":1,"sessions":{"op');
    const daemon = await startDaemon({ args: ['--state-file', stateFile] });
    const room = new RoomScript();
    try {
      const [warning] = warnings(daemon);
      assert.match(warning ?? '', /corrupt\.json is not usable \(not JSON\); moved aside to .*corrupt\.json\.corrupt-\d{8}T\d{6}Z; starting without it/);
      assert.ok(!(warning ?? '').includes('"sessions"'), 'the content is never quoted');
      const warningLine = daemon.lines().find((line) => line.event_type === 'control_plane.warning')!;
      assert.equal(warningLine.level, 'warn');
      assert.equal(warningLine.session_id, null);
      const lines = derived(await send(daemon, room.started(0)));
      assert.deepEqual(lines.map((line) => line.to_state), ['created']);
    } finally {
      assert.equal((await daemon.stop('SIGTERM')).code, 0);
    }
    const saved = readFileSync(stateFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown);
    assert.equal((saved[0] as { format: string }).format, 'control-plane-state');
    const open = saved.filter((entry): entry is ['o', { sid: string }] => Array.isArray(entry) && entry[0] === 'o');
    assert.deepEqual(open.map(([, session]) => session.sid), [room.room.sid]);
    assert.ok(readdirSync(directory).some((name) => name.startsWith('corrupt.json.corrupt-')), 'the corrupt file is kept aside');
  });
});
