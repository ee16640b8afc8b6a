// The state journal (--state-file): every committed group is durable before
// it is answered; a start replays snapshot + journal; compaction happens in
// slices without losing a change; damaged or hostile files never crash the
// daemon nor get quoted.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MemoryStore } from '../../src/store/memory.ts';
import { decodeChanges, encodeChanges, StateJournal } from '../../src/store/state-journal.ts';
import { SessionDriver } from '../helpers/session-driver.ts';
import { RoomScript, sipLeg } from '../obs/sessions.helpers.ts';
import { decode } from '../obs/sessions.helpers.ts';

const directory = mkdtempSync(join(tmpdir(), 'cp-journal-test-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let counter = 0;
const freshPath = () => join(directory, `state-${++counter}.json`);

/** A store with a journal, driven one event at a time like the output stage. */
function durable(path: string, warnings: string[] = []): { driver: SessionDriver; journal: StateJournal; opened: string[] } {
  const driver = new SessionDriver();
  const journal = new StateJournal({ path, fsync: 'never', warn: (message) => warnings.push(message) });
  const opened = journal.open(driver.store);
  return { driver, journal, opened };
}

function contents(store: MemoryStore) {
  const all = store.contents();
  return { open: [...all.open], ended: [...all.ended], providerKeys: [...all.providerKeys], ids: [...all.ids] };
}

/** The receiver's clock: a start prunes what expired by the real clock. */
const NOW = Date.now();

function feed(driver: SessionDriver, events: ReturnType<RoomScript['started']>[], nowMs = NOW): void {
  for (const json of events) driver.observe(decode(json), nowMs).commit();
}

describe('the state journal', () => {
  test('changes are in the journal as soon as they are committed: a crash (no close) loses none', () => {
    const path = freshPath();
    const room = new RoomScript();
    const leg = sipLeg('inbound', 1);
    const first = durable(path);
    feed(first.driver, [room.started(0), room.joined(leg, 2, 'ringing'), room.trackPublished(leg, 5)]);
    // No close(): the process died.
    const second = durable(path);
    assert.deepEqual(contents(second.driver.store), contents(first.driver.store));
    assert.ok(second.opened.some((warning) => /3 committed change\(s\) recovered/.test(warning)));
    second.journal.close();
  });

  test('files are owner-only; a clean stop leaves one snapshot and an empty journal segment, no temporary file', () => {
    const path = freshPath();
    const { driver, journal } = durable(path);
    feed(driver, [new RoomScript().started(0)]);
    journal.close();
    const mine = readdirSync(directory).filter((name) => name.startsWith(path.split('/').pop()!) || name.includes('.tmp'));
    assert.equal(mine.filter((name) => name.endsWith('.tmp')).length, 0);
    assert.equal(mine.filter((name) => name.includes('.journal.')).length, 1);
    for (const name of mine) assert.equal(statSync(join(directory, name)).mode & 0o777, 0o600, name);
    const again = durable(path);
    assert.deepEqual(again.opened, [], 'a clean stop recovers nothing from the journal');
    assert.equal(again.driver.openSessions, 1);
    again.journal.close();
  });

  test('a torn last journal line (a crash mid-write) is skipped; the lines before it are applied', () => {
    const path = freshPath();
    const first = durable(path);
    const rooms = [new RoomScript('a'), new RoomScript('b')];
    feed(first.driver, rooms.map((room) => room.started(0)));
    const segment = readdirSync(directory).filter((name) => name.startsWith(`${path.split('/').pop()!}.journal.`)).sort().at(-1)!;
    writeFileSync(join(directory, segment), '{"t":1,"i":[["EV_torn', { flag: 'a' });
    const warnings: string[] = [];
    const second = durable(path, warnings);
    assert.equal(second.driver.openSessions, 2);
    assert.ok(!second.opened.some((warning) => /damaged/.test(warning)), 'a torn last line is expected after a crash, not damage');
    second.journal.close();
  });

  test('compaction in slices keeps every change, also those committed while it runs', async () => {
    const path = freshPath();
    const { driver, journal } = durable(path);
    // Force a compaction soon: many sessions, then more commits while the snapshot is being written.
    const rooms = Array.from({ length: 3_000 }, (_, index) => new RoomScript(`room-${index}`));
    feed(driver, rooms.map((room) => room.started(0)));
    (journal as unknown as { segmentBytes: number }).segmentBytes = 1e12; // past any threshold
    feed(driver, [rooms[0]!.finished(10)]); // this append starts the compaction
    feed(driver, [rooms[1]!.finished(11), new RoomScript('late').started(12)]);
    await journal.settled();
    feed(driver, [rooms[2]!.finished(13)]);
    const expected = contents(driver.store);
    // A crash now: snapshot + the segments after it must give the same state.
    const restored = durable(path);
    assert.deepEqual(contents(restored.driver.store).open.map((record) => record.sid).sort(), expected.open.map((record) => record.sid).sort());
    assert.deepEqual(new Set(contents(restored.driver.store).ended.map(([sid]) => sid)), new Set(expected.ended.map(([sid]) => sid)));
    assert.deepEqual(new Set(contents(restored.driver.store).ids.map(([id]) => id)), new Set(expected.ids.map(([id]) => id)));
    restored.journal.close();
  });

  test('a corrupt state file is moved aside (never overwritten, never quoted) and the start is empty', () => {
    const path = freshPath();
    writeFileSync(path, 'root:x:0:0:root:/root:/bin/bash\n');
    const { opened, journal, driver } = durable(path);
    assert.equal(opened.length, 1);
    assert.match(opened[0]!, /is not usable \(not JSON\); moved aside to .*\.corrupt-\d{8}T\d{6}Z/);
    assert.ok(!opened[0]!.includes('root:x'), 'the content is never quoted');
    assert.equal(driver.openSessions, 0);
    const aside = readdirSync(directory).find((name) => name.startsWith(`${path.split('/').pop()!}.corrupt-`))!;
    assert.equal(readFileSync(join(directory, aside), 'utf8'), 'root:x:0:0:root:/root:/bin/bash\n');
    journal.close();
  });

  test('a state file that is a symlink to a file elsewhere: its content is not quoted in the warning', () => {
    const path = freshPath();
    const outside = join(directory, 'outside-secret.txt');
    writeFileSync(outside, 'secret-line-that-must-not-leak\n');
    symlinkSync(outside, path);
    const { opened, journal } = durable(path);
    assert.ok(opened.every((warning) => !warning.includes('secret-line')));
    journal.close();
    assert.equal(readFileSync(outside, 'utf8'), 'secret-line-that-must-not-leak\n', 'the file the link pointed to is left alone');
  });

  test('stale temporary files of an interrupted save are removed at start, with a warning', () => {
    const path = freshPath();
    const stale = join(directory, `.${path.split('/').pop()!}.4242.7.tmp`);
    writeFileSync(stale, 'half a snapshot');
    const { opened, journal } = durable(path);
    assert.ok(opened.some((warning) => warning.includes('removed') && warning.includes('.tmp')));
    assert.throws(() => statSync(stale));
    journal.close();
  });

  test('a version 1 state file (a single JSON object) is read and upgraded', () => {
    const path = freshPath();
    const record = { sid: 'RM_v1room', name: 'v1', state: 'created', calls: [], touchedAtMs: NOW };
    writeFileSync(path, JSON.stringify({ format: 'control-plane-state', version: 1, saved_at: '2026-11-30T00:00:00.000Z', sessions: { version: 1, open: [record], ended: [['RM_v1ended', NOW - 100]], providerKeys: [] }, recentIds: [['EV_v1id000000', NOW - 50]] }));
    const { driver, journal, opened } = durable(path);
    assert.deepEqual(opened, []);
    assert.equal(driver.openSessions, 1);
    assert.equal(driver.store.idSeen('EV_v1id000000', NOW), true);
    assert.equal(driver.store.room('RM_v1ended'), 'ended');
    journal.close();
    assert.match(readFileSync(path, 'utf8').split('\n')[0]!, /"version":2/);
  });

  test('a state file in a directory that cannot be created: a clear error at start', { skip: process.getuid?.() === 0 ? 'root can create anywhere' : false }, () => {
    const blocked = join(directory, 'blocked');
    mkdirSync(blocked, { mode: 0o500 });
    assert.throws(() => durable(join(blocked, 'sub', 'state.json')), /--state-file: cannot create the directory/);
  });

  test('a journal line encodes and decodes to the same changes', () => {
    const changes = { ids: new Map([['EV_a', 1]]), rooms: new Map([['RM_a', 'ended' as const]]), endedAtMs: new Map([['RM_a', 5]]), providerKeys: new Map([['egress:EG_a:failed', 2]]) };
    const decoded = decodeChanges(encodeChanges(changes, 7));
    assert.deepEqual(decoded, { changes, nowMs: 7 });
    assert.equal(decodeChanges('{"t":1}'), undefined);
    assert.equal(decodeChanges('{"t":1,"i":[],"r":[["RM_x",{"sid":"RM_other"}]],"e":[],"p":[]}'), undefined, 'a record under another SID is damage');
  });
});

test('a journal that refuses a commit fails it, changes nothing, and makes the store report the problem until a commit succeeds', () => {
  const store = new MemoryStore();
  let refuse = true;
  store.attachJournal({
    append: () => {
      if (refuse) throw new Error('ENOSPC (test)');
    },
  });
  const changes = { ids: new Map([['EV_journal_fail', Date.now()]]), rooms: new Map(), endedAtMs: new Map(), providerKeys: new Map() };
  assert.throws(() => store.commit(store, changes, Date.now()), /ENOSPC/);
  assert.equal(store.idSeen('EV_journal_fail', Date.now()), false, 'nothing applied');
  assert.equal(store.problem(), 'store_state_file');
  refuse = false;
  store.commit(store, changes, Date.now());
  assert.equal(store.idSeen('EV_journal_fail', Date.now()), true);
  assert.equal(store.problem(), null);
});
