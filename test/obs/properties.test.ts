// Property tests (fast-check): for any delivery order LiveKit's queues allow
// (one FIFO per room for its room, participant and track events; one per
// egress), with any single events lost or delivered twice, failed writes
// retried, or a restart in between:
//   - no session goes back, nothing follows its end,
//   - each call starts once, is answered at most once and ends at most once,
//     exactly once when its leave or the room's room_finished arrived,
//   - no derived line repeats,
//   - durations are LiveKit's, whatever the delivery.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../../src/obs/schema.ts';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import type { JsonObject, ParticipantSpec } from '../../src/livekit/samples.ts';
import { decode, RoomScript, T0 } from './sessions.helpers.ts';

// ------------------------------------------------------------------ worlds

type Kind = 'standard' | 'agent' | 'sip-in' | 'sip-out';

interface Actor {
  readonly kind: Kind;
  readonly joinAt: number;
  /** aborted: never became active (participant_connection_aborted only). */
  readonly ending: 'left' | 'aborted' | 'stays';
  readonly stay: number;
  readonly publishes: boolean;
  readonly publishAfter: number;
  readonly reason: string;
  readonly joinStatus: string;
  readonly endStatus: string;
}

interface RoomPlan {
  readonly actors: readonly Actor[];
  readonly finishes: boolean;
  readonly egress: ReadonlyArray<{ readonly startAt: number; readonly endAfter: number; readonly status: string }>;
}

const REASONS = ['CLIENT_INITIATED', 'USER_UNAVAILABLE', 'USER_REJECTED', 'SIP_TRUNK_FAILURE', 'MEDIA_FAILURE', 'PARTICIPANT_REMOVED', 'ROOM_DELETED', 'UNKNOWN_REASON', 'CONNECTION_TIMEOUT'];

const actorArb: fc.Arbitrary<Actor> = fc.record({
  kind: fc.constantFrom<Kind>('standard', 'agent', 'sip-in', 'sip-out', 'sip-out'),
  joinAt: fc.integer({ min: 1, max: 60 }),
  ending: fc.constantFrom<Actor['ending']>('left', 'left', 'aborted', 'stays'),
  stay: fc.integer({ min: 1, max: 600 }),
  publishes: fc.boolean(),
  publishAfter: fc.integer({ min: 0, max: 30 }),
  reason: fc.constantFrom(...REASONS),
  joinStatus: fc.constantFrom('dialing', 'ringing', 'active', 'automation'),
  endStatus: fc.constantFrom('dialing', 'ringing', 'active', 'automation', 'hangup', ''),
});

const roomArb: fc.Arbitrary<RoomPlan> = fc.record({
  actors: fc.array(actorArb, { maxLength: 5 }),
  finishes: fc.boolean(),
  egress: fc.array(
    fc.record({
      startAt: fc.integer({ min: 0, max: 100 }),
      endAfter: fc.integer({ min: 1, max: 900 }),
      status: fc.constantFrom('EGRESS_COMPLETE', 'EGRESS_FAILED', 'EGRESS_ABORTED', 'EGRESS_LIMIT_REACHED'),
    }),
    { maxLength: 2 },
  ),
});

interface Built {
  /** One FIFO per room and per egress, in LiveKit's send order. */
  readonly queues: JsonObject[][];
  readonly rooms: ReadonlyArray<{ readonly sid: string; readonly finishId: string | undefined }>;
  /** SIP legs: participant SID → what the oracle needs. */
  readonly legs: Map<string, { readonly roomSid: string; readonly joinedAtMs: number; readonly leaveIds: string[]; readonly endSecond: number | undefined; readonly finishSecond: number | undefined }>;
  readonly decoded: Map<string, WebhookEvent>;
}

function build(plans: readonly RoomPlan[]): Built {
  const queues: JsonObject[][] = [];
  const rooms: Array<{ sid: string; finishId: string | undefined }> = [];
  const legs: Built['legs'] = new Map();
  plans.forEach((plan, roomIndex) => {
    const script = new RoomScript(`room-${roomIndex}`, { sid: `RM_room${roomIndex}`, name: roomIndex % 2 ? `call_+1415555${String(roomIndex).padStart(4, '0')}_x` : `room-${roomIndex}`, creationTime: T0 });
    const timed: Array<{ at: number; order: number; json: JsonObject }> = [];
    let order = 0;
    const add = (at: number, json: JsonObject) => timed.push({ at, order: order++, json });
    add(0, script.started(0));
    let lastActivity = 1;
    plan.actors.forEach((actor, actorIndex) => {
      const sid = `PA_r${roomIndex}a${actorIndex}`;
      const sip = actor.kind === 'sip-in' || actor.kind === 'sip-out';
      const participant: ParticipantSpec = {
        sid,
        identity: sip ? `sip_+1415555${String(roomIndex * 10 + actorIndex).padStart(4, '0')}` : `${actor.kind}-${actorIndex}`,
        ...(actor.kind === 'agent' ? { kind: 'AGENT' as const } : sip ? { kind: 'SIP' as const } : {}),
        joinedAtMs: (T0 + actor.joinAt) * 1000 - 400,
        ...(sip
          ? {
              attributes: {
                'sip.callID': `SCL_r${roomIndex}a${actorIndex}`,
                'sip.callStatus': actor.joinStatus,
                'sip.phoneNumber': '+14155550123',
                ...(actor.kind === 'sip-in' ? { 'sip.ruleID': 'SDR_rule' } : {}),
                'sip.trunkID': 'ST_trunk',
                'sip.trunkPhoneNumber': '+31201234589',
              },
            }
          : {}),
      };
      const endAt = actor.joinAt + actor.stay;
      const reason = actor.reason === 'UNKNOWN_REASON' ? undefined : actor.reason;
      const endStatus = sip ? actor.endStatus || undefined : undefined;
      const leaveIds: string[] = [];
      if (actor.ending === 'aborted') {
        const json = script.aborted(participant, actor.joinAt, reason, endStatus);
        if (sip && !endStatus) delete (json.participant as { attributes: Record<string, string> }).attributes['sip.callStatus'];
        leaveIds.push(json.id as string);
        add(actor.joinAt, json);
        lastActivity = Math.max(lastActivity, actor.joinAt);
      } else {
        add(actor.joinAt, script.joined(participant, actor.joinAt));
        const publishAt = Math.min(actor.joinAt + actor.publishAfter, actor.ending === 'left' ? endAt : Infinity);
        if (actor.publishes) add(publishAt, script.trackPublished(participant, publishAt));
        if (actor.ending === 'left') {
          const json = script.left(participant, endAt, reason, endStatus);
          if (sip && !endStatus) delete (json.participant as { attributes: Record<string, string> }).attributes['sip.callStatus'];
          leaveIds.push(json.id as string);
          add(endAt, json);
          lastActivity = Math.max(lastActivity, endAt);
        } else {
          lastActivity = Math.max(lastActivity, actor.joinAt + actor.publishAfter);
        }
      }
      if (sip) {
        legs.set(sid, {
          roomSid: script.room.sid,
          joinedAtMs: participant.joinedAtMs,
          leaveIds,
          endSecond: actor.ending === 'stays' ? undefined : actor.ending === 'aborted' ? actor.joinAt : endAt,
          finishSecond: undefined,
        });
      }
    });
    let finishId: string | undefined;
    if (plan.finishes) {
      const finishAt = lastActivity + 5;
      const json = script.finished(finishAt);
      finishId = json.id as string;
      add(finishAt, json);
      for (const [sid, leg] of legs) if (leg.roomSid === script.room.sid) legs.set(sid, { ...leg, finishSecond: finishAt });
    }
    timed.sort((a, b) => a.at - b.at || a.order - b.order);
    queues.push(timed.map((item) => item.json));
    rooms.push({ sid: script.room.sid, finishId });
    plan.egress.forEach((egress, egressIndex) => {
      const id = `EG_r${roomIndex}e${egressIndex}`;
      queues.push([script.egress('egress_started', id, egress.startAt), script.egress('egress_ended', id, egress.startAt + egress.endAfter, egress.status, 'boom')]);
    });
  });
  const decoded = new Map<string, WebhookEvent>();
  for (const queue of queues) for (const json of queue) decoded.set(json.id as string, decode(json));
  return { queues, rooms, legs, decoded };
}

/** Merges the FIFO queues in the order `picks` chooses: any interleaving LiveKit's per-resource queues allow. */
function interleave(queues: readonly JsonObject[][], picks: readonly number[]): JsonObject[] {
  const heads = queues.map(() => 0);
  const out: JsonObject[] = [];
  let pick = 0;
  for (;;) {
    const ready = queues.map((queue, index) => index).filter((index) => heads[index]! < queues[index]!.length);
    if (ready.length === 0) return out;
    const chosen = ready[(picks[pick++ % Math.max(picks.length, 1)] ?? 0) % ready.length]!;
    out.push(queues[chosen]![heads[chosen]!++]!);
  }
}

type Fate = 'once' | 'lost' | 'twice';

/** Applies loss and duplication: a duplicate arrives again `later` deliveries afterwards (another URL, a retry). */
function perturb(order: readonly JsonObject[], fates: readonly Fate[], later: readonly number[]): JsonObject[] {
  const out: Array<JsonObject | undefined> = [];
  const pending: Array<{ at: number; json: JsonObject }> = [];
  order.forEach((json, index) => {
    const fate = fates[index % Math.max(fates.length, 1)] ?? 'once';
    if (fate !== 'lost') out.push(json);
    if (fate === 'twice') pending.push({ at: out.length + (later[index % Math.max(later.length, 1)] ?? 0), json });
    for (const item of pending.filter((candidate) => candidate.at <= out.length)) {
      out.push(item.json);
      pending.splice(pending.indexOf(item), 1);
    }
  });
  for (const item of pending) out.push(item.json);
  return out.filter((json): json is JsonObject => json !== undefined);
}

// ------------------------------------------------------------------ runs

const NOW_MS = 1_900_000_000_000;

interface Options {
  readonly dedup: boolean;
  /** Delivery indexes whose first write fails (observe, no commit; LiveKit retries the same event). */
  readonly failures?: ReadonlySet<number>;
  /** Delivery index before which the daemon restarts through its state file. */
  readonly restartAt?: number;
}

function deliver(built: Built, deliveries: readonly JsonObject[], options: Options): ObsEvent[] {
  const sessions = new SessionStore();
  const lines: ObsEvent[] = [];
  deliveries.forEach((json, index) => {
    if (index === options.restartAt) sessions.restart(NOW_MS + index);
    const event = built.decoded.get(json.id as string)!;
    const nowMs = NOW_MS + index;
    if (options.failures?.has(index)) {
      const before = JSON.stringify(sessions.snapshot());
      void sessions.observe(event, nowMs, { dedup: options.dedup }); // written nowhere: the sink failed, the webhook is answered 503
      assert.equal(JSON.stringify(sessions.snapshot()), before, 'a failed write changed the state');
    }
    const observed = sessions.observe(event, nowMs, { dedup: options.dedup });
    lines.push(...observed.events);
    observed.commit();
  });
  return lines;
}

const RANK: Record<string, number> = { created: 0, connected: 1, ended: 2 };

/** The invariants that must hold for every delivery. */
function checkInvariants(built: Built, deliveries: readonly JsonObject[], lines: readonly ObsEvent[]): void {
  const delivered = new Set(deliveries.map((json) => json.id as string));
  const sessionState = new Map<string, string>();
  const callPhase = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const line of lines) {
    const key = [line.event_type, line.session_id, line.participant_sid, line.to_state, line.provider, line.provider ? line.detail : ''].join('|');
    assert.ok(!seen.has(key), `line repeated: ${key}`);
    seen.add(key);

    if (line.event_type === 'session.state_changed') {
      const previous = sessionState.get(line.session_id!);
      assert.equal(line.from_state, previous, `session ${line.session_id} from_state`);
      assert.ok(previous === undefined ? line.to_state === 'created' : RANK[line.to_state as string]! > RANK[previous]!, `session went ${previous} → ${line.to_state}`);
      sessionState.set(line.session_id!, line.to_state as string);
    } else if (line.event_type.startsWith('call.')) {
      assert.notEqual(sessionState.get(line.session_id!), 'ended', `${line.event_type} after the session ended`);
      const phases = callPhase.get(line.participant_sid as string) ?? [];
      const expectedNext = phases.length === 0 ? ['call.started'] : phases.at(-1) === 'call.started' ? ['call.answered', 'call.ended'] : phases.at(-1) === 'call.answered' ? ['call.ended'] : [];
      assert.ok(expectedNext.includes(line.event_type), `${line.event_type} after ${phases.join(',') || 'nothing'}`);
      phases.push(line.event_type);
      callPhase.set(line.participant_sid as string, phases);
      if (line.event_type === 'call.ended') {
        assert.ok(typeof line.duration_ms === 'number' && line.duration_ms >= 0);
        if (line.talk_ms !== undefined) assert.ok((line.talk_ms as number) <= (line.duration_ms as number));
        if (line.answered) assert.ok(phases.includes('call.answered'), 'answered without call.answered');
        // The oracle: LiveKit's own times, whatever the delivery.
        const leg = built.legs.get(line.participant_sid as string)!;
        const endSecond = line.reason === 'room_finished' ? leg.finishSecond! : leg.endSecond!;
        assert.equal(line.duration_ms, Math.max(0, (T0 + endSecond) * 1000 - leg.joinedAtMs));
      }
    }
    if (line.event_type !== 'provider.event' || line.provider !== 'ingress') {
      assert.ok(built.rooms.some((room) => room.sid === line.session_id), 'every derived line names its room SID');
    }
  }
  // Exactly once: a call that started ends when its leave or room_finished was delivered.
  for (const [sid, phases] of callPhase) {
    const leg = built.legs.get(sid)!;
    const finishId = built.rooms.find((room) => room.sid === leg.roomSid)!.finishId;
    const endDelivered = leg.leaveIds.some((id) => delivered.has(id)) || (finishId !== undefined && delivered.has(finishId));
    assert.equal(phases.filter((phase) => phase === 'call.ended').length, endDelivered ? 1 : 0, `call ${sid} ends ${endDelivered ? 'once' : 'never'}`);
  }
  // A finished room's session ended.
  for (const room of built.rooms) {
    if (room.finishId && delivered.has(room.finishId)) assert.equal(sessionState.get(room.sid), 'ended');
  }
}

const worldArb = fc.record({
  plans: fc.array(roomArb, { minLength: 1, maxLength: 3 }),
  picks: fc.array(fc.nat(), { maxLength: 80 }),
  picks2: fc.array(fc.nat(), { maxLength: 80 }),
  fates: fc.array(fc.constantFrom<Fate>('once', 'once', 'once', 'lost', 'twice'), { maxLength: 80 }),
  later: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 80 }),
});

const RUNS = { numRuns: 150 };

describe('lifecycle properties under LiveKit delivery', () => {
  test('through the pipeline (dedup by id): invariants hold, and duplicates change nothing', () => {
    fc.assert(
      fc.property(worldArb, ({ plans, picks, fates, later }) => {
        const built = build(plans);
        const order = interleave(built.queues, picks);
        const deliveries = perturb(order, fates, later);
        const lines = deliver(built, deliveries, { dedup: true });
        checkInvariants(built, deliveries, lines);
        const withoutDuplicates = perturb(order, fates.map((fate) => (fate === 'twice' ? 'once' : fate)), later);
        assert.deepEqual(lines, deliver(built, withoutDuplicates, { dedup: true }));
      }),
      RUNS,
    );
  });

  test('the store alone (a duplicate outside the dedup window): still no repeat, no regression', () => {
    fc.assert(
      fc.property(worldArb, ({ plans, picks, fates, later }) => {
        const built = build(plans);
        const deliveries = perturb(interleave(built.queues, picks), fates, later);
        checkInvariants(built, deliveries, deliver(built, deliveries, { dedup: false }));
      }),
      RUNS,
    );
  });

  test("each session's lines do not depend on how the rooms' and egress queues interleave", () => {
    fc.assert(
      fc.property(worldArb, ({ plans, picks, picks2 }) => {
        const built = build(plans);
        const bySession = (lines: ObsEvent[]) => {
          const groups = new Map<string, ObsEvent[]>();
          // One group per queue: the room's own lines, and each egress's provider lines.
          for (const line of lines) {
            const queue = `${line.session_id}|${line.provider === 'egress' ? line.detail : ''}`;
            groups.set(queue, [...(groups.get(queue) ?? []), line]);
          }
          return [...groups].sort(([a], [b]) => a.localeCompare(b));
        };
        const first = deliver(built, interleave(built.queues, picks), { dedup: true });
        const second = deliver(built, interleave(built.queues, picks2), { dedup: true });
        assert.deepEqual(bySession(first), bySession(second));
      }),
      RUNS,
    );
  });

  test('failed writes retried by LiveKit, and a restart through the state file, write exactly the lines of an undisturbed run', () => {
    fc.assert(
      fc.property(worldArb, fc.array(fc.nat(), { maxLength: 10 }), fc.nat(), ({ plans, picks, fates, later }, failing, restart) => {
        const built = build(plans);
        const deliveries = perturb(interleave(built.queues, picks), fates, later);
        const undisturbed = deliver(built, deliveries, { dedup: true });
        const failures = new Set(failing.map((index) => index % Math.max(deliveries.length, 1)));
        const disturbed = deliver(built, deliveries, { dedup: true, failures, restartAt: restart % (deliveries.length + 1) });
        assert.deepEqual(disturbed, undisturbed);
      }),
      RUNS,
    );
  });
});
