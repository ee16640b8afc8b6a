import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RejectionLimiter } from '../../src/obs/rejection-limit.ts';

test('admits N lines per reason per window, then counts and summarises the rest', () => {
  const limiter = new RejectionLimiter(3, 1000);
  const admitted = Array.from({ length: 10 }, (_, index) => limiter.admit('bad_signature', index).allowed);
  assert.deepEqual(admitted, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(limiter.admit('unknown_key', 20).allowed, true, 'reasons are limited separately');
  const next = limiter.admit('bad_signature', 1000);
  assert.equal(next.allowed, true, 'a new window admits again');
  assert.equal(next.summaries.length, 1);
  assert.equal(next.summaries[0]!.event_type, 'webhook.rejected_suppressed');
  assert.equal(next.summaries[0]!.reason, 'bad_signature');
  assert.equal(next.summaries[0]!.suppressed, 7);
});

test('closeWindows writes no summary for a window that suppressed nothing', () => {
  const limiter = new RejectionLimiter(3, 1000);
  limiter.admit('not_found', 0);
  assert.deepEqual(limiter.closeWindows(5000), []);
});
