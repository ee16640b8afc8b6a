// --log-keep keeps the newest rotated files by their order of rotation,
// also when several rotations fall in one second and the background
// cleanup deletes old files between them (a freed name must never be
// given to a newer file, where it would sort as the oldest).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSink } from '../../src/sinks/file.ts';
import { RotatedFiles } from '../../src/sinks/rotated-files.ts';
import { line, lineNumbers, manualClock, readMaybeGzip, sortedNames, temporaryDirectory } from './helpers.ts';

function openSink(t: Parameters<typeof temporaryDirectory>[0], path: string, options: { keep: number; compress?: boolean; now: () => Date }): FileSink {
  const problems: string[] = [];
  const sink = new FileSink({ path, maxSize: 40, keep: options.keep, compress: options.compress ?? false, fsync: 'never', now: options.now, reportProblem: (message) => problems.push(message) });
  t.after(async () => {
    sink.close();
    await sink.idle();
    assert.deepEqual(problems, [], 'no problem reported');
  });
  return sink;
}

/** The line numbers of every rotated file left, in name order, and of the live file. */
function kept(directory: string, path: string): { rotated: number[][]; live: number[] } {
  const rotated = sortedNames(directory)
    .filter((name) => name !== 'app.log')
    .map((name) => lineNumbers(readMaybeGzip(join(directory, name))));
  return { rotated, live: lineNumbers(readFileSync(path, 'utf8')) };
}

for (const compress of [false, true]) {
  test(`rotations in one second with the cleanup running between them keep the newest files${compress ? ' (compressed)' : ''}`, async (t) => {
    const directory = temporaryDirectory(t);
    const path = join(directory, 'app.log');
    const clock = manualClock('2025-01-02T03:04:05.000Z');
    const sink = openSink(t, path, { keep: 2, compress, now: clock.now });
    // One line per file: every write from the second on rotates the previous line's file.
    for (let n = 1; n <= 8; n++) {
      sink.write(Buffer.from(line(n)));
      await sink.idle();
    }
    assert.equal(sink.stats.rotations, 7);
    assert.deepEqual(kept(directory, path), { rotated: [[6], [7]], live: [8] });
  });
}

test('a rotation in a later second after same-second ones sorts after them', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, path, { keep: 3, now: clock.now });
  for (let n = 1; n <= 5; n++) {
    sink.write(Buffer.from(line(n)));
    await sink.idle();
  }
  clock.advance(1000);
  sink.write(Buffer.from(line(6)));
  await sink.idle();
  assert.deepEqual(kept(directory, path), { rotated: [[3], [4], [5]], live: [6] });
});

test('when the clock goes back, a new rotated name still sorts after every existing one', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, path, { keep: 2, now: clock.now });
  sink.write(Buffer.from(line(1)));
  sink.write(Buffer.from(line(2)));
  clock.set('2025-01-02T02:00:00.000Z'); // an hour back (NTP step)
  sink.write(Buffer.from(line(3)));
  sink.write(Buffer.from(line(4)));
  await sink.idle();
  assert.deepEqual(kept(directory, path), { rotated: [[2], [3]], live: [4] });
});

test('nextName never gives a name that sorts before an existing rotated file, or reuses a name given before', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  writeFileSync(`${path}.20250102T030405Z-3.gz`, '');
  const rotated = new RotatedFiles({ path, keep: 5, compress: false, onError: (error) => assert.fail(error) });
  const first = rotated.nextName(new Date('2025-01-02T03:04:05.500Z'));
  assert.equal(first, `${path}.20250102T030405Z-4`);
  // Given out, not yet on disk (or already deleted): never given again.
  assert.equal(rotated.nextName(new Date('2025-01-02T03:04:05.900Z')), `${path}.20250102T030405Z-5`);
  assert.equal(rotated.nextName(new Date('2025-01-02T03:04:01.000Z')), `${path}.20250102T030405Z-6`, 'the clock went back');
  assert.equal(rotated.nextName(new Date('2025-01-02T03:04:06.000Z')), `${path}.20250102T030406Z`);
});
