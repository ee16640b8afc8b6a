// Calls and sessions through the running daemon: signed webhooks over
// HTTP, lines read from its output. Each webhook's derived lines follow its
// livekit.* line (docs/contract.md#the-lines-of-one-webhook), and every scenario writes exactly the
// call.*, session.* and provider.* lines expected.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeBody, type JsonObject } from '../../src/livekit/samples.ts';
import { type Daemon, type ObsLine, postSigned, startDaemon } from '../helpers/daemon.ts';
import { agentParticipant, RoomScript, sipLeg, standardParticipant } from '../obs/sessions.helpers.ts';

async function send(daemon: Daemon, event: JsonObject): Promise<ObsLine[]> {
  const before = daemon.lines().length;
  const body = encodeBody(event);
  const { status } = await postSigned(daemon.url, body);
  assert.equal(status, 200, `${String(event.event)} answered ${status}`);
  return linesOf(daemon, before, event.id as string);
}

/**
 * The lines written for one webhook. They were written before the answer,
 * in one write; the test reads the daemon's stdout asynchronously, so wait
 * until they have arrived.
 */
async function linesOf(daemon: Daemon, from: number, webhookId: string): Promise<ObsLine[]> {
  const deadline = Date.now() + 10_000;
  const arrived = () =>
    daemon.output().endsWith('\n') &&
    daemon.lines().slice(from).some((line) => line.webhook_id === webhookId && (line.event_type === 'webhook.processing' || line.event_type === 'webhook.duplicate'));
  while (!arrived()) {
    assert.ok(Date.now() < deadline, `the lines of ${webhookId} never arrived`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return daemon.lines().slice(from);
}

/** Sends the events in order; returns, per webhook, its derived lines as `type[:detail]` strings, checking the line order. */
async function sendAll(daemon: Daemon, events: JsonObject[]): Promise<string[][]> {
  const perWebhook: string[][] = [];
  for (const event of events) {
    const lines = await send(daemon, event);
    assert.deepEqual(lines.slice(0, 2).map((line) => line.event_type), ['webhook.received', 'webhook.processing']);
    assert.match(lines[2]!.event_type, /^livekit\./);
    const derived = lines.slice(3);
    const rank = (type: string) => ['call', 'session', 'provider'].indexOf(type.split('.')[0]!);
    for (let index = 1; index < derived.length; index++) {
      assert.ok(rank(derived[index]!.event_type) >= rank(derived[index - 1]!.event_type), 'call.*, then session.*, then provider.*');
    }
    perWebhook.push(derived.map(describeLine));
  }
  return perWebhook;
}

function describeLine(line: ObsLine): string {
  switch (line.event_type) {
    case 'session.state_changed':
      return `session:${line.from_state ?? '-'}>${line.to_state}`;
    case 'call.started':
      return `call.started:${line.direction}`;
    case 'call.answered':
      return `call.answered:${line.detail}`;
    case 'call.ended':
      return `call.ended:${line.reason}:${line.outcome}:${line.answered}:${line.duration_ms}:${line.talk_ms ?? '-'}`;
    case 'provider.event':
      return `provider:${line.provider}:${line.reason}`;
    default:
      return line.event_type;
  }
}

describe('calls and sessions through the daemon', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  test('inbound, answered, the caller hangs up', async () => {
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const agent = agentParticipant();
    const lines = await sendAll(daemon, [
      room.started(0),
      room.joined(agent, 1),
      room.joined(leg, 3, 'ringing'),
      room.trackPublished(leg, 10),
      room.left(leg, 70, 'CLIENT_INITIATED', 'hangup'),
      room.finished(90),
    ]);
    assert.deepEqual(lines, [
      ['session:->created'],
      [],
      ['call.started:inbound'],
      ['call.answered:track_published', 'session:created>connected'],
      ['call.ended:client_initiated:completed:true:68000:60000'],
      ['session:connected>ended'],
    ]);
    const started = daemon.lines().find((line) => line.event_type === 'call.started' && line.participant_sid === leg.sid)!;
    assert.equal(started.session_id, room.room.sid);
    assert.equal(started.from, '+14155550123');
    assert.equal(started.to, '+31201234589');
    assert.equal(started.sip_call_id, leg.attributes!['sip.callID']);
    assert.equal(started.trunk_id, leg.attributes!['sip.trunkID']);
  });

  test('outbound trunk failure, older servers: failed, and a sip provider event', async () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    assert.deepEqual(await sendAll(daemon, [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'CLIENT_INITIATED', 'dialing'), room.finished(30)]), [
      ['session:->created'],
      ['call.started:outbound'],
      ['call.ended:client_initiated:failed:false:2000:-', 'provider:sip:sip_trunk_failure'],
      ['session:created>ended'],
    ]);
    const provider = daemon.lines().find((line) => line.event_type === 'provider.event' && line.participant_sid === leg.sid)!;
    assert.equal(provider.level, 'warn');
    assert.equal(provider.session_id, room.room.sid);
  });

  test('outbound not answered, then busy: no_answer and rejected', async () => {
    const room = new RoomScript();
    const first = sipLeg('outbound', 2);
    const second = sipLeg('outbound', 40);
    assert.deepEqual(
      await sendAll(daemon, [
        room.started(0),
        room.joined(first, 3, 'dialing'),
        room.left(first, 33, 'USER_UNAVAILABLE', 'ringing'),
        room.joined(second, 41, 'dialing'),
        room.left(second, 45, 'USER_REJECTED', 'ringing'),
      ]),
      [
        ['session:->created'],
        ['call.started:outbound'],
        ['call.ended:user_unavailable:no_answer:false:31000:-'],
        ['call.started:outbound'],
        ['call.ended:user_rejected:rejected:false:5000:-'],
      ],
    );
  });

  test('out of order: a track before its join, and a leg whose join was lost, still end answered with their talk time', async () => {
    const room = new RoomScript();
    const transferred = sipLeg('inbound', 2);
    const outbound = sipLeg('outbound', 50, '+14155550188');
    assert.deepEqual(
      await sendAll(daemon, [
        room.started(0),
        room.trackPublished(transferred, 6),
        room.joined(transferred, 3, 'ringing'),
        room.left(transferred, 42, 'CLIENT_INITIATED', 'hangup'),
        room.trackPublished(outbound, 57),
        room.left(outbound, 197, 'CLIENT_INITIATED', 'hangup'),
        room.finished(220),
      ]),
      [
        ['session:->created'],
        [],
        ['call.started:inbound', 'call.answered:track_published', 'session:created>connected'],
        ['call.ended:client_initiated:completed:true:40000:36000'],
        [],
        ['call.started:outbound', 'call.answered:track_published', 'call.ended:client_initiated:completed:true:147000:140000'],
        ['session:connected>ended'],
      ],
    );
  });

  test('outbound leaving with hangup and no track seen: answered at the end, no talk time', async () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    assert.deepEqual(await sendAll(daemon, [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 60, 'CLIENT_INITIATED', 'hangup'), room.finished(80)]), [
      ['session:->created'],
      ['call.started:outbound'],
      ['call.answered:left_snapshot', 'call.ended:client_initiated:completed:true:58000:-', 'session:created>connected'],
      ['session:connected>ended'],
    ]);
  });

  test('a WebRTC room with egress that fails: no call lines, one egress provider event', async () => {
    const room = new RoomScript();
    const alice = standardParticipant('alice');
    assert.deepEqual(
      await sendAll(daemon, [
        room.started(0),
        room.joined(alice, 2),
        room.egress('egress_started', 'EG_e2eFailure1', 3),
        room.egress('egress_ended', 'EG_e2eFailure1', 20, 'EGRESS_FAILED', 'upload failed'),
        room.left(alice, 30, 'CLIENT_INITIATED'),
        room.finished(50),
      ]),
      [['session:->created'], ['session:created>connected'], [], ['provider:egress:failed'], [], ['session:connected>ended']],
    );
  });

  test('a redelivered event writes webhook.duplicate and no derived line', async () => {
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const joined = room.joined(leg, 3, 'active');
    await sendAll(daemon, [joined]);
    const again = await send(daemon, joined);
    assert.deepEqual(again.map((line) => line.event_type), ['webhook.received', 'webhook.duplicate']);
  });
});

describe('calls through a daemon with --redact-phone-numbers', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--redact-phone-numbers'] });
  });
  after(async () => {
    await daemon.stop();
  });

  test('no call, session or provider line carries a full number', async () => {
    const room = new RoomScript('call_+14155550123_k2Zq');
    const leg = sipLeg('outbound', 2);
    await sendAll(daemon, [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'SIP_TRUNK_FAILURE', 'dialing'), room.finished(10)]);
    assert.doesNotMatch(daemon.output(), /4155550123|201234589/);
    const ended = daemon.lines().find((line) => line.event_type === 'call.ended')!;
    assert.equal(ended.from, '+31*******89');
    assert.equal(ended.to, '+14*******23');
    assert.equal(ended.participant_identity, 'sip_+14*******23');
    assert.equal(ended.room_name, 'call_+14*******23_k2Zq');
  });
});
