// Group commit (src/output/group-commit.ts): writing the webhooks of one
// event-loop turn together must produce exactly the output and the state of
// writing them one at a time, also when writes fail and LiveKit retries.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { WebhookEvent } from '@livekit/protocol';
import { SessionStore, type SessionStoreOptions } from '../../src/obs/sessions.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import { RecentIds } from '../../src/store/recent-ids.ts';
import { GroupCommit, type GroupResult } from '../../src/output/group-commit.ts';
import { mapVerifiedWebhook, stateKeysOf, type WebhookOutcome } from '../../src/pipeline/pipeline.ts';
import { envelope, type JsonObject, newRoom, roomJson, sampleWebhook, sipParticipant } from '../../src/livekit/samples.ts';
import { decode, RoomScript } from '../obs/sessions.helpers.ts';
import { realishEvents } from '../helpers/event-streams.ts';
import { MemorySink } from '../helpers/memory-sink.ts';

const NOW_MS = Date.UTC(2026, 10, 30, 12, 0, 0);
const SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? '1');

interface World {
  readonly sink: MemorySink;
  readonly writer: LineWriter;
  readonly sessions: SessionStore;
  readonly recentIds: RecentIds;
}

function world(failing?: () => boolean, options?: SessionStoreOptions): World {
  const sink = new MemorySink(failing);
  return { sink, writer: new LineWriter(sink, { clock: () => NOW_MS }), sessions: new SessionStore(options), recentIds: new RecentIds() };
}

/** A group commit over `w` whose flush runs only when the test calls it. */
function grouped(w: World): { group: GroupCommit; map: (event: WebhookEvent, nowMs: number) => WebhookOutcome; writeFailures: number[] } {
  const writeFailures: number[] = [];
  const group = new GroupCommit(w.writer, w.sessions, () => {}, (_error, webhooks) => writeFailures.push(webhooks));
  const context = { recentIds: w.recentIds, sessions: w.sessions, beforeMapping: (keys: readonly string[]) => group.beforeMapping(keys) };
  return { group, map: (event, nowMs) => mapVerifiedWebhook(event, nowMs, context), writeFailures };
}

/** The one-at-a-time path: map, write, commit. A failed write leaves nothing in the output and commits nothing. */
function oneAtATime(w: World, event: WebhookEvent, nowMs: number, writeFails = false): void {
  const outcome = mapVerifiedWebhook(event, nowMs, w);
  if (writeFails) return;
  assert.equal(w.writer.write(outcome.events), null);
  outcome.commit();
}

/**
 * Feeds a stream through a group commit: flushes where the stream says and
 * wherever a conflict forces one; a webhook whose write failed is retried
 * once at the end, as LiveKit retries a 503. Returns the order in which
 * webhooks were mapped, which of them failed, and the write (group) each
 * went out in.
 */
function runGrouped(deliveries: ReadonlyArray<{ json: JsonObject; flushAfter: boolean }>, failPattern: readonly boolean[], options?: SessionStoreOptions) {
  let writes = 0;
  const g = world(() => failPattern[writes++ % failPattern.length]!, options);
  const { group, map } = grouped(g);
  const queue = deliveries.map(({ json, flushAfter }) => ({ event: decode(json), flushAfter, retry: false }));
  const processed: Array<{ event: WebhookEvent; nowMs: number }> = [];
  const failed = new Set<number>();
  const groupOf: number[] = [];
  const settledCount = new Map<number, number>();
  for (let index = 0; index < queue.length || group.pending > 0; index++) {
    // The stream is done but a pending group may still fail and bring retries.
    if (index === queue.length) {
      group.flush();
      index--;
      continue;
    }
    const { event, flushAfter, retry } = queue[index]!;
    const nowMs = NOW_MS + index * 1000;
    processed.push({ event, nowMs });
    group.add(map(event, nowMs), (result) => {
      settledCount.set(index, (settledCount.get(index) ?? 0) + 1);
      groupOf[index] = writes;
      if (result.kind === 'written') return;
      assert.equal(result.kind, 'output_failed');
      failed.add(index);
      if (!retry) queue.push({ event, flushAfter: true, retry: true });
    });
    if (flushAfter) group.flush();
  }
  assert.equal(settledCount.size, queue.length, 'every webhook settled');
  assert.ok([...settledCount.values()].every((count) => count === 1), 'settled exactly once');
  return { world: g, processed, failed, groupOf };
}

function assertSameWorld(grouped: World, reference: World): void {
  assert.equal(grouped.sink.text, reference.sink.text);
  assert.deepEqual(grouped.sessions.snapshot(), reference.sessions.snapshot());
  assert.deepEqual(grouped.recentIds.entries(), reference.recentIds.entries());
  assert.equal(grouped.sessions.evictedSessions, reference.sessions.evictedSessions);
}

function settleRecorder(): { results: GroupResult[]; settle: (result: GroupResult) => void } {
  const results: GroupResult[] = [];
  return { results, settle: (result) => results.push(result) };
}

describe('group commit', () => {
  const delivery = fc.record({ json: realishEvents(NOW_MS), flushAfter: fc.boolean() });
  const stream = fc.array(delivery, { minLength: 1, maxLength: 30 });
  const failures = fc.array(fc.boolean(), { minLength: 1, maxLength: 6 });

  test('equals one webhook at a time over random streams, group boundaries and failed writes (with retries)', () => {
    fc.assert(
      fc.property(stream, failures, (deliveries, failPattern) => {
        const run = runGrouped(deliveries, failPattern);
        const s = world();
        run.processed.forEach(({ event, nowMs }, index) => oneAtATime(s, event, nowMs, run.failed.has(index)));
        assertSameWorld(run.world, s);
      }),
      { numRuns: Math.max(1, Math.round(1500 * SCALE)) },
    );
  });

  test('at tiny caps, equals one at a time with the caps applied once per group', () => {
    // Two rooms, one open session and one tombstone kept: evictions all the
    // time. The grouped output must be the one-at-a-time output in which
    // pruning waits for the end of each group, nothing else.
    const caps = fc.record({ maxOpenSessions: fc.integer({ min: 1, max: 2 }), maxEndedSessions: fc.integer({ min: 1, max: 2 }), maxCalls: fc.integer({ min: 1, max: 3 }), maxCallsPerSession: fc.integer({ min: 1, max: 2 }) });
    fc.assert(
      fc.property(stream, failures, caps, (deliveries, failPattern, options) => {
        const run = runGrouped(deliveries, failPattern, options);
        const s = world(undefined, options);
        for (let start = 0; start < run.processed.length; ) {
          let end = start;
          while (end < run.processed.length && run.groupOf[end] === run.groupOf[start]) end++;
          s.sessions.commitTogether(() => {
            for (let index = start; index < end; index++) oneAtATime(s, run.processed[index]!.event, run.processed[index]!.nowMs, run.failed.has(index));
          });
          start = end;
        }
        assertSameWorld(run.world, s);
      }),
      { numRuns: Math.max(1, Math.round(1500 * SCALE)) },
    );
  });

  test('one write per group; an event of a room already in the group writes the group out first', () => {
    const w = world();
    const { group, map } = grouped(w);
    const a = new RoomScript('room-a');
    const b = new RoomScript('room-b');
    const caller = sipParticipant('inbound', { joinedAtMs: NOW_MS });
    const { results, settle } = settleRecorder();
    group.add(map(decode(a.started(0)), NOW_MS), settle);
    group.add(map(decode(b.started(0)), NOW_MS), settle);
    assert.equal(w.sink.writes, 0, 'nothing written before the flush');
    group.add(map(decode(a.joined(caller, 1, 'active')), NOW_MS), settle);
    assert.equal(w.sink.writes, 1, 'room-a was pending: the group was written before mapping its next event');
    assert.deepEqual(results.map((result) => result.kind), ['written', 'written']);
    group.flush();
    assert.equal(w.sink.writes, 2);
    const types = w.sink.text.trim().split('\n').map((line) => JSON.parse(line).event_type as string);
    assert.ok(types.includes('call.started') && types.includes('call.answered'), 'the join was mapped against the started room');
    assert.deepEqual(
      JSON.parse(w.sink.text.trim().split('\n').at(-1)!).seq,
      types.length,
      'seq contiguous across groups',
    );
  });

  test('two copies of one id in a group: the second is a duplicate of the first, not a second first delivery', () => {
    const w = world();
    const { group, map } = grouped(w);
    const json = new RoomScript('room-a').started(0);
    const { results, settle } = settleRecorder();
    const first = map(decode(json), NOW_MS);
    group.add(first, settle);
    const second = map(decode(json), NOW_MS);
    group.add(second, settle);
    group.flush();
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(w.sink.text.match(/"webhook.duplicate"/g)?.length, 1);
    assert.equal(w.sink.text.match(/"session.state_changed"/g)?.length, 1);
    assert.deepEqual(results.map((result) => result.kind), ['written', 'written']);
  });

  test('a failed write answers every webhook of the group, commits none of them, and gives the seqs back', () => {
    let failing = true;
    const w = world(() => failing);
    const { group, map, writeFailures } = grouped(w);
    const rooms = ['room-a', 'room-b', 'room-c'].map((name) => new RoomScript(name));
    const { results, settle } = settleRecorder();
    for (const room of rooms) group.add(map(decode(room.started(0)), NOW_MS), settle);
    const before = { sessions: w.sessions.snapshot(), ids: w.recentIds.entries() };
    group.flush();
    assert.deepEqual(results.map((result) => result.kind), ['output_failed', 'output_failed', 'output_failed']);
    assert.deepEqual(writeFailures, [3], 'the failure is reported once, for three webhooks');
    assert.deepEqual(w.sessions.snapshot(), before.sessions);
    assert.deepEqual(w.recentIds.entries(), before.ids);
    assert.equal(w.writer.linesWritten, 0);

    // LiveKit's retries are first deliveries, numbered from 1.
    failing = false;
    for (const room of rooms) group.add(map(decode(room.started(0)), NOW_MS), settle);
    group.flush();
    assert.equal(w.sessions.openSessions, 3);
    const lines = w.sink.text.trim().split('\n').map((line) => JSON.parse(line) as { seq: number; event_type: string });
    assert.deepEqual(lines.map((line) => line.seq), lines.map((_, index) => index + 1));
    assert.equal(lines.filter((line) => line.event_type === 'webhook.duplicate').length, 0);
  });

  test('at the caps, nothing a group member was mapped against is evicted before its commit', () => {
    // One open session at most. room-x is open (least recently active); the
    // group holds a new room-y and then room-x's next event. Committed one at
    // a time, room-y's commit would evict room-x and the lines of room-x's
    // event would describe a session that no longer exists.
    const w = world(undefined, { maxOpenSessions: 1 });
    const x = new RoomScript('room-x');
    const y = new RoomScript('room-y');
    oneAtATime(w, decode(x.started(0)), NOW_MS);
    const { group, map } = grouped(w);
    const { results, settle } = settleRecorder();
    group.add(map(decode(y.started(1)), NOW_MS + 1), settle);
    const xJoin = map(decode(x.joined(sipParticipant('inbound', { joinedAtMs: NOW_MS }), 2, 'active')), NOW_MS + 2);
    group.add(xJoin, settle);
    group.flush();
    assert.deepEqual(results.map((result) => result.kind), ['written', 'written']);
    assert.ok(xJoin.events.some((line) => line.event_type === 'call.started'), 'room-x was mapped as the open session it was');
    const snapshot = w.sessions.snapshot();
    assert.equal(snapshot.open.length, 1, 'the cap holds once the group is committed');
    assert.equal(snapshot.open[0]!.sid, x.room.sid, 'room-x, touched last, is the one kept, with the call its lines started');
    assert.equal(snapshot.open[0]!.calls.length, 1);
    assert.equal(w.sessions.evictedSessions, 1);
  });

  test('a commit that throws is an internal error for that webhook only; the others are written', () => {
    const w = world();
    const { group, map } = grouped(w);
    const { results, settle } = settleRecorder();
    group.add(map(decode(new RoomScript('room-a').started(0)), NOW_MS), settle);
    const broken = map(decode(new RoomScript('room-b').started(0)), NOW_MS);
    group.add(
      {
        ...broken,
        commit() {
          throw new Error('bug');
        },
      },
      settle,
    );
    group.add(map(decode(new RoomScript('room-c').started(0)), NOW_MS), settle);
    group.flush();
    assert.deepEqual(results.map((result) => result.kind), ['written', 'internal_error', 'written']);
    assert.equal(w.sessions.openSessions, 2);
  });

  test('one flush is scheduled at a time; a group written early leaves the rest to the scheduled flush', () => {
    const w = world();
    const scheduled: Array<() => void> = [];
    const group = new GroupCommit(w.writer, w.sessions, (flush) => scheduled.push(flush));
    const context = { recentIds: w.recentIds, sessions: w.sessions, beforeMapping: (keys: readonly string[]) => group.beforeMapping(keys) };
    const { results, settle } = settleRecorder();
    const a = new RoomScript('room-a');
    group.add(mapVerifiedWebhook(decode(a.started(0)), NOW_MS, context), settle);
    group.add(mapVerifiedWebhook(decode(new RoomScript('room-b').started(0)), NOW_MS, context), settle);
    assert.equal(scheduled.length, 1);
    group.add(mapVerifiedWebhook(decode(a.finished(5)), NOW_MS, context), settle);
    assert.equal(results.length, 2, 'the conflict wrote the first two');
    assert.equal(scheduled.length, 1, 'the flush already scheduled takes the third');
    scheduled.shift()!();
    assert.equal(results.length, 3);
    assert.equal(w.sink.writes, 2);
    group.add(mapVerifiedWebhook(decode(new RoomScript('room-c').started(0)), NOW_MS, context), settle);
    assert.equal(scheduled.length, 1, 'the next group schedules its own');
    group.flush();
    scheduled.shift()!();
    assert.equal(w.sink.writes, 3, 'a scheduled flush with nothing pending writes nothing');
  });
});

describe('stateKeysOf', () => {
  test('are the id, the room SID, and the egress or ingress id an event can report trouble for', () => {
    const room = newRoom('room-a', 1_800_000_000);
    assert.deepEqual(stateKeysOf(decode(envelope('room_started', { room: roomJson(room) }, { id: 'EV_1' }))), ['EV_1', room.sid]);
    const egress = decode({ ...sampleWebhook('egress_ended', 'room-a', NOW_MS), id: 'EV_2' } as JsonObject);
    assert.deepEqual(stateKeysOf(egress), ['EV_2', egress.room!.sid, egress.egressInfo!.egressId]);
    const ingress = decode({ ...sampleWebhook('ingress_ended', 'room-a', NOW_MS), id: 'EV_3' } as JsonObject);
    assert.ok(stateKeysOf(ingress).includes(ingress.ingressInfo!.ingressId), 'ingress id');
    assert.deepEqual(stateKeysOf(decode(envelope('room_started', { room: roomJson(room) }, { id: '' }))), [room.sid]);
  });
});
