import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEDUP_WINDOW_MS, RecentIds } from '../../src/store/recent-ids.ts';

test('remembers an id for the whole window, then forgets it', () => {
  const ids = new RecentIds();
  ids.remember('EV_1', 1000);
  assert.equal(ids.has('EV_1', 1000 + DEDUP_WINDOW_MS - 1), true);
  assert.equal(ids.has('EV_1', 1000 + DEDUP_WINDOW_MS), false);
  assert.equal(ids.has('EV_2', 1000), false);
});

test('the window covers the 5 min token lifetime plus the retry schedule', () => {
  assert.ok(DEDUP_WINDOW_MS >= 5 * 60_000 + 15_000);
});

test('is bounded: beyond capacity the oldest ids are evicted first', () => {
  const ids = new RecentIds(60_000, 3);
  for (const [index, id] of ['a', 'b', 'c', 'd'].entries()) ids.remember(id, index);
  assert.equal(ids.size, 3);
  assert.equal(ids.has('a', 10), false);
  assert.equal(ids.has('d', 10), true);
});

test('expired ids are pruned as new ones arrive', () => {
  const ids = new RecentIds(100, 1000);
  ids.remember('old', 0);
  ids.remember('new', 500);
  assert.equal(ids.size, 1);
});

test('round-trips through entries()/restore() (the state file)', () => {
  const ids = new RecentIds();
  ids.remember('EV_a', 10);
  ids.remember('EV_b', 20);
  const restored = new RecentIds();
  restored.restore(JSON.parse(JSON.stringify([...ids.entries()])), 30);
  assert.equal(restored.has('EV_a', 30), true);
  assert.equal(restored.has('EV_b', 30), true);
});
