// The output stage (src/output/output.ts): planning, writing and committing
// the webhooks of a group together must produce exactly the output and the
// state of handling them one at a time, also when writes fail and LiveKit
// retries, whether the store answers at once (memory) or later (shared);
// and every webhook is settled exactly once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { WebhookEvent } from '@livekit/protocol';
import { envelope, type JsonObject, newRoom, roomJson, sampleWebhook } from '../../src/livekit/samples.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import { type Delivery, Output } from '../../src/output/output.ts';
import { GroupState, planWebhook, stateKeysOf } from '../../src/pipeline/plan.ts';
import { SinkWriteError } from '../../src/sinks/sink.ts';
import { MemoryStore, type MemoryStoreOptions } from '../../src/store/memory.ts';
import type { StateChanges, StateKeys, StateStore, StateView } from '../../src/store/store.ts';
import { realishEvents } from '../helpers/event-streams.ts';
import { MemorySink } from '../helpers/memory-sink.ts';
import { decode, RoomScript, sipLeg } from '../obs/sessions.helpers.ts';

const NOW_MS = Date.UTC(2026, 10, 30, 12, 0, 0);
const SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? '1');
const NO_KEYS: StateKeys = { eventIds: [], roomSids: [], providerKeys: [] };

/** The memory store answering a round trip later, as a shared store does. */
class LaterStore implements StateStore {
  readonly description = 'later';
  readonly inner: MemoryStore;
  constructor(inner: MemoryStore) {
    this.inner = inner;
  }
  read(keys: StateKeys, nowMs: number): Promise<StateView> {
    return new Promise((resolve) => setImmediate(() => resolve(this.inner.read(keys, nowMs))));
  }
  commit(view: StateView, changes: StateChanges, nowMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          this.inner.commit(view, changes, nowMs);
          resolve();
        } catch (error) {
          reject(error);
        }
      }),
    );
  }
  abandon(): Promise<void> {
    return Promise.resolve();
  }
  maintain(nowMs: number): void {
    this.inner.maintain(nowMs);
  }
  counts() {
    return this.inner.counts();
  }
  problem(): string | null {
    return null;
  }
  async close(): Promise<void> {}
}

interface World {
  readonly sink: MemorySink;
  readonly writer: LineWriter;
  readonly store: MemoryStore;
}

function world(failing?: () => boolean, options?: MemoryStoreOptions): World {
  const sink = new MemorySink(failing);
  return { sink, writer: new LineWriter(sink, { clock: () => NOW_MS }), store: new MemoryStore(options) };
}

/** The one-at-a-time path: plan, write, commit. A failed write leaves nothing in the output and commits nothing. */
function oneAtATime(w: World, event: WebhookEvent, nowMs: number, writeFails: boolean): void {
  const state = new GroupState(w.store.read(NO_KEYS, nowMs));
  const planned = planWebhook(event, state, nowMs);
  if (writeFails) return;
  assert.equal(w.writer.write(planned.lines), null);
  w.store.commit(state, state, nowMs);
}

/**
 * Feeds a stream through the output stage: a group ends where the stream
 * says; a webhook whose write failed is retried once at the end, as
 * LiveKit retries a 503. Returns the order the webhooks were planned in and
 * which of them failed.
 */
async function runGrouped(deliveries: ReadonlyArray<{ json: JsonObject; flushAfter: boolean }>, failPattern: readonly boolean[], later: boolean, options?: MemoryStoreOptions) {
  let writes = 0;
  const g = world(() => failPattern[writes++ % failPattern.length]!, options);
  const output = new Output({ writer: g.writer, store: later ? new LaterStore(g.store) : g.store, storeReadsKeys: true, schedule: () => {} });
  const queue = deliveries.map(({ json, flushAfter }) => ({ event: decode(json), flushAfter, retry: false }));
  const processed: Array<{ event: WebhookEvent; nowMs: number; index: number }> = [];
  const failed = new Set<number>();
  const settledCount = new Map<number, number>();
  const flush = async () => {
    const idle = output.idle();
    output.flush();
    await idle;
  };
  for (let index = 0; index < queue.length; index++) {
    const { event, flushAfter, retry } = queue[index]!;
    const nowMs = NOW_MS + index * 1000;
    processed.push({ event, nowMs, index });
    output.submit(event, nowMs, (delivery) => {
      settledCount.set(index, (settledCount.get(index) ?? 0) + 1);
      if (delivery.kind === 'written') return;
      assert.equal(delivery.kind, 'output_failed');
      failed.add(index);
      if (!retry) queue.push({ event, flushAfter: true, retry: true });
    });
    if (flushAfter || index === queue.length - 1) await flush();
  }
  assert.equal(settledCount.size, queue.length, 'every webhook settled');
  assert.ok([...settledCount.values()].every((count) => count === 1), 'settled exactly once');
  // Planned in submission order within a group; a group's members are submitted in stream order.
  return { world: g, processed, failed };
}

function contentsOf(store: MemoryStore) {
  const contents = store.contents();
  return { open: [...contents.open], ended: [...contents.ended], providerKeys: [...contents.providerKeys], ids: [...contents.ids], counts: store.counts() };
}

function collect(): { deliveries: Delivery[]; settle: (delivery: Delivery) => void } {
  const deliveries: Delivery[] = [];
  return { deliveries, settle: (delivery) => deliveries.push(delivery) };
}

describe('the output stage', () => {
  const delivery = fc.record({ json: realishEvents(NOW_MS), flushAfter: fc.boolean() });
  const stream = fc.array(delivery, { minLength: 1, maxLength: 30 });
  const failures = fc.array(fc.boolean(), { minLength: 1, maxLength: 6 });

  for (const later of [false, true]) {
    const kind = later ? 'a store that answers later' : 'the memory store';
    test(`equals one webhook at a time over random streams, group boundaries and failed writes with retries (${kind})`, async () => {
      await fc.assert(
        fc.asyncProperty(stream, failures, async (deliveries, failPattern) => {
          const run = await runGrouped(deliveries, failPattern, later);
          const reference = world();
          for (const { event, nowMs, index } of run.processed) oneAtATime(reference, event, nowMs, run.failed.has(index));
          assert.equal(run.world.sink.text, reference.sink.text);
          assert.deepEqual(contentsOf(run.world.store), contentsOf(reference.store));
        }),
        { numRuns: Math.max(1, Math.round((later ? 300 : 1000) * SCALE)) },
      );
    });
  }

  test('at tiny caps, equals one at a time with the caps applied once per group', async () => {
    const options = { maxOpenSessions: 2, maxEndedSessions: 2, maxCalls: 3, maxRecentIds: 5 };
    await fc.assert(
      fc.asyncProperty(stream, async (deliveries) => {
        const run = await runGrouped(deliveries, [false], false, options);
        // One at a time within each group means: plan every member, then prune once. With
        // one-member groups that is the plain one-at-a-time path.
        const singles = await runGrouped(deliveries.map(({ json }) => ({ json, flushAfter: true })), [false], false, options);
        const reference = world(undefined, options);
        for (const { event, nowMs, index } of singles.processed) oneAtATime(reference, event, nowMs, singles.failed.has(index));
        assert.equal(singles.world.sink.text, reference.sink.text);
        assert.ok(run.world.store.counts().openSessions <= 2 && run.world.store.counts().endedSessions <= 2, 'caps hold after every group');
      }),
      { numRuns: Math.max(1, Math.round(300 * SCALE)) },
    );
  });

  test('one write per group, and two events of one room in a group see each other', () => {
    const w = world();
    const output = new Output({ writer: w.writer, store: w.store, storeReadsKeys: false, schedule: () => {} });
    const room = new RoomScript();
    const leg = sipLeg('inbound', 1);
    const { deliveries, settle } = collect();
    for (const json of [room.started(0), room.joined(leg, 2, 'ringing'), room.trackPublished(leg, 5), room.left(leg, 20, 'CLIENT_INITIATED', 'hangup')]) output.submit(decode(json), NOW_MS, settle);
    output.flush();
    assert.equal(w.sink.writes, 1);
    assert.deepEqual(deliveries.map((d) => d.kind), ['written', 'written', 'written', 'written']);
    const types = w.sink.lines().map((line) => line.event_type).filter((type) => String(type).startsWith('call.'));
    assert.deepEqual(types, ['call.started', 'call.answered', 'call.ended']);
  });

  test('two copies of one id in a group: the second is a duplicate of the first', () => {
    const w = world();
    const output = new Output({ writer: w.writer, store: w.store, storeReadsKeys: false, schedule: () => {} });
    const event = decode(sampleWebhook('room_started'));
    const { deliveries, settle } = collect();
    output.submit(event, NOW_MS, settle);
    output.submit(event, NOW_MS, settle);
    output.flush();
    assert.deepEqual(deliveries.map((d) => (d.kind === 'written' ? d.planned.duplicate : d.kind)), [false, true]);
  });

  test('a failed write answers every webhook of the group, commits none of them, and gives the seqs back', () => {
    let fail = true;
    const w = world(() => fail);
    const failures: number[] = [];
    const output = new Output({ writer: w.writer, store: w.store, storeReadsKeys: false, schedule: () => {}, onWriteFailed: (_error, webhooks) => failures.push(webhooks) });
    const { deliveries, settle } = collect();
    const events = [decode(sampleWebhook('room_started')), decode(sampleWebhook('participant_joined'))];
    for (const event of events) output.submit(event, NOW_MS, settle);
    output.flush();
    assert.deepEqual(deliveries.map((d) => d.kind), ['output_failed', 'output_failed']);
    assert.deepEqual(failures, [2]);
    assert.deepEqual(w.store.counts().rememberedIds, 0);
    fail = false;
    for (const event of events) output.submit(event, NOW_MS, settle);
    output.flush();
    assert.equal(w.sink.lines()[0]!.seq, 1, 'the failed group used no seq');
  });

  test('a mapping that throws fails only its own webhook; the others are written and committed', () => {
    const w = world();
    const output = new Output({ writer: w.writer, store: w.store, storeReadsKeys: false, schedule: () => {} });
    const good = decode(sampleWebhook('room_started'));
    const broken = decode(sampleWebhook('participant_joined'));
    Object.defineProperty(broken, 'participant', { get: () => { throw new Error('mapping bug (test)'); } });
    const { deliveries, settle } = collect();
    output.submit(broken, NOW_MS, settle);
    output.submit(good, NOW_MS, settle);
    output.flush();
    assert.deepEqual(deliveries.map((d) => d.kind), ['internal_error', 'written']);
    assert.equal(w.store.idSeen(good.id, NOW_MS), true);
    assert.equal(w.store.idSeen(broken.id, NOW_MS), false, 'nothing of the broken webhook is remembered');
  });

  test('a commit that fails settles the group store_failed after its lines were written (at least once)', () => {
    const w = world();
    const failing: StateStore = Object.assign(Object.create(w.store) as MemoryStore, {
      commit: () => {
        throw new Error('store down (test)');
      },
    });
    const output = new Output({ writer: w.writer, store: failing, storeReadsKeys: false, schedule: () => {} });
    const { deliveries, settle } = collect();
    output.submit(decode(sampleWebhook('room_started')), NOW_MS, settle);
    output.flush();
    assert.deepEqual(deliveries.map((d) => d.kind), ['store_failed']);
    assert.ok(w.sink.lines().some((line) => line.event_type === 'livekit.room.created'));
  });

  test('while a group waits for a stalled output, new webhooks are answered at once, and the group when the output drains', async () => {
    const w = world();
    let release!: () => void;
    const drained = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stall = true;
    const sink = w.sink;
    const original = sink.write.bind(sink);
    sink.write = (chunk: Uint8Array) => {
      original(chunk);
      if (stall) {
        stall = false;
        return drained;
      }
    };
    const output = new Output({ writer: w.writer, store: w.store, storeReadsKeys: false, schedule: () => {} });
    const first = collect();
    const second = collect();
    output.submit(decode(sampleWebhook('room_started')), NOW_MS, first.settle);
    output.flush();
    assert.deepEqual(first.deliveries, [], 'the stalled group waits');
    output.submit(decode(sampleWebhook('participant_joined')), NOW_MS, second.settle);
    assert.deepEqual(second.deliveries.map((d) => d.kind), ['output_failed'], 'answered at once, not queued behind the stall');
    const refused: Delivery = second.deliveries[0]!;
    assert.ok(refused.kind === 'output_failed' && refused.error instanceof SinkWriteError);
    assert.equal(w.writer.healthy, false);
    release();
    await output.idle();
    assert.deepEqual((first.deliveries as Delivery[]).map((d) => d.kind), ['written']);
    assert.equal(w.writer.healthy, true);
  });

  test('the state keys of a group: ids, room SIDs, and the provider troubles it can report', () => {
    const room = newRoom('keys', 1_800_000_000);
    const egress = envelope('egress_ended', { room: roomJson(room), egressInfo: { egressId: 'EG_keys', roomId: room.sid, status: 'EGRESS_FAILED', error: 'x' } }, { id: 'EV_keys1' });
    const keys = stateKeysOf([decode(egress), decode(sampleWebhook('room_started'))]);
    assert.deepEqual(keys.eventIds.length, 2);
    assert.ok(keys.roomSids.includes(room.sid));
    assert.deepEqual(keys.providerKeys, ['egress:EG_keys:failed']);
  });
});
