// kill -9 in the middle of a burst, with size rotation and compression
// running: every webhook that got a 200 has all of its lines in the files,
// seq has no gap, no .gz is corrupt. The only thing a kill can leave is the
// unacknowledged tail of the write it interrupted (Linux can stop a write
// that spans pages at a page boundary); a restart on the same file removes
// it and finishes the interrupted compressions.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ObsLine } from '../helpers/daemon.ts';
import { startDaemon } from '../helpers/daemon.ts';
import { assertCompleteOutput, type LogFile, parseLogFiles, readLogFiles, sendWebhooks } from '../sinks/log-files.ts';

const ACCEPTED_BEFORE_KILL = 1500;

test('kill -9 mid-burst: every 200 has all its lines, nothing split; a restart leaves whole lines only', { timeout: 60_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'durability-kill9-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const directory = join(root, 'logs');
  mkdirSync(directory);
  const logFile = join(directory, 'control-plane.log');
  const args = ['--log-file', logFile, '--log-max-size', '128K', '--log-keep', '10000', '--log-compress'];
  const daemon = await startDaemon({ args, logFile });
  t.after(() => daemon.stop('SIGKILL'));

  let accepted = 0;
  let killed = false;
  const result = await sendWebhooks(daemon.url, {
    workers: 16,
    keepGoing: () => !killed,
    onAnswer: (status) => {
      if (status === 200 && ++accepted === ACCEPTED_BEFORE_KILL) {
        daemon.child.kill('SIGKILL');
        killed = true;
      }
    },
  });
  const exit = await daemon.exited;
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(result.accepted.length >= ACCEPTED_BEFORE_KILL, `${result.accepted.length} accepted`);
  // Usually some requests are cut off by the kill; on a loaded machine the daemon may have answered
  // every one it had read just before. What must hold either way is checked below.
  t.diagnostic(`${result.statuses.get('error') ?? 0} request(s) were in flight when the process died`);

  // Right after the kill: only the live file may end in an unterminated
  // (never acknowledged) write; everything else is whole lines.
  const files = readLogFiles(directory, 'control-plane.log');
  const live = files.find((file) => file.name === 'control-plane.log')!;
  const cut = live.text.length - (live.text.lastIndexOf('\n') + 1);
  const whole: LogFile[] = files.map((file) => (file === live ? { name: file.name, text: file.text.slice(0, file.text.length - cut) } : file));
  const firstRun = assertCompleteOutput(parseLogFiles(whole), result.accepted);
  assert.ok(readdirSync(directory).some((name) => /\.\d{8}T\d{6}Z(-\d+)?(\.gz)?$/.test(name)), 'size rotation ran during the burst');

  // Restart on the same file: whole lines only, interrupted compressions finished.
  const restarted = await startDaemon({ args, logFile });
  const stopped = await restarted.stop();
  assert.equal(stopped.code, 0, `clean exit; stderr: ${restarted.stderr}`);
  assert.deepEqual(readdirSync(directory).filter((name) => name.endsWith('.partial')), [], 'no compression left half done');
  assert.deepEqual(readdirSync(directory).filter((name) => /Z(-\d+)?$/.test(name)), [], 'every rotated file compressed');
  const liveAfter = readFileSync(logFile, 'utf8');
  assert.equal(liveAfter.slice(0, live.text.length - cut), live.text.slice(0, live.text.length - cut), 'what was written before the kill stays');
  const filesAfter = readLogFiles(directory, 'control-plane.log');
  // The live file last: the restart's lines are its last two.
  const after = parseLogFiles([...filesAfter.filter((file) => file.name !== 'control-plane.log'), ...filesAfter.filter((file) => file.name === 'control-plane.log')]);
  const secondRun = after.slice(-2);
  assert.deepEqual(secondRun.map((line: ObsLine) => [line.event_type, line.seq]), [['control_plane.started', 1], ['control_plane.stopped', 2]], 'the restart appended after whole lines');
  assertCompleteOutput(after.filter((line) => !secondRun.includes(line)), result.accepted);
  t.diagnostic(`${result.accepted.length} accepted before the kill, ${firstRun.length} lines; ${cut} bytes of an interrupted write cut at restart`);
});
