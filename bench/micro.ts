// Micro-benchmarks (tinybench) of each step of one webhook's trip, with the
// alternatives considered next to each other. Inputs rotate over a
// pre-generated workload (the burst's mix), so no step is measured on one
// cached input.

import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebhookEvent } from '@livekit/protocol';
import { jwtVerify } from 'jose';
import { TokenVerifier } from 'livekit-server-sdk';
import { Bench } from 'tinybench';
import { livekitLine } from '../src/obs/livekit.ts';
import { encodeLine, formatTimestamp, LineEncoder, type ObsEvent } from '../src/obs/schema.ts';
import { LineWriter } from '../src/output/line-writer.ts';
import { writeAllSync } from '../src/sinks/nonblocking-fd.ts';
import { StdoutSink } from '../src/sinks/stdout.ts';
import { decodeWebhook } from '../src/pipeline/decode.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { type PipelineContext, planOne, processWebhook } from '../test/helpers/pipeline-driver.ts';
import { bodyHashMatches, KeyRing, verifyWebhook, verifyWebhookWithJose } from '../src/pipeline/verify.ts';
import type { MicroResult } from './report.ts';
import { BENCH_KEY, buildWorkload, type Webhook } from './workload.ts';

export interface MicroOptions {
  /** Time budget per candidate, ms. */
  readonly timeMs: number;
  readonly log?: (line: string) => void;
}

interface Candidate {
  readonly group: string;
  readonly name: string;
  readonly run: () => unknown;
}

/** Cycles through `items` forever. */
function rotate<T>(items: readonly T[]): () => T {
  let index = 0;
  return () => {
    const item = items[index]!;
    index = index + 1 === items.length ? 0 : index + 1;
    return item;
  };
}

/** Webhooks per group in the write comparison (up to the 64 in flight arrive in one turn). */
const GROUP = 32;
/** How large the write candidates let their file grow before emptying it. */
const FILE_BYTES_KEPT = 4 * 1024 * 1024;

export async function runMicro(options: MicroOptions): Promise<MicroResult[]> {
  const workload = buildWorkload({ count: 4000, seed: 7 });
  const webhooks: Webhook[] = workload.rooms.flat();
  const keys = new KeyRing([BENCH_KEY]);
  const verifyOptions = () => ({ keys, nowMs: Date.now(), clockToleranceMs: 60_000 });
  const secret = new TextEncoder().encode(BENCH_KEY.secret);
  const sdkVerifier = new TokenVerifier(BENCH_KEY.keyId, BENCH_KEY.secret);
  const events = webhooks.map((webhook) => {
    const decoded = decodeWebhook(webhook.body);
    if (!decoded.ok) throw new Error(`workload webhook does not decode: ${decoded.reason}`);
    return decoded.event;
  });
  const bodyTexts = webhooks.map((webhook) => webhook.body.toString('utf8'));

  // One webhook's lines (received, processing, livekit.*, derived), in stream order.
  const lineSets: ObsEvent[][] = [];
  {
    const store = new MemoryStore();
    for (const event of events) {
      const outcome = planOne(event, Date.now(), store);
      lineSets.push([...outcome.events]);
      outcome.commit();
    }
  }

  const directory = mkdtempSync(join(tmpdir(), 'control-plane-micro-'));
  const fileFd = openSync(join(directory, 'out.jsonl'), 'a');
  const nullFd = openSync('/dev/null', 'w');
  const sampleChunk = Buffer.from(lineSets[0]!.map((line, index) => encodeLine(line, index + 1, Date.now())).join(''));
  // A group as a burst makes them: the lines of GROUP webhooks accepted in one turn.
  const groupChunk = Buffer.from(lineSets.slice(0, GROUP).flat().map((line, index) => encodeLine(line, index + 1, Date.now())).join(''));
  const lineEncoder = new LineEncoder();
  // The write candidates empty their file every FILE_BYTES_KEPT: a file that
  // grows by hundreds of MB meets the kernel's dirty-page throttling, which
  // then lands on whichever candidate runs later (the group write measured
  // 0.8x of the single writes that way, only for running second).
  let fileBytes = 0;
  const appendToFile = (chunk: Buffer): void => {
    if (fileBytes > FILE_BYTES_KEPT) {
      ftruncateSync(fileFd, 0);
      fileBytes = 0;
    }
    writeAllSync(fileFd, chunk, 2000);
    fileBytes += chunk.length;
  };

  const nextWebhook = rotate(webhooks);
  const nextIndex = rotate(webhooks.map((_, index) => index));
  const nextLines = rotate(lineSets);

  // The map step runs the real stream in order; a fresh state each lap.
  let mapStore = new MemoryStore();
  let mapIndex = 0;
  const mapNext = () => {
    if (mapIndex === events.length) {
      mapIndex = 0;
      mapStore = new MemoryStore();
    }
    const outcome = planOne(events[mapIndex++]!, Date.now(), mapStore);
    outcome.commit();
    return outcome;
  };

  // End to end without HTTP: verify, decode, dedup, map, encode, write to a file.
  const endToEnd = (verifier: 'as shipped' | 'jose only') => {
    const newContext = (): PipelineContext => ({ keys: () => keys, insecureSkipVerify: false, clockToleranceMs: 60_000, store: new MemoryStore() });
    let context = newContext();
    let index = 0;
    const writer = new LineWriter(new StdoutSink(fileFd));
    return async () => {
      if (index === webhooks.length) {
        index = 0;
        context = newContext();
      }
      const webhook = webhooks[index++]!;
      const receivedAtMs = Date.now();
      let outcome;
      if (verifier === 'as shipped') {
        outcome = await processWebhook({ authorization: webhook.authorization, body: webhook.body, receivedAtMs }, context);
      } else {
        const verdict = await verifyWebhookWithJose(webhook.authorization, webhook.body, { keys, nowMs: receivedAtMs, clockToleranceMs: 60_000 });
        const decoded = decodeWebhook(webhook.body);
        if (!verdict.ok || !decoded.ok) throw new Error('end to end: refused');
        outcome = planOne(decoded.event, receivedAtMs, context.store);
      }
      if (outcome.status !== 200) throw new Error(`end to end: ${outcome.status} ${outcome.reason}`);
      if (writer.write(outcome.events)) throw new Error('end to end: write failed');
      outcome.commit();
    };
  };

  const candidates: Candidate[] = [
    {
      group: 'verify',
      name: 'jose jwtVerify + body hash (verifier of record)',
      run: async () => {
        const webhook = nextWebhook();
        const result = await verifyWebhookWithJose(webhook.authorization, webhook.body, verifyOptions());
        if (!result.ok) throw new Error(result.reason);
      },
    },
    {
      group: 'verify',
      name: 'node:crypto HMAC fast path + body hash (jose on any refusal)',
      run: async () => {
        const webhook = nextWebhook();
        const result = await verifyWebhook(webhook.authorization, webhook.body, verifyOptions());
        if (!result.ok) throw new Error(result.reason);
      },
    },
    {
      group: 'verify',
      name: 'livekit-server-sdk TokenVerifier (jose) + body hash',
      run: async () => {
        const webhook = nextWebhook();
        const claims = await sdkVerifier.verify(webhook.authorization, 60);
        if (!bodyHashMatches(String(claims.sha256), webhook.body)) throw new Error('hash');
      },
    },
    {
      group: 'verify',
      name: 'jose jwtVerify alone (no claim mapping, no body hash)',
      run: async () => {
        await jwtVerify(nextWebhook().authorization, secret, { algorithms: ['HS256'] });
      },
    },
    {
      group: 'verify',
      name: 'body SHA-256 + constant-time compare alone',
      run: () => {
        const webhook = nextWebhook();
        return bodyHashMatches('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', webhook.body);
      },
    },
    {
      group: 'decode',
      name: 'JSON.parse + WebhookEvent.fromJson (@livekit/protocol, the reader of record)',
      run: () => WebhookEvent.fromJson(JSON.parse(bodyTexts[nextIndex()]!), { ignoreUnknownFields: true }),
    },
    {
      group: 'decode',
      name: 'WebhookEvent.fromJsonString',
      run: () => WebhookEvent.fromJsonString(bodyTexts[nextIndex()]!, { ignoreUnknownFields: true }),
    },
    {
      group: 'decode',
      name: 'decodeWebhook as shipped: compiled reader, fromJson for the rest (from bytes)',
      run: () => decodeWebhook(nextWebhook().body),
    },
    {
      group: 'decode',
      name: 'JSON.parse alone (the floor)',
      run: () => JSON.parse(bodyTexts[nextIndex()]!),
    },
    {
      group: 'map',
      name: 'dedup + livekit.* + session step (call/session lines), in stream order',
      run: mapNext,
    },
    {
      group: 'map',
      name: 'livekitLine alone',
      run: () => livekitLine(events[nextIndex()]!),
    },
    {
      group: 'encode',
      name: 'LineEncoder × the lines of one webhook, to bytes (as shipped)',
      run: () => {
        const lines = nextLines();
        lineEncoder.clear();
        const ts = formatTimestamp(Date.now());
        for (let index = 0; index < lines.length; index++) lineEncoder.append(lines[index]!, index + 1, ts);
        return lineEncoder.bytes();
      },
    },
    {
      group: 'encode',
      name: 'JSON.stringify × the same lines, then Buffer.from (generic, for comparison)',
      run: () => {
        const lines = nextLines();
        let chunk = '';
        let seq = 1;
        const ts = new Date().toISOString();
        for (const line of lines) chunk += `${JSON.stringify({ ts, seq: seq++, component: 'control_plane', ...line })}\n`;
        return Buffer.from(chunk);
      },
    },
    {
      group: 'write',
      name: `${GROUP} webhooks' lines as one write each (${sampleChunk.length} B), to a file, O_APPEND`,
      run: () => {
        for (let index = 0; index < GROUP; index++) appendToFile(sampleChunk);
      },
    },
    {
      group: 'write',
      name: `the same ${GROUP} as one group write (${groupChunk.length} B), as group commit does`,
      run: () => appendToFile(groupChunk),
    },
    {
      group: 'write',
      name: `${GROUP} writes of one webhook to /dev/null (the syscall floor)`,
      run: () => {
        for (let index = 0; index < GROUP; index++) writeAllSync(nullFd, sampleChunk, 2000);
      },
    },
    { group: 'end to end (no HTTP)', name: 'processWebhook + LineWriter to a file, one write per webhook', run: endToEnd('as shipped') },
    { group: 'end to end (no HTTP)', name: 'the same with jose as the only verifier', run: endToEnd('jose only') },
  ];

  const results: MicroResult[] = [];
  try {
    for (const candidate of candidates) {
      const bench = new Bench({ time: options.timeMs, warmupTime: Math.min(200, options.timeMs / 2), throws: true });
      bench.add(candidate.name, candidate.run);
      await bench.run();
      const result = bench.tasks[0]!.result;
      if (result.state !== 'completed') throw new Error(`${candidate.name}: ${result.state}`);
      const opsPerSecond = 1000 / result.period;
      results.push({ group: candidate.group, name: candidate.name, opsPerSecond, rme: result.latency.rme });
      options.log?.(`  ${candidate.group.padEnd(20)} ${candidate.name.padEnd(72)} ${Math.round(opsPerSecond).toLocaleString('en-US').padStart(11)} ops/s`);
    }
  } finally {
    closeSync(fileFd);
    closeSync(nullFd);
    rmSync(directory, { recursive: true, force: true });
  }
  return results;
}
