// control-plane report's streaming reader: lines split anywhere between
// chunks (inside a multi-byte character too), gzip input, a last line
// without a newline, an over-long line skipped without being held, and a
// corrupt gzip file reported as an error.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { inWritingOrder, readLines } from '../../src/report/read.ts';

function collect() {
  const lines: string[] = [];
  let skipped = 0;
  return {
    lines,
    skipped: () => skipped,
    consumer: { line: (text: string) => lines.push(text), skipLine: () => skipped++ },
  };
}

/** The bytes cut into pieces of `size`. */
const pieces = (bytes: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(bytes.length / size) }, (_, index) => bytes.subarray(index * size, (index + 1) * size));

describe('report reader', () => {
  const text = '{"a":"één"}\n{"b":"☎ +31 20 123 45 89"}\n\n{"c":3}';
  const bytes = Buffer.from(text);

  for (const size of [1, 2, 3, 5, 64]) {
    test(`chunks of ${size} byte(s): every line whole, multi-byte characters intact, the last line without a newline too`, async () => {
      const sink = collect();
      await readLines(Readable.from(pieces(bytes, size)), sink.consumer, { gzip: false });
      assert.deepEqual(sink.lines, ['{"a":"één"}', '{"b":"☎ +31 20 123 45 89"}', '', '{"c":3}']);
    });
  }

  test('gzip input (a rotated .gz file)', async () => {
    const sink = collect();
    await readLines(Readable.from(pieces(gzipSync(bytes), 7)), sink.consumer, { gzip: true });
    assert.deepEqual(sink.lines, ['{"a":"één"}', '{"b":"☎ +31 20 123 45 89"}', '', '{"c":3}']);
  });

  test('a line longer than the limit is skipped and counted, the lines around it are read', async () => {
    const sink = collect();
    const input = Buffer.from(`first\n${'x'.repeat(100)}\nlast\n${'y'.repeat(50)}`);
    await readLines(Readable.from(pieces(input, 8)), sink.consumer, { gzip: false, maxLineBytes: 20 });
    assert.deepEqual(sink.lines, ['first', 'last']);
    assert.equal(sink.skipped(), 2);
  });

  test('a truncated gzip file is an error (the caller reports it)', async () => {
    const sink = collect();
    const truncated = gzipSync(Buffer.from('{"a":1}\n'.repeat(1000))).subarray(0, 40);
    await assert.rejects(readLines(Readable.from([truncated]), sink.consumer, { gzip: true }));
  });

  test('stopped() ends the reading after the current chunk', async () => {
    const sink = collect();
    let chunks = 0;
    await readLines(Readable.from(pieces(Buffer.from('a\nb\nc\nd\n'), 2)), sink.consumer, { gzip: false, afterChunk: () => void chunks++, stopped: () => chunks >= 2 });
    assert.deepEqual(sink.lines, ['a', 'b']);
  });
});

describe('the order files are read in', () => {
  test("rotated files oldest first whatever order the shell's glob gave, then the live file; other logs keep their place", () => {
    const glob = [
      '/var/log/cp/control-plane.jsonl',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-1.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-10.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-2.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z.gz',
      '/var/log/cp/control-plane.jsonl.20261130T235959Z',
    ].sort();
    assert.deepEqual(inWritingOrder(['other.jsonl', ...glob, '-']), [
      'other.jsonl',
      '/var/log/cp/control-plane.jsonl.20261130T235959Z',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-1.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-2.gz',
      '/var/log/cp/control-plane.jsonl.20261201T101500Z-10.gz',
      '/var/log/cp/control-plane.jsonl',
      '-',
    ]);
  });

  test("logrotate's numbered files: the highest number is the oldest", () => {
    assert.deepEqual(inWritingOrder(['cp.log', 'cp.log.1', 'cp.log.10.gz', 'cp.log.2.gz']), ['cp.log.10.gz', 'cp.log.2.gz', 'cp.log.1', 'cp.log']);
  });
});
