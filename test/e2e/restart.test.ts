// Restarts with --state-file: a call in progress when the daemon stops
// still ends exactly once afterwards, with its direction and LiveKit
// duration; redelivered ids stay duplicates; a missing or corrupt state
// file is a warning line and an empty start, never a crash.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
      assert.ok(warnings(first).some((detail) => detail.includes('does not exist yet')), 'a missing state file is a warning');
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

  test('killed without a shutdown: the periodic save (every 10 s) still carries the call across', async () => {
    const stateFile = join(directory, 'sigkill.json');
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);

    const first = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      await sendAll(first, [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 8)]);
      const deadline = Date.now() + 15_000;
      while (!(existsSync(stateFile) && readFileSync(stateFile, 'utf8').includes(leg.sid))) {
        assert.ok(Date.now() < deadline, 'the state was not saved within 15 s');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await first.stop('SIGKILL');
    }

    const second = await startDaemon({ args: ['--state-file', stateFile] });
    try {
      const lines = derived(await sendAll(second, [room.left(leg, 68, 'CLIENT_INITIATED', 'hangup'), room.finished(70)]));
      assert.deepEqual(lines.map((line) => `${line.event_type}:${line.outcome ?? line.to_state}`), ['call.ended:completed', 'session.state_changed:ended']);
      assert.equal(lines[0]!.direction, 'inbound');
      assert.equal(lines[0]!.duration_ms, 66_000);
      assert.equal(lines[0]!.talk_ms, 60_000);
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
      assert.match(warning ?? '', /corrupt\.json is corrupt .*starting with empty state/);
      const warningLine = daemon.lines().find((line) => line.event_type === 'control_plane.warning')!;
      assert.equal(warningLine.level, 'warn');
      assert.equal(warningLine.session_id, null);
      const lines = derived(await send(daemon, room.started(0)));
      assert.deepEqual(lines.map((line) => line.to_state), ['created']);
    } finally {
      assert.equal((await daemon.stop('SIGTERM')).code, 0);
    }
    const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { sessions: { open: Array<{ sid: string }> } };
    assert.deepEqual(saved.sessions.open.map((session) => session.sid), [room.room.sid]);
  });
});
