import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { FileSink, type FileSinkOptions } from '../../src/sinks/file.ts';
import { SinkWriteError } from '../../src/sinks/sink.ts';
import { errnoError, line, lineNumbers, manualClock, readMaybeGzip, replaceFs, replaceWriteSync, sortedNames, temporaryDirectory } from './helpers.ts';

function openSink(t: Parameters<typeof temporaryDirectory>[0], options: Partial<FileSinkOptions> & { path: string }): FileSink {
  const problems: string[] = [];
  const sink = new FileSink({ maxSize: 1024 * 1024, keep: 14, compress: false, fsync: 'never', reportProblem: (message) => problems.push(message), ...options });
  t.after(async () => {
    sink.close();
    await sink.idle();
    assert.deepEqual(problems, [], 'no problem reported');
  });
  return sink;
}

test('appends each chunk whole and creates the missing directory', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'nested', 'deeper', 'app.log');
  const sink = openSink(t, { path });
  assert.equal(sink.description, path);
  sink.write(Buffer.from(line(1) + line(2)));
  sink.write(Buffer.from(line(3)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 2, 3]);
  assert.equal(statSync(path).mode & 0o777 & ~0o640, 0, 'created no more permissive than 0640');
});

test('keeps what the file held before start and appends after it', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  writeFileSync(path, line(1));
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(2)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 2]);
});

test('at start, cuts off an unterminated last line left by a write that a kill -9 cut short', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const cut = line(2).slice(0, 17);
  writeFileSync(path, line(1) + cut);
  const sink = openSink(t, { path });
  assert.equal(sink.droppedPartialBytes, cut.length);
  sink.write(Buffer.from(line(3)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 3]);
});

test('at start, a file that is only an unterminated fragment is emptied; whole lines are never touched', (t) => {
  const directory = temporaryDirectory(t);
  writeFileSync(join(directory, 'fragment.log'), line(1).slice(0, 9));
  const fragment = openSink(t, { path: join(directory, 'fragment.log') });
  assert.equal(fragment.droppedPartialBytes, 9);
  assert.equal(readFileSync(join(directory, 'fragment.log'), 'utf8'), '');
  writeFileSync(join(directory, 'whole.log'), line(1) + line(2));
  const whole = openSink(t, { path: join(directory, 'whole.log') });
  assert.equal(whole.droppedPartialBytes, 0);
  assert.deepEqual(lineNumbers(readFileSync(join(directory, 'whole.log'), 'utf8')), [1, 2]);
});

test('refuses to start with an error naming --log-file when the file cannot be opened', (t) => {
  const directory = temporaryDirectory(t);
  writeFileSync(join(directory, 'not-a-directory'), '');
  assert.throws(() => new FileSink({ path: join(directory, 'not-a-directory', 'app.log'), maxSize: 1000, keep: 1, compress: false, fsync: 'never' }), /--log-file .*not-a-directory\/app\.log: cannot open/);
  assert.throws(() => new FileSink({ path: directory, maxSize: 1000, keep: 1, compress: false, fsync: 'never' }), /--log-file .*EISDIR/);
});

test('rotates by renaming to <file>.<UTC second> when the next write would pass the maximum size', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.678Z');
  const sink = openSink(t, { path, maxSize: 100, now: clock.now });
  sink.write(Buffer.from(line(1))); // 40
  sink.write(Buffer.from(line(2))); // 80
  assert.equal(sink.stats.rotations, 0);
  sink.write(Buffer.from(line(3))); // would be 120 > 100: rotate first
  assert.equal(sink.stats.rotations, 1);
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z']);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z`, 'utf8')), [1, 2]);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [3]);
});

test('a file that reaches exactly the maximum size is not rotated early', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path, maxSize: 80 });
  sink.write(Buffer.from(line(1)));
  sink.write(Buffer.from(line(2)));
  assert.equal(statSync(path).size, 80);
  assert.equal(sink.stats.rotations, 0);
  sink.write(Buffer.from(line(3)));
  assert.equal(sink.stats.rotations, 1);
});

test('rotations within the same second get -1, -2 and never overwrite each other', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, { path, maxSize: 40, now: clock.now });
  for (let n = 1; n <= 4; n++) sink.write(Buffer.from(line(n)));
  assert.equal(sink.stats.rotations, 3);
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z', 'app.log.20250102T030405Z-1', 'app.log.20250102T030405Z-2']);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z`, 'utf8')), [1]);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z-1`, 'utf8')), [2]);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z-2`, 'utf8')), [3]);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [4]);
});

test('a chunk larger than the maximum size goes whole into a fresh file instead of rotating forever', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path, maxSize: 50 });
  const big = line(1, 200);
  sink.write(Buffer.from(big));
  assert.equal(sink.stats.rotations, 0, 'an empty file is never rotated');
  sink.write(Buffer.from(line(2)));
  assert.equal(sink.stats.rotations, 1);
  assert.equal(readFileSync(path, 'utf8'), line(2));
});

test('a rotation the directory refuses (EACCES) reports it, keeps writing past the limit, and retries later', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const problems: string[] = [];
  const sink = new FileSink({ path, maxSize: 80, keep: 5, compress: false, fsync: 'never', now: clock.now, reportProblem: (message) => problems.push(message) });
  t.after(() => sink.close());
  sink.write(Buffer.from(line(1)));
  sink.write(Buffer.from(line(2)));
  const refused = replaceFs('renameSync', () => {
    throw errnoError('EACCES', 'permission denied');
  });
  t.after(refused.restore);
  sink.write(Buffer.from(line(3))); // would rotate: refused, written anyway
  sink.write(Buffer.from(line(4))); // no new attempt yet
  assert.equal(refused.calls(), 1, 'one attempt, then a pause');
  assert.equal(sink.stats.writeErrors, 0);
  assert.equal(sink.stats.rotations, 0);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /cannot rotate .*app\.log .*EACCES.*past --log-max-size/);
  refused.restore();
  clock.advance(10_000);
  sink.write(Buffer.from(line(5)));
  assert.equal(sink.stats.rotations, 1);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030415Z`, 'utf8')), [1, 2, 3, 4]);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [5]);
});

test('keeps the newest --log-keep rotated files and deletes only names of its own pattern', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const foreign = [
    'app.log.1', // logrotate
    'app.log.2.gz', // logrotate, compressed
    'app.log-20240101', // logrotate dateext
    'app.log.20200101T000000Z.bak', // not ours: a suffix we never write
    'app.log.2020-01-01T00:00:00Z', // not our stamp format
    'other.log.20200101T000000Z', // another log's rotation
    'xapp.log.20200101T000000Z',
  ];
  for (const name of foreign) writeFileSync(join(directory, name), 'foreign\n');
  const clock = manualClock('2025-01-02T03:04:00.000Z');
  const sink = openSink(t, { path, maxSize: 40, keep: 2, now: clock.now });
  for (let n = 1; n <= 6; n++) {
    sink.write(Buffer.from(line(n))); // write n (n ≥ 2) rotates the file holding n - 1, at second n - 1
    clock.advance(1000);
  }
  await sink.idle();
  assert.equal(sink.stats.rotations, 5);
  assert.deepEqual(sortedNames(directory), [...foreign, 'app.log', 'app.log.20250102T030404Z', 'app.log.20250102T030405Z'].sort());
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030404Z`, 'utf8')), [4]);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z`, 'utf8')), [5]);
});

test('keep orders same-second rotations by their counter, -10 after -9', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, { path, maxSize: 40, keep: 3, now: clock.now });
  for (let n = 0; n <= 11; n++) sink.write(Buffer.from(line(n)));
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z-10', 'app.log.20250102T030405Z-8', 'app.log.20250102T030405Z-9']);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.20250102T030405Z-10`, 'utf8')), [10]);
});

test('keep 0 deletes every rotated file', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path, maxSize: 40, keep: 0 });
  for (let n = 1; n <= 3; n++) sink.write(Buffer.from(line(n)));
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log']);
});

test('compresses rotated files in the background: valid gzip, same bytes, same mtime, source removed', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, { path, maxSize: 2000, compress: true, now: clock.now });
  let expected = '';
  for (let n = 1; n <= 100; n++) {
    const text = line(n);
    sink.write(Buffer.from(text));
    if (sink.stats.rotations === 0) expected += text;
  }
  assert.equal(sink.stats.rotations, 1);
  // write() returned before compressing: the plain rotated file is still there.
  const rotated = `${path}.20250102T030405Z`;
  const rotatedMtime = statSync(rotated).mtimeMs;
  assert.ok(existsSync(rotated), 'compression does not run inside write()');
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z.gz']);
  assert.equal(readMaybeGzip(`${rotated}.gz`), expected);
  assert.ok(Math.abs(statSync(`${rotated}.gz`).mtimeMs - rotatedMtime) < 1, 'the .gz keeps the modification time of the rotated file');
  assert.deepEqual(lineNumbers(expected), Array.from({ length: 50 }, (_, index) => index + 1));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), Array.from({ length: 50 }, (_, index) => index + 51));
});

test('the same-second counter also skips names that exist only compressed', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const sink = openSink(t, { path, maxSize: 40, compress: true, now: clock.now });
  sink.write(Buffer.from(line(1)));
  sink.write(Buffer.from(line(2)));
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z.gz']);
  sink.write(Buffer.from(line(3)));
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250102T030405Z-1.gz', 'app.log.20250102T030405Z.gz']);
  assert.deepEqual(lineNumbers(readMaybeGzip(`${path}.20250102T030405Z.gz`)), [1]);
  assert.deepEqual(lineNumbers(readMaybeGzip(`${path}.20250102T030405Z-1.gz`)), [2]);
});

test('at start, finishes compressions a crash interrupted without losing a byte', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  // Crash during compression: the source and a truncated .gz.partial.
  writeFileSync(`${path}.20250101T000000Z`, line(1) + line(2));
  writeFileSync(`${path}.20250101T000000Z.gz.partial`, Buffer.from([0x1f, 0x8b, 0x08]));
  // Crash after the rename, before the unlink: source and a .gz.
  writeFileSync(`${path}.20250101T000001Z`, line(3));
  writeFileSync(`${path}.20250101T000001Z.gz`, Buffer.from([0x1f, 0x8b, 0x08, 0x00]));
  // Crash after the unlink: nothing to do.
  const sink = openSink(t, { path, compress: true });
  await sink.idle();
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250101T000000Z.gz', 'app.log.20250101T000001Z.gz']);
  assert.deepEqual(lineNumbers(readMaybeGzip(`${path}.20250101T000000Z.gz`)), [1, 2]);
  assert.deepEqual(lineNumbers(readMaybeGzip(`${path}.20250101T000001Z.gz`)), [3]);
});

test('a failed compression keeps the uncompressed file and reports it', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  // A directory where the .gz.partial would go makes the compression fail.
  writeFileSync(`${path}.20250101T000000Z`, line(1));
  mkdirSync(`${path}.20250101T000000Z.gz.partial`);
  writeFileSync(join(`${path}.20250101T000000Z.gz.partial`, 'blocker'), '');
  const problems: string[] = [];
  const sink = new FileSink({ path, maxSize: 1000, keep: 5, compress: true, fsync: 'never', reportProblem: (message) => problems.push(message) });
  t.after(() => sink.close());
  await sink.idle();
  assert.ok(problems.length >= 1, 'the failure is reported');
  assert.match(problems.join('\n'), /compressing rotated log .*app\.log\.20250101T000000Z/);
  assert.equal(readFileSync(`${path}.20250101T000000Z`, 'utf8'), line(1));
  assert.equal(existsSync(`${path}.20250101T000000Z.gz`), false);
});

test('fsync always: one fdatasync per write, before write() returns; never: none', (t) => {
  const directory = temporaryDirectory(t);
  const always = openSink(t, { path: join(directory, 'always.log'), fsync: 'always' });
  const never = openSink(t, { path: join(directory, 'never.log'), fsync: 'never' });
  const synced: number[] = [];
  const spy = replaceFs('fdatasyncSync', (original, fd) => {
    synced.push(fd);
    original(fd);
  });
  t.after(spy.restore);
  never.write(Buffer.from(line(1)));
  never.write(Buffer.from(line(2)));
  assert.equal(spy.calls(), 0);
  always.write(Buffer.from(line(1)));
  always.write(Buffer.from(line(2)));
  assert.equal(spy.calls(), 2);
  spy.restore();
});

test('a failed fdatasync is a failed write: the chunk is taken back out and the error thrown', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path, fsync: 'always' });
  sink.write(Buffer.from(line(1)));
  const failing = replaceFs('fdatasyncSync', () => {
    throw errnoError('EIO', 'fdatasync');
  });
  t.after(failing.restore);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'EIO');
  failing.restore();
  assert.equal(sink.stats.writeErrors, 1);
  assert.equal(readFileSync(path, 'utf8'), line(1), 'the unacknowledged chunk is not left in the file');
  sink.write(Buffer.from(line(3)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 3]);
});

test('a short write followed by ENOSPC is truncated back: no partial line, then writing resumes', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  let attempt = 0;
  const diskFull = replaceWriteSync((original, fd, buffer, offset, length) => {
    attempt++;
    if (attempt === 1) return original(fd, buffer, offset, Math.floor(length / 2));
    throw errnoError('ENOSPC', 'no space left on device');
  });
  t.after(diskFull.restore);
  assert.throws(() => sink.write(Buffer.from(line(2) + line(3))), (error: unknown) => error instanceof SinkWriteError && error.code === 'ENOSPC');
  diskFull.restore();
  assert.equal(attempt, 2);
  assert.equal(sink.stats.writeErrors, 1);
  assert.equal(readFileSync(path, 'utf8'), line(1));
  sink.write(Buffer.from(line(4)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 4]);
});

/**
 * A sink with line 1 written, then a disk that takes only 10 bytes of the
 * next write and fails every later one (EIO), and an ftruncate that fails:
 * the fragment cannot be undone at once.
 */
function fragmentThatCannotBeTruncated(t: TestContext) {
  const path = join(temporaryDirectory(t), 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  let attempt = 0;
  const partial = replaceWriteSync((original, fd, buffer, offset) => {
    if (++attempt === 1) return original(fd, buffer, offset, 10);
    throw errnoError('EIO');
  });
  const noTruncate = replaceFs('ftruncateSync', () => {
    throw errnoError('EIO');
  });
  t.after(() => {
    partial.restore();
    noTruncate.restore();
  });
  return { path, sink, partial, noTruncate };
}

test('when even the truncation fails, the next chunk starts on a new line instead of joining the fragment', (t) => {
  const { path, sink, partial, noTruncate } = fragmentThatCannotBeTruncated(t);
  assert.throws(() => sink.write(Buffer.from(line(2))), SinkWriteError);
  partial.restore();
  sink.write(Buffer.from(line(3)));
  noTruncate.restore();
  const text = readFileSync(path, 'utf8');
  const entries = text.split('\n');
  assert.equal(entries[0], line(1).trimEnd());
  assert.equal(entries[1], line(2).slice(0, 10), 'the fragment is alone on its line');
  assert.equal(entries[2], line(3).trimEnd());
  assert.ok(text.endsWith('\n'), 'the file ends with a whole line');
});

test('a fragment whose truncation failed is removed by the next attempt, even when that write fails too', (t) => {
  const { path, sink, partial, noTruncate } = fragmentThatCannotBeTruncated(t);
  assert.throws(() => sink.write(Buffer.from(line(2))), SinkWriteError);
  noTruncate.restore();
  assert.equal(readFileSync(path, 'utf8'), line(1) + line(2).slice(0, 10), 'the fragment is still there');
  assert.throws(() => sink.write(Buffer.from(line(3))), SinkWriteError); // the fragment goes, then this write fails too
  partial.restore();
  assert.equal(readFileSync(path, 'utf8'), line(1), 'back to whole lines, nothing appended by the undo');
  sink.write(Buffer.from(line(4)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 4]);
});

test('a removed directory is recreated on the next write, which succeeds', (t) => {
  const directory = temporaryDirectory(t);
  const logDirectory = join(directory, 'logs');
  const path = join(logDirectory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  rmSync(logDirectory, { recursive: true });
  sink.write(Buffer.from(line(2)));
  assert.equal(sink.stats.writeErrors, 0);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [2], 'not written into the deleted file');
});

test('a deleted file is recreated instead of writing into the deleted inode', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  unlinkSync(path);
  sink.write(Buffer.from(line(2)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [2]);
});

test('when the path cannot be opened: SinkWriteError, backoff between attempts, then recovery by itself', async (t) => {
  const directory = temporaryDirectory(t);
  const logDirectory = join(directory, 'logs');
  const path = join(logDirectory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  rmSync(logDirectory, { recursive: true });
  writeFileSync(logDirectory, 'a file where the directory was\n'); // mkdir and open now fail
  const opens = replaceFs('openSync', (original, ...args) => original(...args));
  t.after(opens.restore);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && (error.code === 'ENOTDIR' || error.code === 'EEXIST'));
  const attemptsAfterFirstFailure = opens.calls();
  assert.ok(attemptsAfterFirstFailure >= 1, 'the first failing write tried to open the path');
  assert.throws(() => sink.write(Buffer.from(line(3))), /next attempt in \d+ ms/);
  assert.equal(opens.calls(), attemptsAfterFirstFailure, 'no open attempt during the backoff');
  opens.restore();
  assert.equal(sink.stats.writeErrors, 2);
  unlinkSync(logDirectory);
  await new Promise((resolve) => setTimeout(resolve, 60));
  sink.write(Buffer.from(line(4)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [4]);
});

test('EIO on write closes the descriptor and the next write reopens the path', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  const failing = replaceWriteSync(() => {
    throw errnoError('EIO');
  });
  t.after(failing.restore);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'EIO');
  failing.restore();
  const opens = replaceFs('openSync', (original, ...args) => original(...args));
  t.after(opens.restore);
  sink.write(Buffer.from(line(3)));
  opens.restore();
  assert.equal(opens.calls(), 1, 'reopened once');
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 3]);
});

test('after logrotate renames the file, the next write goes to a new file at the path, even before SIGHUP', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  renameSync(path, `${path}.1`);
  sink.write(Buffer.from(line(2)));
  sink.reopen(); // the SIGHUP of postrotate, arriving late
  sink.write(Buffer.from(line(3)));
  assert.deepEqual(lineNumbers(readFileSync(`${path}.1`, 'utf8')), [1]);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [2, 3]);
});

test('reopen() opens the file now at the path; with nothing moved it changes nothing', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  const opens = replaceFs('openSync', (original, ...args) => original(...args));
  t.after(opens.restore);
  sink.reopen();
  assert.equal(opens.calls(), 0, 'the path still names our file: keep it');
  renameSync(path, `${path}.1`);
  sink.reopen();
  opens.restore();
  assert.equal(opens.calls(), 1);
  assert.equal(readFileSync(path, 'utf8'), '', 'the new file exists right after reopen()');
  sink.write(Buffer.from(line(2)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [2]);
});

test('reopen() never throws; its failure surfaces on the next write', (t) => {
  const directory = temporaryDirectory(t);
  const logDirectory = join(directory, 'logs');
  const path = join(logDirectory, 'app.log');
  const sink = openSink(t, { path });
  rmSync(logDirectory, { recursive: true });
  writeFileSync(logDirectory, '');
  assert.doesNotThrow(() => sink.reopen());
  assert.throws(() => sink.write(Buffer.from(line(1))), SinkWriteError);
  assert.equal(sink.stats.writeErrors, 1);
});

test('size rotation does not rename a file that logrotate already moved away', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path, maxSize: 100 });
  sink.write(Buffer.from(line(1)));
  sink.write(Buffer.from(line(2)));
  renameSync(path, `${path}.1`); // logrotate, between two of our writes
  writeFileSync(path, ''); // as with logrotate's `create`
  sink.write(Buffer.from(line(3))); // our old file is at 80 bytes: no rotation of the new one
  assert.equal(sink.stats.rotations, 0);
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.1']);
  assert.deepEqual(lineNumbers(readFileSync(`${path}.1`, 'utf8')), [1, 2]);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [3]);
});

test('permission lost on the directory (EACCES checking the path) fails the write, and it recovers by itself', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  const denied = replaceFs('lstatSync', (original, ...args) => {
    if (args[0] === path) throw errnoError('EACCES', 'permission denied');
    return original(...args);
  });
  t.after(denied.restore);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'EACCES');
  denied.restore();
  sink.write(Buffer.from(line(3)));
  assert.equal(sink.stats.writeErrors, 1);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1, 3]);
});

test('close() syncs and releases; a write after close() fails, a second close() is harmless', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = openSink(t, { path });
  sink.write(Buffer.from(line(1)));
  sink.close();
  sink.close();
  sink.reopen();
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'EBADF');
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [1]);
});

test('rejects an impossible maximum size or keep count', () => {
  assert.throws(() => new FileSink({ path: '/tmp/x.log', maxSize: 0, keep: 1, compress: false, fsync: 'never' }), /--log-max-size/);
  assert.throws(() => new FileSink({ path: '/tmp/x.log', maxSize: 10, keep: -1, compress: false, fsync: 'never' }), /--log-keep/);
});
