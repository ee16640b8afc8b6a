// Under systemd, stdout and stderr are journald's stream socket and
// JOURNAL_STREAM names it. Here a shell plays systemd: it sets
// JOURNAL_STREAM to the device:inode of the pipe the test reads (what
// systemd does for the socket), then execs the program, so the program sees
// exactly what it sees under a unit. test/system/systemd.test.ts checks the
// same against the real journald.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { freePort, postSigned, postWebhook, programCommand, startDaemon, testEnv } from '../helpers/daemon.ts';

type Stream = 'stdout' | 'stderr' | 'neither';

interface Run {
  readonly pid: number;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
  kill(): void;
}

/** Runs the program with JOURNAL_STREAM naming its stdout, its stderr, or another file. */
function runUnderJournal(args: readonly string[], stream: Stream, env: Record<string, string> = testEnv()): Run {
  const [command, leading] = programCommand();
  // fd 3 keeps the stream to be named: inside $(...) fd 1 is the substitution's own pipe.
  const source = stream === 'stdout' ? '3>&1' : stream === 'stderr' ? '3>&2' : '3</dev/null';
  const script = `exec ${source}; stream=$(stat -L -c %d:%i /proc/self/fd/3); exec 3>&-; JOURNAL_STREAM=$stream exec "$@"`;
  const child = spawn('sh', ['-c', `${script}`, 'sh', command, ...leading, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = {
    pid: child.pid!,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    kill: () => child.kill('SIGTERM'),
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (run.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (run.stderr += chunk));
  return run;
}

const PRIORITY: Record<string, string> = { error: '<3>', warn: '<4>', info: '<6>' };

/** Splits `<n>{json}` lines; fails on a line without a prefix or whose prefix is not its level's. */
function prefixedLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const match = /^<(\d)>(\{.*\})$/.exec(line);
      assert.ok(match, `not a <priority>JSON line: ${line.slice(0, 200)}`);
      const parsed = JSON.parse(match[2]!) as Record<string, unknown>;
      assert.equal(`<${match[1]}>`, PRIORITY[parsed.level as string], `priority of a ${parsed.level} line`);
      return parsed;
    });
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('under systemd (JOURNAL_STREAM)', () => {
  test('stdout is the journal: each line starts with its syslog priority; stderr diagnostics too, when stderr is', async () => {
    const port = await freePort();
    const run = runUnderJournal(['--host', '127.0.0.1', '--port', String(port), '--dev'], 'stdout');
    try {
      await waitFor(() => run.stdout.includes('control_plane.started'), 'the start line');
      const url = `http://127.0.0.1:${port}`;
      assert.equal((await postSigned(url, encodeBody(sampleWebhook('room_started', 'journal-room')))).status, 200);
      assert.equal((await postWebhook(url, '{}', { authorization: 'forged' })).status, 401);
      await waitFor(() => run.stdout.includes('webhook.rejected'), 'the rejection line');
    } finally {
      run.kill();
      await run.exited;
    }
    const lines = prefixedLines(run.stdout);
    const levels = new Set(lines.map((line) => line.level));
    assert.ok(levels.has('info') && levels.has('warn'), `info and warn lines seen (${[...levels]})`);
    assert.deepEqual(lines.map((line) => line.seq), lines.map((_, index) => index + 1));
    // stderr was not the journal here: its --dev warning is bare JSON.
    for (const line of run.stderr.split('\n').filter(Boolean)) assert.equal(JSON.parse(line).event_type, 'control_plane.diagnostic');
  });

  test('stderr is the journal: diagnostics carry the priority; stdout (not the journal) stays bare JSON', async () => {
    const port = await freePort();
    const run = runUnderJournal(['--host', '127.0.0.1', '--port', String(port), '--dev'], 'stderr');
    try {
      await waitFor(() => run.stdout.includes('control_plane.started') && run.stderr.includes('devkey'), 'the start line and the --dev warning');
    } finally {
      run.kill();
      await run.exited;
    }
    const diagnostics = prefixedLines(run.stderr);
    assert.equal(diagnostics[0]!.event_type, 'control_plane.diagnostic');
    assert.equal(diagnostics[0]!.level, 'warn');
    for (const line of run.stdout.split('\n').filter(Boolean)) JSON.parse(line);
  });

  test('the refusal to start is one JSON error line under systemd, one plain line at a terminal', async () => {
    const noKey = testEnv({ LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' });
    const journal = runUnderJournal([], 'stderr', noKey);
    assert.equal(await journal.exited, 2);
    const [refusal, ...rest] = prefixedLines(journal.stderr);
    assert.deepEqual(rest, []);
    assert.equal(refusal!.level, 'error');
    assert.equal(refusal!.event_type, 'control_plane.diagnostic');
    assert.equal(refusal!.component, 'control_plane');
    assert.match(refusal!.detail as string, /^no LiveKit key configured/);
    assert.equal(journal.stdout, '');

    // JOURNAL_STREAM inherited, but stderr is somewhere else: a person reads it.
    const elsewhere = runUnderJournal([], 'neither', noKey);
    assert.equal(await elsewhere.exited, 2);
    assert.match(elsewhere.stderr, /^control-plane: no LiveKit key configured.*\n$/);
  });

  test('the listen error is JSON too under systemd', async () => {
    const daemon = await startDaemon();
    try {
      const run = runUnderJournal(['--host', '127.0.0.1', '--port', String(daemon.port)], 'stderr');
      assert.equal(await run.exited, 2);
      const [line] = prefixedLines(run.stderr);
      assert.match(line!.detail as string, /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    } finally {
      await daemon.stop();
    }
  });

  test('the file sink never gets the prefix, even when stdout is the journal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-journal-file-'));
    const logFile = join(dir, 'out.log');
    const port = await freePort();
    const run = runUnderJournal(['--host', '127.0.0.1', '--port', String(port), '--log-file', logFile], 'stdout');
    try {
      await waitFor(() => {
        try {
          return readFileSync(logFile, 'utf8').includes('control_plane.started');
        } catch {
          return false;
        }
      }, 'the start line in the file');
    } finally {
      run.kill();
      await run.exited;
    }
    const text = readFileSync(logFile, 'utf8');
    rmSync(dir, { recursive: true, force: true });
    for (const line of text.split('\n').filter(Boolean)) assert.ok(line.startsWith('{"ts":'), line);
    assert.equal(run.stdout, '');
  });

  test('the process is named control-plane (ps, top, systemctl status), not after the runtime', async () => {
    const daemon = await startDaemon();
    try {
      assert.equal(readFileSync(`/proc/${daemon.child.pid}/comm`, 'utf8').trim(), 'control-plane');
      assert.match(readFileSync(`/proc/${daemon.child.pid}/cmdline`, 'utf8'), /^control-plane/);
    } finally {
      await daemon.stop();
    }
  });
});
