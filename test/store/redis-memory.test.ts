// What the shared store costs in Redis: used_memory per remembered event
// id, per open session (with one SIP leg, the common case) and per ended
// session, measured on a real redis-server. README ("Running two or more")
// quotes these numbers; the bounds keep them from silently growing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ENDED } from '../../src/obs/sessions.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { parseStoreSetting, type RedisStoreSetting } from '../../src/store/store-url.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { changesOf, commitGroup, keysOf, leg, session } from './contract.ts';

const missing = redisMissing();
const COUNT = 4_000;
const GROUP = 200;

describe('Redis memory per remembered id and per session', { skip: missing }, () => {
  let server: RedisServer;
  let store: RedisStore;

  before(async () => {
    server = await RedisServer.start();
    store = new RedisStore({ setting: parseStoreSetting(server.url) as RedisStoreSetting, instanceId: 'memory-test' });
    await store.ping(5_000);
  });
  after(async () => {
    await store.close();
    await server.close();
  });

  const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await server.command('INFO', 'memory'))![1]);

  /** Bytes per item after committing COUNT items in groups of GROUP. */
  async function perItem(build: (index: number, now: number) => { keys: ReturnType<typeof keysOf>; changes: ReturnType<typeof changesOf> }): Promise<number> {
    await server.command('FLUSHALL');
    const before = await usedMemory();
    const now = Date.now();
    for (let start = 0; start < COUNT; start += GROUP) {
      const ids: string[] = [];
      const rooms: string[] = [];
      const idChanges: Array<[string, number]> = [];
      const roomChanges: Array<[string, ReturnType<typeof session> | typeof ENDED]> = [];
      const endedAt: Array<[string, number]> = [];
      for (let index = start; index < start + GROUP; index++) {
        const { keys, changes } = build(index, now);
        ids.push(...keys.eventIds);
        rooms.push(...keys.roomSids);
        idChanges.push(...changes.ids);
        roomChanges.push(...changes.rooms);
        endedAt.push(...changes.endedAtMs);
      }
      await commitGroup(store, keysOf(ids, rooms), changesOf({ ids: idChanges, rooms: roomChanges, endedAtMs: endedAt }), now);
    }
    return ((await usedMemory()) - before) / COUNT;
  }

  test('per remembered event id, per open session with one leg, per ended session', async () => {
    // LiveKit ids: a prefix and 12 characters.
    const id = (index: number): string => `EV_${String(index).padStart(12, 'x')}`;
    const sid = (index: number): string => `RM_${String(index).padStart(12, 'y')}`;
    const perId = await perItem((index, now) => ({ keys: keysOf([id(index)]), changes: changesOf({ ids: [[id(index), now]] }) }));
    const perOpen = await perItem((index, now) => {
      const record = session(sid(index), now, [{ ...leg(`PA_${String(index).padStart(12, 'z')}`, 'answered'), sipCallId: 'SCL_abcdefghijkl', trunkId: 'ST_abcdefghijkl', answeredAtMs: now }], 'connected');
      return { keys: keysOf([], [sid(index)]), changes: changesOf({ rooms: [[sid(index), record]] }) };
    });
    const perEnded = await perItem((index, now) => ({ keys: keysOf([], [sid(index)]), changes: changesOf({ rooms: [[sid(index), ENDED]], endedAtMs: [[sid(index), now]] }) }));
    console.log(`# Redis used_memory: ${perId.toFixed(0)} B per remembered id, ${perOpen.toFixed(0)} B per open session with one leg, ${perEnded.toFixed(0)} B per ended session`);
    assert.ok(perId < 200, `${perId} B per id`);
    assert.ok(perOpen < 1_000, `${perOpen} B per open session`);
    assert.ok(perEnded < 350, `${perEnded} B per ended session`);
  });
});
