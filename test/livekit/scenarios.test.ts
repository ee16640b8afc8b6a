// Every scenario `control-plane simulate` offers, played in LiveKit's order
// through the session store: each SIP leg writes call.started, at most one
// call.answered and one call.ended with exactly the outcome, durations and
// provider event the scenario promises, and the room always finishes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { findScenario, SCENARIOS, SIMULATED_ROOM_PREFIX } from '../../src/livekit/scenarios.ts';
import { run, T0 } from '../obs/sessions.helpers.ts';

describe('call scenarios in LiveKit order', () => {
  for (const scenario of SCENARIOS) {
    test(`${scenario.name}: ${scenario.summary}`, () => {
      const played = scenario.build({ startS: T0 });
      assert.ok(played.room.name.startsWith(`${SIMULATED_ROOM_PREFIX}${scenario.name}-`), played.room.name);
      assert.equal(played.webhooks[0]!.event, 'room_started');
      assert.equal(played.webhooks.at(-1)!.event, 'room_finished', 'a simulated room always finishes');
      const createdAt = played.webhooks.map((webhook) => Number(webhook.createdAt));
      assert.deepEqual(createdAt, [...createdAt].sort((a, b) => a - b), 'createdAt never goes back in LiveKit order');

      const lines = run(new SessionStore(), played.webhooks);
      for (const call of played.calls) {
        const own = lines.filter((line) => line.participant_sid === call.participantSid);
        const calls = own.filter((line) => line.event_type.startsWith('call.')).map((line) => line.event_type);
        // A dial tone writes call.answered before the leg's end shows it was not one.
        assert.deepEqual(calls, call.answered || scenario.name === 'outbound-dial-tone' ? ['call.started', 'call.answered', 'call.ended'] : ['call.started', 'call.ended']);
        const ended = own.find((line) => line.event_type === 'call.ended')!;
        assert.deepEqual(
          { direction: ended.direction, outcome: ended.outcome, answered: ended.answered, reason: ended.reason, durationMs: ended.duration_ms, talkMs: ended.talk_ms },
          { direction: call.direction, outcome: call.outcome, answered: call.answered, reason: call.reason, durationMs: call.durationMs, talkMs: call.talkMs },
        );
        const trouble = own.filter((line) => line.event_type === 'provider.event');
        assert.deepEqual(trouble.map((line) => [line.provider, line.reason]), call.trunkFailure ? [['sip', 'sip_trunk_failure']] : []);
      }
      const sessions = lines.filter((line) => line.event_type === 'session.state_changed').map((line) => line.to_state);
      assert.equal(sessions.at(-1), 'ended');
    });
  }

  test('the scenarios cover every outcome and both trunk-failure generations', () => {
    const played = SCENARIOS.flatMap((scenario) => scenario.build({ startS: T0 }).calls);
    assert.deepEqual([...new Set(played.map((call) => call.outcome))].sort(), ['cancelled', 'completed', 'failed', 'no_answer', 'rejected']);
    const failures = SCENARIOS.filter((scenario) => scenario.build({ startS: T0 }).calls.some((call) => call.trunkFailure)).map((scenario) => scenario.name);
    assert.deepEqual(failures, ['trunk-failure', 'trunk-failure-legacy', 'trunk-failure-fast']);
    for (const name of ['inbound-answered', 'inbound-abandoned', 'outbound-answered', 'outbound-no-answer', 'outbound-busy']) assert.ok(findScenario(name), name);
  });
});
