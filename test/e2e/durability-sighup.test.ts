// A SIGHUP storm under load (docs/contract.md#http-answers, #log-file): signals every few milliseconds,
// the file moved away now and then as an external rotation would, and the
// daemon's own size rotation, while signed webhooks stream in. Every
// accepted webhook's lines are there exactly once, nothing is split, and the
// daemon keeps answering 200.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { assertCompleteOutput, parseLogFiles, readLogFiles, sendWebhooks, sleep } from '../sinks/log-files.ts';

const LOAD_MS = 3000;

test('SIGHUP storm with external renames and size rotation under load: every accepted line exactly once', { timeout: 60_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'durability-sighup-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const directory = join(root, 'logs');
  mkdirSync(directory);
  const logFile = join(directory, 'control-plane.log');
  // With a keys file, every SIGHUP also reloads the keys and writes a line.
  const keysFile = join(root, 'keys');
  writeFileSync(keysFile, `${TEST_KEY.keyId}: ${TEST_KEY.secret}\n`, { mode: 0o600 });
  const daemon = await startDaemon({ args: ['--log-file', logFile, '--log-max-size', '16K', '--log-keep', '10000', '--keys-file', keysFile], logFile });
  t.after(() => daemon.stop('SIGKILL'));
  const pid = daemon.child.pid!;

  let loading = true;
  const load = sendWebhooks(daemon.url, { workers: 4, keepGoing: () => loading });
  let signals = 0;
  const storm = setInterval(() => {
    process.kill(pid, 'SIGHUP');
    signals++;
  }, 2);
  let moves = 0;
  const mover = (async () => {
    while (loading) {
      await sleep(100);
      try {
        renameSync(logFile, `${logFile}.moved-${String(moves).padStart(4, '0')}`);
        moves++;
      } catch (error) {
        // The daemon has not recreated the file since the last move yet.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  })();
  await sleep(LOAD_MS);
  clearInterval(storm);
  loading = false;
  const result = await load;
  await mover;
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0, `clean exit; stderr: ${daemon.stderr}`);

  assert.deepEqual([...result.statuses.keys()], [200], `every webhook answered 200: ${JSON.stringify([...result.statuses])}`);
  assert.ok(result.accepted.length >= 300, `a steady stream (${result.accepted.length} webhooks)`);
  assert.ok(moves >= 10, `the file was moved away repeatedly (${moves})`);

  const files = readLogFiles(directory, 'control-plane.log');
  const lines = assertCompleteOutput(parseLogFiles(files), result.accepted);
  const reloads = lines.filter((line) => line.event_type === 'control_plane.keys_reloaded').length;
  assert.ok(reloads >= 50, `the daemon handled the SIGHUPs (${reloads} reloads of ${signals} signals)`);
  assert.ok(files.some((file) => /\.\d{8}T\d{6}Z(-\d+)?$/.test(file.name)), 'the size rotation ran too');
  assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
  t.diagnostic(`${result.accepted.length} webhooks, ${signals} SIGHUPs (${reloads} handled), ${moves} moves, ${files.length} files, ${lines.length} lines`);
});
