// Sustained load: one long run of replayed SIP calls against the executable
// (dist/control-plane), in chunks, to see whether it keeps its pace and its
// memory once the store's caps are full. Once with the memory store and once
// with --state-file (the journal and its background snapshots).
//
//   npm run bench:sustained [-- options]      (or npm run bench -- --sustained [options])
//
//   --chunk N        webhooks per chunk (200000; a multiple of 8 keeps every call whole)
//   --chunks K       chunks (default: at least 1 000 000 webhooks, and enough that the
//                    last three chunks run with every cap this workload reaches full)
//   --c C            requests in flight (32)
//   --warmup W       warm-up webhooks before the first chunk (2000)
//   --store S        memory, state-file, or both (default: memory,state-file)
//   --out DIR        where results go (bench/results)
//
// Each chunk is generated (signed) just before it is sent, so the load
// generator never holds more than one chunk, and the tokens are fresh. The
// server idles meanwhile; the RSS plot's x axis is therefore the number of
// webhooks answered, not the wall clock. After each chunk the bench reads
// the output written since the last chunk and checks that every webhook
// answered 200 has its webhook.processing line and that `seq` has no gap,
// and reads /metrics for the store's counts.
//
// Prints, per store: req/s per chunk and the last/first ratio, RSS at the end
// of each chunk and the highest RSS sampled during it, the store's counts;
// verdicts against the targets below; and writes bench/results/<date>-sustained.md
// with an SVG of RSS over the run.

import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { MEMORY_DEFAULTS } from '../src/store/memory.ts';
import { stateFileBytes } from '../src/store/state-journal.ts';
import { cpuTimeMs, peakRss, percentile, send, type StartedServer, startServer } from './burst.ts';
import { median, rssChart, type RssSeries } from './report.ts';
import { EMBEDDED_RUNTIME, EXECUTABLE, installedCopy, REPO_ROOT, runtimeVersion } from './targets.ts';
import { BENCH_KEY, buildWorkload, describeWorkload, SIP_CALL_WEBHOOKS } from './workload.ts';

/** The sustained run's targets (ratios within one run, never wall times). */
export const SUSTAINED_TARGETS = {
  /** The last chunk's req/s at least this share of the first chunk's. */
  lastVsFirst: 0.9,
  /** Growth of the highest RSS sampled per chunk over the last three chunks that still counts as flat: whichever is larger. */
  flatRssMegabytes: 4,
  flatRssShare: 0.05,
} as const;

const STORES = ['memory', 'state-file'] as const;
type StoreKind = (typeof STORES)[number];

interface Settings {
  chunk: number;
  chunks: number;
  c: number;
  warmup: number;
  stores: StoreKind[];
  out: string;
}

const USAGE = 'usage: npm run bench:sustained -- [--chunk N] [--chunks K] [--c C] [--warmup W] [--store memory,state-file] [--out DIR]';

/** Webhooks of this workload after which every cap it reaches is full: event ids at maxRecentIds, ended sessions at maxEndedSessions calls. */
export function webhooksToFillCaps(): { webhooks: number; what: string } {
  const ids = MEMORY_DEFAULTS.maxRecentIds;
  const ended = MEMORY_DEFAULTS.maxEndedSessions * SIP_CALL_WEBHOOKS;
  return {
    webhooks: Math.max(ids, ended),
    what:
      `event ids fill their cap (${ids.toLocaleString('en-US')}) after ${ids.toLocaleString('en-US')} webhooks, ended sessions theirs ` +
      `(${MEMORY_DEFAULTS.maxEndedSessions.toLocaleString('en-US')}) after ${ended.toLocaleString('en-US')} (${SIP_CALL_WEBHOOKS} webhooks per call); ` +
      `open sessions and calls stay far below their caps (a call ends within its own ${SIP_CALL_WEBHOOKS} webhooks, so only the calls in flight are open)`,
  };
}

function settingsFrom(argv: readonly string[]): Settings {
  const flags = new Map<string, string>();
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (/^--(chunk|chunks|c|warmup|store|out)$/.test(arg) && argv[index + 1] !== undefined) flags.set(arg.slice(2), argv[++index]!);
    else throw new Error(`unknown argument "${arg}"\n${USAGE}`);
  }
  const integer = (name: string, fallback: number, minimum: number): number => {
    const value = flags.get(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < minimum) throw new Error(`--${name}: expected an integer ≥ ${minimum}, got "${value}"`);
    return Number(value);
  };
  const chunk = integer('chunk', 200_000, 1);
  const fill = webhooksToFillCaps().webhooks;
  const chunks = integer('chunks', Math.max(Math.ceil(1_000_000 / chunk), Math.ceil(fill / chunk) + 3), 1);
  const stores = (flags.get('store') ?? STORES.join(',')).split(',').map((part) => part.trim()).filter(Boolean);
  for (const store of stores) if (!(STORES as readonly string[]).includes(store)) throw new Error(`--store: expected memory and/or state-file, got "${store}"`);
  return { chunk, chunks, c: integer('c', 32, 1), warmup: integer('warmup', 2000, 0), stores: stores as StoreKind[], out: flags.get('out') ?? join(REPO_ROOT, 'bench', 'results') };
}

export interface ChunkResult {
  readonly chunk: number;
  /** Webhooks answered by the end of this chunk (warm-up not counted). */
  readonly cumulative: number;
  readonly sent: number;
  readonly accepted: number;
  readonly requestsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuMicrosPerRequest: number;
  readonly rssAtEndBytes: number;
  readonly maxRssBytes: number;
  readonly generateMs: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly missing: number;
}

export interface StoreRun {
  readonly store: StoreKind;
  readonly chunks: readonly ChunkResult[];
  readonly samples: ReadonlyArray<readonly [number, number]>;
  readonly peakRssBytes: number;
  readonly seqContiguous: boolean;
  readonly missing: number;
  readonly accepted: number;
  readonly sent: number;
  readonly stateBytes: number | null;
  readonly failures: Readonly<Record<string, number>>;
}

/** Reads the output as it grows: the webhook ids of webhook.processing lines, and whether `seq` ran without a gap. */
class OutputFollower {
  private offset = 0;
  private carry = '';
  private expectedSeq = 1;
  seqContiguous = true;
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
  }

  /** The ids in the lines completed since the last call. */
  readNew(): Set<string> {
    const ids = new Set<string>();
    const size = fstatSync(this.fd).size;
    const buffer = Buffer.allocUnsafe(64 * 1024 * 1024);
    while (this.offset < size) {
      const read = readSync(this.fd, buffer, 0, Math.min(buffer.length, size - this.offset), this.offset);
      if (read <= 0) break;
      this.offset += read;
      const text = this.carry + buffer.toString('latin1', 0, read);
      const lastNewline = text.lastIndexOf('\n');
      this.carry = text.slice(lastNewline + 1);
      let start = 0;
      while (start <= lastNewline) {
        const end = text.indexOf('\n', start);
        this.line(text, start, end, ids);
        start = end + 1;
      }
    }
    return ids;
  }

  private line(text: string, start: number, end: number, ids: Set<string>): void {
    // Every line starts {"ts":"...","seq":N, (src/obs/schema.ts's field order).
    const seqAt = text.indexOf('"seq":', start);
    if (seqAt === -1 || seqAt > end) {
      this.seqContiguous = false;
      return;
    }
    let seq = 0;
    for (let index = seqAt + 6; index < end; index++) {
      const code = text.charCodeAt(index);
      if (code < 48 || code > 57) break;
      seq = seq * 10 + (code - 48);
    }
    if (seq !== this.expectedSeq) this.seqContiguous = false;
    this.expectedSeq = seq + 1;
    const typeAt = text.indexOf('"event_type":"webhook.processing"', seqAt);
    if (typeAt === -1 || typeAt > end) return;
    const idAt = text.indexOf('"webhook_id":"', typeAt);
    if (idAt === -1 || idAt > end) return;
    const idStart = idAt + 14;
    ids.add(text.slice(idStart, text.indexOf('"', idStart)));
  }

  close(): void {
    closeSync(this.fd);
  }
}

function currentRss(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

async function storeCounts(pool: Pool): Promise<Record<string, number>> {
  const response = await pool.request({ path: '/metrics', method: 'GET' });
  const text = await response.body.text();
  const counts: Record<string, number> = {};
  for (const name of ['control_plane_open_sessions', 'control_plane_open_calls', 'control_plane_ended_sessions_remembered', 'control_plane_event_ids_remembered', 'control_plane_sessions_evicted_total', 'nodejs_heap_size_used_bytes']) {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    counts[name] = match ? Number(match[1]) : Number.NaN;
  }
  return counts;
}

async function runStore(store: StoreKind, settings: Settings, log: (line: string) => void): Promise<StoreRun> {
  const copy = installedCopy(EXECUTABLE);
  let server: StartedServer | null = null;
  let pool: Pool | null = null;
  let follower: OutputFollower | null = null;
  try {
    server = await startServer(copy.path, ['--host', '127.0.0.1', '--port', '0', ...(store === 'state-file' ? ['--state-file', '{dir}/state.json'] : [])], { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret }, 'control-plane-sustained-');
    const { child, port, outputPath } = server;
    const statePath = join(server.directory, 'state.json');
    const pid = child.pid!;
    pool = new Pool(`http://127.0.0.1:${port}`, { connections: settings.c, pipelining: 1 });
    follower = new OutputFollower(outputPath);
    const alive = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`control-plane exited (${child.exitCode ?? child.signalCode}); stderr: ${server!.stderr().slice(-2000)}`);
    };
    let pendingIds: string[] = [];
    if (settings.warmup > 0) pendingIds = (await send(pool, buildWorkload({ count: settings.warmup, seed: 50, kind: 'sip-calls' }), settings.c)).acceptedIds;
    const chunks: ChunkResult[] = [];
    const samples: Array<[number, number]> = [];
    const failures: Record<string, number> = {};
    let cumulative = 0;
    let missingTotal = 0;
    let acceptedTotal = 0;
    for (let index = 0; index < settings.chunks; index++) {
      const generateStarted = performance.now();
      const workload = buildWorkload({ count: settings.chunk, seed: 7000 + index, kind: 'sip-calls' });
      const generateMs = performance.now() - generateStarted;
      alive();
      const progress = { answered: 0 };
      let maxRss = 0;
      const sample = (): void => {
        const rss = currentRss(pid);
        maxRss = Math.max(maxRss, rss);
        samples.push([cumulative + progress.answered, rss]);
      };
      sample();
      const sampler = setInterval(sample, 100);
      const cpuBefore = cpuTimeMs(pid);
      const result = await send(pool, workload, settings.c, progress);
      clearInterval(sampler);
      alive();
      const cpuMs = cpuTimeMs(pid) - cpuBefore;
      sample();
      const rssAtEnd = currentRss(pid);
      cumulative += result.latencies.length;
      for (const [status, count] of Object.entries(result.failures)) failures[status] = (failures[status] ?? 0) + count;
      // Written before answered: every accepted webhook's lines are in the file by now.
      const written = follower.readNew();
      let missing = 0;
      for (const id of pendingIds) if (!written.has(id)) missing++;
      for (const id of result.acceptedIds) if (!written.has(id)) missing++;
      pendingIds = [];
      missingTotal += missing;
      acceptedTotal += result.acceptedIds.length;
      const counts = await storeCounts(pool);
      const chunk: ChunkResult = {
        chunk: index + 1,
        cumulative,
        sent: result.latencies.length,
        accepted: result.acceptedIds.length,
        requestsPerSecond: (result.latencies.length * 1000) / result.elapsedMs,
        p50: percentile(result.latencies, 0.5),
        p99: percentile(result.latencies, 0.99),
        cpuMicrosPerRequest: (cpuMs * 1000) / result.latencies.length,
        rssAtEndBytes: rssAtEnd,
        maxRssBytes: maxRss,
        generateMs,
        counts,
        missing,
      };
      chunks.push(chunk);
      log(
        `  ${store} #${chunk.chunk}/${settings.chunks} ${Math.round(chunk.requestsPerSecond).toLocaleString('en-US').padStart(7)} req/s` +
          ` (${(chunk.requestsPerSecond / chunks[0]!.requestsPerSecond).toFixed(2)}× chunk 1)  p99 ${chunk.p99.toFixed(2)} ms` +
          `  RSS ${mb(rssAtEnd)} MB (max ${mb(maxRss)})  ids ${counts.control_plane_event_ids_remembered} ended ${counts.control_plane_ended_sessions_remembered}` +
          ` open ${counts.control_plane_open_sessions}  missing ${missing}  (generated in ${(generateMs / 1000).toFixed(1)} s)`,
      );
    }
    const peakRssBytes = peakRss(pid);
    await pool.close();
    pool = null;
    await server.stop(30_000);
    follower.readNew();
    return {
      store,
      chunks,
      samples,
      peakRssBytes,
      seqContiguous: follower.seqContiguous,
      missing: missingTotal,
      accepted: acceptedTotal,
      sent: cumulative,
      stateBytes: store === 'state-file' ? stateFileBytes(statePath) : null,
      failures,
    };
  } finally {
    follower?.close();
    if (pool) await pool.destroy();
    await server?.close();
    copy.remove();
  }
}

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, index) => (index === 0 ? ':---' : '---:'))), ...rows.map(line)].join('\n');
}

export function chunkTable(run: StoreRun): string {
  const first = run.chunks[0]!;
  return table(
    ['chunk', 'webhooks so far', 'req/s', '× chunk 1', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'RSS at end MB', 'max RSS in chunk MB', 'V8 heap used at end MB', 'ids remembered', 'ended sessions', 'open sessions', 'missing'],
    run.chunks.map((chunk) => [
      String(chunk.chunk),
      thousands(chunk.cumulative),
      thousands(chunk.requestsPerSecond),
      (chunk.requestsPerSecond / first.requestsPerSecond).toFixed(2),
      chunk.p50.toFixed(2),
      chunk.p99.toFixed(2),
      chunk.cpuMicrosPerRequest.toFixed(0),
      mb(chunk.rssAtEndBytes),
      mb(chunk.maxRssBytes),
      mb(chunk.counts.nodejs_heap_size_used_bytes ?? Number.NaN),
      thousands(chunk.counts.control_plane_event_ids_remembered ?? Number.NaN),
      thousands(chunk.counts.control_plane_ended_sessions_remembered ?? Number.NaN),
      thousands(chunk.counts.control_plane_open_sessions ?? Number.NaN),
      String(chunk.missing),
    ]),
  );
}

export interface SustainedVerdict {
  readonly target: string;
  readonly cells: ReadonlyArray<{ readonly measured: string; readonly met: boolean }>;
}

export function sustainedVerdicts(runs: readonly StoreRun[]): SustainedVerdict[] {
  const t = SUSTAINED_TARGETS;
  const lastFirst = runs.map((run) => {
    const ratio = run.chunks.at(-1)!.requestsPerSecond / run.chunks[0]!.requestsPerSecond;
    return { measured: `${ratio.toFixed(2)}× (${thousands(run.chunks[0]!.requestsPerSecond)} → ${thousands(run.chunks.at(-1)!.requestsPerSecond)} req/s)`, met: ratio >= t.lastVsFirst };
  });
  const flat = runs.map((run) => {
    const lastThree = run.chunks.slice(-3);
    if (lastThree.length < 3) return { measured: 'fewer than three chunks', met: false };
    const base = lastThree[0]!.maxRssBytes;
    const growth = Math.max(...lastThree.map((chunk) => chunk.maxRssBytes)) - base;
    const allowed = Math.max(t.flatRssMegabytes * 1024 * 1024, base * t.flatRssShare);
    return { measured: `${lastThree.map((chunk) => mb(chunk.maxRssBytes)).join(' → ')} MB (${growth >= 0 ? '+' : ''}${(growth / 1024 / 1024).toFixed(1)} MB)`, met: growth <= allowed };
  });
  const lost = runs.map((run) => ({
    measured: `${run.missing} missing of ${thousands(run.accepted)} answered 200${run.seqContiguous ? ', seq gap-free' : ', seq GAP'}${Object.keys(run.failures).length ? `; not 200: ${Object.entries(run.failures).map(([status, count]) => `${count}×${status}`).join(', ')}` : ''}`,
    met: run.missing === 0 && run.seqContiguous,
  }));
  return [
    { target: `last chunk ≥ ${t.lastVsFirst}× the first chunk's req/s`, cells: lastFirst },
    { target: `RSS flat at the caps: the highest RSS per chunk grows ≤ max(${t.flatRssMegabytes} MB, ${t.flatRssShare * 100}%) over the last three chunks`, cells: flat },
    { target: 'nothing lost: every webhook answered 200 is in the output', cells: lost },
  ];
}

export function sustainedVerdictTable(runs: readonly StoreRun[]): string {
  return table(
    ['target', ...runs.map((run) => (run.store === 'memory' ? 'memory store' : '--state-file')), 'met'],
    sustainedVerdicts(runs).map((verdict) => [verdict.target, ...verdict.cells.map((cell) => `${cell.measured}${cell.met ? '' : ' (**no**)'}`), verdict.cells.every((cell) => cell.met) ? 'yes' : '**no**']),
  );
}

function machine(): string {
  const cores = cpus();
  return `${cores.length} × ${cores[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GB RAM, ${process.platform} ${process.arch}`;
}

export async function sustainedMain(argv: readonly string[]): Promise<void> {
  const settings = settingsFrom(argv);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const startedAt = new Date();
  const fill = webhooksToFillCaps();
  const total = settings.chunk * settings.chunks;
  const runtime = runtimeVersion(EMBEDDED_RUNTIME);
  log(`control-plane sustained load — ${startedAt.toISOString()}`);
  log(`machine: ${machine()}; dist/control-plane on ${runtime}; load generator on Node.js ${process.version}`);
  log(`${settings.chunks} chunks of ${thousands(settings.chunk)} webhooks (${thousands(total)}), ${settings.c} in flight, ${settings.warmup} warm-up webhooks; stores: ${settings.stores.join(', ')}`);
  log(`caps: ${fill.what}`);
  const runs: StoreRun[] = [];
  for (const store of settings.stores) {
    log(`\n${store}:`);
    runs.push(await runStore(store, settings, log));
  }

  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
  mkdirSync(settings.out, { recursive: true });
  const chartName = `${stamp}-sustained-rss.svg`;
  const series: RssSeries[] = runs.map((run) => ({ name: run.store === 'memory' ? 'memory store' : '--state-file', samples: run.samples }));
  writeFileSync(
    join(settings.out, chartName),
    rssChart(series, {
      title: `RSS under sustained load: ${thousands(total)} webhooks of replayed SIP calls, ${settings.c} in flight`,
      chunkSize: settings.chunk,
      total,
      marks: [{ at: fill.webhooks - settings.warmup, label: 'every cap reached here is full' }],
    }),
  );
  const sections: string[] = [];
  sections.push(`# control-plane sustained load, ${startedAt.toISOString()}`);
  sections.push(`Machine: ${machine()}. The executable (dist/control-plane, ${runtime}) run from a fresh copy; the load generator (Node.js ${process.version}) on the same cores.`);
  sections.push(
    `Load: ${settings.chunks} chunks of ${thousands(settings.chunk)} webhooks (${thousands(total)} in all), ${describeWorkload('sip-calls')}; ` +
      `${settings.c} in flight through an undici Pool, ${settings.warmup} warm-up webhooks before chunk 1. Each chunk is signed just before it is sent (the server idles meanwhile). ` +
      `Caps: ${fill.what}.`,
  );
  sections.push(`## Against the targets\n\n${sustainedVerdictTable(runs)}`);
  for (const run of runs) {
    const extra = [`peak RSS (VmHWM) ${mb(run.peakRssBytes)} MB`, `median chunk ${thousands(median(run.chunks.map((chunk) => chunk.requestsPerSecond)))} req/s`];
    if (run.stateBytes !== null) extra.push(`state file and journal at the end: ${(run.stateBytes / 1024 / 1024).toFixed(1)} MB`);
    sections.push(`## ${run.store === 'memory' ? 'Memory store' : '--state-file'}\n\n${chunkTable(run)}\n\n${extra.join('; ')}.`);
  }
  sections.push(`![RSS over the run](${chartName})`);
  const reportPath = join(settings.out, `${stamp}-sustained.md`);
  writeFileSync(reportPath, `${sections.join('\n\n')}\n`);
  log(`\n${sustainedVerdictTable(runs)}`);
  for (const run of runs) log(`\n${run.store}: peak RSS ${mb(run.peakRssBytes)} MB${run.stateBytes === null ? '' : `, state file ${(run.stateBytes / 1024 / 1024).toFixed(1)} MB`}\n${chunkTable(run)}`);
  log(`\nwrote ${reportPath} and ${join(settings.out, chartName)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  sustainedMain(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
