// `npm start` and `npm run dev` run the sources as one process, so the
// signals a process manager sends reach the daemon itself: SIGHUP reloads
// it (the same process answers afterwards), SIGTERM stops it and leaves
// nothing on the port. (Through tsx's CLI, a wrapper process stood between
// them and died on SIGHUP, leaving the daemon orphaned.)

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { REPO_ROOT, testEnv } from '../helpers/daemon.ts';

const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
/** The Node.js running the tests first on PATH, as npm puts its own. */
const env = testEnv({ PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}` });
const LISTEN = ['--host', '127.0.0.1', '--port', '0'];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects stdout and resolves with the port once control_plane.started is written. */
function started(child: ChildProcess): { output: () => string; port: Promise<number> } {
  let output = '';
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line within 20 s; stdout: ${output}`)), 20_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const line = output.split('\n').find((text) => text.includes('"control_plane.started"'));
      if (line) {
        clearTimeout(timer);
        resolve(Number(String((JSON.parse(line) as { listen: string }).listen).split(':').pop()));
      }
    });
    child.on('exit', () => reject(new Error(`exited before starting; stdout: ${output}`)));
  });
  return { output: () => output, port };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The command line of a process (empty once it is gone). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The processes whose parent is `pid` (Linux /proc). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function health(port: number): Promise<number> {
  const response = await request(`http://127.0.0.1:${port}/health`);
  await response.body.text();
  return response.statusCode;
}

/** Whether anything accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('the dev script, run as a process manager runs a command, is the daemon itself: SIGHUP reloads it, SIGTERM stops it', { timeout: 60_000 }, async (t) => {
  // sh -c, as npm and process managers run a command line; the extra arguments follow it.
  const child = spawn('sh', ['-c', `${scripts.dev} "$@"`, 'sh', ...LISTEN], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  t.after(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const daemon = started(child);
  const port = await daemon.port;
  // The daemon names itself (process.title): a wrapper (sh, tsx) would not be called control-plane.
  assert.match(commandLine(pid), /^control-plane\b/, `the spawned process is the daemon (${commandLine(pid)})`);
  assert.deepEqual(children(pid), [], 'no process of its own under it');
  // Answering means start-up has finished, signal handlers included.
  assert.equal(await health(port), 200);

  process.kill(pid, 'SIGHUP');
  await sleep(500);
  assert.ok(alive(pid), 'still running after SIGHUP');
  assert.equal(await health(port), 200, 'and answering, on the same port');
  assert.equal(daemon.output().split('\n').filter((line) => line.includes('"control_plane.started"')).length, 1, 'the same process: no second start');

  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(await listening(port), false, 'nothing left on the port');
});

test('npm run --silent dev: only JSON lines on stdout, npm\'s only child is the daemon, and SIGTERM to npm stops it', { timeout: 90_000 }, async (t) => {
  const npm = spawn('npm', ['run', '--silent', 'dev', '--', ...LISTEN], { cwd: REPO_ROOT, env: { ...env, npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const npmPid = npm.pid!;
  let daemonPid = 0;
  t.after(() => {
    for (const pid of [daemonPid, npmPid]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const daemon = started(npm);
  const port = await daemon.port;
  const under = children(npmPid);
  assert.equal(under.length, 1, `one process under npm: ${under.map(commandLine).join(' | ')}`);
  daemonPid = under[0]!;
  assert.match(commandLine(daemonPid), /^control-plane\b/, 'npm runs the daemon itself, no shell or wrapper between');
  assert.deepEqual(children(daemonPid), []);
  for (const line of daemon.output().split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);

  // A reload signal sent to the daemon keeps it, the same process, answering.
  assert.equal(await health(port), 200);
  process.kill(daemonPid, 'SIGHUP');
  await sleep(500);
  assert.ok(alive(daemonPid));
  assert.equal(await health(port), 200);

  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  process.kill(npmPid, 'SIGTERM');
  await exited;
  for (let attempt = 0; attempt < 50 && alive(daemonPid); attempt++) await sleep(100);
  assert.equal(alive(daemonPid), false, 'npm forwarded SIGTERM to the daemon, which stopped');
  assert.equal(await listening(port), false, 'nothing left on the port');
});
