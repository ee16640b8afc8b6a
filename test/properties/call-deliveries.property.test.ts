// Every call scenario (src/livekit/scenarios.ts), delivered shuffled,
// duplicated and lossy, through the session store, several rooms
// interleaved. Only what no receiver could repair is held fixed: a room's
// room_finished comes after its other events, and a participant's leave
// after its own join and track events (one that arrives after the leave
// cannot revise a call.ended already written; a lost one is the lossy
// property's business).
//
//   - nothing lost, any such order, any duplicates: every leg ends exactly
//     as the scenario says (outcome, answered, reason, duration, talk time);
//   - with loss: each leg starts once and ends once when its leave or the
//     room's end arrived; a delivered leave decides the outcome whenever
//     the answer it needs (its track, or an outbound hangup) arrived too; a
//     leg that leaves dialing or ringing is never answered; an answered leg
//     connects its session; nothing follows a session's end.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { WebhookEvent } from '@livekit/protocol';
import type { ObsEvent } from '../../src/obs/schema.ts';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import type { JsonObject } from '../../src/livekit/samples.ts';
import { type ExpectedCall, SCENARIOS, type ScenarioRun } from '../../src/livekit/scenarios.ts';
import { decode, T0 } from '../obs/sessions.helpers.ts';

// Built once: the property replays the same ids whatever it shrinks to.
const PLAYED: readonly ScenarioRun[] = SCENARIOS.map((scenario, index) => scenario.build({ startS: T0 + index * 1000 }));
const DECODED = new Map<string, WebhookEvent>();
for (const played of PLAYED) for (const webhook of played.webhooks) DECODED.set(webhook.id as string, decode(webhook));

const participantOf = (webhook: JsonObject): string | undefined => (webhook.participant as { sid?: string } | undefined)?.sid;
const statusOf = (webhook: JsonObject): string | undefined => (webhook.participant as { attributes?: Record<string, string> } | undefined)?.attributes?.['sip.callStatus'];
const isLeave = (webhook: JsonObject) => webhook.event === 'participant_left' || webhook.event === 'participant_connection_aborted';

type Fate = 'once' | 'lost' | 'twice';

interface Delivery {
  readonly rooms: readonly number[];
  /** Per webhook of the chosen rooms, in order: a random position, its fate, and how much later a duplicate comes. */
  readonly positions: readonly number[];
  readonly fates: readonly Fate[];
  readonly later: readonly number[];
}

/**
 * The delivered webhooks: each room's webhooks at random positions, except
 * that a leave comes after its participant's join and track events and
 * room_finished after everything of its room; then loss and duplication.
 */
function deliveries({ rooms, positions, fates, later }: Delivery, lossy: boolean): JsonObject[] {
  const placed: Array<{ at: number; webhook: JsonObject }> = [];
  let index = 0;
  for (const room of rooms) {
    const webhooks = PLAYED[room]!.webhooks;
    const at = webhooks.map(() => positions[index++ % Math.max(positions.length, 1)] ?? 0);
    webhooks.forEach((webhook, own) => {
      if (!isLeave(webhook)) return;
      const sid = participantOf(webhook);
      for (let other = 0; other < webhooks.length; other++) {
        const before = webhooks[other]!.event === 'track_published' || webhooks[other]!.event === 'participant_joined';
        if (before && participantOf(webhooks[other]!) === sid) at[own] = Math.max(at[own]!, at[other]! + 0.5);
      }
    });
    const last = Math.max(...at) + 1;
    webhooks.forEach((webhook, own) => placed.push({ at: webhook.event === 'room_finished' ? last : at[own]!, webhook }));
  }
  placed.sort((a, b) => a.at - b.at);
  const out: JsonObject[] = [];
  const pending: Array<{ due: number; webhook: JsonObject }> = [];
  placed.forEach(({ webhook }, position) => {
    const fate = fates[position % Math.max(fates.length, 1)] ?? 'once';
    if (fate !== 'lost' || !lossy) out.push(webhook);
    if (fate === 'twice') pending.push({ due: out.length + (later[position % Math.max(later.length, 1)] ?? 0), webhook });
    for (const item of pending.filter((candidate) => candidate.due <= out.length)) {
      out.push(item.webhook);
      pending.splice(pending.indexOf(item), 1);
    }
  });
  for (const item of pending) out.push(item.webhook);
  return out;
}

function play(webhooks: readonly JsonObject[]): ObsEvent[] {
  const store = new SessionStore();
  const lines: ObsEvent[] = [];
  webhooks.forEach((webhook, index) => {
    const observed = store.observe(DECODED.get(webhook.id as string)!, 1_900_000_000_000 + index);
    lines.push(...observed.events);
    observed.commit();
  });
  return lines;
}

const ended = (lines: readonly ObsEvent[], call: ExpectedCall) => lines.filter((line) => line.event_type === 'call.ended' && line.participant_sid === call.participantSid);
const projection = (line: ObsEvent) => ({ direction: line.direction, outcome: line.outcome, answered: line.answered, reason: line.reason, duration: line.duration_ms, talk: line.talk_ms });
const expectedProjection = (call: ExpectedCall) => ({ direction: call.direction, outcome: call.outcome, answered: call.answered, reason: call.reason, duration: call.durationMs, talk: call.talkMs });

const deliveryArb: fc.Arbitrary<Delivery> = fc.record({
  rooms: fc.uniqueArray(fc.integer({ min: 0, max: PLAYED.length - 1 }), { minLength: 1, maxLength: 3 }),
  positions: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 45 }),
  fates: fc.array(fc.constantFrom<Fate>('once', 'once', 'lost', 'twice'), { maxLength: 45 }),
  later: fc.array(fc.integer({ min: 0, max: 8 }), { maxLength: 45 }),
});

const RUNS = { numRuns: 400 };

describe('call scenarios under any delivery', () => {
  test('nothing lost, any order a receiver can repair, any duplicates: every leg ends as the scenario says', () => {
    fc.assert(
      fc.property(deliveryArb, (delivery) => {
        const lines = play(deliveries(delivery, false));
        for (const room of delivery.rooms) {
          for (const call of PLAYED[room]!.calls) {
            const ends = ended(lines, call);
            assert.equal(ends.length, 1, `${SCENARIOS[room]!.name}: one call.ended`);
            assert.deepEqual(projection(ends[0]!), expectedProjection(call), SCENARIOS[room]!.name);
            const trouble = lines.filter((line) => line.event_type === 'provider.event' && line.participant_sid === call.participantSid);
            assert.equal(trouble.length, call.trunkFailure ? 1 : 0);
          }
        }
      }),
      RUNS,
    );
  });

  test('with loss: each leg ends once when its end arrived, and a delivered leave decides the outcome whenever its answer arrived too', () => {
    fc.assert(
      fc.property(deliveryArb, (delivery) => {
        const delivered = deliveries(delivery, true);
        const arrived = new Set(delivered.map((webhook) => webhook.id as string));
        const lines = play(delivered);

        const sessionStates = new Map<string, string[]>();
        for (const line of lines) {
          if (line.event_type === 'session.state_changed') sessionStates.set(line.session_id!, [...(sessionStates.get(line.session_id!) ?? []), line.to_state as string]);
          else assert.ok(!sessionStates.get(line.session_id!)?.includes('ended'), `${line.event_type} after its session ended`);
        }

        for (const room of delivery.rooms) {
          const played = PLAYED[room]!;
          const name = SCENARIOS[room]!.name;
          const finishArrived = arrived.has(played.webhooks.at(-1)!.id as string);
          for (const call of played.calls) {
            const own = played.webhooks.filter((webhook) => participantOf(webhook) === call.participantSid && arrived.has(webhook.id as string));
            const leave = own.find(isLeave);
            const joinOrLeave = own.some((webhook) => webhook.event === 'participant_joined' || isLeave(webhook));
            const trackArrived = own.some((webhook) => webhook.event === 'track_published');
            const starts = lines.filter((line) => line.event_type === 'call.started' && line.participant_sid === call.participantSid);
            const ends = ended(lines, call);
            assert.equal(starts.length, joinOrLeave ? 1 : 0, `${name}: call.started once when its join or leave arrived`);
            assert.equal(ends.length, joinOrLeave && (leave || finishArrived) ? 1 : 0, `${name}: call.ended once when its leave or room_finished arrived`);
            if (ends.length === 0) continue;
            const end = ends[0]!;

            if (leave) {
              const status = statusOf(leave);
              if (status === 'dialing' || status === 'ringing') assert.equal(end.answered, false, `${name}: left ${status}, never answered`);
              if (call.direction === 'outbound' && status === 'hangup') assert.equal(end.answered, true, `${name}: outbound hangup was answered`);
              if (trackArrived && status !== 'dialing' && status !== 'ringing') assert.equal(end.answered, true, `${name}: its track arrived, whatever the order`);
              // What could prove the answer, and when: an active join, the leg's track (LiveKit's times).
              const answerTimes = own
                .filter((webhook) => (webhook.event === 'participant_joined' && ['active', 'automation'].includes(statusOf(webhook) ?? '')) || webhook.event === 'track_published')
                .map((webhook) => Number(webhook.createdAt) * 1000);
              const answerArrived = answerTimes.length > 0 || (call.direction === 'outbound' && status === 'hangup');
              if (!call.answered || answerArrived) {
                const seen = projection(end);
                const wanted = expectedProjection(call);
                assert.deepEqual({ ...seen, talk: undefined }, { ...wanted, talk: undefined }, name);
                if (call.answered) {
                  // Talk time counts from the earliest answer that arrived; unknown (absent) when none carries a time.
                  const startMs = Number(leave.createdAt) * 1000 - call.durationMs;
                  const answeredAtMs = answerTimes.length > 0 ? Math.max(Math.min(...answerTimes), startMs) : undefined;
                  assert.equal(seen.talk, answeredAtMs === undefined ? undefined : Number(leave.createdAt) * 1000 - answeredAtMs, `${name}: talk time`);
                }
              }
            }
            if (end.answered) assert.ok(sessionStates.get(played.room.sid)?.includes('connected'), `${name}: an answered call connects its session`);
          }
        }
      }),
      RUNS,
    );
  });
});
