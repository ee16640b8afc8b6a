// What the caps cost: fill a SessionStore with its default limits to the
// brim (every open session holding a SIP leg, every tombstone slot used)
// and measure the heap. The numbers are printed as test diagnostics and
// quoted in README; the assertions keep them from silently growing.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { CallRecord } from '../../src/obs/calls.ts';
import { type SessionRecord, type SessionSnapshot } from '../../src/obs/sessions.ts';
import { SessionDriver as SessionStore } from '../helpers/session-driver.ts';
import { MEMORY_DEFAULTS, MemoryStore } from '../../src/store/memory.ts';
import { StateJournal } from '../../src/store/state-journal.ts';
import { REMEMBERED_TRACKS_PER_SESSION } from '../../src/obs/transitions.ts';
import { RoomScript, run, sipLeg, T0 } from './sessions.helpers.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapMb(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

// Realistic sizes: LiveKit ids are a prefix and 12 characters; numbers E.164.
const id = (prefix: string, index: number) => `${prefix}_${index.toString(36).padStart(12, '0')}`;

function fullSnapshot(): SessionSnapshot {
  const open: SessionRecord[] = [];
  for (let index = 0; index < MEMORY_DEFAULTS.maxOpenSessions; index++) {
    const number = `+1415${String(index).padStart(7, '0')}`;
    const call: CallRecord = {
      participantSid: id('PA', index),
      identity: `sip_${number}`,
      direction: index % 2 ? 'inbound' : 'outbound',
      from: number,
      to: '+31201234589',
      sipCallId: id('SCL', index),
      trunkId: id('ST', index % 50),
      phase: 'answered',
      startedAtMs: T0 * 1000 + index,
      answeredAtMs: T0 * 1000 + index + 5_000,
      answerSignal: 'track_published',
    };
    open.push({ sid: id('RM', index), name: `call_${number}_${id('', index).slice(1, 5)}`, state: 'connected', calls: [call], touchedAtMs: 1_000 + index });
  }
  const ended: Array<[string, number]> = [];
  for (let index = 0; index < MEMORY_DEFAULTS.maxEndedSessions; index++) ended.push([id('RM', 10_000_000 + index), 1_000 + index]);
  const providerKeys: Array<[string, number]> = [];
  for (let index = 0; index < MEMORY_DEFAULTS.maxProviderKeys; index++) providerKeys.push([`egress:${id('EG', index)}:failed`, 1_000 + index]);
  return { version: 1, open, ended, providerKeys };
}

describe('memory cost of the caps', () => {
  test('a store full to its default caps stays under 150 MB, and saving it is atomic and bounded', (t) => {
    const baseline = heapMb();
    // Loaded as a restart loads it: from the file's text, which is then dropped.
    let text: string | undefined = JSON.stringify(fullSnapshot());
    const store = new SessionStore();
    store.restore(JSON.parse(text) as SessionSnapshot, 2_000);
    text = undefined;
    const cost = heapMb() - baseline;
    assert.equal(store.openSessions, MEMORY_DEFAULTS.maxOpenSessions);
    assert.equal(store.openCalls, MEMORY_DEFAULTS.maxCalls);
    assert.equal(store.endedSessions, MEMORY_DEFAULTS.maxEndedSessions);

    // The tombstones alone, for the per-entry figure.
    const tombstoneBaseline = heapMb();
    const tombstones = new SessionStore();
    tombstones.restore({ ...store.snapshot(), open: [], providerKeys: [] }, 2_000);
    const tombstoneCost = heapMb() - tombstoneBaseline;
    assert.equal(tombstones.endedSessions, MEMORY_DEFAULTS.maxEndedSessions);

    const directory = mkdtempSync(join(tmpdir(), 'cp-state-'));
    try {
      const path = join(directory, 'state.json');
      const journal = new StateJournal({ path, fsync: 'never', warn: (message) => assert.fail(message) });
      const durable = new MemoryStore();
      journal.open(durable);
      durable.load({ open: store.snapshot().open, ended: [], providerKeys: [], ids: [] });
      const started = performance.now();
      journal.close();
      const saveMs = performance.now() - started;
      const sizeMb = statSync(path).size / 1024 / 1024;
      t.diagnostic(
        `full store (${MEMORY_DEFAULTS.maxOpenSessions} open sessions with one SIP leg each, ${MEMORY_DEFAULTS.maxEndedSessions} tombstones, ` +
          `${MEMORY_DEFAULTS.maxProviderKeys} provider keys): ${cost.toFixed(1)} MB heap (tombstones alone ${tombstoneCost.toFixed(1)} MB); ` +
          `state file ${sizeMb.toFixed(1)} MB written in ${saveMs.toFixed(0)} ms`,
      );
      assert.ok(cost > 10 && cost < 150, `the caps cost ${cost.toFixed(1)} MB`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('remembered track events: the per-room cap, and what a full one costs', (t) => {
    const sessions = 10_000;
    const room = (index: number): SessionRecord => ({
      sid: id('RM', index),
      name: `room-${index}`,
      state: 'connected',
      calls: [],
      touchedAtMs: 1_000 + index,
      pendingTracks: Array.from({ length: REMEMBERED_TRACKS_PER_SESSION }, (_, track) => ({ participantSid: id('PA', index * 100 + track), atMs: T0 * 1000 + track * 1000 })),
    });
    const baseline = heapMb();
    let text: string | undefined = JSON.stringify({ version: 1, open: Array.from({ length: sessions }, (_, index) => room(index)), ended: [], providerKeys: [] });
    const store = new SessionStore();
    store.restore(JSON.parse(text) as SessionSnapshot, 2_000);
    text = undefined;
    const perTrackBytes = ((heapMb() - baseline) * 1024 * 1024) / (sessions * REMEMBERED_TRACKS_PER_SESSION);
    t.diagnostic(
      `${sessions} sessions with ${REMEMBERED_TRACKS_PER_SESSION} remembered tracks each: about ${perTrackBytes.toFixed(0)} bytes per track, ` +
        `${((perTrackBytes * REMEMBERED_TRACKS_PER_SESSION * MEMORY_DEFAULTS.maxOpenSessions) / 1024 / 1024).toFixed(0)} MB if every one of ${MEMORY_DEFAULTS.maxOpenSessions} open sessions were full`,
    );
    assert.ok(perTrackBytes < 250, `${perTrackBytes.toFixed(0)} bytes per remembered track`);

    // However many unknown participants publish, a room remembers at most the cap, the newest.
    const flooded = new RoomScript('flood');
    const flood = new SessionStore();
    const publishers = Array.from({ length: 3 * REMEMBERED_TRACKS_PER_SESSION }, () => sipLeg('inbound', 1));
    run(flood, [flooded.started(0), ...publishers.map((publisher, index) => flooded.trackPublished(publisher, 2 + index))]);
    const kept = flood.snapshot().open[0]!.pendingTracks!;
    assert.equal(kept.length, REMEMBERED_TRACKS_PER_SESSION);
    assert.deepEqual(kept.map((track) => track.participantSid), publishers.slice(-REMEMBERED_TRACKS_PER_SESSION).map((publisher) => publisher.sid));
  });

  test('a flood of distinct rooms cannot pass the cap', (t) => {
    const store = new SessionStore({ maxOpenSessions: 2_000, maxEndedSessions: 1_000 });
    const before = heapMb();
    for (let index = 0; index < 6_000; index++) {
      const room = new RoomScript(`flood-${index}`);
      run(store, index % 2 ? [room.started(0), room.joined(sipLeg('inbound', 1), 2, 'ringing')] : [room.started(0), room.finished(1)], 1_000 + index);
    }
    assert.ok(store.openSessions <= 2_000);
    assert.ok(store.endedSessions <= 1_000);
    assert.equal(store.evictedSessions, 1_000);
    t.diagnostic(`6000 rooms through a store capped at 2000 open / 1000 ended: ${(heapMb() - before).toFixed(1)} MB`);
  });
});
