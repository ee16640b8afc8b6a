// The file sink on a real filesystem that fills up: a small tmpfs (needs
// root to mount; CI runs as root). Writes there end in real short writes
// followed by ENOSPC, which the sink must undo.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSink } from '../../src/sinks/file.ts';
import { SinkWriteError } from '../../src/sinks/sink.ts';
import { line, lineNumbers } from './helpers.ts';
import { mountTmpfs, tmpfsUnavailable } from './tmpfs.ts';

const skip = tmpfsUnavailable();

test('disk full on a real filesystem: no partial line, ENOSPC thrown, writing resumes once space is freed', { skip }, (t) => {
  const directory = mountTmpfs(t, 256 * 1024, 'file-sink-tmpfs-');
  const path = join(directory, 'app.log');
  const filler = join(directory, 'filler');
  const { bavail, bsize } = statfsSync(directory);
  // Leave about 20 KiB: a few dozen chunks, the last of which does not fit.
  writeFileSync(filler, Buffer.alloc(bavail * bsize - 20 * 1024));
  const sink = new FileSink({ path, maxSize: 1024 * 1024, keep: 1, compress: false, fsync: 'always' });
  t.after(() => sink.close());

  // 1000-byte chunks of 3 lines: most cross a page boundary, so the failing one is a real short write.
  const chunk = (n: number) => line(3 * n, 300) + line(3 * n + 1, 300) + line(3 * n + 2, 400);
  const written: number[] = [];
  let failure: unknown = null;
  for (let n = 0; n < 100 && failure === null; n++) {
    try {
      sink.write(Buffer.from(chunk(n)));
      written.push(3 * n, 3 * n + 1, 3 * n + 2);
    } catch (error) {
      failure = error;
    }
  }
  assert.ok(failure instanceof SinkWriteError, `the disk filled up and the write failed: ${String(failure)}`);
  assert.equal(failure.code, 'ENOSPC');
  assert.ok(written.length > 0, 'some chunks fitted before the disk was full');
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), written, 'exactly the acknowledged chunks, whole');

  // Still full: failing again changes nothing.
  assert.throws(() => sink.write(Buffer.from(chunk(1000))), SinkWriteError);
  assert.equal(sink.stats.writeErrors, 2);
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), written);

  unlinkSync(filler);
  sink.write(Buffer.from(chunk(2000)));
  assert.deepEqual(lineNumbers(readFileSync(path, 'utf8')), [...written, 6000, 6001, 6002]);
});

test('disk full during a size rotation: the rotated file stays whole and the sink recovers', { skip }, (t) => {
  const directory = mountTmpfs(t, 128 * 1024, 'file-sink-tmpfs-');
  const path = join(directory, 'app.log');
  const filler = join(directory, 'filler');
  const sink = new FileSink({ path, maxSize: 4096, keep: 100, compress: false, fsync: 'never' });
  t.after(() => sink.close());
  const { bavail, bsize } = statfsSync(directory);
  writeFileSync(filler, Buffer.alloc(bavail * bsize - 12 * 1024));
  const written: number[] = [];
  let failures = 0;
  for (let n = 0; n < 200; n++) {
    try {
      sink.write(Buffer.from(line(n, 700)));
      written.push(n);
    } catch (error) {
      assert.ok(error instanceof SinkWriteError, String(error));
      failures++;
    }
  }
  assert.ok(failures > 0, 'the disk filled up');
  assert.ok(sink.stats.rotations > 0, 'rotations happened');
  unlinkSync(filler);
  sink.write(Buffer.from(line(1000, 700)));
  written.push(1000);
  const found: number[] = [];
  for (const name of readdirSync(directory).filter((entry) => entry.startsWith('app.log'))) {
    found.push(...lineNumbers(readFileSync(join(directory, name), 'utf8')));
  }
  assert.deepEqual(found.sort((a, b) => a - b), written);
});
