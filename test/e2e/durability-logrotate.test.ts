// Real logrotate, with the shipped config, forced again and again on the
// daemon's log directory while signed webhooks stream in and the daemon's
// own size rotation and compression run too (docs/contract.md#log-file). Afterwards
// every accepted webhook's lines are there exactly once across all files,
// seq has no gap and no duplicate, no line is split, every .gz is valid.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, startDaemon } from '../helpers/daemon.ts';
import { assertCompleteOutput, parseLogFiles, readLogFiles, sendWebhooks, sleep } from '../sinks/log-files.ts';

const run = promisify(execFile);
const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((path) => existsSync(path));
const LOAD_MS = 4000;

function replaceOnce(text: string, pattern: string | RegExp, replacement: string): string {
  const matches = typeof pattern === 'string' ? text.split(pattern).length - 1 : (text.match(new RegExp(pattern.source, `${pattern.flags}g`)) ?? []).length;
  assert.equal(matches, 1, `the shipped logrotate config has ${String(pattern)} exactly once`);
  return text.replace(pattern, replacement);
}

/** The shipped config, pointed at `directory`, signalling `pid`, and keeping everything (so every line can be counted). */
function testConfig(directory: string, pid: number): string {
  let config = readFileSync(join(REPO_ROOT, 'packaging/logrotate/control-plane'), 'utf8');
  config = replaceOnce(config, '/var/log/control-plane/*.log', `${directory}/*.log`);
  config = replaceOnce(config, /^\s*rotate 14$/m, '    rotate 1000');
  config = replaceOnce(config, /^\s*postrotate\n[\s\S]*?^\s*endscript$/m, `    postrotate\n        kill -HUP ${pid}\n    endscript`);
  return config;
}

test(
  'logrotate forced repeatedly during a webhook stream, with size rotation and compression: every accepted line exactly once',
  { skip: LOGROTATE ? false : 'logrotate is not installed (apt-get install logrotate; .ci/run installs it)', timeout: 60_000 },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'durability-logrotate-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const directory = join(root, 'logs');
    mkdirSync(directory);
    const logFile = join(directory, 'control-plane.log');
    const daemon = await startDaemon({ args: ['--log-file', logFile, '--log-max-size', '64K', '--log-keep', '10000', '--log-compress'], logFile });
    t.after(() => daemon.stop('SIGKILL'));

    const configPath = join(root, 'logrotate.conf');
    writeFileSync(configPath, testConfig(directory, daemon.child.pid!), { mode: 0o644 });
    const statePath = join(root, 'logrotate.state');

    let loading = true;
    const load = sendWebhooks(daemon.url, { workers: 4, keepGoing: () => loading });
    let logrotateRuns = 0;
    let logrotateRaces = 0;
    const rotations = (async () => {
      while (loading) {
        let stderr: string;
        try {
          stderr = (await run(LOGROTATE!, ['-f', '-s', statePath, configPath])).stderr;
        } catch (error) {
          stderr = String((error as { stderr?: string }).stderr ?? error);
        }
        // The one expected complaint: the size rotation renamed the file
        // between logrotate's glob and its rename. logrotate then leaves it
        // alone until its next run; nothing is lost. Anything else fails.
        const problems = stderr.split('\n').filter((line) => line !== '');
        const races = problems.filter((line) => line.includes(`${logFile}:`) && line.endsWith('No such file or directory'));
        assert.deepEqual(problems.filter((line) => !races.includes(line)), [], 'logrotate reports no other problem');
        if (races.length > 0) logrotateRaces++;
        logrotateRuns++;
        await sleep(100);
      }
    })();
    await sleep(LOAD_MS);
    loading = false;
    const result = await load;
    await rotations;
    const stopped = await daemon.stop();
    assert.equal(stopped.code, 0, `clean exit; stderr: ${daemon.stderr}`);

    assert.deepEqual([...result.statuses.keys()], [200], `every webhook answered 200: ${JSON.stringify([...result.statuses])}`);
    assert.ok(result.accepted.length >= 300, `a steady stream (${result.accepted.length} webhooks)`);
    assert.ok(logrotateRuns >= 5, `logrotate ran repeatedly (${logrotateRuns})`);

    const files = readLogFiles(directory, 'control-plane.log');
    const names = files.map((file) => file.name);
    const sizeRotated = names.filter((name) => /^control-plane\.log\.\d{8}T\d{6}Z(-\d+)?(\.gz)?$/.test(name));
    const logrotated = names.filter((name) => /^control-plane\.log\.\d+(\.gz)?$/.test(name));
    assert.ok(sizeRotated.length >= 3, `the size rotation ran (${sizeRotated.length} files)`);
    assert.ok(sizeRotated.some((name) => name.endsWith('.gz')), 'the daemon compressed its rotated files');
    assert.ok(logrotated.length >= 3, `logrotate rotated the file (${logrotated.length} files)`);
    assert.ok(logrotated.some((name) => name.endsWith('.gz')), 'logrotate compressed its rotated files');
    assert.deepEqual(names.filter((name) => !sizeRotated.includes(name) && !logrotated.includes(name)), ['control-plane.log'], 'no other file appeared');

    const lines = assertCompleteOutput(parseLogFiles(files), result.accepted);
    assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
    t.diagnostic(`${result.accepted.length} webhooks, ${lines.length} lines in ${files.length} files; ${logrotateRuns} logrotate runs (${logrotateRaces} lost the race to a size rotation), ${sizeRotated.length} size rotations`);
  },
);
