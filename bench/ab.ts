// A/B of the daemon's CPU per webhook: the sources in another work tree (A,
// e.g. `git worktree add /tmp/base HEAD`) against this one (B), alternating
// in one run. `tsx bench/ab.ts /tmp/base [repeats] [n] [other tree as B]`. Not part of `npm run bench`.
import { join } from 'node:path';
import { runBurst, type Target } from './burst.ts';
import { median } from './report.ts';
import { REPO_ROOT } from './targets.ts';
import { BENCH_KEY, buildWorkload } from './workload.ts';

const [baseRoot = '/tmp/base', repeatsArg = '4', countArg = '20000', candidateRoot = REPO_ROOT] = process.argv.slice(2);
const target = (name: string, root: string): Target => ({
  name,
  description: '',
  runtime: process.version,
  command: process.execPath,
  args: ['--import', 'tsx', join(root, 'src', 'main.ts'), '--host', '127.0.0.1', '--port', '0'],
  env: { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret },
  output: 'obs',
});
const targets = [target('A (base)', baseRoot), target('B (this tree)', candidateRoot)];
const results = new Map<string, { main: number[]; all: number[]; rps: number[] }>();
for (let repeat = 0; repeat < Number(repeatsArg); repeat++) {
  for (const t of repeat % 2 === 0 ? targets : [...targets].reverse()) {
    const r = await runBurst(t, { concurrency: 64, warmup: buildWorkload({ count: 2000, seed: 500 + repeat }), workload: buildWorkload({ count: Number(countArg), seed: 600 + repeat }), repeat });
    const entry = results.get(t.name) ?? { main: [], all: [], rps: [] };
    entry.main.push(r.mainThreadCpuMicrosPerRequest);
    entry.all.push(r.cpuMicrosPerRequest);
    entry.rps.push(r.requestsPerSecond);
    results.set(t.name, entry);
    console.log(`#${repeat + 1} ${t.name.padEnd(14)} main ${r.mainThreadCpuMicrosPerRequest.toFixed(1)} all ${r.cpuMicrosPerRequest.toFixed(1)} µs/req ${r.requestsPerSecond.toFixed(0)} req/s missing ${r.output?.missing} seq ${r.output?.seqContiguous}`);
  }
}
const [a, b] = targets.map((t) => results.get(t.name)!);
console.log(`median main µs/req A ${median(a!.main).toFixed(1)} B ${median(b!.main).toFixed(1)} (B/A ${(median(b!.main) / median(a!.main)).toFixed(3)}); all A ${median(a!.all).toFixed(1)} B ${median(b!.all).toFixed(1)}; req/s A ${median(a!.rps).toFixed(0)} B ${median(b!.rps).toFixed(0)} (B/A ${(median(b!.rps) / median(a!.rps)).toFixed(3)})`);
