import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { SinkWriteError } from '../../src/sinks/sink.ts';
import { writeAllSync } from '../../src/sinks/nonblocking-fd.ts';
import { StdoutSink } from '../../src/sinks/stdout.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import type { ObsEvent } from '../../src/obs/schema.ts';
import { MemorySink } from '../helpers/memory-sink.ts';

const event: ObsEvent = { level: 'info', event_type: 'webhook.received', session_id: null };

test('a full disk behind stdout (/dev/full) fails the write with ENOSPC instead of crashing', () => {
  const fd = openSync('/dev/full', 'w');
  try {
    const sink = new StdoutSink(fd);
    assert.throws(() => sink.write(Buffer.from('{"a":1}\n')), (error: unknown) => error instanceof SinkWriteError && error.code === 'ENOSPC');
    assert.equal(sink.stats.writeErrors, 1);
  } finally {
    closeSync(fd);
  }
});

test('a pipe that stays full fails after the deadline (EAGAIN) instead of spinning or dropping', async () => {
  // A child that never reads its stdin: the pipe fills up, then EAGAIN.
  const child = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    const fd = (child.stdin as unknown as { _handle: { fd: number } })._handle.fd;
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const started = Date.now();
    assert.throws(() => writeAllSync(fd, chunk, 100), (error: unknown) => error instanceof SinkWriteError && error.code === 'EAGAIN');
    assert.ok(Date.now() - started >= 100, 'waited for the pipe to drain before giving up');
  } finally {
    child.kill('SIGKILL');
  }
});

test('LineWriter gives the sequence numbers back when a write fails, so seq has no false gaps', () => {
  const sink = new MemorySink();
  const writer = new LineWriter(sink, { clock: () => 0 });
  assert.equal(writer.write([event, event]), null);
  sink.failNext = 1;
  assert.equal((writer.write([event]) as SinkWriteError | null)?.code, 'ENOSPC');
  assert.equal(writer.healthy, false);
  assert.equal(writer.write([event]), null);
  assert.equal(writer.healthy, true);
  const seqs = sink.lines().map((line) => line.seq);
  assert.deepEqual(seqs, [1, 2, 3]);
  assert.equal(sink.chunks.length, 2, 'one write per successful call');
});
