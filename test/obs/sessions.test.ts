// SessionStore: the transition tables drive both the code and these tests;
// observe/commit keep state untouched until the lines are written; state is
// bounded; a snapshot restores to the same behaviour.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSessionSnapshot, type SessionSnapshot, trimCalls } from '../../src/obs/sessions.ts';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import {
  CALL_PHASES,
  CALL_TRANSITIONS,
  type CallPhase,
  type CallTrigger,
  nextCallPhase,
  nextSessionState,
  SESSION_STATES,
  SESSION_TRANSITIONS,
  type SessionState,
  type SessionTrigger,
} from '../../src/obs/transitions.ts';
import type { JsonObject } from '../../src/livekit/samples.ts';
import { agentParticipant, decode, RECEIVER_NOW_MS, RoomScript, run, sipLeg, standardParticipant, T0 } from './sessions.helpers.ts';

const sessionLines = (lines: ReturnType<typeof run>) => lines.filter((line) => line.event_type === 'session.state_changed').map((line) => [line.from_state ?? null, line.to_state]);

describe('session transitions follow SESSION_TRANSITIONS', () => {
  // Events that bring a fresh room to each state, and the event for each trigger.
  const reach: Record<'none' | SessionState, (room: RoomScript) => JsonObject[]> = {
    none: () => [],
    created: (room) => [room.started(0)],
    connected: (room) => [room.started(0), room.joined(standardParticipant(), 1)],
    ended: (room) => [room.started(0), room.finished(2)],
  };
  const fire: Record<SessionTrigger, (room: RoomScript) => JsonObject> = {
    room_seen: (room) => room.started(0),
    participant_active: (room) => room.joined(standardParticipant(), 5),
    call_answered: (room) => room.joined(sipLeg('inbound', 4), 5, 'active'),
    room_finished: (room) => room.finished(9),
  };

  for (const from of ['none', ...SESSION_STATES] as const) {
    for (const trigger of Object.keys(fire) as SessionTrigger[]) {
      const state = from === 'none' ? null : from;
      // An unknown room is first seen, then the trigger applies.
      const path: Array<[SessionState | null, SessionState]> = [];
      let current = state;
      if (current === null) {
        path.push([null, 'created']);
        current = 'created';
      }
      const to = nextSessionState(current, trigger);
      if (to && !(state === null && trigger === 'room_seen')) path.push([current, to]);
      test(`${from} + ${trigger} → ${path.length ? path.map(([, next]) => next).join(' → ') : 'no line'}`, () => {
        const room = new RoomScript();
        const store = new SessionStore();
        run(store, reach[from](room));
        assert.deepEqual(sessionLines(run(store, [fire[trigger](room)])), path);
      });
    }
  }

  test('the table never goes back: each row moves forward', () => {
    const rank = (state: SessionState | null) => (state === null ? -1 : SESSION_STATES.indexOf(state));
    for (const row of SESSION_TRANSITIONS) assert.ok(rank(row.to) > rank(row.from), `${row.from} → ${row.to}`);
    for (const trigger of ['room_seen', 'participant_active', 'call_answered', 'room_finished'] as const) {
      assert.equal(nextSessionState('ended', trigger), undefined, `ended + ${trigger}`);
    }
  });

  test('agents, egress recorders and ingress publishers do not connect a session', () => {
    const room = new RoomScript();
    const egressRecorder = { ...standardParticipant('EG_recorder'), kind: 'EGRESS' as const };
    const ingressPublisher = { ...standardParticipant('camera'), kind: 'INGRESS' as const };
    const lines = run(new SessionStore(), [
      room.started(0),
      room.joined(agentParticipant(), 1),
      room.joined(egressRecorder, 2),
      room.joined(ingressPublisher, 3),
      room.joined(sipLeg('outbound', 3), 4, 'dialing'),
    ]);
    assert.deepEqual(sessionLines(lines), [[null, 'created']]);
  });

  test('a standard participant that aborted its connection did not connect the session', () => {
    const room = new RoomScript();
    const lines = run(new SessionStore(), [room.started(0), room.aborted(standardParticipant(), 3, 'JOIN_FAILURE')]);
    assert.deepEqual(sessionLines(lines), [[null, 'created']]);
  });

  test('a standard participant_left whose join was lost proves the session was connected', () => {
    const room = new RoomScript();
    const lines = run(new SessionStore(), [room.started(0), room.left(standardParticipant(), 30, 'CLIENT_INITIATED')]);
    assert.deepEqual(sessionLines(lines), [
      [null, 'created'],
      ['created', 'connected'],
    ]);
  });
});

describe('call transitions follow CALL_TRANSITIONS', () => {
  const reach: Record<'none' | CallPhase, (room: RoomScript, leg: ReturnType<typeof sipLeg>) => JsonObject[]> = {
    none: (room) => [room.started(0)],
    started: (room, leg) => [room.started(0), room.joined(leg, 3, 'dialing')],
    answered: (room, leg) => [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 5)],
    ended: (room, leg) => [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 6, 'USER_REJECTED', 'ringing')],
  };
  const fire: Record<CallTrigger, (room: RoomScript, leg: ReturnType<typeof sipLeg>) => JsonObject> = {
    leg_seen: (room, leg) => room.joined(leg, 3, 'dialing'),
    answer_signal: (room, leg) => room.trackPublished(leg, 8),
    leg_left: (room, leg) => room.left(leg, 20, 'USER_UNAVAILABLE', 'ringing'),
    room_finished: (room) => room.finished(30),
  };

  for (const from of ['none', ...CALL_PHASES] as const) {
    for (const trigger of Object.keys(fire) as CallTrigger[]) {
      const phase = from === 'none' ? null : from;
      const expected: string[] = [];
      let current = phase;
      // A leave of a leg never seen starts it first (its join was lost).
      if (current === null && trigger === 'leg_left') {
        expected.push(nextCallPhase(null, 'leg_seen')!.line);
        current = 'started';
      }
      const row = nextCallPhase(current, trigger);
      if (row) expected.push(row.line);
      test(`${from} + ${trigger} → ${expected.join(', ') || 'no call line'}`, () => {
        const room = new RoomScript();
        const leg = sipLeg('outbound', 2);
        const store = new SessionStore();
        run(store, reach[from](room, leg));
        const lines = run(store, [fire[trigger](room, leg)]);
        assert.deepEqual(
          lines.filter((line) => line.event_type.startsWith('call.')).map((line) => line.event_type),
          expected,
        );
      });
    }
  }

  test('every call line type has a row, and ended is final', () => {
    assert.deepEqual([...new Set(CALL_TRANSITIONS.map((row) => row.line))].sort(), ['call.answered', 'call.ended', 'call.started']);
    for (const trigger of ['leg_seen', 'answer_signal', 'leg_left', 'room_finished'] as const) assert.equal(nextCallPhase('ended', trigger), undefined);
  });
});

describe('observe does not change state; commit does', () => {
  const room = new RoomScript();
  const leg = sipLeg('inbound', 2);
  const events = [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 6), room.left(leg, 30, 'CLIENT_INITIATED', 'hangup'), room.finished(40)];

  test('observing without commit (a failed write, answered 503) leaves the store as it was, and the retry writes the same lines', () => {
    const store = new SessionStore();
    const reference = new SessionStore();
    for (const json of events) {
      const event = decode(json);
      const before = JSON.stringify(store.snapshot());
      const failed = store.observe(event, RECEIVER_NOW_MS);
      assert.equal(JSON.stringify(store.snapshot()), before, 'observe changed the state');
      const retried = store.observe(event, RECEIVER_NOW_MS + 2_000);
      assert.deepEqual(retried.events, failed.events);
      retried.commit();
      const expected = reference.observe(event, RECEIVER_NOW_MS);
      expected.commit();
      assert.deepEqual(retried.events, expected.events);
    }
    assert.equal(store.openSessions, 0);
  });

  test('counters follow the calls and sessions', () => {
    const store = new SessionStore();
    run(store, events.slice(0, 2));
    assert.equal(store.openSessions, 1);
    assert.equal(store.openCalls, 1);
    run(store, events.slice(2, 4));
    assert.equal(store.openCalls, 0);
    run(store, events.slice(4));
    assert.equal(store.openSessions, 0);
    assert.equal(store.endedSessions, 1);
  });
});

describe('bounded state', () => {
  test('the open-session cap forgets the least recently active session first', () => {
    const store = new SessionStore({ maxOpenSessions: 3 });
    const rooms = Array.from({ length: 5 }, (_, index) => new RoomScript(`room-${index}`));
    run(store, [rooms[0]!.started(0), rooms[1]!.started(0), rooms[2]!.started(0)]);
    run(store, [rooms[0]!.joined(standardParticipant(), 1)]); // room-0 is now the most recent
    run(store, [rooms[3]!.started(2), rooms[4]!.started(3)]);
    assert.equal(store.openSessions, 3);
    assert.equal(store.evictedSessions, 2);
    const kept = store.snapshot().open.map((record) => record.name);
    assert.deepEqual(kept, ['room-0', 'room-3', 'room-4']);
  });

  test('per session only ended legs are trimmed, oldest first', () => {
    const room = new RoomScript();
    const legs = [sipLeg('outbound', 1, '+14155550001'), sipLeg('outbound', 2, '+14155550002'), sipLeg('outbound', 3, '+14155550003')];
    const store = new SessionStore();
    run(store, [room.started(0), ...legs.flatMap((leg, index) => [room.joined(leg, 4 + index, 'dialing'), room.left(leg, 10 + index, 'USER_REJECTED', 'ringing')])]);
    run(store, [room.joined(sipLeg('outbound', 20), 21, 'dialing')]);
    const record = store.snapshot().open[0]!;
    assert.equal(record.calls.length, 4);
    const trimmed = trimCalls(record, 2);
    assert.deepEqual(trimmed.calls.map((leg) => leg.phase), ['ended', 'started'], 'the two oldest ended legs go; the open one stays');
    assert.equal(trimCalls(record, 1).calls.filter((leg) => leg.phase !== 'ended').length, 1, 'an open leg is never trimmed');
  });

  test('the call cap bounds legs across sessions: the least recently active room goes', () => {
    const store = new SessionStore({ maxCalls: 4 });
    const room = new RoomScript();
    run(store, [room.started(0), room.joined(sipLeg('outbound', 1, '+14155550001'), 2, 'dialing'), room.joined(sipLeg('outbound', 1, '+14155550002'), 3, 'dialing')]);
    const other = new RoomScript('other');
    run(store, [other.joined(sipLeg('inbound', 1, '+14155550009'), 2, 'ringing'), other.joined(sipLeg('inbound', 1, '+14155550008'), 3, 'ringing')]);
    run(store, [other.joined(sipLeg('inbound', 1, '+14155550007'), 4, 'ringing')]);
    assert.deepEqual(store.snapshot().open.map((record) => record.name), ['other']);
    assert.equal(store.openCalls, 3);
  });

  test('an open session idle past the idle timeout is forgotten; ended tombstones after the grace period', () => {
    const store = new SessionStore({ idleTimeoutMs: 60_000, endedGraceMs: 10_000 });
    const idle = new RoomScript('idle');
    const done = new RoomScript('done');
    run(store, [idle.started(0)], 0);
    run(store, [done.started(0), done.finished(5)], 50_000);
    assert.equal(store.openSessions, 1);
    assert.equal(store.endedSessions, 1);
    // A late event for the ended room within the grace period: ignored.
    assert.deepEqual(run(store, [done.joined(standardParticipant(), 6)], 55_000), []);
    store.prune(61_000);
    assert.equal(store.openSessions, 0);
    assert.equal(store.evictedSessions, 1);
    assert.equal(store.endedSessions, 0);
  });

  test('the ended-session cap keeps the newest tombstones', () => {
    const store = new SessionStore({ maxEndedSessions: 2 });
    const rooms = Array.from({ length: 4 }, (_, index) => new RoomScript(`r${index}`));
    for (const room of rooms) run(store, [room.started(0), room.finished(1)]);
    assert.deepEqual(store.snapshot().ended.map(([sid]) => sid), [rooms[2]!.room.sid, rooms[3]!.room.sid]);
  });

  test('egress and ingress events never create a session (they travel in their own queues)', () => {
    const room = new RoomScript();
    const store = new SessionStore();
    run(store, [room.egress('egress_started', 'EG_1', 0), room.egress('egress_ended', 'EG_1', 100, 'EGRESS_COMPLETE'), room.ingress('ingress_started', 'IN_1', 1, 'ENDPOINT_PUBLISHING')]);
    assert.equal(store.openSessions, 0);
  });
});

describe('snapshot and restore', () => {
  test('a call in progress ends exactly once after a restore, with its direction and LiveKit duration', () => {
    const room = new RoomScript();
    const leg = sipLeg('outbound', 2);
    const before = new SessionStore();
    run(before, [room.started(0), room.joined(agentParticipant(), 1), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 9)]);
    const saved = JSON.parse(JSON.stringify(before.snapshot())) as unknown;
    const parsed = parseSessionSnapshot(saved);
    assert.ok(parsed.ok);
    const after = new SessionStore();
    // Restarted ten minutes later by the receiver's clock.
    after.restore(parsed.snapshot, RECEIVER_NOW_MS + 600_000);
    assert.equal(after.openSessions, 1);
    assert.equal(after.openCalls, 1);
    const lines = run(after, [room.left(leg, 129, 'CLIENT_INITIATED', 'hangup'), room.finished(140)], RECEIVER_NOW_MS + 600_000);
    const ended = lines.filter((line) => line.event_type === 'call.ended');
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.direction, 'outbound');
    assert.equal(ended[0]!.duration_ms, 127_000);
    assert.equal(ended[0]!.talk_ms, 120_000);
    assert.equal(ended[0]!.outcome, 'completed');
    assert.deepEqual(sessionLines(lines), [['connected', 'ended']]);
  });

  test('restore prunes what expired while the daemon was down', () => {
    const store = new SessionStore({ idleTimeoutMs: 60_000, endedGraceMs: 60_000 });
    const open = new RoomScript('open');
    const done = new RoomScript('done');
    run(store, [open.started(0), done.started(0), done.finished(1)], 0);
    const restored = new SessionStore({ idleTimeoutMs: 60_000, endedGraceMs: 60_000 });
    restored.restore(store.snapshot(), 120_000);
    assert.equal(restored.openSessions, 0);
    assert.equal(restored.endedSessions, 0);
  });

  const valid: SessionSnapshot = { version: 1, open: [], ended: [], providerKeys: [] };
  const broken: Array<[string, unknown]> = [
    ['not an object', 'sessions'],
    ['another version', { ...valid, version: 2 }],
    ['open not a list', { ...valid, open: {} }],
    ['a session without sid', { ...valid, open: [{ name: 'x', state: 'created', calls: [], touchedAtMs: 1 }] }],
    ['a session in state ended', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'ended', calls: [], touchedAtMs: 1 }] }],
    ['a call with a bad direction', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'created', calls: [{ participantSid: 'PA_1', identity: 'i', direction: 'sideways', phase: 'started' }], touchedAtMs: 1 }] }],
    ['a call duration that is not a number', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'created', calls: [{ participantSid: 'PA_1', identity: 'i', direction: 'inbound', phase: 'started', startedAtMs: '5' }], touchedAtMs: 1 }] }],
    ['ended not pairs', { ...valid, ended: [['RM_x']] }],
    ['providerKeys missing', { version: 1, open: [], ended: [] }],
    ['remembered tracks that are not a list', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'created', calls: [], touchedAtMs: 1, pendingTracks: {} }] }],
    ['a remembered track without a participant SID', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'created', calls: [], touchedAtMs: 1, pendingTracks: [{ atMs: 5 }] }] }],
    ['a remembered track time that is not a number', { ...valid, open: [{ sid: 'RM_x', name: 'x', state: 'created', calls: [], touchedAtMs: 1, pendingTracks: [{ participantSid: 'PA_1', atMs: '5' }] }] }],
  ];
  for (const [what, value] of broken) {
    test(`parseSessionSnapshot refuses ${what}`, () => {
      const result = parseSessionSnapshot(value);
      assert.equal(result.ok, false);
    });
  }

  test('a track remembered before a restart still answers its leg after it', () => {
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const before = new SessionStore();
    run(before, [room.started(0), room.trackPublished(leg, 6)]);
    const saved = before.snapshot();
    assert.deepEqual(saved.open[0]!.pendingTracks, [{ participantSid: leg.sid, atMs: (T0 + 6) * 1000 }]);
    const parsed = parseSessionSnapshot(JSON.parse(JSON.stringify(saved)));
    assert.ok(parsed.ok);
    const after = new SessionStore();
    after.restore(parsed.snapshot, RECEIVER_NOW_MS);
    const lines = run(after, [room.joined(leg, 3, 'ringing'), room.left(leg, 42, 'CLIENT_INITIATED', 'hangup')]);
    const ended = lines.find((line) => line.event_type === 'call.ended')!;
    assert.equal(ended.outcome, 'completed');
    assert.equal(ended.talk_ms, 36_000);
  });

  test('a snapshot written before remembered tracks existed still loads', () => {
    const old = {
      version: 1,
      open: [{ sid: 'RM_old', name: 'old', state: 'connected', calls: [{ participantSid: 'PA_1', identity: 'sip_1', direction: 'inbound', phase: 'answered', startedAtMs: 1_000 }], touchedAtMs: 1 }],
      ended: [],
      providerKeys: [],
    };
    const result = parseSessionSnapshot(old);
    assert.ok(result.ok);
  });

  test('parseSessionSnapshot accepts what snapshot() wrote', () => {
    const store = new SessionStore();
    const room = new RoomScript();
    const leg = sipLeg('inbound', 2);
    const egress = room.egress('egress_ended', 'EG_x', 5, 'EGRESS_FAILED');
    run(store, [room.started(0), room.joined(leg, 3, 'active'), egress, new RoomScript('gone').finished(4)]);
    const result = parseSessionSnapshot(JSON.parse(JSON.stringify(store.snapshot())));
    assert.ok(result.ok);
    const restored = new SessionStore();
    restored.restore(result.snapshot, RECEIVER_NOW_MS);
    assert.deepEqual(restored.snapshot(), store.snapshot());
    // The egress failure is remembered: a redelivery after the restart writes nothing.
    assert.deepEqual(run(restored, [egress]), []);
  });
});
