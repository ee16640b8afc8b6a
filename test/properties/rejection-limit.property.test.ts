// The rejection rate limit, for any stream of rejections: the lines written
// stay within the per-reason and overall budgets, and every rejection is
// either written or counted in exactly one summary line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RejectionLimiter } from '../../src/obs/rejection-limit.ts';

const SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? '1');

test('every rejection is written or summarised exactly once, and the budgets hold in every window', () => {
  const REASONS = ['bad_signature', 'unknown_key', 'malformed_token', 'not_found', 'request_timeout', 'body_not_json'];
  const PER_REASON = 3;
  const TOTAL = 7;
  const WINDOW = 1000;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...REASONS), fc.integer({ min: 0, max: 400 }), fc.boolean()), { maxLength: 300 }),
      (steps) => {
        const limiter = new RejectionLimiter(PER_REASON, WINDOW, TOTAL);
        let now = 0;
        const sent = new Map<string, number>();
        const written = new Map<string, number>();
        const summarised = new Map<string, number>();
        const writtenAt: Array<{ reason: string; at: number }> = [];
        const addSummaries = (lines: ReturnType<RejectionLimiter['closeWindows']>) => {
          for (const line of lines) {
            assert.equal(line.event_type, 'webhook.rejected_suppressed');
            assert.ok(Number(line.suppressed) > 0, 'no empty summaries');
            summarised.set(String(line.reason), (summarised.get(String(line.reason)) ?? 0) + Number(line.suppressed));
          }
        };
        for (const [reason, advance, flush] of steps) {
          now += advance;
          if (flush) addSummaries(limiter.closeWindows(now));
          const { allowed, summaries } = limiter.admit(reason, now);
          addSummaries(summaries);
          sent.set(reason, (sent.get(reason) ?? 0) + 1);
          if (allowed) {
            written.set(reason, (written.get(reason) ?? 0) + 1);
            writtenAt.push({ reason, at: now });
          }
        }
        addSummaries(limiter.closeWindows(Infinity));
        for (const reason of REASONS) {
          assert.equal((written.get(reason) ?? 0) + (summarised.get(reason) ?? 0), sent.get(reason) ?? 0, `${reason}: written + suppressed = sent`);
        }
        // In any span shorter than a window, a reason gets at most 2 windows' worth
        // (the end of one and the start of the next), and all reasons together at most 2 × TOTAL.
        for (let index = 0; index < writtenAt.length; index++) {
          const start = writtenAt[index]!.at;
          const inSpan = writtenAt.filter((entry) => entry.at >= start && entry.at < start + WINDOW);
          assert.ok(inSpan.length <= 2 * TOTAL, `${inSpan.length} lines within one window span`);
          for (const reason of REASONS) assert.ok(inSpan.filter((entry) => entry.reason === reason).length <= 2 * PER_REASON);
        }
      },
    ),
    { numRuns: Math.round(600 * SCALE) },
  );
});

test('a flood of one reason within one window writes exactly the budget and one summary with the rest', () => {
  const limiter = new RejectionLimiter();
  let allowed = 0;
  for (let index = 0; index < 5000; index++) if (limiter.admit('bad_signature', 1000 + index).allowed) allowed++;
  assert.equal(allowed, 20);
  const summaries = limiter.closeWindows(11_000);
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]!.suppressed, 4980);
});

test('many reasons at once are capped overall at 100 lines per window', () => {
  const limiter = new RejectionLimiter();
  let allowed = 0;
  for (let index = 0; index < 30 * 50; index++) if (limiter.admit(`reason_${index % 30}`, 5).allowed) allowed++;
  assert.equal(allowed, 100);
});

test('a clock that steps back closes the windows instead of suppressing until it catches up', () => {
  const limiter = new RejectionLimiter(1, 10_000);
  limiter.admit('bad_signature', 1_000_000);
  assert.equal(limiter.admit('bad_signature', 1_000_001).allowed, false);
  const after = limiter.admit('bad_signature', 5_000);
  assert.equal(after.allowed, true);
  assert.equal(after.summaries[0]?.suppressed, 1);
});
