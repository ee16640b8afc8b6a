// The file sink never writes through a symbolic link (README "Under
// attack"): someone who can write to the log directory must not be able to
// make the daemon append to, truncate or overwrite a file elsewhere.

import assert from 'node:assert/strict';
import { lstatSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSink } from '../../src/sinks/file.ts';
import { gzipRotatedFile } from '../../src/sinks/rotated-files.ts';
import { SinkWriteError } from '../../src/sinks/sink.ts';
import { line, lineNumbers, manualClock, sortedNames, temporaryDirectory } from './helpers.ts';

const OUTSIDE_TEXT = 'precious data outside the log directory\n';

function outsideFile(t: Parameters<typeof temporaryDirectory>[0]): string {
  const path = join(temporaryDirectory(t, 'outside-'), 'precious.txt');
  writeFileSync(path, OUTSIDE_TEXT);
  return path;
}

test('the log file replaced by a symlink: the write is refused (ELOOP), reported and counted; nothing reaches the target', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const target = outsideFile(t);
  const problems: string[] = [];
  const sink = new FileSink({ path, maxSize: 1024 * 1024, keep: 2, compress: false, fsync: 'never', reportProblem: (message) => problems.push(message) });
  t.after(() => sink.close());
  sink.write(Buffer.from(line(1)));

  unlinkSync(path);
  symlinkSync(target, path);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'ELOOP' && /symbolic link/.test(error.message));
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT, 'the symlink target is untouched');
  assert.equal(sink.stats.symlinksRefused, 1);
  assert.equal(sink.stats.writeErrors, 1);
  assert.equal(problems.length, 1, `one report when the refusal starts: ${JSON.stringify(problems)}`);
  assert.match(problems[0]!, /app\.log is a symbolic link.*refus/);

  // Backing off between attempts: refused again without a new report per write.
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.throws(() => sink.write(Buffer.from(line(3))), /symbolic link/);
  assert.equal(sink.stats.symlinksRefused, 2);
  assert.equal(problems.length, 1, 'no report per refused write');
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT);

  // The symlink goes away: the sink recovers by itself with a new regular file.
  unlinkSync(path);
  await new Promise((resolve) => setTimeout(resolve, 150));
  sink.write(Buffer.from(line(4)));
  assert.ok(lstatSync(path).isFile());
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [4]);
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT);
});

test('a symlink to the very file the sink has open is refused too: the path must be a regular file', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const sink = new FileSink({ path, maxSize: 1024 * 1024, keep: 2, compress: false, fsync: 'never', reportProblem: () => {} });
  t.after(() => sink.close());
  sink.write(Buffer.from(line(1)));
  // Our file moved away, and a link to it put in its place.
  const moved = join(directory, 'moved.log');
  renameSync(path, moved);
  symlinkSync(moved, path);
  assert.throws(() => sink.write(Buffer.from(line(2))), (error: unknown) => error instanceof SinkWriteError && error.code === 'ELOOP');
  assert.deepEqual(lineNumbers(readFileSync(moved, 'utf8')), [1], 'nothing written through the link');
});

test('at start, a log file path that is a symlink is refused with an error naming --log-file', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const target = outsideFile(t);
  symlinkSync(target, path);
  assert.throws(() => new FileSink({ path, maxSize: 1000, keep: 1, compress: false, fsync: 'never' }), /--log-file .*app\.log.*symbolic link/);
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT);
});

test('a dangling symlink at the log path is refused as well (no file is created at its target)', (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const target = join(temporaryDirectory(t, 'outside-'), 'created-through-link.txt');
  symlinkSync(target, path);
  assert.throws(() => new FileSink({ path, maxSize: 1000, keep: 1, compress: false, fsync: 'never' }), /symbolic link/);
  assert.throws(() => lstatSync(target), /ENOENT/);
});

test('compression never writes through a symlink planted at <file>.<stamp>.gz.partial', async (t) => {
  const directory = temporaryDirectory(t);
  const source = join(directory, 'app.log.20250102T030405Z');
  writeFileSync(source, line(1));
  const target = outsideFile(t);
  symlinkSync(target, `${source}.gz.partial`);
  await assert.rejects(gzipRotatedFile(source), (error: NodeJS.ErrnoException) => error.code === 'ELOOP' && /symbolic link/.test(error.message));
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT, 'the target is neither truncated nor overwritten');
  assert.deepEqual(lineNumbers(readFileSync(source, 'utf8')), [1], 'the rotated file stays, uncompressed');
  assert.ok(lstatSync(`${source}.gz.partial`).isSymbolicLink(), 'the planted link is not followed (the next pass removes it)');
});

test('compression never reads through a symlink planted in place of a rotated file', async (t) => {
  const directory = temporaryDirectory(t);
  const source = join(directory, 'app.log.20250102T030405Z');
  const target = outsideFile(t);
  symlinkSync(target, source);
  await assert.rejects(gzipRotatedFile(source), (error: NodeJS.ErrnoException) => error.code === 'ELOOP');
  assert.deepEqual(sortedNames(directory), ['app.log.20250102T030405Z'], 'no .gz of the outside file');
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT);
});

test('a link found at .gz.partial is removed by the pass (unlink never follows), which then compresses', async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, 'app.log');
  const target = outsideFile(t);
  const clock = manualClock('2025-01-02T03:04:05.000Z');
  const problems: string[] = [];
  // A rotated file and a link planted where its compression would write.
  writeFileSync(`${path}.20250101T000000Z`, line(1));
  symlinkSync(target, `${path}.20250101T000000Z.gz.partial`);
  const sink = new FileSink({ path, maxSize: 40, keep: 5, compress: true, fsync: 'never', now: clock.now, reportProblem: (message) => problems.push(message) });
  t.after(() => sink.close());
  await sink.idle();
  // The first pass removed the leftover link (unlink never follows) and compressed.
  assert.equal(readFileSync(target, 'utf8'), OUTSIDE_TEXT);
  assert.deepEqual(sortedNames(directory), ['app.log', 'app.log.20250101T000000Z.gz']);
  assert.deepEqual(problems, []);
});
