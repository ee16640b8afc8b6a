// A/B of servers under the same burst, alternating in one run: how every
// change to the daemon and to its runtime flags was measured (README,
// Performance; build.mjs). Not part of `npm run bench`.
//
//   tsx bench/ab.ts [--workload sip-calls|mixed] [--repeats R] [--n N] [--warmup W] SPEC SPEC [SPEC...]
//
// A SPEC is either
//   - a work tree (`git worktree add /tmp/base HEAD`): its sources, run
//     under tsx with package.json's runtime flags, as the bench runs them;
//   - or `name=command arg...`: any server that takes --host/--port and
//     prints its listen line, e.g. an executable built with
//     CONTROL_PLANE_EXEC_ARGV="..." npm run build. Copy an executable with
//     `dd bs=64K` before measuring its RSS (see installedCopy in targets.ts).
// Prints every burst, then medians per server and their ratio to the first.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, runBurst, type Target } from './burst.ts';
import { median } from './report.ts';
import { RUNTIME_FLAGS } from './targets.ts';
import { BENCH_KEY, buildWorkload, WORKLOADS, type WorkloadKind } from './workload.ts';

const USAGE = 'usage: tsx bench/ab.ts [--workload sip-calls|mixed] [--repeats R] [--n N] [--warmup W] SPEC SPEC [SPEC...]   (SPEC: a work tree, or name=command arg...)';
const settings = { repeats: 5, n: 20_000, warmup: 2000 };
let kind: WorkloadKind = 'sip-calls';
const specs: string[] = [];
const argv = process.argv.slice(2);
for (let index = 0; index < argv.length; index++) {
  const flag = /^--(repeats|n|warmup)$/.exec(argv[index]!);
  if (flag) settings[flag[1] as keyof typeof settings] = Number(argv[++index]);
  else if (argv[index] === '--workload' && (WORKLOADS as readonly string[]).includes(argv[index + 1] ?? '')) kind = argv[++index] as WorkloadKind;
  else specs.push(argv[index]!);
}
if (specs.length < 2 || Object.values(settings).some((value) => !Number.isInteger(value) || value < 0)) throw new Error(USAGE);

const LISTEN = ['--host', '127.0.0.1', '--port', '0'];
function targetOf(spec: string): Target {
  const base = { description: '', runtime: '', env: { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret }, output: 'obs' as const };
  const named = /^([^=/]+)=(.+)$/.exec(spec);
  if (named) {
    const [command, ...args] = named[2]!.split(' ').filter(Boolean);
    return { ...base, name: named[1]!, command: command!, args: [...args, ...LISTEN] };
  }
  if (!existsSync(join(spec, 'src', 'main.ts'))) throw new Error(`${spec}: not a work tree (no src/main.ts) and not name=command\n${USAGE}`);
  return { ...base, name: spec, command: process.execPath, args: [...RUNTIME_FLAGS, '--import', 'tsx', join(spec, 'src', 'main.ts'), ...LISTEN] };
}

const targets = specs.map(targetOf);
const measured = new Map<string, { main: number[]; all: number[]; rps: number[]; p99: number[]; rss: number[] }>();
for (let repeat = 0; repeat < settings.repeats; repeat++) {
  for (const target of repeat % 2 === 0 ? targets : [...targets].reverse()) {
    const result = await runBurst(target, {
      concurrency: 64,
      warmup: settings.warmup > 0 ? buildWorkload({ count: settings.warmup, seed: 500 + repeat, kind }) : null,
      workload: buildWorkload({ count: settings.n, seed: 600 + repeat, kind }),
      repeat,
    });
    const entry = measured.get(target.name) ?? { main: [], all: [], rps: [], p99: [], rss: [] };
    entry.main.push(result.mainThreadCpuMicrosPerRequest);
    entry.all.push(result.cpuMicrosPerRequest);
    entry.rps.push(result.requestsPerSecond);
    entry.p99.push(percentile(result.latencies, 0.99));
    entry.rss.push(result.peakRssBytes / 1024 / 1024);
    measured.set(target.name, entry);
    console.log(
      `#${repeat + 1} ${target.name.padEnd(20)} main ${result.mainThreadCpuMicrosPerRequest.toFixed(1)} all ${result.cpuMicrosPerRequest.toFixed(1)} µs/req, ` +
        `${result.requestsPerSecond.toFixed(0)} req/s, p99 ${entry.p99.at(-1)!.toFixed(1)} ms, RSS ${entry.rss.at(-1)!.toFixed(0)} MB, missing ${result.output?.missing ?? 'n/a'}`,
    );
  }
}
const first = measured.get(targets[0]!.name)!;
for (const target of targets) {
  const entry = measured.get(target.name)!;
  console.log(
    `${target.name.padEnd(20)} medians: main ${median(entry.main).toFixed(1)} all ${median(entry.all).toFixed(1)} µs/req, ${median(entry.rps).toFixed(0)} req/s ` +
      `(${(median(entry.rps) / median(first.rps)).toFixed(3)}× the first), p99 ${median(entry.p99).toFixed(1)} ms, RSS max ${Math.max(...entry.rss).toFixed(0)} MB`,
  );
}
