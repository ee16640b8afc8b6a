// Every telephony scenario of docs/livekit-facts.md#telephony, as a table: the
// webhooks LiveKit sends for it and exactly the call.*, session.* and
// provider.* lines an auditor must read.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { encodeLine } from '../../src/obs/schema.ts';
import { redactPhoneNumbers } from '../../src/obs/redact.ts';
import { agentParticipant, project, RoomScript, run, sipLeg, standardParticipant } from './sessions.helpers.ts';
import type { JsonObject } from '../../src/livekit/samples.ts';

type Expected = Record<string, unknown>;

interface Scenario {
  readonly name: string;
  readonly events: (room: RoomScript) => JsonObject[];
  readonly lines: Expected[];
}

const created: Expected = { event_type: 'session.state_changed', level: 'info', to_state: 'created' };
const connected: Expected = { event_type: 'session.state_changed', level: 'info', from_state: 'created', to_state: 'connected' };
const endedFrom = (from: string): Expected => ({ event_type: 'session.state_changed', level: 'info', from_state: from, to_state: 'ended' });

const INBOUND = { direction: 'inbound', from: '+14155550123', to: '+31201234589' };
const OUTBOUND = { direction: 'outbound', from: '+31201234589', to: '+14155550123' };

const started = (call: Expected): Expected => ({ event_type: 'call.started', level: 'info', ...call });
const answered = (call: Expected, signal: string): Expected => ({ event_type: 'call.answered', level: 'info', ...call, detail: signal });
const ended = (call: Expected, fields: Expected): Expected => ({ event_type: 'call.ended', level: 'info', ...call, ...fields });
const sipTrouble = (call: Expected, reason: string, detail: string): Expected => ({
  event_type: 'provider.event',
  level: 'warn',
  ...call,
  provider: 'sip',
  reason,
  detail,
});
const LEGACY_TRUNK = 'outbound leg ended client_initiated before it was answered: how servers up to 2026-08 report a trunk failure';

const T0_MS = 1_796_126_400_000;

// One agent and one SIP leg per call; the leg joins 2 s after the room opens.
const agent = agentParticipant();

const SCENARIOS: Scenario[] = [
  {
    name: 'inbound, answered, the caller hangs up',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      return [
        room.started(0),
        room.joined(agent, 1),
        room.joined(leg, 3, 'ringing'),
        room.trackPublished(agent, 4),
        room.trackPublished(leg, 10),
        room.left(leg, 70, 'CLIENT_INITIATED', 'hangup'),
        room.left(agent, 71, 'CLIENT_INITIATED'),
        room.finished(90),
      ];
    },
    lines: [
      created,
      started(INBOUND),
      answered(INBOUND, 'track_published'),
      connected,
      ended(INBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 68_000, talk_ms: 60_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'inbound, the caller hangs up while it rings',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      return [room.started(0), room.joined(leg, 3, 'ringing'), room.left(leg, 20, 'CLIENT_INITIATED', 'hangup'), room.finished(40)];
    },
    lines: [
      created,
      started(INBOUND),
      ended(INBOUND, { reason: 'client_initiated', outcome: 'cancelled', answered: false, duration_ms: 18_000 }),
      endedFrom('created'),
    ],
  },
  {
    name: 'inbound through a PIN rule: joins already active',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      return [room.started(0), room.joined(leg, 5, 'active'), room.left(leg, 65, 'CLIENT_INITIATED', 'hangup'), room.finished(80)];
    },
    lines: [
      created,
      started(INBOUND),
      answered(INBOUND, 'joined_active'),
      connected,
      ended(INBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 63_000, talk_ms: 60_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'outbound, answered, the agent ends it (participant removed)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [
        room.started(0),
        room.joined(agent, 1),
        room.joined(leg, 3, 'dialing'),
        room.trackPublished(leg, 12),
        room.left(leg, 100, 'PARTICIPANT_REMOVED', 'active'),
        room.finished(120),
      ];
    },
    lines: [
      created,
      started(OUTBOUND),
      answered(OUTBOUND, 'track_published'),
      connected,
      ended(OUTBOUND, { reason: 'participant_removed', outcome: 'completed', answered: true, duration_ms: 98_000, talk_ms: 88_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'outbound, answered, the agent deletes the room with the call up',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(agent, 1), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 12), room.finished(100)];
    },
    lines: [
      created,
      started(OUTBOUND),
      answered(OUTBOUND, 'track_published'),
      connected,
      ended(OUTBOUND, { reason: 'room_finished', outcome: 'completed', answered: true, duration_ms: 98_000, talk_ms: 88_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'outbound, not answered (no answer within the ringing timeout)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 33, 'USER_UNAVAILABLE', 'ringing'), room.finished(60)];
    },
    lines: [
      created,
      started(OUTBOUND),
      ended(OUTBOUND, { reason: 'user_unavailable', outcome: 'no_answer', answered: false, duration_ms: 31_000 }),
      endedFrom('created'),
    ],
  },
  {
    name: 'outbound, busy / rejected',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 6, 'USER_REJECTED', 'ringing')];
    },
    lines: [created, started(OUTBOUND), ended(OUTBOUND, { reason: 'user_rejected', outcome: 'rejected', answered: false, duration_ms: 4_000 })],
  },
  {
    name: 'outbound, trunk failure as servers from 2026-09 report it (SIP_TRUNK_FAILURE)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'SIP_TRUNK_FAILURE', 'dialing')];
    },
    lines: [
      created,
      started(OUTBOUND),
      ended(OUTBOUND, { reason: 'sip_trunk_failure', outcome: 'failed', answered: false, duration_ms: 2_000 }),
      sipTrouble(OUTBOUND, 'sip_trunk_failure', 'the leg left with sip_trunk_failure'),
    ],
  },
  {
    name: 'outbound, trunk failure as servers up to 2026-08 report it (CLIENT_INITIATED while dialing)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'CLIENT_INITIATED', 'dialing')];
    },
    lines: [
      created,
      started(OUTBOUND),
      ended(OUTBOUND, { reason: 'client_initiated', outcome: 'failed', answered: false, duration_ms: 2_000 }),
      sipTrouble(OUTBOUND, 'sip_trunk_failure', LEGACY_TRUNK),
    ],
  },
  {
    name: 'outbound, fails before its media connection is up: connection aborted (legacy trunk failure)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.aborted(leg, 3, 'CLIENT_INITIATED', 'dialing'), room.finished(30)];
    },
    lines: [
      created,
      started(OUTBOUND),
      ended(OUTBOUND, { reason: 'client_initiated', outcome: 'failed', answered: false, duration_ms: 1_000 }),
      sipTrouble(OUTBOUND, 'sip_trunk_failure', LEGACY_TRUNK),
      endedFrom('created'),
    ],
  },
  {
    name: 'outbound, connection aborted while ringing: user unavailable',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.aborted(leg, 32, 'USER_UNAVAILABLE', 'ringing')];
    },
    lines: [created, started(OUTBOUND), ended(OUTBOUND, { reason: 'user_unavailable', outcome: 'no_answer', answered: false, duration_ms: 30_000 })],
  },
  {
    name: 'outbound, answered, then a media timeout (older servers: CLIENT_INITIATED, status still active)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 50, 'CLIENT_INITIATED', 'active')];
    },
    lines: [
      created,
      started(OUTBOUND),
      // One webhook: its call.* lines come before its session.* lines (docs/contract.md#lines).
      answered(OUTBOUND, 'left_snapshot'),
      // The answer time is unknown (no track_published arrived): no talk_ms.
      ended(OUTBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 48_000 }),
      connected,
    ],
  },
  {
    name: 'outbound with a dial tone: early media is not an answer when the leg ends ringing',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 4), room.left(leg, 34, 'USER_UNAVAILABLE', 'ringing')];
    },
    lines: [
      created,
      started(OUTBOUND),
      answered(OUTBOUND, 'track_published'),
      connected,
      ended(OUTBOUND, {
        reason: 'user_unavailable',
        outcome: 'no_answer',
        answered: false,
        duration_ms: 32_000,
        detail: 'answer signal was early media: the leg ended with sip.callStatus ringing',
      }),
    ],
  },
  {
    name: 'answered, then media failure: completed, and the provider is told',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      return [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 8), room.left(leg, 40, 'MEDIA_FAILURE', 'active')];
    },
    lines: [
      created,
      started(INBOUND),
      answered(INBOUND, 'track_published'),
      connected,
      ended(INBOUND, { reason: 'media_failure', outcome: 'completed', answered: true, duration_ms: 38_000, talk_ms: 32_000 }),
      sipTrouble(INBOUND, 'media_failure', 'the leg left with media_failure'),
    ],
  },
  {
    name: 'inbound, transferred after 40 s; its participant_joined arrives after its track (out of order)',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      return [
        room.started(0),
        room.joined(agent, 1),
        room.trackPublished(leg, 6),
        room.joined(leg, 3, 'ringing'),
        // A cold transfer (SIP REFER): the bridge hangs up itself, exactly like the caller hanging up.
        room.left(leg, 42, 'CLIENT_INITIATED', 'hangup'),
        room.finished(62),
      ];
    },
    lines: [
      created,
      started(INBOUND),
      answered(INBOUND, 'track_published'),
      connected,
      ended(INBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 40_000, talk_ms: 36_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'a 4.5-minute conference call whose participant_joined was lost: the remembered track answers it at its leave',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      const alice = standardParticipant('alice', T0_MS + 1_000);
      return [
        room.started(0),
        room.joined(alice, 1),
        room.trackPublished(alice, 2),
        room.trackPublished(leg, 5),
        room.left(leg, 272, 'CLIENT_INITIATED', 'hangup'),
        room.left(alice, 280, 'CLIENT_INITIATED'),
        room.finished(300),
      ];
    },
    lines: [
      created,
      connected,
      started(INBOUND),
      answered(INBOUND, 'track_published'),
      ended(INBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 270_000, talk_ms: 267_000 }),
      endedFrom('connected'),
    ],
  },
  {
    name: 'outbound, 147 s, its participant_joined lost: the remembered track answers it, and the session connects',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(agent, 1), room.trackPublished(leg, 9), room.left(leg, 149, 'CLIENT_INITIATED', 'hangup'), room.finished(170)];
    },
    lines: [
      created,
      started(OUTBOUND),
      answered(OUTBOUND, 'track_published'),
      ended(OUTBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 147_000, talk_ms: 140_000 }),
      connected,
      endedFrom('connected'),
    ],
  },
  {
    name: 'outbound, answered, no track event seen: leaving with hangup proves the answer (no talk_ms)',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 60, 'CLIENT_INITIATED', 'hangup'), room.finished(80)];
    },
    lines: [
      created,
      started(OUTBOUND),
      answered(OUTBOUND, 'left_snapshot'),
      ended(OUTBOUND, { reason: 'client_initiated', outcome: 'completed', answered: true, duration_ms: 58_000 }),
      connected,
      endedFrom('connected'),
    ],
  },
  {
    name: 'a track event whose participant snapshot shows dialing is a dial tone, not an answer',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 4, 'dialing'), room.left(leg, 34, 'USER_UNAVAILABLE', 'ringing')];
    },
    lines: [created, started(OUTBOUND), ended(OUTBOUND, { reason: 'user_unavailable', outcome: 'no_answer', answered: false, duration_ms: 32_000 })],
  },
  {
    name: 'a dial tone remembered before the join, the leg leaves ringing: never answered, no call.answered',
    events: (room) => {
      const leg = sipLeg('outbound', 2);
      return [room.started(0), room.trackPublished(leg, 3), room.left(leg, 33, 'USER_UNAVAILABLE', 'ringing'), room.finished(50)];
    },
    lines: [
      created,
      started(OUTBOUND),
      ended(OUTBOUND, { reason: 'user_unavailable', outcome: 'no_answer', answered: false, duration_ms: 31_000 }),
      endedFrom('created'),
    ],
  },
  {
    name: 'inbound leaving with hangup proves nothing, also with a standard participant track remembered',
    events: (room) => {
      const leg = sipLeg('inbound', 2);
      const alice = standardParticipant('alice', T0_MS + 1_000);
      return [room.started(0), room.trackPublished(alice, 2), room.joined(alice, 1), room.joined(leg, 3, 'ringing'), room.left(leg, 20, 'CLIENT_INITIATED', 'hangup')];
    },
    lines: [created, connected, started(INBOUND), ended(INBOUND, { reason: 'client_initiated', outcome: 'cancelled', answered: false, duration_ms: 18_000 })],
  },
  {
    name: 'a plain WebRTC room: sessions only, no call lines',
    events: (room) => {
      const alice = standardParticipant('alice', (T0_MS + 1000));
      const bob = standardParticipant('bob', (T0_MS + 2000));
      return [
        room.started(0),
        room.joined(agent, 1),
        room.joined(alice, 2),
        room.trackPublished(alice, 3),
        room.joined(bob, 4),
        room.left(alice, 60, 'CLIENT_INITIATED'),
        room.left(bob, 61, 'CLIENT_INITIATED'),
        room.finished(82, 'ROOM_END_IDLE_TIMEOUT'),
      ];
    },
    lines: [created, connected, { ...endedFrom('connected'), reason: 'idle_timeout' }],
  },
  {
    name: 'an agent alone does not connect a session',
    events: (room) => [room.started(0), room.joined(agent, 1), room.left(agent, 30, 'CLIENT_INITIATED'), room.finished(50)],
    lines: [created, endedFrom('created')],
  },
  {
    name: 'egress: failures are provider events, a completed egress is not',
    events: (room) => [
      room.started(0),
      room.egress('egress_started', 'EG_ok', 1),
      room.egress('egress_ended', 'EG_ok', 30, 'EGRESS_COMPLETE'),
      room.egress('egress_started', 'EG_bad', 31),
      room.egress('egress_updated', 'EG_bad', 32, 'EGRESS_ACTIVE'),
      room.egress('egress_ended', 'EG_bad', 40, 'EGRESS_FAILED', 'upload failed: 403'),
      // A duplicated egress run reports the same failure again: one line.
      room.egress('egress_ended', 'EG_bad', 41, 'EGRESS_FAILED', 'upload failed: 403'),
      room.egress('egress_ended', 'EG_limit', 50, 'EGRESS_LIMIT_REACHED'),
      room.egress('egress_ended', 'EG_abort', 51, 'EGRESS_ABORTED'),
    ],
    lines: [
      created,
      { event_type: 'provider.event', level: 'warn', provider: 'egress', reason: 'failed', detail: 'EG_bad' },
      { event_type: 'provider.event', level: 'warn', provider: 'egress', reason: 'limit_reached', detail: 'EG_limit' },
      { event_type: 'provider.event', level: 'warn', provider: 'egress', reason: 'aborted', detail: 'EG_abort' },
    ],
  },
  {
    name: 'ingress: an error is a provider event, publishing and completing are not',
    events: (room) => [
      room.ingress('ingress_started', 'IN_cam', 1, 'ENDPOINT_PUBLISHING'),
      room.ingress('ingress_ended', 'IN_cam', 20, 'ENDPOINT_ERROR', 'rtmp connection reset'),
      room.ingress('ingress_started', 'IN_other', 21, 'ENDPOINT_PUBLISHING'),
      room.ingress('ingress_ended', 'IN_other', 22, 'ENDPOINT_COMPLETE'),
    ],
    lines: [{ event_type: 'provider.event', level: 'warn', provider: 'ingress', reason: 'error', detail: 'IN_cam' }],
  },
];


describe('call and session lines for each docs/livekit-facts.md#telephony scenario', () => {
  for (const scenario of SCENARIOS) {
    test(scenario.name, () => {
      const room = new RoomScript();
      const lines = run(new SessionStore(), scenario.events(room));
      assert.deepEqual(lines.map(project), scenario.lines);
      for (const line of lines) {
        if (line.event_type === 'provider.event' && line.provider === 'ingress') {
          // Ingress webhooks carry no room SID (docs/contract.md#lines): no session to name.
          assert.equal(line.session_id, null);
        } else {
          assert.equal(line.session_id, room.room.sid, `${line.event_type} names its session`);
          assert.equal(line.room_sid, room.room.sid);
          assert.equal(line.room_name, room.room.name);
        }
      }
    });
  }
});

describe('call lines carry the leg', () => {
  test('sip_call_id, trunk_id, identity and participant SID on every call line', () => {
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const lines = run(new SessionStore(), [room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 5), room.left(leg, 9, 'CLIENT_INITIATED', 'hangup')]);
    const calls = lines.filter((line) => line.event_type.startsWith('call.'));
    assert.equal(calls.length, 3);
    for (const line of calls) {
      assert.equal(line.sip_call_id, leg.attributes!['sip.callID']);
      assert.equal(line.trunk_id, leg.attributes!['sip.trunkID']);
      assert.equal(line.participant_identity, 'sip_+14155550123');
      assert.equal(line.participant_sid, leg.sid);
    }
  });

  test('a room name reused after room_finished is a new session', () => {
    const first = new RoomScript('sales');
    const second = new RoomScript('sales');
    const store = new SessionStore();
    const lines = run(store, [first.started(0), first.finished(10), second.started(20), second.finished(30)]);
    assert.deepEqual(
      lines.map((line) => [line.session_id, line.from_state ?? null, line.to_state]),
      [
        [first.room.sid, null, 'created'],
        [first.room.sid, 'created', 'ended'],
        [second.room.sid, null, 'created'],
        [second.room.sid, 'created', 'ended'],
      ],
    );
  });

  test('a late event for a finished room writes nothing and does not revive it', () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const store = new SessionStore();
    run(store, [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 8), room.finished(60)]);
    assert.equal(store.openSessions, 0);
    assert.deepEqual(run(store, [room.left(leg, 61, 'ROOM_DELETED', 'active'), room.joined(standardParticipant(), 62), room.started(63)]), []);
    assert.equal(store.openSessions, 0);
  });

  test('the first event of an unknown room creates its session (room_started lost)', () => {
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const lines = run(new SessionStore(), [room.joined(leg, 3, 'active'), room.finished(30)]);
    assert.deepEqual(lines.map(project), [
      started(INBOUND),
      answered(INBOUND, 'joined_active'),
      created,
      connected,
      ended(INBOUND, { reason: 'room_finished', outcome: 'completed', answered: true, duration_ms: 28_000, talk_ms: 27_000 }),
      endedFrom('connected'),
    ]);
  });

  test('a leave whose join was lost still starts and ends the call once', () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const store = new SessionStore();
    const lines = run(store, [room.started(0), room.left(leg, 5, 'USER_REJECTED', 'ringing'), room.left(leg, 5, 'USER_REJECTED', 'ringing')]);
    assert.deepEqual(lines.map(project), [created, started(OUTBOUND), ended(OUTBOUND, { reason: 'user_rejected', outcome: 'rejected', answered: false, duration_ms: 3_000 })]);
    assert.equal(store.openCalls, 0);
  });

  test('a reconnect is a new leg: keyed by participant SID, not identity', () => {
    const room = new RoomScript();
    const first = sipLeg('inbound', 2);
    const again = { ...sipLeg('inbound', 10), identity: first.identity };
    const store = new SessionStore();
    const lines = run(store, [room.joined(first, 3, 'active'), room.left(first, 9, 'DUPLICATE_IDENTITY', 'active'), room.joined(again, 11, 'active')]);
    assert.deepEqual(
      lines.filter((line) => line.event_type.startsWith('call.')).map((line) => [line.event_type, line.participant_sid]),
      [
        ['call.started', first.sid],
        ['call.answered', first.sid],
        ['call.ended', first.sid],
        ['call.started', again.sid],
        ['call.answered', again.sid],
      ],
    );
    assert.equal(store.openCalls, 1);
  });

  test('durations come from LiveKit times, not from when the webhook arrived', () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const store = new SessionStore();
    const events = [room.joined(leg, 3, 'active'), room.left(leg, 63, 'CLIENT_INITIATED', 'hangup')];
    const early = run(store, events.slice(0, 1), 1_000);
    const late = run(store, events.slice(1), 9_000_000);
    const end = [...early, ...late].find((line) => line.event_type === 'call.ended')!;
    assert.equal(end.duration_ms, 61_000);
    assert.equal(end.talk_ms, 60_000);
  });

  test('numDropped from older servers is a livekit provider event', () => {
    const room = new RoomScript();
    const started = room.started(0);
    started.numDropped = 3;
    const lines = run(new SessionStore(), [started]);
    assert.deepEqual(lines.map(project), [
      created,
      { event_type: 'provider.event', level: 'warn', provider: 'livekit', reason: 'events_dropped', detail: 'the server dropped 3 webhook event(s) before this one' },
    ]);
  });

  test('--redact-phone-numbers masks numbers on every call line field that carries one', () => {
    const room = new RoomScript('call_+14155550123_k2Zq');
    const leg = sipLeg('inbound', 2);
    const lines = run(new SessionStore(), [room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 4), room.left(leg, 9, 'SIP_TRUNK_FAILURE', 'ringing')]);
    assert.ok(lines.length >= 4);
    for (const line of lines) {
      const text = encodeLine(line, 1, 0, redactPhoneNumbers);
      assert.doesNotMatch(text, /4155550123|201234589/, text);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      if (line.event_type.startsWith('call.')) {
        assert.equal(parsed.from, '+14*******23');
        assert.equal(parsed.to, '+31*******89');
        assert.equal(parsed.participant_identity, 'sip_+14*******23');
      }
      assert.equal(parsed.room_name, 'call_+14*******23_k2Zq');
    }
  });
});
