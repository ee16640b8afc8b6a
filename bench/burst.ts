// The burst benchmark: one server process at a time, stdout redirected to a
// file, a warm-up, then the pre-generated webhooks sent with an undici Pool
// at C requests in flight (C rooms at once, each room's events one at a
// time, as LiveKit sends them). Measures throughput, per-request latency,
// the server's peak RSS (VmHWM) and CPU time, and checks that every
// webhook answered 200 is in the output.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { Webhook, Workload } from './workload.ts';

/** A server under test and how to start it. */
export interface Target {
  /** Short, unique name for tables and charts. */
  readonly name: string;
  readonly description: string;
  /** The Node.js that runs it (`v20.20.2`), for fair ratios. */
  readonly runtime: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  /** How accepted webhooks show up in its output. */
  readonly output: 'obs' | 'sdk' | 'none';
}

export interface OutputCheck {
  /** Webhooks that the output records. */
  readonly written: number;
  /** Webhooks answered 200 that the output lacks. */
  readonly missing: number;
  /** Lines in the output (all kinds). */
  readonly lines: number;
  /** OBS-00 only: `seq` ran 1, 2, 3... without a gap. */
  readonly seqContiguous: boolean | null;
}

export interface BurstResult {
  readonly target: string;
  readonly repeat: number;
  readonly sent: number;
  readonly accepted: number;
  /** status → count, for anything not 200 (0 = connection error). */
  readonly failures: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  readonly requestsPerSecond: number;
  /** Sorted ascending, ms. */
  readonly latencies: Float64Array;
  readonly peakRssBytes: number;
  /** Server CPU (user + system, all threads) during the measured burst, per request, µs. */
  readonly cpuMicrosPerRequest: number;
  /** The same for the server's main (JavaScript) thread alone: without GC helpers and the JIT's threads. */
  readonly mainThreadCpuMicrosPerRequest: number;
  /** The load generator's own CPU (this process) per request, µs: what the server competes with for the cores. */
  readonly clientCpuMicrosPerRequest: number;
  readonly output: OutputCheck | null;
}

export interface BurstOptions {
  readonly concurrency: number;
  readonly warmup: Workload | null;
  readonly workload: Workload;
  readonly repeat: number;
  /** Extra arguments for the server (e.g. --cpu-prof). */
  readonly extraArgs?: readonly string[];
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const CLOCK_TICKS_PER_SECOND = 100;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls the output file for the start line (`listen: host:port`). */
export async function waitForListen(child: ChildProcess, outputPath: string, stderr: () => string): Promise<number> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (existsSync(outputPath)) {
      const text = readFileSync(outputPath, 'utf8');
      for (const line of text.split('\n', 20)) {
        const match = /"listen":"[^"]*:(\d+)"/.exec(line);
        if (match) return Number(match[1]);
      }
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before listening; stderr: ${stderr().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`no start line within ${START_TIMEOUT_MS} ms; stderr: ${stderr().slice(-2000)}`);
    await sleep(10);
  }
}

/** A server under test, started with its stdout redirected to a file and listening. */
export interface StartedServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** A directory of its own (the output file, a state file...), removed by close(). */
  readonly directory: string;
  readonly outputPath: string;
  readonly stderr: () => string;
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
  /** Kills it if it still runs and removes its directory. */
  close(): Promise<void>;
}

/**
 * Spawns a server (environment: PATH, HOME and `env` only), its stdout to
 * `<directory>/stdout.jsonl`, and waits for its listen line. `args` may name
 * files in the directory through `{dir}`.
 */
export async function startServer(command: string, args: readonly string[], env: Record<string, string>, prefix = 'control-plane-bench-'): Promise<StartedServer> {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  const outputPath = join(directory, 'stdout.jsonl');
  const outputFd = openSync(outputPath, 'w');
  let stderr = '';
  const child = spawn(command, args.map((arg) => arg.replaceAll('{dir}', directory)), {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', outputFd, 'pipe'],
  });
  closeSync(outputFd);
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const close = async (): Promise<void> => {
    if (running()) child.kill('SIGKILL');
    await exited;
    rmSync(directory, { recursive: true, force: true });
  };
  let port: number;
  try {
    port = await waitForListen(child, outputPath, () => stderr);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    child,
    port,
    directory,
    outputPath,
    stderr: () => stderr,
    exited,
    async stop(graceMs = STOP_TIMEOUT_MS) {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    close,
  };
}

/** Peak resident set size (VmHWM) of a live process, in bytes. */
export function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** User + system CPU time of a live process (all threads), or of its main thread only, in ms. */
export function cpuTimeMs(pid: number, mainThreadOnly = false): number {
  const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at index 2.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

export interface SendResult {
  readonly latencies: Float64Array;
  readonly acceptedIds: string[];
  readonly failures: Record<string, number>;
  readonly elapsedMs: number;
}

/** Sends every room's webhooks in order, `concurrency` rooms at a time; `progress.answered` counts the answers as they come. */
export async function send(pool: Pool, workload: Workload, concurrency: number, progress?: { answered: number }): Promise<SendResult> {
  const latencies = new Float64Array(workload.count);
  const acceptedIds: string[] = [];
  const failures: Record<string, number> = {};
  let nextRoom = 0;
  let nextSample = 0;

  const post = async (webhook: Webhook): Promise<void> => {
    const started = performance.now();
    let status = 0;
    try {
      const response = await pool.request({
        path: '/webhook',
        method: 'POST',
        headers: { authorization: webhook.authorization, 'content-type': 'application/webhook+json' },
        body: webhook.body,
      });
      status = response.statusCode;
      await response.body.dump();
    } catch {
      status = 0;
    }
    latencies[nextSample++] = performance.now() - started;
    if (progress) progress.answered++;
    if (status === 200) acceptedIds.push(webhook.id);
    else failures[String(status)] = (failures[String(status)] ?? 0) + 1;
  };

  const worker = async (): Promise<void> => {
    while (nextRoom < workload.rooms.length) {
      const room = workload.rooms[nextRoom++]!;
      for (const webhook of room) await post(webhook);
    }
  };

  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - started;
  return { latencies: latencies.subarray(0, nextSample).sort(), acceptedIds, failures, elapsedMs };
}

/** Which webhooks the output records, by id. */
function checkOutput(kind: Target['output'], text: string, accepted: readonly string[]): OutputCheck | null {
  if (kind === 'none') return null;
  const written = new Set<string>();
  let lines = 0;
  let expectedSeq = 1;
  let seqContiguous = true;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    lines++;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (kind === 'obs') {
      if (parsed.seq !== expectedSeq++) seqContiguous = false;
      if (parsed.event_type === 'webhook.processing' && typeof parsed.webhook_id === 'string') written.add(parsed.webhook_id);
    } else if (typeof parsed.id === 'string' && typeof parsed.event === 'string') {
      written.add(parsed.id);
    }
  }
  let missing = 0;
  for (const id of accepted) if (!written.has(id)) missing++;
  return { written: written.size, missing, lines, seqContiguous: kind === 'obs' ? seqContiguous : null };
}

/** Starts `target`, warms it up, sends the burst, stops it, and checks its output. */
export async function runBurst(target: Target, options: BurstOptions): Promise<BurstResult> {
  const server = await startServer(target.command, [...target.args, ...(options.extraArgs ?? [])], target.env);
  const { child } = server;
  const pool = { current: null as Pool | null };
  try {
    pool.current = new Pool(`http://127.0.0.1:${server.port}`, { connections: options.concurrency, pipelining: 1 });
    const warmAccepted = options.warmup ? (await send(pool.current, options.warmup, options.concurrency)).acceptedIds : [];

    const alive = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${target.name} exited (${child.exitCode ?? child.signalCode}) during the burst; stderr: ${server.stderr().slice(-2000)}`);
    };
    alive();
    const cpuBefore = cpuTimeMs(child.pid!);
    const mainBefore = cpuTimeMs(child.pid!, true);
    const clientBefore = process.cpuUsage();
    const result = await send(pool.current, options.workload, options.concurrency);
    const client = process.cpuUsage(clientBefore);
    alive();
    const cpuMs = cpuTimeMs(child.pid!) - cpuBefore;
    const mainMs = cpuTimeMs(child.pid!, true) - mainBefore;
    const peakRssBytes = peakRss(child.pid!);
    await pool.current.close();
    pool.current = null;
    await server.stop();

    const output = checkOutput(target.output, readFileSync(server.outputPath, 'utf8'), [...warmAccepted, ...result.acceptedIds]);
    return {
      target: target.name,
      repeat: options.repeat,
      sent: result.latencies.length,
      accepted: result.acceptedIds.length,
      failures: result.failures,
      elapsedMs: result.elapsedMs,
      requestsPerSecond: (result.latencies.length * 1000) / result.elapsedMs,
      latencies: result.latencies,
      peakRssBytes,
      cpuMicrosPerRequest: (cpuMs * 1000) / result.latencies.length,
      mainThreadCpuMicrosPerRequest: (mainMs * 1000) / result.latencies.length,
      clientCpuMicrosPerRequest: (client.user + client.system) / result.latencies.length,
      output,
    };
  } finally {
    if (pool.current) await pool.current.destroy();
    await server.close();
  }
}

export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index]!;
}
