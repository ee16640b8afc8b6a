// `npm run bench`: micro-benchmarks, start-up time, the burst against the
// bare node:http server and livekit-server-sdk's receiver, and the store's
// memory per entry, in one run. Prints the tables and writes
// bench/results/<date>.md plus an SVG chart of the latency distribution.
// Not part of `npm test`.
//
// Settings (flag, or environment variable; flags win):
//   --workload K     BENCH_WORKLOAD       sip-calls (default) or mixed (bench/workload.ts)
//   --n N            BENCH_N              webhooks per burst (20000)
//   --c C            BENCH_C              requests in flight (64)
//   --repeats R      BENCH_REPEATS        bursts per server, order alternating (5)
//   --warmup W       BENCH_WARMUP         warm-up webhooks before each burst (2000)
//   --micro-time MS  BENCH_MICRO_TIME     time per micro-benchmark candidate (500)
//   --starts S       BENCH_STARTS         exec → healthy measurements (7)
//   --only a,b       BENCH_ONLY           servers whose name contains one of these
//   --runtime NODE   BENCH_RUNTIME        also build the executable on this Node.js
//                                         (repeatable; the variable takes a comma list)
//                                         and burst it against bare node:http on NODE
//   --no-micro       BENCH_NO_MICRO=1     skip the micro-benchmarks
//   --no-memory      BENCH_NO_MEMORY=1    skip the store's memory per entry (bench/memory.ts)
//   --profile        BENCH_PROFILE=1      also run one burst of the sources under
//                                         node --cpu-prof and summarise where time goes
//   --attribution    BENCH_ATTRIBUTION=1  also measure each step's CPU in situ: the burst
//                                         against the serving path with one step switched
//                                         off at a time (bench/attribution.ts)
//   --out DIR        BENCH_OUT            where results go (bench/results)
//
// `npm run bench -- --sustained [...]` runs the sustained-load run instead
// (bench/sustained.ts, also `npm run bench:sustained`).

import { cpus, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BurstResult, percentile, runBurst, type Target } from './burst.ts';
import { type AttributionResult, attributionTable, runAttribution } from './attribution.ts';
import { runMicro } from './micro.ts';
import { profileBurst, type ProfileSummary, profileTable } from './profile.ts';
import {
  burstTable,
  latencyChart,
  type MicroResult,
  microTable,
  repeatsTable,
  type StartupResult,
  startupTable,
  summarise,
  verdicts,
  verdictTable,
} from './report.ts';
import { addRedisRows, type RedisRows, redisVerdicts } from './redis.ts';
import { measureStartup } from './startup.ts';
import { type MemoryResult, memoryTables, runMemory } from './memory.ts';
import { sustainedMain } from './sustained.ts';
import { benchTargets, NAMES, REPO_ROOT, type TargetSet } from './targets.ts';
import { buildWorkload, describeWorkload, WORKLOADS, type WorkloadKind } from './workload.ts';

interface Settings {
  workload: WorkloadKind;
  runtimes: string[];
  memory: boolean;
  n: number;
  c: number;
  repeats: number;
  warmup: number;
  microTimeMs: number;
  starts: number;
  only: string[];
  micro: boolean;
  profile: boolean;
  attribution: boolean;
  out: string;
}

const USAGE = `usage: npm run bench -- [--workload sip-calls|mixed] [--runtime NODE]... [--n N] [--c C] [--repeats R] [--warmup W] [--micro-time MS] [--starts S] [--only a,b] [--no-micro] [--no-memory] [--profile] [--attribution] [--out DIR]`;

function settingsFrom(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  const integer = (name: string, value: string | undefined, fallback: number, minimum: number): number => {
    if (value === undefined || value === '') return fallback;
    if (!/^\d+$/.test(value) || Number(value) < minimum) throw new Error(`${name}: expected an integer ≥ ${minimum}, got "${value}"`);
    return Number(value);
  };
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  const runtimes: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--no-micro' || arg === '--no-memory' || arg === '--profile' || arg === '--attribution') switches.add(arg);
    else if (arg === '--runtime' && argv[index + 1] !== undefined) runtimes.push(argv[++index]!);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (/^--(workload|n|c|repeats|warmup|micro-time|starts|only|out)$/.test(arg) && argv[index + 1] !== undefined) flags.set(arg.slice(2), argv[++index]!);
    else throw new Error(`unknown argument "${arg}"\n${USAGE}`);
  }
  const pick = (flag: string, variable: string) => flags.get(flag) ?? env[variable];
  const workload = pick('workload', 'BENCH_WORKLOAD') ?? 'sip-calls';
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw new Error(`--workload / BENCH_WORKLOAD: expected one of ${WORKLOADS.join(', ')}, got "${workload}"`);
  return {
    workload: workload as WorkloadKind,
    runtimes: runtimes.length ? runtimes : (env.BENCH_RUNTIME ?? '').split(',').map((part) => part.trim()).filter(Boolean),
    memory: !switches.has('--no-memory') && env.BENCH_NO_MEMORY !== '1',
    n: integer('--n / BENCH_N', pick('n', 'BENCH_N'), 20_000, 1),
    c: integer('--c / BENCH_C', pick('c', 'BENCH_C'), 64, 1),
    repeats: integer('--repeats / BENCH_REPEATS', pick('repeats', 'BENCH_REPEATS'), 5, 1),
    warmup: integer('--warmup / BENCH_WARMUP', pick('warmup', 'BENCH_WARMUP'), 2000, 0),
    microTimeMs: integer('--micro-time / BENCH_MICRO_TIME', pick('micro-time', 'BENCH_MICRO_TIME'), 500, 10),
    starts: integer('--starts / BENCH_STARTS', pick('starts', 'BENCH_STARTS'), 7, 0),
    only: (pick('only', 'BENCH_ONLY') ?? '').split(',').map((part) => part.trim().toLowerCase()).filter(Boolean),
    micro: !switches.has('--no-micro') && env.BENCH_NO_MICRO !== '1',
    profile: switches.has('--profile') || env.BENCH_PROFILE === '1',
    attribution: switches.has('--attribution') || env.BENCH_ATTRIBUTION === '1',
    out: pick('out', 'BENCH_OUT') ?? join(REPO_ROOT, 'bench', 'results'),
  };
}

function machine(): string {
  const cores = cpus();
  const model = cores[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${cores.length} × ${model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GB RAM, ${process.platform} ${process.arch}, bench driven by Node.js ${process.version}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--sustained')) return sustainedMain(argv.filter((arg) => arg !== '--sustained'));
  const settings = settingsFrom(argv, process.env);
  const set = benchTargets({ runtimes: settings.runtimes });
  const redis = await addRedisRows(set, [NAMES.source, NAMES.executable]);
  try {
    await bench(settings, set, redis);
  } finally {
    set.cleanup();
    await redis.stop();
  }
}

async function bench(settings: Settings, set: TargetSet, redis: RedisRows): Promise<void> {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const startedAt = new Date();
  const selected = (target: Target) => settings.only.length === 0 || settings.only.some((part) => target.name.toLowerCase().includes(part));
  // A selected server's comparison rows are always run along with it.
  const wanted = new Set(set.targets.filter(selected).map((target) => target.name));
  for (const name of [...wanted]) {
    const bare = set.bareFor.get(name);
    if (bare) wanted.add(bare);
    const bareSameFlags = set.bareSameFlagsFor.get(name);
    if (bareSameFlags) wanted.add(bareSameFlags);
    if (set.bareFor.has(name)) wanted.add(set.sdk);
    const embeddedTwin = redis.twins.get(name);
    if (embeddedTwin) wanted.add(embeddedTwin);
  }
  const targets = set.targets.filter((target) => wanted.has(target.name));

  log(`control-plane bench — ${startedAt.toISOString()}`);
  log(`machine: ${machine()}`);
  log(`burst: ${settings.workload}, ${settings.n} webhooks, ${settings.c} in flight, ${settings.repeats} repeats, ${settings.warmup} warm-up webhooks per server`);
  for (const note of set.notes) log(`note: ${note}`);

  let micro: MicroResult[] = [];
  if (settings.micro) {
    log('\nmicro-benchmarks (tinybench):');
    micro = await runMicro({ timeMs: settings.microTimeMs, log });
  }

  const startup: StartupResult[] = [];
  if (settings.starts > 0) {
    log('\nexec → healthy:');
    for (const name of [NAMES.executable, ...targets.filter((target) => target.name.startsWith(`${NAMES.executable} on `)).map((target) => target.name), NAMES.source]) {
      const target = targets.find((candidate) => candidate.name === name);
      if (!target) continue;
      const samples = await measureStartup(target, settings.starts);
      startup.push({ target: name, samples });
      log(`  ${name}: ${samples.map((sample) => sample.toFixed(0)).join(', ')} ms`);
    }
  }

  log('\nburst:');
  const results: BurstResult[] = [];
  const failedRuns: string[] = [];
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    // Fresh ids and tokens for every repeat: a token lives 5 min, like LiveKit's.
    const order = repeat % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const workload = buildWorkload({ count: settings.n, seed: 1000 + repeat, kind: settings.workload });
      const warmup = settings.warmup > 0 ? buildWorkload({ count: settings.warmup, seed: 9000 + repeat, kind: settings.workload }) : null;
      let result: BurstResult;
      try {
        result = await runBurst(target, { concurrency: settings.c, warmup, workload, repeat });
      } catch (error) {
        // One server failing (say, a broken build) must not cost the other rows.
        const message = error instanceof Error ? error.message : String(error);
        failedRuns.push(`${target.name}, repeat ${repeat + 1}: ${message.split('\n', 1)[0]}`);
        log(`  #${repeat + 1} ${target.name}: FAILED: ${message}`);
        continue;
      }
      results.push(result);
      const refused = Object.entries(result.failures).map(([status, count]) => `${count}×${status === '0' ? 'connection error' : status}`).join(', ');
      log(
        `  #${repeat + 1} ${target.name.padEnd(30)} ${Math.round(result.requestsPerSecond).toLocaleString('en-US').padStart(7)} req/s` +
          `  p99 ${percentile(result.latencies, 0.99).toFixed(2)} ms  RSS ${(result.peakRssBytes / 1024 / 1024).toFixed(0)} MB` +
          `  CPU/req server ${result.cpuMicrosPerRequest.toFixed(0)} µs, client ${result.clientCpuMicrosPerRequest.toFixed(0)} µs` +
          (result.output ? `  missing ${result.output.missing}` : '') +
          (refused ? `  not 200: ${refused}` : ''),
      );
    }
  }

  let profile: ProfileSummary | null = null;
  if (settings.profile) {
    const source = targets.find((target) => target.name === NAMES.source);
    if (source) {
      log('\nprofiling one burst of the sources (node --cpu-prof)...');
      profile = await profileBurst(source, { kind: settings.workload, concurrency: settings.c, count: settings.n, warmup: settings.warmup, directory: settings.out });
      log(`  profile: ${profile.path}`);
    }
  }

  let attribution: AttributionResult | null = null;
  if (settings.attribution) {
    log('\nattribution (the serving path with one step off at a time):');
    attribution = await runAttribution({ kind: settings.workload, concurrency: settings.c, count: settings.n, warmup: settings.warmup, repeats: settings.repeats, log });
  }

  let memory: MemoryResult | null = null;
  if (settings.memory) {
    log('\nthe store\'s memory per entry (bench/memory.ts):');
    memory = await runMemory({ executable: false, log });
  }

  const summaries = summarise(targets, results, set.bareFor, set.bareSameFlagsFor, set.sdk);
  const executableRows = targets.filter((target) => target.name === NAMES.executable || target.name.startsWith(`${NAMES.executable} on `)).map((target) => target.name);
  const controlPlaneRows = [NAMES.source, ...executableRows];
  const verdictList = [...verdicts(summaries, startup, controlPlaneRows, executableRows), ...redisVerdicts(summaries, redis.twins)];
  const workloadMix = buildWorkload({ count: settings.n, seed: 1000, kind: settings.workload });

  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
  mkdirSync(settings.out, { recursive: true });
  const chartName = `${stamp}-latency.svg`;
  writeFileSync(join(settings.out, chartName), latencyChart(summaries, `Latency under a burst: ${settings.workload}, ${settings.n} webhooks, ${settings.c} in flight, ${settings.repeats} repeats`));

  const sections: string[] = [];
  sections.push(`# control-plane bench, ${startedAt.toISOString()}`);
  sections.push(`Machine: ${machine()}.`);
  sections.push(
    `Burst (\`${settings.workload}\`): ${settings.n.toLocaleString('en-US')} unique signed webhooks per server and repeat, ${describeWorkload(settings.workload)}; mean body ${workloadMix.meanBodyBytes.toFixed(0)} B; ` +
      `${settings.c} in flight through an undici Pool (${settings.c} rooms at once, each room's events one at a time, as LiveKit sends them), ` +
      `${settings.warmup} warm-up webhooks first, ${settings.repeats} repeats with the server order alternating, the load generator on the same machine. ` +
      `Each server writes to stdout redirected to a file. Medians over the repeats; ratios are taken within each repeat. ` +
      `× bare compares with bare node:http on Node's default flags, as the targets do; × bare, same flags with bare node:http run with control-plane's runtime flags ` +
      `(they speed it up too, mostly by optimizing sooner after start), which is the part of the ratio that is the code and not the flags.`,
  );
  sections.push(`Mix: ${[...workloadMix.mix].sort((a, b) => b[1] - a[1]).map(([name, count]) => `${name} ${((count * 100) / workloadMix.count).toFixed(1)}%`).join(', ')}.`);
  if (set.notes.length) sections.push(set.notes.map((note) => `Note: ${note}`).join('\n\n'));
  if (failedRuns.length) sections.push(`Runs that failed (left out of the table):\n\n${failedRuns.map((failure) => `- ${failure}`).join('\n')}`);
  sections.push(`## Burst\n\n${burstTable(summaries)}\n\n![latency by percentile](${chartName})`);
  sections.push(`## Against the targets\n\n${verdictTable(verdictList)}`);
  sections.push(`## Every burst (the spread behind the medians)\n\n${repeatsTable(results)}`);
  if (startup.length) sections.push(`## exec → healthy (spawn until GET /health answers 200)\n\n${startupTable(startup)}`);
  if (micro.length) sections.push(`## Micro-benchmarks (tinybench, ${settings.microTimeMs} ms per candidate)\n\n${microTable(micro)}`);
  if (memory) sections.push(`## The store's memory at the caps (bench/memory.ts)\n\n${memoryTables(memory)}`);
  if (attribution) sections.push(`## Where the time goes, step by step (server CPU per request in the burst, medians of ${settings.repeats})\n\n${attributionTable(attribution)}`);
  if (profile) sections.push(`## Where the time goes (node --cpu-prof, one burst of the sources)\n\n${profileTable(profile)}`);
  sections.push(`Servers:\n\n${targets.map((target) => `- **${target.name}**: ${target.description}`).join('\n')}`);
  const markdown = `${sections.join('\n\n')}\n`;
  const reportPath = join(settings.out, `${stamp}.md`);
  writeFileSync(reportPath, markdown);

  log(`\n${burstTable(summaries)}\n`);
  log(verdictTable(verdictList));
  if (startup.length) log(`\n${startupTable(startup)}`);
  if (micro.length) log(`\n${microTable(micro)}`);
  if (memory) log(`\n${memoryTables(memory)}`);
  if (attribution) log(`\n${attributionTable(attribution)}`);
  if (profile) log(`\n${profileTable(profile)}`);
  log(`\nwrote ${reportPath} and ${join(settings.out, chartName)}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
