// A small tmpfs that fills up, for the disk-full tests. Mounting needs root
// (with CAP_SYS_ADMIN, as CI has); elsewhere those tests are skipped and say why.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function mount(directory: string, sizeBytes: number): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', directory], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function unmount(directory: string): void {
  execFileSync('umount', ['-l', directory]);
  rmdirSync(directory);
}

/** Why a tmpfs cannot be mounted here (the skip message), or false when it can. */
export function tmpfsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs (CI runs as root)';
  const probe = mkdtempSync(join(tmpdir(), 'tmpfs-probe-'));
  try {
    mount(probe, 64 * 1024);
  } catch (error) {
    rmdirSync(probe);
    const stderr = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    return `cannot mount a tmpfs here (root without CAP_SYS_ADMIN?): ${stderr}`;
  }
  unmount(probe);
  return false;
}

/** Mounts a tmpfs of `sizeBytes` on a new directory, unmounted and removed after the test. */
export function mountTmpfs(t: { after: (fn: () => void) => void }, sizeBytes: number, prefix = 'tmpfs-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  mount(directory, sizeBytes);
  t.after(() => unmount(directory));
  return directory;
}
