// The store contract (src/store/store.ts): what the output stage relies on,
// as one suite that runs against every store. The embedded memory store and
// the shared Redis store run exactly these tests (store-contract.test.ts);
// the cases about several instances at once run where a store is shared.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { CallRecord } from '../../src/obs/calls.ts';
import { ENDED, type SessionRecord } from '../../src/obs/sessions.ts';
import { type StateChanges, type StateKeys, type StateStore, type StateView, StoreUnavailableError } from '../../src/store/store.ts';

export interface StoreWindows {
  readonly dedupWindowMs?: number;
  readonly endedGraceMs?: number;
  readonly idleTimeoutMs?: number;
  readonly providerKeyWindowMs?: number;
}

export interface SharedStoreOptions extends StoreWindows {
  readonly timeoutMs?: number;
  readonly leaseMs?: number;
}

export interface StoreUnderTest {
  readonly name: string;
  /** Why this store cannot be tested here (skips the suite), or undefined. */
  readonly skip?: () => string | undefined;
  /** A fresh, empty store (for a shared store: a new instance on an emptied server). */
  open(windows?: SharedStoreOptions): Promise<StateStore>;
  /** Another instance on the same shared state; absent for a store that lives in one process. */
  openAnother?(options?: SharedStoreOptions): Promise<StateStore>;
  /** Takes the shared server away and brings it back (the store must recover by itself). */
  outage?(): { stop(): Promise<void>; start(): Promise<void> };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const keysOf = (ids: string[], rooms: string[] = [], providerKeys: string[] = []): StateKeys => ({ eventIds: ids, roomSids: rooms, providerKeys });

export function changesOf(parts: {
  ids?: Array<[string, number]>;
  rooms?: Array<[string, SessionRecord | typeof ENDED]>;
  endedAtMs?: Array<[string, number]>;
  providerKeys?: Array<[string, number]>;
}): StateChanges {
  return { ids: new Map(parts.ids), rooms: new Map(parts.rooms), endedAtMs: new Map(parts.endedAtMs), providerKeys: new Map(parts.providerKeys) };
}

export function leg(participantSid: string, phase: CallRecord['phase']): CallRecord {
  return { participantSid, identity: `sip_${participantSid}`, direction: 'inbound', from: '+14155550123', to: '+31201234589', phase, startedAtMs: 1_796_126_402_000 };
}

export function session(sid: string, touchedAtMs: number, calls: CallRecord[] = [], state: SessionRecord['state'] = 'created'): SessionRecord {
  return { sid, name: `room-${sid}`, state, calls, touchedAtMs };
}

/** Reads, plans nothing, commits `changes`: one group, as the output stage runs it. */
export async function commitGroup(store: StateStore, keys: StateKeys, changes: StateChanges, nowMs = Date.now()): Promise<void> {
  const view = await store.read(keys, nowMs);
  await store.commit(view, changes, nowMs);
}

async function readView(store: StateStore, keys: StateKeys, nowMs = Date.now()): Promise<StateView> {
  const view = await store.read(keys, nowMs);
  // Reading for a look only: let go at once, so the view holds nothing.
  await store.abandon(view);
  return view;
}

export function storeContract(subject: StoreUnderTest): void {
  describe(`store contract: ${subject.name}`, { skip: subject.skip?.() }, () => {
    const opened: StateStore[] = [];
    const open = async (windows?: SharedStoreOptions): Promise<StateStore> => {
      const store = await subject.open(windows);
      opened.push(store);
      return store;
    };
    const another = async (options?: SharedStoreOptions): Promise<StateStore> => {
      const store = await subject.openAnother!(options);
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    test('an empty store has seen nothing', async () => {
      const store = await open();
      const view = await readView(store, keysOf(['EV_a'], ['RM_a'], ['egress:EG_a:failed']));
      assert.equal(view.idSeen('EV_a', Date.now()), false);
      assert.equal(view.room('RM_a'), undefined);
      assert.equal(view.providerReported('egress:EG_a:failed'), false);
      assert.equal(store.problem(), null);
    });

    test('a committed group is what the next group reads', async () => {
      const store = await open();
      const now = Date.now();
      const open1 = session('RM_open', now, [leg('PA_1', 'answered'), leg('PA_2', 'ended')], 'connected');
      await commitGroup(
        store,
        keysOf(['EV_1', 'EV_2'], ['RM_open', 'RM_gone'], ['egress:EG_1:failed']),
        changesOf({ ids: [['EV_1', now], ['EV_2', now]], rooms: [['RM_open', open1], ['RM_gone', ENDED]], endedAtMs: [['RM_gone', now]], providerKeys: [['egress:EG_1:failed', now]] }),
        now,
      );
      const view = await readView(store, keysOf(['EV_1', 'EV_2', 'EV_3'], ['RM_open', 'RM_gone', 'RM_new'], ['egress:EG_1:failed', 'egress:EG_2:failed']));
      assert.equal(view.idSeen('EV_1', now), true);
      assert.equal(view.idSeen('EV_2', now), true);
      assert.equal(view.idSeen('EV_3', now), false);
      assert.deepEqual(view.room('RM_open'), open1);
      assert.equal(view.room('RM_gone'), ENDED);
      assert.equal(view.room('RM_new'), undefined);
      assert.equal(view.providerReported('egress:EG_1:failed'), true);
      assert.equal(view.providerReported('egress:EG_2:failed'), false);
    });

    test('each commit replaces the room it changes; an ended session stays ended', async () => {
      const store = await open();
      const now = Date.now();
      await commitGroup(store, keysOf([], ['RM_1']), changesOf({ rooms: [['RM_1', session('RM_1', now)]] }), now);
      const answered = session('RM_1', now + 1, [leg('PA_1', 'answered')], 'connected');
      await commitGroup(store, keysOf([], ['RM_1']), changesOf({ rooms: [['RM_1', answered]] }), now + 1);
      assert.deepEqual((await readView(store, keysOf([], ['RM_1']))).room('RM_1'), answered);
      await commitGroup(store, keysOf([], ['RM_1']), changesOf({ rooms: [['RM_1', ENDED]], endedAtMs: [['RM_1', now + 2]] }), now + 2);
      assert.equal((await readView(store, keysOf([], ['RM_1']))).room('RM_1'), ENDED);
    });

    test('an abandoned view changes nothing and holds nothing', async () => {
      const store = await open();
      const view = await store.read(keysOf(['EV_x'], ['RM_x']), Date.now());
      await store.abandon(view);
      const started = Date.now();
      const again = await readView(store, keysOf(['EV_x'], ['RM_x']));
      assert.ok(Date.now() - started < 500, 'the next read did not wait for the abandoned one');
      assert.equal(again.idSeen('EV_x', Date.now()), false);
      assert.equal(again.room('RM_x'), undefined);
    });

    test('ids, provider troubles and ended sessions are forgotten after their windows', async () => {
      const store = await open({ dedupWindowMs: 300, providerKeyWindowMs: 300, endedGraceMs: 300 });
      const now = Date.now();
      await commitGroup(
        store,
        keysOf(['EV_old'], ['RM_ended'], ['ingress:IN_1:RS_1:error']),
        changesOf({ ids: [['EV_old', now]], rooms: [['RM_ended', ENDED]], endedAtMs: [['RM_ended', now]], providerKeys: [['ingress:IN_1:RS_1:error', now]] }),
        now,
      );
      const within = await readView(store, keysOf(['EV_old'], ['RM_ended'], ['ingress:IN_1:RS_1:error']), now + 50);
      assert.equal(within.idSeen('EV_old', now + 50), true);
      assert.equal(within.room('RM_ended'), ENDED);
      await sleep(450);
      const later = Date.now();
      await store.maintain(later);
      const after = await readView(store, keysOf(['EV_old'], ['RM_ended'], ['ingress:IN_1:RS_1:error']), later);
      assert.equal(after.idSeen('EV_old', later), false);
      assert.equal(after.room('RM_ended'), undefined);
      assert.equal(after.providerReported('ingress:IN_1:RS_1:error'), false);
    });

    test('an idle open session is forgotten after the idle timeout, and counted as evicted', async () => {
      const store = await open({ idleTimeoutMs: 300 });
      const now = Date.now();
      await commitGroup(store, keysOf([], ['RM_idle']), changesOf({ rooms: [['RM_idle', session('RM_idle', now, [leg('PA_1', 'started')])]] }), now);
      await sleep(450);
      const later = Date.now();
      await store.maintain(later);
      assert.equal((await readView(store, keysOf([], ['RM_idle']), later)).room('RM_idle'), undefined);
      const counts = store.counts();
      assert.equal(counts.openSessions, 0);
      assert.equal(counts.openCalls, 0);
      assert.equal(counts.evictedSessions, 1);
    });

    test('counts: open sessions, live legs, ended sessions and remembered ids', async () => {
      const store = await open();
      const now = Date.now();
      await commitGroup(
        store,
        keysOf(['EV_1', 'EV_2', 'EV_3'], ['RM_1', 'RM_2', 'RM_3']),
        changesOf({
          ids: [['EV_1', now], ['EV_2', now], ['EV_3', now]],
          rooms: [
            ['RM_1', session('RM_1', now, [leg('PA_1', 'started'), leg('PA_2', 'answered'), leg('PA_3', 'ended')])],
            ['RM_2', session('RM_2', now, [leg('PA_4', 'answered')])],
            ['RM_3', ENDED],
          ],
          endedAtMs: [['RM_3', now]],
        }),
        now,
      );
      await store.maintain(now);
      assert.deepEqual(store.counts(), { openSessions: 2, openCalls: 3, endedSessions: 1, rememberedIds: 3, evictedSessions: 0 });
      // A leg ends, a session ends.
      await commitGroup(
        store,
        keysOf(['EV_4'], ['RM_1', 'RM_2']),
        changesOf({ ids: [['EV_4', now]], rooms: [['RM_1', session('RM_1', now, [leg('PA_1', 'ended'), leg('PA_2', 'answered'), leg('PA_3', 'ended')])], ['RM_2', ENDED]], endedAtMs: [['RM_2', now]] }),
        now,
      );
      await store.maintain(now);
      assert.deepEqual(store.counts(), { openSessions: 1, openCalls: 1, endedSessions: 2, rememberedIds: 4, evictedSessions: 0 });
    });

    test('a commit given the next group\'s keys: the next read (of more keys) sees the committed state', async () => {
      const store = await open();
      const now = Date.now();
      const first = await store.read(keysOf(['EV_1'], ['RM_1']), now);
      // EV_2 and RM_1 wait for the next group; EV_1 arrives again among them (a redelivery).
      await store.commit(first, changesOf({ ids: [['EV_1', now]], rooms: [['RM_1', session('RM_1', now, [leg('PA_1', 'started')])]] }), now, keysOf(['EV_2', 'EV_1'], ['RM_1']));
      const second = await store.read(keysOf(['EV_2', 'EV_1', 'EV_3'], ['RM_1', 'RM_2']), now);
      assert.equal(second.idSeen('EV_1', now), true);
      assert.equal(second.idSeen('EV_2', now), false);
      assert.equal(second.idSeen('EV_3', now), false);
      assert.deepEqual(second.room('RM_1'), session('RM_1', now, [leg('PA_1', 'started')]));
      assert.equal(second.room('RM_2'), undefined);
      await store.commit(second, changesOf({ ids: [['EV_2', now], ['EV_3', now]], rooms: [['RM_1', ENDED]], endedAtMs: [['RM_1', now]] }), now);
      const third = await readView(store, keysOf(['EV_2', 'EV_3'], ['RM_1']));
      assert.equal(third.idSeen('EV_2', now), true);
      assert.equal(third.idSeen('EV_3', now), true);
      assert.equal(third.room('RM_1'), ENDED);
    });

    // --- several instances on one shared store -------------------------------

    const sharedOnly = subject.openAnother === undefined ? 'the store lives in one process: no other instance can share it' : undefined;

    test('an id accepted by one instance is seen by every other', { skip: sharedOnly }, async () => {
      const a = await open();
      const b = await another();
      const now = Date.now();
      await commitGroup(a, keysOf(['EV_shared'], ['RM_s']), changesOf({ ids: [['EV_shared', now]], rooms: [['RM_s', session('RM_s', now)]] }), now);
      const view = await readView(b, keysOf(['EV_shared'], ['RM_s']));
      assert.equal(view.idSeen('EV_shared', now), true);
      assert.deepEqual(view.room('RM_s'), session('RM_s', now));
    });

    test('a group waits for another instance holding its keys, then reads what that one committed', { skip: sharedOnly }, async () => {
      const a = await open();
      const b = await another();
      const now = Date.now();
      const held = await a.read(keysOf(['EV_race'], ['RM_race']), now);
      let bRead: StateView | undefined;
      const bReading = Promise.resolve(b.read(keysOf(['EV_race'], ['RM_race']), now)).then((view) => (bRead = view));
      await sleep(100);
      assert.equal(bRead, undefined, 'B must not read keys A is planning');
      await a.commit(held, changesOf({ ids: [['EV_race', now]], rooms: [['RM_race', session('RM_race', now, [leg('PA_r', 'started')])]] }), now);
      await bReading;
      assert.equal(bRead!.idSeen('EV_race', now), true, 'B sees the id as a duplicate');
      assert.deepEqual(bRead!.room('RM_race'), session('RM_race', now, [leg('PA_r', 'started')]));
      await b.abandon(bRead!);
    });

    test('the next group\'s keys read with a commit are held like any group\'s', { skip: sharedOnly }, async () => {
      const a = await open();
      const b = await another({ timeoutMs: 300 });
      const now = Date.now();
      const first = await a.read(keysOf(['EV_1'], ['RM_1']), now);
      await a.commit(first, changesOf({ ids: [['EV_1', now]] }), now, keysOf(['EV_2'], ['RM_next']));
      await assert.rejects(Promise.resolve(b.read(keysOf([], ['RM_next']), now)), (error: unknown) => error instanceof StoreUnavailableError && error.reason === 'busy');
      const second = await a.read(keysOf(['EV_2'], ['RM_next']), now);
      await a.commit(second, changesOf({ ids: [['EV_2', now]], rooms: [['RM_next', session('RM_next', now)]] }), now);
      assert.deepEqual((await readView(b, keysOf([], ['RM_next']))).room('RM_next'), session('RM_next', now));
    });

    test('a group that waits longer than the store timeout fails with busy (503), and nothing is changed', { skip: sharedOnly }, async () => {
      const a = await open({ leaseMs: 5_000 });
      const b = await another({ timeoutMs: 300 });
      const held = await a.read(keysOf([], ['RM_busy']), Date.now());
      const started = Date.now();
      await assert.rejects(Promise.resolve(b.read(keysOf([], ['RM_busy']), Date.now())), (error: unknown) => error instanceof StoreUnavailableError && error.reason === 'busy');
      assert.ok(Date.now() - started < 1_000, 'bounded by the timeout');
      await a.abandon(held);
      assert.equal((await readView(b, keysOf([], ['RM_busy']))).room('RM_busy'), undefined);
    });

    test('the keys of an instance that died are free again once its lease runs out', { skip: sharedOnly }, async () => {
      const a = await open({ leaseMs: 400 });
      const b = await another({ timeoutMs: 2_000 });
      await a.read(keysOf(['EV_dead'], ['RM_dead']), Date.now()); // never committed nor abandoned
      const started = Date.now();
      const view = await b.read(keysOf(['EV_dead'], ['RM_dead']), Date.now());
      assert.ok(Date.now() - started >= 250, 'B waited for the lease');
      assert.equal(view.idSeen('EV_dead', Date.now()), false);
      await b.abandon(view);
    });

    test('a commit after its lease ran out and another instance committed is a conflict: nothing of it is written', { skip: sharedOnly }, async () => {
      const a = await open({ leaseMs: 300, timeoutMs: 2_000 });
      const b = await another();
      const now = Date.now();
      const slow = await a.read(keysOf(['EV_a'], ['RM_c']), now);
      await sleep(400);
      await commitGroup(b, keysOf(['EV_b'], ['RM_c']), changesOf({ ids: [['EV_b', now]], rooms: [['RM_c', session('RM_c', now, [leg('PA_b', 'started')])]] }), now);
      await assert.rejects(
        Promise.resolve(a.commit(slow, changesOf({ ids: [['EV_a', now]], rooms: [['RM_c', session('RM_c', now, [leg('PA_a', 'started')])]] }), now)),
        (error: unknown) => error instanceof StoreUnavailableError && error.reason === 'conflict',
      );
      const view = await readView(b, keysOf(['EV_a'], ['RM_c']));
      assert.equal(view.idSeen('EV_a', now), false, "A's id was not committed");
      assert.deepEqual(view.room('RM_c'), session('RM_c', now, [leg('PA_b', 'started')]), "B's session stands");
    });

    test('a commit whose lease ran out but whose keys nobody touched still commits', { skip: sharedOnly }, async () => {
      const a = await open({ leaseMs: 200 });
      const now = Date.now();
      const slow = await a.read(keysOf(['EV_late'], ['RM_late']), now);
      await sleep(300);
      await a.commit(slow, changesOf({ ids: [['EV_late', now]], rooms: [['RM_late', session('RM_late', now)]] }), now);
      assert.equal((await readView(a, keysOf(['EV_late'], ['RM_late']))).idSeen('EV_late', now), true);
    });

    test('two copies of one event on two instances at once: exactly one commits it as new', { skip: sharedOnly }, async () => {
      const a = await open();
      const b = await another();
      const now = Date.now();
      const attempt = async (store: StateStore, name: string): Promise<string> => {
        const view = await store.read(keysOf(['EV_copy'], ['RM_copy']), now);
        if (view.idSeen('EV_copy', now)) {
          await store.commit(view, changesOf({}), now);
          return 'duplicate';
        }
        await store.commit(view, changesOf({ ids: [['EV_copy', now]], rooms: [['RM_copy', session('RM_copy', now, [leg(`PA_${name}`, 'started')])]] }), now);
        return 'new';
      };
      const outcomes = await Promise.all([attempt(a, 'a'), attempt(b, 'b')]);
      assert.deepEqual(outcomes.sort(), ['duplicate', 'new']);
    });

    test('while the server is gone: a bounded failure (503) and a reason for /health; then recovery by itself', { skip: sharedOnly ?? (subject.outage ? undefined : 'no outage hook') }, async () => {
      const store = await open({ timeoutMs: 500 });
      const outage = subject.outage!();
      await outage.stop();
      const started = Date.now();
      await assert.rejects(Promise.resolve(store.read(keysOf(['EV_down'], ['RM_down']), Date.now())), StoreUnavailableError);
      assert.ok(Date.now() - started < 1_500, 'bounded wait');
      assert.ok(store.problem() !== null, '/health has a reason');
      await outage.start();
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await commitGroup(store, keysOf(['EV_back'], ['RM_back']), changesOf({ ids: [['EV_back', Date.now()]] }));
          break;
        } catch (error) {
          assert.ok(error instanceof StoreUnavailableError, String(error));
          assert.ok(Date.now() < deadline, `no recovery: ${error.message}`);
          await sleep(100);
        }
      }
      assert.equal(store.problem(), null);
    });
  });
}
