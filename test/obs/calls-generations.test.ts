// docs/livekit-facts.md#telephony "How SIP outcomes reach disconnectReason", row by
// row, for both server generations: servers and SIP bridges up to 2026-08
// (the right column) and from 2026-09 (livekit/sip#861, livekit/livekit#4890:
// the bridge's own reason reaches the webhook). The same call must get the
// outcome the table promises under either generation, and a trunk failure
// must be a provider event under both whenever the webhook allows telling.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { OUTCOME_RULES, SIP_PROVIDER_RULES } from '../../src/obs/transitions.ts';
import { RoomScript, run, sipLeg } from './sessions.helpers.ts';

interface Generation {
  readonly reason: string;
  readonly outcome: string;
  /** provider.event reason, or null for none. */
  readonly provider: string | null;
}

interface Row {
  readonly what: string;
  readonly direction: 'inbound' | 'outbound';
  /** Whether the leg was answered. */
  readonly answered: boolean;
  /** Whether a track_published of the leg was seen (phone audio flowed); default: answered. */
  readonly audio?: boolean;
  /** sip.callStatus in the participant_left snapshot (failures leave the last one). */
  readonly statusAtEnd: string;
  readonly newer: Generation;
  readonly older: Generation;
}

const same = (reason: string, outcome: string, provider: string | null = null): { newer: Generation; older: Generation } => ({
  newer: { reason, outcome, provider },
  older: { reason, outcome, provider },
});

const ROWS: Row[] = [
  { what: '401/403/407, 486 busy, 488, 6xx, auth failure, carrier block', direction: 'outbound', answered: false, statusAtEnd: 'ringing', ...same('USER_REJECTED', 'rejected') },
  { what: '404, 408, 480, no answer within the ringing timeout', direction: 'outbound', answered: false, statusAtEnd: 'ringing', ...same('USER_UNAVAILABLE', 'no_answer') },
  {
    what: 'other 4xx; dialing aborted',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'ringing',
    newer: { reason: 'USER_UNAVAILABLE', outcome: 'no_answer', provider: null },
    older: { reason: 'USER_REJECTED', outcome: 'rejected', provider: null },
  },
  {
    what: '5xx from the carrier, network/DNS/address errors',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'dialing',
    newer: { reason: 'SIP_TRUNK_FAILURE', outcome: 'failed', provider: 'sip_trunk_failure' },
    older: { reason: 'CLIENT_INITIATED', outcome: 'failed', provider: 'sip_trunk_failure' },
  },
  {
    what: 'INVITE got no final response (older servers cannot tell it from no answer)',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'dialing',
    newer: { reason: 'SIP_TRUNK_FAILURE', outcome: 'failed', provider: 'sip_trunk_failure' },
    older: { reason: 'USER_UNAVAILABLE', outcome: 'no_answer', provider: null },
  },
  {
    what: 'carrier CPS/concurrent call limit exceeded (older servers: looks rejected)',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'dialing',
    newer: { reason: 'SIP_TRUNK_FAILURE', outcome: 'failed', provider: 'sip_trunk_failure' },
    older: { reason: 'USER_REJECTED', outcome: 'rejected', provider: null },
  },
  {
    what: 'codec/encryption mismatch',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'ringing',
    newer: { reason: 'MEDIA_FAILURE', outcome: 'failed', provider: 'media_failure' },
    older: { reason: 'USER_REJECTED', outcome: 'rejected', provider: null },
  },
  { what: 'answered, then the phone hangs up (BYE)', direction: 'outbound', answered: true, statusAtEnd: 'hangup', ...same('CLIENT_INITIATED', 'completed') },
  {
    what: 'answered, then a media timeout',
    direction: 'outbound',
    answered: true,
    statusAtEnd: 'active',
    newer: { reason: 'UNKNOWN_REASON', outcome: 'completed', provider: null },
    older: { reason: 'CLIENT_INITIATED', outcome: 'completed', provider: null },
  },
  {
    what: 'request deadline exceeded before an answer (older servers: indistinguishable from a trunk failure)',
    direction: 'outbound',
    answered: false,
    statusAtEnd: 'ringing',
    newer: { reason: 'UNKNOWN_REASON', outcome: 'failed', provider: null },
    older: { reason: 'CLIENT_INITIATED', outcome: 'failed', provider: 'sip_trunk_failure' },
  },
  { what: 'answered, then the room is deleted', direction: 'outbound', answered: true, statusAtEnd: 'active', ...same('ROOM_DELETED', 'completed') },
  { what: 'removed by the agent while ringing', direction: 'outbound', answered: false, statusAtEnd: 'ringing', ...same('PARTICIPANT_REMOVED', 'failed') },
  {
    what: 'answered, no track event seen, then our side ends it with an end-call request (outbound hangup proves the answer)',
    direction: 'outbound',
    answered: true,
    audio: false,
    statusAtEnd: 'hangup',
    ...same('CLIENT_INITIATED', 'completed'),
  },
  { what: 'inbound: the caller hangs up while it rings', direction: 'inbound', answered: false, statusAtEnd: 'hangup', ...same('CLIENT_INITIATED', 'cancelled') },
  { what: 'inbound: answered, the caller hangs up', direction: 'inbound', answered: true, statusAtEnd: 'hangup', ...same('CLIENT_INITIATED', 'completed') },
  { what: 'inbound: nobody answered before the ringing timeout', direction: 'inbound', answered: false, statusAtEnd: 'ringing', ...same('CLIENT_INITIATED', 'failed') },
  { what: 'inbound: answered, removed by the agent', direction: 'inbound', answered: true, statusAtEnd: 'active', ...same('PARTICIPANT_REMOVED', 'completed') },
];

function play(row: Row, generation: Generation) {
  const room = new RoomScript();
  const leg = sipLeg(row.direction, 2);
  const events = [room.started(0), room.joined(leg, 3, row.direction === 'inbound' ? 'ringing' : 'dialing')];
  if (row.audio ?? row.answered) events.push(room.trackPublished(leg, 10));
  events.push(room.left(leg, 40, generation.reason === 'UNKNOWN_REASON' ? undefined : generation.reason, row.statusAtEnd));
  return run(new SessionStore(), events);
}

describe('SIP outcomes under both server generations (docs/livekit-facts.md#telephony)', () => {
  for (const row of ROWS) {
    for (const [name, generation] of [
      ['from 2026-09', row.newer],
      ['up to 2026-08', row.older],
    ] as const) {
      test(`${row.what} — ${name}: ${generation.reason} → ${generation.outcome}${generation.provider ? ` + provider ${generation.provider}` : ''}`, () => {
        const lines = play(row, generation);
        const ended = lines.filter((line) => line.event_type === 'call.ended');
        assert.equal(ended.length, 1);
        assert.equal(ended[0]!.reason, generation.reason.toLowerCase());
        assert.equal(ended[0]!.outcome, generation.outcome);
        assert.equal(ended[0]!.answered, row.answered);
        assert.equal(ended[0]!.direction, row.direction);
        assert.equal(ended[0]!.talk_ms !== undefined, row.audio ?? row.answered, 'talk_ms exactly when the answer time is known (a track event)');
        const providers = lines.filter((line) => line.event_type === 'provider.event');
        assert.deepEqual(
          providers.map((line) => [line.provider, line.reason, line.level]),
          generation.provider ? [['sip', generation.provider, 'warn']] : [],
        );
      });
    }
  }

  test('every outcome rule and every SIP provider rule is exercised by the table above', () => {
    const used = new Set<string>();
    for (const row of ROWS) {
      for (const generation of [row.newer, row.older]) {
        const facts = {
          direction: row.direction,
          answered: row.answered,
          reason: generation.reason.toLowerCase(),
          lastStatus: row.statusAtEnd,
        };
        used.add(`outcome:${OUTCOME_RULES.findIndex((rule) => rule.matches(facts))}`);
        const provider = SIP_PROVIDER_RULES.findIndex((rule) => rule.matches(facts));
        if (provider !== -1) used.add(`provider:${provider}`);
      }
    }
    for (let index = 0; index < OUTCOME_RULES.length; index++) assert.ok(used.has(`outcome:${index}`), `outcome rule "${OUTCOME_RULES[index]!.when}" untested`);
    for (let index = 0; index < SIP_PROVIDER_RULES.length; index++) {
      assert.ok(used.has(`provider:${index}`), `provider rule "${SIP_PROVIDER_RULES[index]!.when}" untested`);
    }
  });
});
