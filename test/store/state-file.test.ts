// The state file: atomic saves, and loads that never crash the daemon.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SessionStore } from '../../src/obs/sessions.ts';
import { decodeState, encodeState, loadState, saveState, STATE_FORMAT } from '../../src/store/state-file.ts';
import { RecentIds } from '../../src/store/recent-ids.ts';
import { RoomScript, run, sipLeg } from '../obs/sessions.helpers.ts';

const directory = mkdtempSync(join(tmpdir(), 'cp-state-test-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let counter = 0;
const freshPath = () => join(directory, `state-${++counter}.json`);

function populated(): { sessions: SessionStore; recentIds: RecentIds } {
  const sessions = new SessionStore();
  const room = new RoomScript();
  run(sessions, [room.started(0), room.joined(sipLeg('inbound', 1), 2, 'active')], 1_000);
  const recentIds = new RecentIds();
  recentIds.remember('EV_aaaaaaaaaaaa', 1_000);
  recentIds.remember('EV_bbbbbbbbbbbb', 2_000);
  return { sessions, recentIds };
}

describe('saveState / loadState', () => {
  test('round trip: sessions, calls and recent ids come back', () => {
    const path = freshPath();
    const { sessions, recentIds } = populated();
    assert.equal(saveState(path, { sessions: sessions.snapshot(), recentIds: recentIds.entries() }), undefined);
    const loaded = loadState(path, 3_000);
    assert.equal(loaded.warning, undefined);
    const restored = new SessionStore();
    restored.restore(loaded.sessions!, 3_000);
    assert.deepEqual(restored.snapshot(), sessions.snapshot());
    assert.equal(restored.openCalls, 1);
    const ids = new RecentIds();
    ids.restore(loaded.recentIds!, 3_000);
    assert.ok(ids.has('EV_aaaaaaaaaaaa', 3_000));
    assert.ok(ids.has('EV_bbbbbbbbbbbb', 3_000));
  });

  test('the file is readable by its owner only and leaves no temporary file behind', () => {
    const path = freshPath();
    const { sessions, recentIds } = populated();
    assert.equal(saveState(path, { sessions: sessions.snapshot(), recentIds: recentIds.entries() }), undefined);
    assert.equal(saveState(path, { sessions: sessions.snapshot(), recentIds: recentIds.entries() }), undefined);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(directory).filter((name) => name.includes('.tmp')), []);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    assert.equal(file.format, STATE_FORMAT);
    assert.equal(file.version, 1);
  });

  test('a failed save reports why, never throws, and leaves the previous file intact', { skip: process.getuid?.() === 0 ? 'root ignores directory permissions' : false }, () => {
    const readOnly = join(directory, 'read-only');
    mkdirSync(readOnly);
    const path = join(readOnly, 'state.json');
    const { sessions, recentIds } = populated();
    assert.equal(saveState(path, { sessions: sessions.snapshot(), recentIds: [] }), undefined);
    const previous = readFileSync(path, 'utf8');
    chmodSync(readOnly, 0o500);
    try {
      const problem = saveState(path, { sessions: sessions.snapshot(), recentIds: recentIds.entries() });
      assert.match(problem ?? '', /cannot save .*EACCES/);
      assert.equal(readFileSync(path, 'utf8'), previous);
    } finally {
      chmodSync(readOnly, 0o700);
    }
  });

  test('a save whose rename fails (the path is a directory) reports it and removes its temporary file', () => {
    const path = join(directory, 'occupied');
    mkdirSync(join(path, 'child'), { recursive: true });
    const problem = saveState(path, { sessions: new SessionStore().snapshot(), recentIds: [] });
    assert.match(problem ?? '', /cannot save .*(EISDIR|ENOTEMPTY|EEXIST)/);
    assert.deepEqual(readdirSync(directory).filter((name) => name.includes('.tmp')), []);
    assert.deepEqual(readdirSync(path), ['child']);
  });

  test('saving into a directory that does not exist is a problem string, not a crash', () => {
    const problem = saveState(join(directory, 'missing', 'state.json'), { sessions: new SessionStore().snapshot(), recentIds: [] });
    assert.match(problem ?? '', /ENOENT/);
  });

  test('a missing file: a warning and an empty start', () => {
    const loaded = loadState(join(directory, 'never-written.json'), 0);
    assert.match(loaded.warning ?? '', /does not exist yet; starting with empty state/);
    assert.equal(loaded.sessions, undefined);
    assert.equal(loaded.recentIds, undefined);
  });

  test('an unreadable path (a directory): a warning', () => {
    const loaded = loadState(directory, 0);
    assert.match(loaded.warning ?? '', /cannot be read \(EISDIR/);
    assert.equal(loaded.sessions, undefined);
  });

  const corrupt: Array<[string, string, RegExp]> = [
    ['truncated JSON', '{"format":"control-plane-state","version":1,"sessions":{"vers', /is corrupt/],
    ['empty file', '', /is corrupt/],
    ['a JSON array', '[]', /not a JSON object/],
    ['another program’s file', '{"hello":"world"}', /format is not/],
    ['a future version', JSON.stringify({ format: STATE_FORMAT, version: 9 }), /unsupported version 9/],
    ['sessions of the wrong shape', JSON.stringify({ format: STATE_FORMAT, version: 1, sessions: { version: 1, open: [{ sid: 1 }], ended: [], providerKeys: [] }, recentIds: [] }), /sessions\.open\[0\]/],
    ['recent ids of the wrong shape', JSON.stringify({ format: STATE_FORMAT, version: 1, sessions: { version: 1, open: [], ended: [], providerKeys: [] }, recentIds: [['EV_x', 'soon']] }), /recentIds/],
  ];
  for (const [what, text, warning] of corrupt) {
    test(`a corrupt file (${what}): a warning naming the file, and an empty start`, () => {
      const path = freshPath();
      writeFileSync(path, text);
      const loaded = loadState(path, 0);
      assert.match(loaded.warning ?? '', warning);
      assert.ok(loaded.warning!.includes(path));
      assert.match(loaded.warning!, /starting with empty state/);
      assert.equal(loaded.sessions, undefined);
      assert.equal(loaded.recentIds, undefined);
    });
  }

  test('encodeState and decodeState are inverse', () => {
    const { sessions, recentIds } = populated();
    const state = { sessions: sessions.snapshot(), recentIds: recentIds.entries() };
    const decoded = decodeState(encodeState(state, 5_000), 'x');
    assert.deepEqual(decoded, JSON.parse(JSON.stringify(state)));
  });
});
