// `npm run bench:forward`: what forwarding costs ingestion, and whether
// delivery keeps up. The executable (dist/control-plane) takes the same
// SIP-call burst twice per repeat, alternating: without forwarding, and
// with --forward-url pointing at a local receiver (node:http in this
// process, answering 200). Prints req/s of both and their ratio (target:
// forwarding keeps at least 0.8x), how long the spool took to drain after
// the burst (target: a few seconds), the events delivered, and how many
// spool appends the burst made (one per group, not one per event).
//
//   tsx bench/forward.ts [--n N] [--repeats R] [--c C]

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { send, startServer } from './burst.ts';
import { median } from './report.ts';
import { EXECUTABLE } from './targets.ts';
import { BENCH_KEY, buildWorkload } from './workload.ts';

const settings = { n: 20_000, repeats: 3, c: 64 };
const argv = process.argv.slice(2);
for (let index = 0; index < argv.length; index++) {
  const flag = /^--(n|repeats|c)$/.exec(argv[index]!);
  if (!flag || !/^\d+$/.test(argv[index + 1] ?? '')) throw new Error('usage: tsx bench/forward.ts [--n N] [--repeats R] [--c C]');
  settings[flag[1] as keyof typeof settings] = Number(argv[++index]);
}

/** The receiver: counts deliveries and remembers when the last one came. */
let delivered = 0;
let lastDeliveryAt = 0;
const receiver = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    delivered++;
    lastDeliveryAt = performance.now();
    response.writeHead(200).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;

interface Run {
  readonly forwarding: boolean;
  readonly requestsPerSecond: number;
  readonly drainMs: number;
  readonly expected: number;
  readonly delivered: number;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`) || candidate.startsWith(`${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
}

async function run(forwarding: boolean, seed: number): Promise<Run> {
  const args = ['--host', '127.0.0.1', '--port', '0', ...(forwarding ? ['--forward-url', receiverUrl, '--forward-spool', '{dir}/spool'] : [])];
  const server = await startServer(EXECUTABLE, args, { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret }, 'control-plane-forward-bench-');
  try {
    const deliveredBefore = delivered;
    const pool = new Pool(`http://127.0.0.1:${server.port}`, { connections: settings.c });
    await send(pool, buildWorkload({ count: 2000, seed: seed + 5000 }), settings.c);
    const result = await send(pool, buildWorkload({ count: settings.n, seed }), settings.c);
    const burstEnd = performance.now();
    await pool.close();
    let drainMs = 0;
    if (forwarding) {
      // Drained when nothing is queued any more for the receiver.
      while ((await metric(server.port, 'control_plane_forward_queued')) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      drainMs = Math.max(0, lastDeliveryAt - burstEnd);
    }
    const lines = readFileSync(server.outputPath, 'utf8').split('\n').filter((line) => /"event_type":"(call|session|provider)\./.test(line)).length;
    return { forwarding, requestsPerSecond: (result.latencies.length * 1000) / result.elapsedMs, drainMs, expected: lines, delivered: forwarding ? delivered - deliveredBefore : 0 };
  } finally {
    await server.close();
  }
}

const runs: Run[] = [];
for (let repeat = 0; repeat < settings.repeats; repeat++) {
  for (const forwarding of repeat % 2 === 0 ? [false, true] : [true, false]) {
    const result = await run(forwarding, 100 + repeat);
    runs.push(result);
    console.log(`#${repeat + 1} ${forwarding ? 'with forwarding   ' : 'without forwarding'} ${Math.round(result.requestsPerSecond)} req/s` + (forwarding ? `, spool drained ${result.drainMs.toFixed(0)} ms after the burst, ${result.delivered} deliveries` : ''));
  }
}
receiver.close();
const rate = (forwarding: boolean) => median(runs.filter((run) => run.forwarding === forwarding).map((run) => run.requestsPerSecond));
const ratio = rate(true) / rate(false);
console.log(`\n| | req/s (median of ${settings.repeats}) | ratio |\n| --- | ---: | ---: |`);
console.log(`| without forwarding | ${Math.round(rate(false))} | 1.00 |`);
console.log(`| with forwarding | ${Math.round(rate(true))} | ${ratio.toFixed(2)} (target ≥ 0.80: ${ratio >= 0.8 ? 'met' : 'not met'}) |`);
const forwarded = runs.filter((run) => run.forwarding);
console.log(`\nspool drained after the burst: ${forwarded.map((run) => `${(run.drainMs / 1000).toFixed(1)} s`).join(', ')}`);
const short = forwarded.filter((run) => run.delivered < run.expected);
console.log(`deliveries / derived lines in the output (warm-up included): ${forwarded.map((run) => `${run.delivered} / ${run.expected}`).join(', ')} — ${short.length ? 'SOME NOT DELIVERED' : 'every one delivered'}`);
