import assert from 'node:assert/strict';
import { test } from 'node:test';
import { journalStreams, parseJournalStream } from '../src/journal-stream.ts';

const identities: Record<number, { dev: bigint; ino: bigint } | null> = {
  1: { dev: 25n, ino: 4113n },
  2: { dev: 25n, ino: 9001n },
};
const identify = (fd: number) => identities[fd] ?? null;

test('JOURNAL_STREAM is device:inode in decimal; anything else names no stream', () => {
  assert.deepEqual(parseJournalStream('25:4113'), { dev: 25n, ino: 4113n });
  // st_dev and st_ino can pass 2^53: compared as bigints.
  assert.deepEqual(parseJournalStream('18446744073709551615:9007199254740993'), { dev: 18446744073709551615n, ino: 9007199254740993n });
  for (const value of [undefined, '', '25', '25:', ':4113', 'a:b', '25:4113:1', '-1:2']) assert.equal(parseJournalStream(value), null, String(value));
});

test('only the descriptor that is the named stream counts', () => {
  assert.deepEqual(journalStreams('25:4113', identify), { stdout: true, stderr: false });
  assert.deepEqual(journalStreams('25:9001', identify), { stdout: false, stderr: true });
  // Inherited by a child whose output was redirected: names neither.
  assert.deepEqual(journalStreams('25:7', identify), { stdout: false, stderr: false });
  assert.deepEqual(journalStreams('26:4113', identify), { stdout: false, stderr: false });
  assert.deepEqual(journalStreams(undefined, identify), { stdout: false, stderr: false });
  // A closed descriptor is not the journal.
  assert.deepEqual(journalStreams('25:4113', () => null), { stdout: false, stderr: false });
});
