// kill -9 at random moments, in random interleavings of whole SIP calls,
// with --state-file: whatever was answered 200 survives. Across the two
// processes' outputs every call ends exactly once, and an id answered 200
// before the kill is a duplicate when LiveKit redelivers it afterwards. A
// webhook in flight at the kill was not answered 200: LiveKit retries it,
// and its lines may then appear twice with the same webhook_id (at least
// once, never zero).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeBody, type JsonObject } from '../../src/livekit/samples.ts';
import { type Daemon, type ObsLine, postSigned, startDaemon } from '../helpers/daemon.ts';
import { RoomScript, sipLeg } from '../obs/sessions.helpers.ts';

const SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? '1');

/** One room with one SIP call, as LiveKit's room queue sends it. */
function callScenario(index: number, direction: 'inbound' | 'outbound', answered: boolean): JsonObject[] {
  const room = new RoomScript(`kill9-${index}`);
  const leg = sipLeg(direction, 2, `+1415555${String(1000 + index)}`);
  const events = [room.started(0), room.joined(leg, 3, direction === 'inbound' ? 'ringing' : 'dialing')];
  if (answered) events.push(room.trackPublished(leg, 9));
  events.push(room.left(leg, 40, answered ? 'CLIENT_INITIATED' : 'USER_UNAVAILABLE', answered ? 'hangup' : 'ringing'), room.finished(45));
  return events;
}

/** Rooms interleaved as LiveKit's per-room queues deliver them: each room in order, rooms mixed. */
const streamArbitrary = fc
  .array(fc.record({ direction: fc.constantFrom<'inbound' | 'outbound'>('inbound', 'outbound'), answered: fc.boolean() }), { minLength: 2, maxLength: 5 })
  .chain((calls) => {
    const scenarios = calls.map((call, index) => callScenario(index, call.direction, call.answered));
    const total = scenarios.reduce((sum, events) => sum + events.length, 0);
    return fc.tuple(fc.constant(scenarios), fc.array(fc.nat(scenarios.length - 1), { minLength: total * 2, maxLength: total * 2 }), fc.nat(total - 1), fc.nat(3));
  });

function interleave(scenarios: JsonObject[][], picks: number[]): JsonObject[] {
  const queues = scenarios.map((events) => [...events]);
  const out: JsonObject[] = [];
  for (const pick of picks) {
    const queue = queues[pick % queues.length]!;
    if (queue.length > 0) out.push(queue.shift()!);
  }
  for (const queue of queues) out.push(...queue);
  return out;
}

test('kill -9 at random moments with --state-file: every call ends exactly once, answered ids stay duplicates', { timeout: 600_000 }, async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'cp-kill9-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  let run = 0;
  await fc.assert(
    fc.asyncProperty(streamArbitrary, async ([scenarios, picks, killAt, killDelayMs]) => {
      const stream = interleave(scenarios, picks);
      const stateFile = join(directory, `state-${++run}.json`);
      const outputs: ObsLine[][] = [];
      const acceptedBeforeKill = new Set<string>();
      let daemon: Daemon = await startDaemon({ args: ['--state-file', stateFile] });
      let index = 0;
      try {
        // Deliver in order; at `killAt`, kill -9 while that webhook is in flight (after 0–3 ms).
        for (; index < stream.length; index++) {
          const body = encodeBody(stream[index]!);
          if (index === killAt) {
            const inFlight = postSigned(daemon.url, body).catch(() => undefined);
            await new Promise((resolve) => setTimeout(resolve, killDelayMs));
            daemon.child.kill('SIGKILL');
            const answer = await inFlight;
            await daemon.exited;
            outputs.push(daemon.lines());
            // Answered 200 just before dying: LiveKit will not resend it; otherwise it retries.
            if (answer?.status === 200) {
              acceptedBeforeKill.add(String(stream[index]!.id));
              index++;
            }
            break;
          }
          const answer = await postSigned(daemon.url, body);
          assert.equal(answer.status, 200);
          acceptedBeforeKill.add(String(stream[index]!.id));
        }
        daemon = await startDaemon({ args: ['--state-file', stateFile] });
        // LiveKit's retry of the webhook in flight, then the rest of the stream.
        for (; index < stream.length; index++) assert.equal((await postSigned(daemon.url, encodeBody(stream[index]!))).status, 200);
        // Redeliveries of ids answered before the kill are duplicates now.
        for (const json of stream) {
          if (!acceptedBeforeKill.has(String(json.id))) continue;
          const answer = await postSigned(daemon.url, encodeBody(json));
          assert.equal(answer.status, 200);
          assert.equal(JSON.parse(answer.text).status, 'duplicate', `${String(json.id)} was accepted again after the restart`);
        }
        await daemon.stop('SIGTERM');
        outputs.push(daemon.lines());
      } finally {
        daemon.child.kill('SIGKILL');
      }

      const lines = outputs.flat();
      const ended = new Map<string, Set<string>>();
      for (const line of lines) {
        if (line.event_type !== 'call.ended') continue;
        const webhooks = ended.get(String(line.participant_sid)) ?? new Set<string>();
        webhooks.add(String(line.webhook_id));
        ended.set(String(line.participant_sid), webhooks);
      }
      assert.equal(ended.size, scenarios.length, 'every call ended');
      for (const [leg, webhooks] of ended) assert.equal(webhooks.size, 1, `call ${leg} ended by ${[...webhooks].join(', ')}: twice`);
    }),
    { numRuns: Math.max(1, Math.round(6 * SCALE)) },
  );
});
