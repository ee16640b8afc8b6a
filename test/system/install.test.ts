// packaging/install.sh into a throwaway root directory (--root / DESTDIR):
// what it installs, with which modes, that a second run changes nothing,
// that settings are never overwritten, and what --uninstall leaves. No
// systemd involved (systemd.test.ts runs it on a real one).

import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/daemon.ts';
import { run } from './sandbox.ts';

const INSTALL = `${REPO_ROOT}packaging/install.sh`;

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

describe('packaging/install.sh --root', () => {
  let scratch = '';
  let root = '';
  let binary = '';

  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'control-plane-install-'));
    root = join(scratch, 'root');
    binary = join(scratch, 'control-plane');
    writeFileSync(binary, '#!/bin/sh\necho "control-plane 0.0.0 (fake)"\n');
    chmodSync(binary, 0o755);
    mkdirSync(root);
  });

  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  async function install(...args: string[]): Promise<string> {
    const result = await run(INSTALL, ['--root', root, '--binary', binary, ...args]);
    assert.equal(result.code, 0, `install.sh ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  }

  it('installs the executable, the unit, the logrotate config and the env example', async () => {
    const output = await install();
    assert.equal(readFileSync(join(root, 'usr/local/bin/control-plane'), 'utf8'), readFileSync(binary, 'utf8'));
    assert.equal(mode(join(root, 'usr/local/bin/control-plane')), '755');
    // The same unit, its commands pointed at /usr/local/bin.
    const unit = readFileSync(join(root, 'etc/systemd/system/control-plane.service'), 'utf8');
    assert.equal(unit, readFileSync(`${REPO_ROOT}packaging/systemd/control-plane.service`, 'utf8').replaceAll('/usr/bin/control-plane', '/usr/local/bin/control-plane'));
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/control-plane serve$/m);
    assert.match(unit, /^ExecStartPost=\/usr\/local\/bin\/control-plane wait-healthy/m);
    assert.doesNotMatch(unit, /[^l]\/bin\/control-plane/);
    assert.equal(mode(join(root, 'etc/systemd/system/control-plane.service')), '644');
    assert.equal(readFileSync(join(root, 'etc/control-plane/control-plane.env'), 'utf8'), readFileSync(`${REPO_ROOT}packaging/control-plane.env.example`, 'utf8'));
    assert.equal(mode(join(root, 'etc/control-plane/control-plane.env')), '600');
    assert.equal(mode(join(root, 'etc/control-plane')), '700');
    if (existsSync(`${REPO_ROOT}packaging/logrotate/control-plane`)) {
      assert.equal(readFileSync(join(root, 'etc/logrotate.d/control-plane'), 'utf8'), readFileSync(`${REPO_ROOT}packaging/logrotate/control-plane`, 'utf8'));
    }
    // Into a directory tree, systemctl is not called; it says what to do instead.
    assert.match(output, /run 'systemctl daemon-reload' inside that system/);
    assert.match(output, /livekit_api_secret/);
  });

  it('is idempotent and never overwrites the settings', async () => {
    await install();
    const envPath = join(root, 'etc/control-plane/control-plane.env');
    writeFileSync(envPath, 'LIVEKIT_API_KEY=APIoperator\n');
    const second = await install();
    assert.doesNotMatch(second, /^installed/m, 'a second run installs nothing');
    assert.match(second, /kept +\/etc\/control-plane\/control-plane\.env/);
    assert.equal(readFileSync(envPath, 'utf8'), 'LIVEKIT_API_KEY=APIoperator\n');

    // An upgrade replaces the executable by renaming a new file into place.
    const before = statSync(join(root, 'usr/local/bin/control-plane')).ino;
    writeFileSync(binary, '#!/bin/sh\necho "control-plane 0.0.1 (fake)"\n');
    const upgrade = await install();
    assert.match(upgrade, /installed +\/usr\/local\/bin\/control-plane/);
    assert.notEqual(statSync(join(root, 'usr/local/bin/control-plane')).ino, before, 'a running binary is never written in place');
    assert.equal(readFileSync(envPath, 'utf8'), 'LIVEKIT_API_KEY=APIoperator\n');
  });

  it('--uninstall removes the program files and keeps settings and secret', async () => {
    await install();
    writeFileSync(join(root, 'etc/control-plane/livekit_api_secret'), 'secret\n', { mode: 0o600 });
    const output = await install('--uninstall');
    assert.match(output, /removed +\/usr\/local\/bin\/control-plane/);
    assert.ok(!existsSync(join(root, 'usr/local/bin/control-plane')));
    assert.ok(!existsSync(join(root, 'etc/systemd/system/control-plane.service')));
    assert.ok(!existsSync(join(root, 'etc/logrotate.d/control-plane')));
    assert.ok(existsSync(join(root, 'etc/control-plane/control-plane.env')));
    assert.ok(existsSync(join(root, 'etc/control-plane/livekit_api_secret')));
  });

  it('refuses a missing executable and unknown arguments', async () => {
    const missing = await run(INSTALL, ['--root', root, '--binary', join(scratch, 'nothing')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no executable at .*nothing: run 'npm run build' first/);
    const unknown = await run(INSTALL, ['--root', root, '--frobnicate']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown argument: --frobnicate/);
    const noRoot = await run(INSTALL, ['--root', join(scratch, 'absent')]);
    assert.equal(noRoot.code, 1);
    assert.match(noRoot.stderr, /no such directory/);
  });

  it('DESTDIR works like --root', async () => {
    const result = await run('env', [`DESTDIR=${root}`, INSTALL, '--binary', binary]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(join(root, 'usr/local/bin/control-plane')));
  });
});
