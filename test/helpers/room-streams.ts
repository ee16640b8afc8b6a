// Whole rooms as LiveKit sends them, for the tests that deliver many rooms
// at once: each scenario of test/obs/calls.test.ts (the telephony cases of
// docs/livekit-facts.md#telephony, WebRTC rooms, egress and ingress troubles) as one
// room's webhooks in room-queue order, with fresh SIDs and ids per room; and
// the reference a single embedded-store instance makes of them.

import { encodeBody, type JsonObject, livekitId } from '../../src/livekit/samples.ts';

export { seededRandom } from '../../src/livekit/samples.ts';
import { planOne } from './pipeline-driver.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { postSigned } from './daemon.ts';
import { agentParticipant, decode, RoomScript, sipLeg, standardParticipant, T0 } from '../obs/sessions.helpers.ts';

export type Scenario = (room: RoomScript) => JsonObject[];

const T0_MS = T0 * 1000;

export const SCENARIOS: ReadonlyArray<readonly [string, Scenario]> = [
  [
    'inbound answered, caller hangs up',
    (room) => {
      const agent = agentParticipant();
      const leg = sipLeg('inbound', 2);
      return [room.started(0), room.joined(agent, 1), room.joined(leg, 3, 'ringing'), room.trackPublished(agent, 4), room.trackPublished(leg, 10), room.left(leg, 70, 'CLIENT_INITIATED', 'hangup'), room.left(agent, 71, 'CLIENT_INITIATED'), room.finished(90)];
    },
  ],
  ['inbound cancelled while ringing', (room) => {
    const leg = sipLeg('inbound', 2);
    return [room.started(0), room.joined(leg, 3, 'ringing'), room.left(leg, 20, 'CLIENT_INITIATED', 'hangup'), room.finished(40)];
  }],
  ['inbound PIN rule, joins active', (room) => {
    const leg = sipLeg('inbound', 2);
    return [room.started(0), room.joined(leg, 5, 'active'), room.left(leg, 65, 'CLIENT_INITIATED', 'hangup'), room.finished(80)];
  }],
  ['outbound answered, participant removed', (room) => {
    const agent = agentParticipant();
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(agent, 1), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 12), room.left(leg, 100, 'PARTICIPANT_REMOVED', 'active'), room.finished(120)];
  }],
  ['outbound answered, room deleted with the call up', (room) => {
    const agent = agentParticipant();
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(agent, 1), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 12), room.finished(100)];
  }],
  ['outbound no answer', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 33, 'USER_UNAVAILABLE', 'ringing'), room.finished(60)];
  }],
  ['outbound rejected', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 6, 'USER_REJECTED', 'ringing')];
  }],
  ['outbound trunk failure', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'SIP_TRUNK_FAILURE', 'dialing')];
  }],
  ['outbound legacy trunk failure', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 4, 'CLIENT_INITIATED', 'dialing')];
  }],
  ['outbound aborted before media', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.aborted(leg, 3, 'CLIENT_INITIATED', 'dialing'), room.finished(30)];
  }],
  ['outbound answered, media timeout', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.left(leg, 50, 'CLIENT_INITIATED', 'active')];
  }],
  ['outbound dial tone, never answered', (room) => {
    const leg = sipLeg('outbound', 2);
    return [room.started(0), room.joined(leg, 3, 'dialing'), room.trackPublished(leg, 4), room.left(leg, 34, 'USER_UNAVAILABLE', 'ringing')];
  }],
  ['inbound answered, media failure', (room) => {
    const leg = sipLeg('inbound', 2);
    return [room.started(0), room.joined(leg, 3, 'ringing'), room.trackPublished(leg, 8), room.left(leg, 40, 'MEDIA_FAILURE', 'active')];
  }],
  ['two legs: a transfer', (room) => {
    const first = sipLeg('inbound', 2);
    const second = sipLeg('outbound', 30, '+14155550999');
    return [
      room.started(0),
      room.joined(first, 3, 'active'),
      room.joined(second, 31, 'dialing'),
      room.trackPublished(second, 40),
      room.left(first, 41, 'CLIENT_INITIATED', 'hangup'),
      room.left(second, 90, 'CLIENT_INITIATED', 'hangup'),
      room.finished(110),
    ];
  }],
  ['plain WebRTC room', (room) => {
    const agent = agentParticipant();
    const alice = standardParticipant('alice', T0_MS + 1000);
    const bob = standardParticipant('bob', T0_MS + 2000);
    return [room.started(0), room.joined(agent, 1), room.joined(alice, 2), room.trackPublished(alice, 3), room.joined(bob, 4), room.left(alice, 60, 'CLIENT_INITIATED'), room.left(bob, 61, 'CLIENT_INITIATED'), room.finished(82, 'ROOM_END_IDLE_TIMEOUT')];
  }],
  ['an agent alone', (room) => {
    const agent = agentParticipant();
    return [room.started(0), room.joined(agent, 1), room.left(agent, 30, 'CLIENT_INITIATED'), room.finished(50)];
  }],
  ['egress troubles', (room) => {
    const ok = livekitId('EG');
    const bad = livekitId('EG');
    return [
      room.started(0),
      room.egress('egress_started', ok, 1),
      room.egress('egress_ended', ok, 30, 'EGRESS_COMPLETE'),
      room.egress('egress_started', bad, 31),
      room.egress('egress_ended', bad, 40, 'EGRESS_FAILED', 'upload failed: 403'),
      // A duplicated egress run reports the same failure again (another event id): one provider line.
      room.egress('egress_ended', bad, 41, 'EGRESS_FAILED', 'upload failed: 403'),
      room.egress('egress_ended', livekitId('EG'), 51, 'EGRESS_ABORTED'),
      room.finished(60),
    ];
  }],
  ['ingress error', (room) => {
    const camera = livekitId('IN');
    return [room.ingress('ingress_started', camera, 1, 'ENDPOINT_PUBLISHING'), room.ingress('ingress_ended', camera, 20, 'ENDPOINT_ERROR', 'rtmp connection reset')];
  }],
];

/** One room's webhooks, as the JSON bodies LiveKit sends, in its queue's order. */
export interface RoomStream {
  readonly scenario: string;
  readonly sid: string;
  readonly bodies: readonly string[];
}

/** `count` rooms: every scenario at least once, then random ones. */
export function roomStreams(count: number, random: () => number): RoomStream[] {
  const rooms: RoomStream[] = [];
  for (let index = 0; index < count; index++) {
    const [scenario, build] = index < SCENARIOS.length ? SCENARIOS[index]! : SCENARIOS[Math.floor(random() * SCENARIOS.length)]!;
    const room = new RoomScript(`room-${index}`);
    rooms.push({ scenario, sid: room.room.sid, bodies: build(room).map((event) => encodeBody(event)) });
  }
  return rooms;
}

/** The fields an auditor compares on a derived line (call.*, session.*, provider.*). */
export const DERIVED_FIELDS = [
  'event_type',
  'session_id',
  'webhook_id',
  'participant_sid',
  'direction',
  'from',
  'to',
  'reason',
  'outcome',
  'answered',
  'duration_ms',
  'talk_ms',
  'from_state',
  'to_state',
  'provider',
  'error',
  'detail',
] as const;

export const isDerived = (eventType: string): boolean => eventType.startsWith('call.') || eventType.startsWith('session.') || eventType.startsWith('provider.');

/** A derived line as one comparable string. */
export function projectDerived(line: Record<string, unknown>): string {
  const projected: Record<string, unknown> = {};
  for (const field of DERIVED_FIELDS) if (line[field] !== undefined && line[field] !== null) projected[field] = line[field];
  return JSON.stringify(projected);
}

/** What one embedded-store instance writes for these rooms, each room's webhooks once, in order: the derived lines, projected. */
export function referenceLines(rooms: readonly RoomStream[], nowMs = Date.now()): string[] {
  const store = new MemoryStore();
  const lines: string[] = [];
  for (const room of rooms) {
    for (const body of room.bodies) {
      const planned = planOne(decode(JSON.parse(body) as JsonObject), nowMs, store);
      for (const line of planned.events) if (isDerived(line.event_type)) lines.push(projectDerived(line as unknown as Record<string, unknown>));
      planned.commit();
    }
  }
  return lines;
}

/** Counts of each distinct string. */
export function tally(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

export interface DeliveryReport {
  /** Webhook ids answered 200 (each once, however often it was sent). */
  readonly accepted: Set<string>;
  /** Webhook ids that got a 5xx or a connection error at least once before their 200. */
  readonly retried: Set<string>;
  /** Non-200 answers by status ("conn" for a connection error), and how many carried Retry-After. */
  readonly failures: Map<string, number>;
  retryAfterMissing: number;
}

export interface BurstOptions {
  /** Rooms whose queues run at once. */
  readonly concurrency: number;
  /** Picks the instance for one attempt (LiveKit's load balancer); `failed` is the one the previous attempt failed on. */
  readonly pick: (attempt: number, failed: string | undefined) => string;
  /** Called after each 200, with the number so far. */
  readonly onAccepted?: (accepted: number) => void;
  /** Give up on a webhook after this long (LiveKit drops events that waited 30 s). */
  readonly giveUpMs?: number;
}

/**
 * Sends the rooms as LiveKit does: each room's webhooks one at a time in
 * order, `concurrency` rooms at once; a 5xx or a connection error is
 * retried (here after 50 ms, to keep the test short) on whatever instance
 * `pick` names next.
 */
export async function sendBurst(rooms: readonly RoomStream[], options: BurstOptions): Promise<DeliveryReport> {
  const report: DeliveryReport = { accepted: new Set(), retried: new Set(), failures: new Map(), retryAfterMissing: 0 };
  const giveUpMs = options.giveUpMs ?? 30_000;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const room = rooms[next++];
      if (room === undefined) return;
      for (const body of room.bodies) {
        const id = (JSON.parse(body) as { id: string }).id;
        const started = Date.now();
        let failed: string | undefined;
        for (let attempt = 1; ; attempt++) {
          let status: string;
          const url = options.pick(attempt, failed);
          try {
            const answer = await postSigned(url, body);
            if (answer.status === 200) break;
            if (answer.status < 500) throw new Error(`webhook ${id} refused for good: ${answer.status} ${answer.text}`);
            status = String(answer.status);
            if (answer.headers['retry-after'] === undefined) report.retryAfterMissing++;
          } catch (error) {
            if (error instanceof Error && error.message.startsWith('webhook ')) throw error;
            status = 'conn';
          }
          failed = url;
          report.failures.set(status, (report.failures.get(status) ?? 0) + 1);
          report.retried.add(id);
          if (Date.now() - started > giveUpMs) throw new Error(`webhook ${id} not accepted within ${giveUpMs} ms`);
          // LiveKit waits 1, 2, 4, 8 s or Retry-After; the test only needs the retry to come later.
          await new Promise((resolve) => setTimeout(resolve, status === 'conn' ? 5 : 50));
        }
        report.accepted.add(id);
        options.onAccepted?.(report.accepted.size);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return report;
}
