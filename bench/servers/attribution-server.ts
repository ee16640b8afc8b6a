// The daemon's serving path, assembled as src/main.ts assembles it (server,
// pipeline, session store, line writer on stdout, metrics), with one or more
// steps switched off by STUB=a,b: the difference in CPU per request against
// the full path is what that step costs in situ, under the burst, caches and
// all (micro-benchmarks run hot and understate it). Used by
// `npm run bench -- --attribution`; never shipped.
//
//   verify    webhooks are not verified (insecureSkipVerify)
//   sessions  the planner derives no call/session/provider lines (every room is seen as ended)
//   encode    LineWriter writes nothing (no encoding, no write)
//   write     lines are encoded but the sink does not write them
//   metrics   counters and histograms are not updated

import { writeSync } from 'node:fs';
import { DaemonMetrics } from '../../src/metrics.ts';
import { WebhookServer } from '../../src/http/server.ts';
import { LineWriter } from '../../src/output/line-writer.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { StdoutSink } from '../../src/sinks/stdout.ts';
import { Output } from '../../src/output/output.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { KeyRing } from '../../src/pipeline/verify.ts';
import { listenArgs } from './listen-args.ts';

export const STUBS = ['verify', 'sessions', 'encode', 'write', 'metrics'] as const;

const stubs = new Set((process.env.STUB ?? '').split(',').filter(Boolean));
for (const stub of stubs) if (!(STUBS as readonly string[]).includes(stub)) throw new Error(`STUB: unknown step "${stub}" (known: ${STUBS.join(', ')})`);
const keyId = process.env.LIVEKIT_API_KEY;
const secret = process.env.LIVEKIT_API_SECRET;
if (!keyId || !secret) throw new Error('set LIVEKIT_API_KEY and LIVEKIT_API_SECRET');

const stdout = new StdoutSink();
const sink: Sink = stubs.has('write') ? { description: 'stdout (not written)', stats: stdout.stats, write: () => {}, reopen: () => {}, close: () => {} } : stdout;
const writer = new LineWriter(sink);
const store = new MemoryStore();
// An ended room takes no step: no call, session or provider line is derived.
if (stubs.has('sessions')) store.room = () => 'ended';
const metrics = new DaemonMetrics({ store: () => store.counts(), sinkRotations: () => 0, outputHealthy: () => writer.healthy });
if (stubs.has('metrics')) {
  for (const metric of Object.values(metrics) as unknown[]) {
    const candidate = metric as { inc?: unknown; observe?: unknown };
    if (typeof candidate?.inc === 'function') candidate.inc = () => {};
    if (typeof candidate?.observe === 'function') candidate.observe = () => {};
  }
}
const keys = new KeyRing([{ keyId, secret }]);
const output = new Output({ writer, store, storeReadsKeys: false, schedule: setImmediate });
const server = new WebhookServer({
  keys: () => keys,
  insecureSkipVerify: stubs.has('verify'),
  clockToleranceMs: 60_000,
  output,
  writer,
  metrics,
  maxBody: 1024 * 1024,
  maxBodyMemory: 64 * 1024 * 1024,
  maxConnections: 1024,
  problem: () => writer.problem,
  reportProblem: (message) => process.stderr.write(`attribution-server: ${message}\n`),
});
const { host, port } = listenArgs(process.argv.slice(2));
const address = await server.listen(port, host);
// Written directly: with `encode` stubbed the writer writes nothing at all.
writeSync(1, `${JSON.stringify({ event_type: 'attribution.started', listen: `${address.host}:${address.port}`, stubs: [...stubs] })}\n`);
if (stubs.has('encode')) writer.write = () => null;
process.on('SIGTERM', () => void server.shutdown(1000).then(() => process.exit(0)));
