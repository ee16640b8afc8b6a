// --log-keep keeps the newest rotated files (README "Writing to a file"):
// with several size rotations per second and the cleanup deleting old
// files between them, what is left on disk is the end of the output, with
// no hole: the kept files and the live file hold the last seqs, contiguous.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { authorize, postWebhook, startDaemon } from '../helpers/daemon.ts';
import { parseLogFiles, readLogFiles } from '../sinks/log-files.ts';

test('--log-max-size 8K --log-keep 2, 40 webhooks back to back: the files left hold the newest lines, without a hole', { timeout: 60_000 }, async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'durability-retention-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const logFile = join(directory, 'control-plane.log');
  const daemon = await startDaemon({ args: ['--log-file', logFile, '--log-max-size', '8K', '--log-keep', '2'], logFile });
  t.after(() => daemon.stop('SIGKILL'));

  for (let index = 0; index < 40; index++) {
    const body = encodeBody(sampleWebhook(index % 2 === 0 ? 'participant_joined' : 'track_published', `retention-${index}`));
    assert.equal((await postWebhook(daemon.url, body, { authorization: authorize(body) })).status, 200);
  }
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0, daemon.stderr);

  const files = readLogFiles(directory, 'control-plane.log');
  assert.equal(files.length, 3, `two rotated files and the live one: ${files.map((file) => file.name).join(', ')}`);
  const seqs = parseLogFiles(files)
    .map((line) => line.seq)
    .sort((a, b) => a - b);
  const holes = seqs.filter((seq, index) => index > 0 && seq !== seqs[index - 1]! + 1);
  assert.deepEqual(holes, [], `the kept lines are contiguous (held: ${files.map((file) => `${file.name}: ${parseLogFiles([file]).map((line) => line.seq).join(',')}`).join(' | ')})`);
  assert.equal(parseLogFiles([files.find((file) => file.name === 'control-plane.log')!]).at(-1)!.event_type, 'control_plane.stopped', 'the live file ends the output');
});
