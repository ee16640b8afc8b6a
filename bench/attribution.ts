// Where the time goes, step by step: the burst against the daemon's serving
// path with one step switched off at a time (bench/servers/attribution-
// server.ts), the server's CPU per request compared with the full path.
// Main-thread CPU is the figure that competes with the load generator for
// the cores; all-thread CPU adds GC helpers and the JIT. Each row also
// gives its throughput against bare node:http: the row with every step off
// is the ceiling the HTTP shell, decoding and dedup leave.

import { join } from 'node:path';
import { type BurstResult, runBurst, type Target } from './burst.ts';
import { median } from './report.ts';
import { REPO_ROOT, RUNTIME_FLAGS } from './targets.ts';
import { BENCH_KEY, buildWorkload, type WorkloadKind } from './workload.ts';

/** A configuration: which steps are off, and what the difference to "full" means. */
const VARIANTS: ReadonlyArray<{ readonly stubs: string; readonly step: string }> = [
  { stubs: '', step: 'full serving path (reference)' },
  { stubs: 'verify', step: 'verify (token + body hash)' },
  { stubs: 'encode', step: 'encode + write the lines' },
  { stubs: 'write', step: 'write (the sync write alone)' },
  { stubs: 'sessions', step: 'SessionStore (call/session/provider lines)' },
  { stubs: 'metrics', step: 'metrics' },
  { stubs: 'verify,encode,sessions,metrics', step: 'all of the above' },
];

export interface AttributionRow {
  readonly step: string;
  readonly stubs: string;
  readonly mainMicros: number;
  readonly allMicros: number;
  readonly requestsPerSecond: number;
  /** Full minus this configuration: what the step(s) cost. null for the reference rows. */
  readonly costMain: number | null;
  readonly costAll: number | null;
}

export interface AttributionResult {
  readonly rows: AttributionRow[];
  readonly bare: { readonly main: number; readonly all: number; readonly requestsPerSecond: number };
}

export async function runAttribution(options: { kind: WorkloadKind; concurrency: number; count: number; warmup: number; repeats: number; log: (line: string) => void }): Promise<AttributionResult> {
  const node = process.execPath;
  const tsx = ['--import', 'tsx'];
  const target = (stubs: string): Target => ({
    name: stubs === '' ? 'full' : `without ${stubs}`,
    description: '',
    runtime: process.version,
    command: node,
    // The executable's runtime flags, as the sources run in the burst (bare runs on Node's defaults there and here).
    args: [...RUNTIME_FLAGS, ...tsx, join(REPO_ROOT, 'bench', 'servers', 'attribution-server.ts'), '--host', '127.0.0.1', '--port', '0'],
    env: { STUB: stubs, LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret },
    output: 'none',
  });
  const bareTarget: Target = { name: 'bare node:http', description: '', runtime: process.version, command: node, args: [...tsx, join(REPO_ROOT, 'bench', 'servers', 'bare-http.ts')], env: {}, output: 'none' };
  const runs = new Map<string, BurstResult[]>();
  const configurations = [...VARIANTS.map((variant) => variant.stubs), 'bare'];
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    const order = repeat % 2 === 0 ? configurations : [...configurations].reverse();
    for (const stubs of order) {
      const result = await runBurst(stubs === 'bare' ? bareTarget : target(stubs), {
        concurrency: options.concurrency,
        warmup: options.warmup > 0 ? buildWorkload({ count: options.warmup, seed: 500 + repeat, kind: options.kind }) : null,
        workload: buildWorkload({ count: options.count, seed: 600 + repeat, kind: options.kind }),
        repeat,
      });
      runs.set(stubs, [...(runs.get(stubs) ?? []), result]);
      options.log(
        `  #${repeat + 1} ${(stubs === '' ? 'full' : stubs).padEnd(34)} main ${result.mainThreadCpuMicrosPerRequest.toFixed(0).padStart(4)} µs/req, all threads ${result.cpuMicrosPerRequest.toFixed(0).padStart(4)} µs/req, ${result.requestsPerSecond.toFixed(0).padStart(6)} req/s`,
      );
    }
  }
  const mainOf = (stubs: string) => median(runs.get(stubs)!.map((run) => run.mainThreadCpuMicrosPerRequest));
  const allOf = (stubs: string) => median(runs.get(stubs)!.map((run) => run.cpuMicrosPerRequest));
  const rateOf = (stubs: string) => median(runs.get(stubs)!.map((run) => run.requestsPerSecond));
  const rows = VARIANTS.map(({ stubs, step }) => ({
    step,
    stubs,
    mainMicros: mainOf(stubs),
    allMicros: allOf(stubs),
    requestsPerSecond: rateOf(stubs),
    costMain: stubs === '' ? null : mainOf('') - mainOf(stubs),
    costAll: stubs === '' ? null : allOf('') - allOf(stubs),
  }));
  return { rows, bare: { main: mainOf('bare'), all: allOf('bare'), requestsPerSecond: rateOf('bare') } };
}

export function attributionTable(result: AttributionResult): string {
  const rate = (requestsPerSecond: number) => `${Math.round(requestsPerSecond).toLocaleString('en-US')} | ${(requestsPerSecond / result.bare.requestsPerSecond).toFixed(2)}`;
  const lines = [
    '| configuration | main thread µs/req | all threads µs/req | the step costs (main / all) | req/s | × bare |',
    '| :--- | ---: | ---: | ---: | ---: | ---: |',
    ...result.rows.map(
      (row) =>
        `| ${row.stubs === '' ? row.step : `without ${row.step}`} | ${row.mainMicros.toFixed(0)} | ${row.allMicros.toFixed(0)} | ${row.costMain === null ? '—' : `${row.costMain.toFixed(0)} / ${row.costAll!.toFixed(0)}`} | ${rate(row.requestsPerSecond)} |`,
    ),
    `| bare node:http (the floor: HTTP alone) | ${result.bare.main.toFixed(0)} | ${result.bare.all.toFixed(0)} | — | ${rate(result.bare.requestsPerSecond)} |`,
  ];
  return lines.join('\n');
}
