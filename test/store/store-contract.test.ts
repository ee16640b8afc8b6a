// One contract, every store: the embedded memory store and the shared Redis
// store (a real redis-server, started here on a free loopback port) pass the
// same suite (contract.ts).

import { after, before } from 'node:test';
import { MemoryStore } from '../../src/store/memory.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { parseStoreSetting, type RedisStoreSetting } from '../../src/store/store-url.ts';
import { RedisServer, redisMissing } from '../helpers/redis-server.ts';
import { type SharedStoreOptions, storeContract } from './contract.ts';

storeContract({
  name: 'memory',
  open: async (windows) => new MemoryStore(windows ?? {}),
});

let server: RedisServer | undefined;
let instances = 0;
const missing = redisMissing();

before(async () => {
  if (!missing) server = await RedisServer.start();
});
after(async () => {
  await server?.close();
});

async function openRedis(options: SharedStoreOptions = {}): Promise<RedisStore> {
  const setting = parseStoreSetting(server!.url) as RedisStoreSetting;
  const store = new RedisStore({ setting, instanceId: `test-${++instances}`, ...options });
  await store.ping(5_000);
  return store;
}

storeContract({
  name: 'redis',
  skip: () => missing,
  open: async (options) => {
    await server!.command('FLUSHALL');
    return openRedis(options);
  },
  openAnother: openRedis,
  outage: () => ({ stop: () => server!.stop(), start: () => server!.restart() }),
});
