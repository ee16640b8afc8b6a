// `npm run bench:report`: how fast `control-plane report` reads, and how
// much memory it takes, over a large log. Generates OBS-00 lines the way
// the daemon writes them (the call scenarios of src/livekit/scenarios.ts
// through the real pipeline and line encoder, with a repeated line now and
// then as a retry after a crash would leave), then runs the report over
// the file and measures lines per second and peak RSS. Not part of
// `npm test`.
//
// Settings (flag, or environment variable; flags win):
//   --lines N     BENCH_REPORT_LINES   lines to generate (1000000)
//   --bin PATH    CONTROL_PLANE_BIN    the program to measure (default: dist/control-plane
//                                      if built, else the sources through tsx)
//   --keep                             keep the generated file (its path is printed)

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS } from '../src/livekit/scenarios.ts';
import { encodeBody } from '../src/livekit/samples.ts';
import { encodeLine } from '../src/obs/schema.ts';
import { decodeWebhook } from '../src/pipeline/decode.ts';
import { planOne } from '../test/helpers/pipeline-driver.ts';
import { MemoryStore } from '../src/store/memory.ts';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const USAGE = 'usage: npm run bench:report -- [--lines N] [--bin PATH] [--keep]';

interface Settings {
  readonly lines: number;
  readonly command: readonly string[];
  readonly keep: boolean;
}

function settingsFrom(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  let lines = env.BENCH_REPORT_LINES;
  let bin = env.CONTROL_PLANE_BIN;
  let keep = false;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--lines' && argv[index + 1] !== undefined) lines = argv[++index];
    else if (arg === '--bin' && argv[index + 1] !== undefined) bin = argv[++index];
    else if (arg === '--keep') keep = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument "${arg}"\n${USAGE}`);
  }
  const count = lines === undefined || lines === '' ? 1_000_000 : Number(lines);
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`--lines: expected a whole number ≥ 1, got "${lines}"`);
  const built = join(REPO_ROOT, 'dist', 'control-plane');
  const command = bin ? [bin] : existsSync(built) ? [built] : [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src', 'main.ts')];
  return { lines: count, command, keep };
}

/** Writes at least `target` OBS-00 lines to `path`; returns how many. */
async function generate(path: string, target: number): Promise<number> {
  const out = createWriteStream(path);
  const store = new MemoryStore();
  let seq = 0;
  let written = 0;
  let startS = 1_796_126_400;
  let pending = '';
  const flush = async () => {
    if (!out.write(pending)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    pending = '';
  };
  for (let round = 0; written < target; round++) {
    const scenario = SCENARIOS[round % SCENARIOS.length]!;
    const played = scenario.build({ startS });
    startS += 37;
    for (const webhook of played.webhooks) {
      const nowMs = Number(webhook.createdAt) * 1000 + 120;
      const decoded = decodeWebhook(Buffer.from(encodeBody(webhook)));
      if (!decoded.ok) throw new Error(`a scenario webhook did not decode: ${decoded.reason}`);
      const outcome = planOne(decoded.event, nowMs, store);
      outcome.commit();
      for (const event of outcome.events) {
        const line = encodeLine(event, ++seq, nowMs);
        pending += line;
        written++;
        // One line in a thousand comes again, as a retry after a crash between write and commit repeats it.
        if (written % 1000 === 0) {
          pending += line.replace(/"seq":\d+/, `"seq":${++seq}`);
          written++;
        }
      }
    }
    if (pending.length > 1 << 20) await flush();
  }
  await flush();
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return written;
}

/** Peak resident memory so far (VmHWM), bytes; undefined once the process is gone. */
function peakRss(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function measure(command: readonly string[], file: string): Promise<{ seconds: number; peakRssBytes: number; stdout: string; code: number | null }> {
  const started = performance.now();
  const child = spawn(command[0]!, [...command.slice(1), 'report', '--json', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  let peak = 0;
  // VmHWM only grows, so the last sample before the exit is within one interval of the peak.
  const sampler = setInterval(() => (peak = Math.max(peak, peakRss(child.pid!) ?? 0)), 20);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
  clearInterval(sampler);
  return { seconds: (performance.now() - started) / 1000, peakRssBytes: peak, stdout, code };
}

async function main(): Promise<void> {
  const settings = settingsFrom(process.argv.slice(2), process.env);
  const directory = mkdtempSync(join(tmpdir(), 'cp-bench-report-'));
  const file = join(directory, 'control-plane.jsonl');
  try {
    const generatedAt = performance.now();
    const lines = await generate(file, settings.lines);
    const bytes = statSync(file).size;
    console.log(`generated ${lines.toLocaleString('en-US')} OBS-00 lines (${(bytes / 1024 / 1024).toFixed(1)} MB) in ${((performance.now() - generatedAt) / 1000).toFixed(1)} s: ${file}`);
    console.log(`measuring: ${settings.command.join(' ')} report --json FILE`);
    const result = await measure(settings.command, file);
    if (result.code !== 0) throw new Error(`report exited ${result.code}`);
    const report = JSON.parse(result.stdout) as { lines: { read: number; repeats: number }; calls: { total: number } };
    if (report.lines.read !== lines) throw new Error(`report read ${report.lines.read} lines of ${lines}`);
    console.log(
      `report: ${report.lines.read.toLocaleString('en-US')} lines (${report.calls.total.toLocaleString('en-US')} calls, ${report.lines.repeats.toLocaleString('en-US')} repeats) in ${result.seconds.toFixed(2)} s: ` +
        `${Math.round(lines / result.seconds).toLocaleString('en-US')} lines/s, ${(bytes / 1024 / 1024 / result.seconds).toFixed(1)} MB/s, ` +
        `peak RSS ${(result.peakRssBytes / 1024 / 1024).toFixed(0)} MB (process start included)`,
    );
  } finally {
    if (!settings.keep) rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
