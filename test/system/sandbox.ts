// A real systemd (Debian 12, systemd 252, journald) for the system test:
// ../shared/tools/systemd-sandbox boots a throwaway Debian tree as PID 1 of
// its own PID and mount namespace, sharing this machine's network. The tree
// lives outside the repository and is built once (debootstrap); later boots
// take about two seconds.

import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.ts';

export const SANDBOX_TOOL = process.env.SYSTEMD_SANDBOX ?? resolve(REPO_ROOT, '../shared/tools/systemd-sandbox');
export const SANDBOX_DIR = process.env.CONTROL_PLANE_SANDBOX_DIR ?? '/var/tmp/control-plane-sandbox';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Why the system test cannot run here, or null when it can. */
export function sandboxUnavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (the sandbox uses namespaces and debootstrap); run `sudo npm run test:system`';
  if (!existsSync(SANDBOX_TOOL)) return `the sandbox tool ${SANDBOX_TOOL} is missing (set SYSTEMD_SANDBOX)`;
  for (const tool of ['unshare', 'nsenter', 'setsid']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (util-linux)`;
  }
  return null;
}

/** Runs a command on this machine; never throws on a non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 1024 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
        resolvePromise({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Runs a command inside the sandbox. */
export function inside(args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return run(SANDBOX_TOOL, ['exec', SANDBOX_DIR, ...args], options);
}

/** Runs a command inside the sandbox and returns its stdout; throws on a non-zero exit. */
export async function insideOk(args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const result = await inside(args, options);
  if (result.code !== 0) throw new Error(`inside the sandbox: ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** A path of the sandbox's file system, seen from this machine. */
export function hostPath(path: string): string {
  return `${SANDBOX_DIR}${path}`;
}

/**
 * Boots the sandbox (building it the first time, which takes a minute or
 * two), then makes it behave like a booted VM in the two ways the sandbox
 * does not by default:
 * - `/` gets shared mount propagation. systemd does this itself at boot on a
 *   real machine, but not when it detects a container; without it the
 *   credentials of `LoadCredential=` stay invisible to the service.
 * - PID 1 logs to the journal, as on a VM, so the journal also holds
 *   systemd's own lines about the unit ("Started ...") and a test reading the
 *   journal sees what an operator sees.
 */
export async function sandboxUp(): Promise<void> {
  // A minimal Debian, without libatomic1: the package's Depends: must bring it.
  const up = await run(SANDBOX_TOOL, ['up', SANDBOX_DIR], { timeoutMs: 15 * 60_000 });
  if (up.code !== 0) throw new Error(`systemd-sandbox up failed (${up.code}):\n${up.stderr}`);
  await insideOk(['mount', '--make-rshared', '/']);
  await insideOk(['systemd-analyze', 'log-target', 'journal-or-kmsg']);
}

export async function sandboxDown(): Promise<void> {
  await run(SANDBOX_TOOL, ['down', SANDBOX_DIR], { timeoutMs: 60_000 });
}

/** `systemctl show` properties of a unit inside the sandbox. */
export async function unitProperties(unit: string, names: readonly string[]): Promise<Record<string, string>> {
  const text = await insideOk(['systemctl', 'show', unit, ...names.map((name) => `--property=${name}`)]);
  const properties: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) properties[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return properties;
}
