// The sub-commands: serve (default), sign, send, simulate, report,
// check-config, and for the unit, wait-healthy (ExecStartPost=) and reload
// (ExecReload=). Each returns its exit status; only main.ts touches the
// process (its signals, streams and exit code).

import { fstatSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import packageJson from '../package.json' with { type: 'json' };
import { type Config, ConfigError, describeConfig, type KeyPair, loadAddresses, loadConfig, parseArgs, type ParsedArgs, parseDuration, settingsHelp } from './config.ts';
import { type JournalStreams, journalStreams } from './journal-stream.ts';
import { encodeBody, envelope, type JsonObject, roomJson, SAMPLE_EVENTS, sampleWebhook } from './livekit/samples.ts';
import { findScenario, SCENARIOS, type ScenarioRun, SIMULATED_ROOM_PREFIX } from './livekit/scenarios.ts';
import { signWebhook } from './livekit/sign.ts';
import { ReportAggregator } from './report/aggregate.ts';
import { inWritingOrder, readLines } from './report/read.ts';
import { callHeader, callJson, callLine, formatSeconds, renderText, summaryJson } from './report/render.ts';

export const VERSION: string = packageJson.version;

export function versionText(): string {
  return `control-plane ${VERSION} (node ${process.version})`;
}

/** What the commands need from the outside world; main.ts passes the real ones, tests may pass fakes. */
export interface CommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readText: (path: string) => string;
  /** A file's st_mode (its permission bits say who may read the keys file). */
  readonly readMode: (path: string) => number;
  /** The bytes of a file, or of standard input for `-`. */
  readonly readBytes: (path: string) => Buffer;
  /** Whether stdout and stderr are the systemd journal (src/journal-stream.ts). */
  readonly journal: JournalStreams;
  /** Whether a process with this PID exists (wait-healthy watches the daemon's). */
  readonly processExists: (pid: number) => boolean;
  /** Sends a signal to a process; throws (ESRCH, EPERM) when it cannot. */
  readonly signal: (pid: number, signal: NodeJS.Signals) => void;
}

/** A command that ran but did not get what it was for (exit status 1); the message says why. */
export class CommandFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailure';
  }
}

const USAGE = `control-plane ${VERSION}: receives LiveKit webhooks, verifies them, writes OBS-00 JSON lines.

Usage:
  control-plane [serve] [flags]              run the daemon
  control-plane sign [--key K] FILE|-        print the Authorization token LiveKit would send for that body
  control-plane send [--url U] EVENT [--room NAME]
                                             send one signed sample webhook and print the answer
                                             (default URL http://127.0.0.1:8000/webhook)
  control-plane simulate [--url U] [--speed N] SCENARIO...|all
                                             send a whole call's webhooks as LiveKit would, N times
                                             faster than real time (default 10); the room always finishes
  control-plane report [--json] [--calls] [FILE...]
                                             calls, outcomes, answer rate, talk time, trunk failures and
                                             sessions from OBS-00 lines (files, .gz too, or standard input)
  control-plane check-config [--quiet] [flags]
                                             validate the configuration, print a summary without secrets
                                             (--quiet: print nothing unless it is wrong)
  control-plane wait-healthy [--url U] [--timeout D] [flags]
                                             wait until the daemon's /health answers 200 (default URL from
                                             --host/--port, timeout 30s); under systemd also stop waiting
                                             when $MAINPID is gone. Exit 0 healthy, 1 not.
  control-plane reload [--pid P] [--timeout D] [flags]
                                             SIGHUP the daemon (P, or systemd's $MAINPID) and wait until it
                                             reports its keys file reloaded (exit 0) or not (exit 1: it keeps
                                             its previous keys)
  control-plane --help | --version

A lone -- ends the flags: sign -- --body.json signs the file named --body.json.

Events for send: ${SAMPLE_EVENTS.join(', ')}

Scenarios for simulate:
${SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(22)} ${scenario.summary}`).join('\n')}

Flags and environment (flags win):
${settingsHelp()}
  LIVEKIT_API_KEY, LIVEKIT_API_SECRET        the key pair LiveKit signs webhooks with
  $CREDENTIALS_DIRECTORY/livekit_api_secret  systemd LoadCredential= secret, used when LIVEKIT_API_SECRET is unset

Exit status: 0 ok, 1 failure (send, simulate: the daemon did not answer 200; report: an input could not be read to its end;
wait-healthy: not healthy in time; reload: the keys did not load; check-config: the shared store does not answer), 2 bad configuration or usage.
`;

export type Command = 'serve' | 'sign' | 'send' | 'simulate' | 'report' | 'check-config' | 'wait-healthy' | 'reload';
const COMMANDS: readonly Command[] = ['serve', 'sign', 'send', 'simulate', 'report', 'check-config', 'wait-healthy', 'reload'];

/** Sub-command flags that are not daemon settings. */
const COMMAND_FLAGS: Record<Command, Record<string, 'string' | 'boolean'>> = {
  serve: {},
  sign: { '--key': 'string' },
  send: { '--url': 'string', '--room': 'string', '--key': 'string' },
  simulate: { '--url': 'string', '--speed': 'string', '--key': 'string' },
  report: { '--json': 'boolean', '--calls': 'boolean' },
  'check-config': { '--quiet': 'boolean' },
  'wait-healthy': { '--url': 'string', '--timeout': 'string' },
  reload: { '--pid': 'string', '--timeout': 'string' },
};

export interface ParsedCommand {
  readonly command: Command;
  readonly parsed: ParsedArgs;
  readonly help: boolean;
  readonly version: boolean;
}

/** Splits argv into the command and its flags. Throws ConfigError on unknown flags. */
export function parseCommand(argv: readonly string[]): ParsedCommand {
  const first = argv[0];
  const command: Command = first !== undefined && (COMMANDS as readonly string[]).includes(first) ? (first as Command) : 'serve';
  const rest = command === first ? argv.slice(1) : argv;
  // Only flags count: after `--`, `--help` is a file name.
  const endOfFlags = rest.indexOf('--');
  const flags = endOfFlags === -1 ? rest : rest.slice(0, endOfFlags);
  const help = flags.includes('--help') || flags.includes('-h');
  const version = flags.includes('--version');
  const parsed = parseArgs(
    [...flags.filter((argument) => argument !== '--help' && argument !== '-h' && argument !== '--version'), ...(endOfFlags === -1 ? [] : rest.slice(endOfFlags))],
    COMMAND_FLAGS[command],
  );
  if (command !== 'sign' && command !== 'send' && command !== 'simulate' && command !== 'report') {
    if (parsed.positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} (see --help)`);
  }
  return { command, parsed, help, version };
}

export function usage(): string {
  return USAGE;
}

export function configFrom(parsed: ParsedArgs, io: CommandIo): Config {
  return loadConfig({ argv: [], env: io.env, readText: io.readText, readMode: io.readMode }, parsed);
}

function pickKey(config: Config, keyId: string | undefined): KeyPair {
  if (keyId === undefined) {
    const key = config.keys[0];
    if (!key) throw new ConfigError('no key to sign with: set LIVEKIT_API_KEY/LIVEKIT_API_SECRET, --keys-file or --dev');
    return key;
  }
  const key = config.keys.find((candidate) => candidate.keyId === keyId);
  if (!key) throw new ConfigError(`--key: "${keyId}" is not among the configured keys (${config.keys.map((k) => k.keyId).join(', ') || 'none'})`);
  return key;
}

/** `sign [--key K] FILE|-`: the bare token for the body bytes exactly as they are in the file. */
export function signCommand(parsed: ParsedArgs, io: CommandIo): number {
  const source = parsed.positionals[0];
  if (source === undefined || parsed.positionals.length > 1) throw new ConfigError('sign: give one FILE, or - for standard input');
  const config = configFrom(parsed, io);
  const key = pickKey(config, parsed.values.get('--key') as string | undefined);
  let body: Buffer;
  try {
    body = io.readBytes(source);
  } catch (error) {
    throw new ConfigError(`sign: cannot read ${source} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  io.stdout(`${signWebhook(body, key)}\n`);
  return 0;
}

const DEFAULT_WEBHOOK_URL = 'http://127.0.0.1:8000/webhook';

function webhookUrl(parsed: ParsedArgs): string {
  const url = (parsed.values.get('--url') as string | undefined) ?? DEFAULT_WEBHOOK_URL;
  try {
    new URL(url);
  } catch {
    throw new ConfigError(`--url: ${JSON.stringify(url)} is not a URL`);
  }
  return url;
}

/** The headers LiveKit sends with `body`: its content type, its user agent, and the token (unless nothing can sign). */
function webhookHeaders(config: Config, parsed: ParsedArgs, body: string): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/webhook+json', 'User-Agent': 'LiveKit' };
  if (!config.insecureSkipVerify || config.keys.length > 0) {
    headers.Authorization = signWebhook(body, pickKey(config, parsed.values.get('--key') as string | undefined));
  }
  return headers;
}

type PostResult = { readonly status: number; readonly text: string } | { readonly error: string };

async function postWebhook(url: string, headers: Record<string, string>, body: string): Promise<PostResult> {
  try {
    // Node's built-in fetch is undici; no extra dependency.
    const response = await fetch(url, { method: 'POST', headers, body });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { error: cause?.code ?? cause?.message ?? (error as Error).message };
  }
}

/** `send [--url U] EVENT [--room NAME]`: posts one signed sample webhook and prints the answer. */
export async function sendCommand(parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const event = parsed.positionals[0];
  if (event === undefined || parsed.positionals.length > 1) throw new ConfigError(`send: name one EVENT (${SAMPLE_EVENTS.join(', ')})`);
  // An unknown name would reach the daemon as livekit.event.unknown: refuse it here instead.
  if (!SAMPLE_EVENTS.includes(event)) throw new ConfigError(`send: unknown event ${JSON.stringify(event)}; one of ${SAMPLE_EVENTS.join(', ')}`);
  const url = webhookUrl(parsed);
  const room = (parsed.values.get('--room') as string | undefined) ?? 'demo-room';
  const config = configFrom(parsed, io);
  const body = encodeBody(sampleWebhook(event, room));
  const result = await postWebhook(url, webhookHeaders(config, parsed, body), body);
  if ('error' in result) {
    io.stderr(`send: ${url}: ${result.error}\n`);
    return 1;
  }
  io.stdout(`${result.status} ${result.text}\n`);
  return result.status === 200 ? 0 : 1;
}

const DEFAULT_SPEED = 10;

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

function describeWebhook(webhook: JsonObject): string {
  const participant = webhook.participant as { kind?: string; identity?: string; attributes?: Record<string, string>; disconnectReason?: string } | undefined;
  if (!participant) return String(webhook.event);
  const kind = participant.kind ?? (String(webhook.event).startsWith('track_') ? undefined : 'STANDARD');
  const details = [kind, participant.identity, participant.attributes?.['sip.callStatus'], participant.disconnectReason].filter(Boolean);
  return `${String(webhook.event)} (${details.join(', ')})`;
}

/**
 * Plays one scenario: its webhooks in LiveKit's order, spaced by their
 * createdAt divided by `speed`. Whatever happens (a refused webhook, the
 * daemon gone, Ctrl-C), it tries to finish the room, so that no simulated
 * session stays open in the daemon.
 */
async function playScenario(run: ScenarioRun, send: (body: string) => Promise<PostResult>, speed: number, io: CommandIo, signal: AbortSignal | undefined): Promise<number> {
  io.stdout(`room ${run.room.name} (${run.room.sid})\n`);
  let previousS = run.startS;
  let finished = false;
  let status = 0;
  for (const webhook of run.webhooks) {
    const atS = Number(webhook.createdAt);
    await pause(((atS - previousS) * 1000) / speed, signal);
    if (signal?.aborted) break;
    previousS = atS;
    const result = await send(encodeBody(webhook));
    const answer = 'error' in result ? result.error : `${result.status} ${result.text}`;
    io.stdout(`  +${String(atS - run.startS).padStart(3)}s  ${describeWebhook(webhook)} -> ${answer}\n`);
    if (webhook.event === 'room_finished') finished = true;
    if ('error' in result || result.status !== 200) {
      status = 1;
      break;
    }
  }
  if (!finished) {
    // Finish the room at the time reached, so the daemon closes the session.
    const closing = envelope('room_finished', { room: roomJson(run.room) }, { createdAt: previousS });
    const result = await send(encodeBody(closing));
    const answer = 'error' in result ? result.error : `${result.status} ${result.text}`;
    io.stdout(`  +${String(previousS - run.startS).padStart(3)}s  room_finished (stopped early) -> ${answer}\n`);
    if ('error' in result || result.status !== 200) {
      io.stderr(`simulate: could not finish room ${run.room.name}; the daemon forgets it after its idle timeout\n`);
      status = 1;
    }
  }
  if (status === 0 && !signal?.aborted) {
    for (const call of run.calls) {
      const talk = call.talkMs === undefined ? '' : `, talk ${formatSeconds(call.talkMs / 1000)}`;
      io.stdout(`  expect call.ended: ${call.direction} ${call.outcome}, answered ${call.answered}, ${call.reason}, duration ${formatSeconds(call.durationMs / 1000)}${talk}${call.trunkFailure ? ', and a provider.event sip_trunk_failure' : ''}\n`);
    }
  }
  return signal?.aborted ? 130 : status;
}

/** `simulate [--url U] [--speed N] SCENARIO...|all`: whole calls, as LiveKit sends them, to a running daemon. */
export async function simulateCommand(parsed: ParsedArgs, io: CommandIo, signal?: AbortSignal): Promise<number> {
  const names = parsed.positionals.length === 1 && parsed.positionals[0] === 'all' ? SCENARIOS.map((scenario) => scenario.name) : parsed.positionals;
  const list = SCENARIOS.map((scenario) => scenario.name).join(', ');
  if (names.length === 0) throw new ConfigError(`simulate: name a SCENARIO (${list}) or all`);
  const scenarios = names.map((name) => findScenario(name) ?? (() => {
    throw new ConfigError(`simulate: unknown scenario ${JSON.stringify(name)}; one of ${list}, or all`);
  })());
  const rawSpeed = (parsed.values.get('--speed') as string | undefined) ?? String(DEFAULT_SPEED);
  const speed = Number(rawSpeed);
  if (!Number.isFinite(speed) || speed <= 0) throw new ConfigError(`--speed: ${JSON.stringify(rawSpeed)} is not a positive number (1 = real time)`);
  const url = webhookUrl(parsed);
  const config = configFrom(parsed, io);
  pickKey(config, parsed.values.get('--key') as string | undefined);
  const send = (body: string) => postWebhook(url, webhookHeaders(config, parsed, body), body);
  let status = 0;
  for (const scenario of scenarios) {
    if (signal?.aborted) break;
    io.stdout(`${scenario.name}: ${scenario.summary}\n`);
    const result = await playScenario(scenario.build({ startS: Math.floor(Date.now() / 1000) }), send, speed, io, signal);
    if (result !== 0) status = result;
    if (result === 130) break;
  }
  io.stdout(`rooms are named ${SIMULATED_ROOM_PREFIX}<scenario>-<random>\n`);
  return status;
}

/** Where report reads and writes; main.ts passes the process's own. */
export interface ReportStreams {
  readonly stdin: Readable & { readonly isTTY?: boolean };
  readonly stdout: Writable;
  readonly openFile: (path: string) => Readable;
}

const flagOn = (parsed: ParsedArgs, flag: string): boolean => {
  const value = parsed.values.get(flag);
  return value === true || value === '1' || value === 'true';
};

/**
 * `report [--json] [--calls] [FILE...]`: reads OBS-00 lines from the files
 * in the order they were written (inWritingOrder; `.gz` ones decompressed)
 * or from standard input, and
 * prints the calls and sessions they describe. Streams: memory stays
 * bounded however long the input.
 */
export async function reportCommand(parsed: ParsedArgs, io: CommandIo, streams: ReportStreams): Promise<number> {
  const json = flagOn(parsed, '--json');
  const listCalls = flagOn(parsed, '--calls');
  const sources = parsed.positionals.length > 0 ? inWritingOrder(parsed.positionals) : ['-'];
  if (sources.filter((source) => source === '-').length > 1) throw new ConfigError('report: standard input (-) can be read once');
  if (parsed.positionals.length === 0 && streams.stdin.isTTY) {
    throw new ConfigError('report: give FILE..., or pipe the lines in: journalctl -o cat _SYSTEMD_UNIT=control-plane.service --since today | control-plane report');
  }
  for (const source of sources) {
    if (source === '-') continue;
    let isFile = false;
    try {
      isFile = statSync(source).isFile();
    } catch (error) {
      throw new ConfigError(`report: cannot read ${source} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    if (!isFile) throw new ConfigError(`report: ${source} is not a file`);
  }

  const stdout = streams.stdout;
  let closed = false;
  const onError = (error: NodeJS.ErrnoException) => {
    // The reader went away (| head): stop quietly. Anything else is reported once.
    if (error.code !== 'EPIPE') io.stderr(`report: cannot write the report (${error.code ?? error.message})\n`);
    closed = true;
  };
  // Stays attached: an EPIPE can arrive after the last write.
  stdout.on('error', onError);
  let pending = '';
  const flush = async (): Promise<void> => {
    if (pending === '' || closed) return;
    const text = pending;
    pending = '';
    if (stdout.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        stdout.off('drain', done);
        stdout.off('close', done);
        resolve();
      };
      stdout.on('drain', done);
      stdout.on('close', done);
    });
  };

  const aggregator = new ReportAggregator(listCalls ? (row) => (pending += json ? callJson(row) : callLine(row)) : undefined);
  if (listCalls && !json) pending += callHeader();
  let status = 0;
  for (const source of sources) {
    const input = source === '-' ? streams.stdin : streams.openFile(source);
    try {
      await readLines(input, aggregator, { gzip: source.endsWith('.gz'), afterChunk: flush, stopped: () => closed });
    } catch (error) {
      io.stderr(`report: ${source === '-' ? 'standard input' : source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; counted up to there\n`);
      status = 1;
    }
    if (closed) return status;
  }
  const summary = aggregator.finish();
  if (json) pending += `${JSON.stringify(listCalls ? { kind: 'summary', ...summaryJson(summary) } : summaryJson(summary))}\n`;
  else pending += `${listCalls ? '\n' : ''}${renderText(summary)}`;
  await flush();
  return status;
}

/**
 * `check-config`: exit 0 with a summary (key ids, never secrets), or 2 via
 * ConfigError. `--quiet` prints nothing on success: the unit's
 * ExecReload= runs it, and its output would land in the journal.
 */
export async function checkConfigCommand(parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const config = configFrom(parsed, io);
  const summary = describeConfig(config);
  let answers = true;
  if (config.store.kind === 'redis') {
    const { checkStore } = await import('./store/redis.ts');
    const check = await checkStore(config.store, config.instanceId ?? hostname());
    answers = check.ok;
    summary.store_status = check.ok ? `answers (${check.detail})` : `does not answer: ${check.detail}`;
  }
  if (!answers) io.stderr(`check-config: the store ${config.store.description} does not answer\n`);
  if (parsed.values.has('--quiet')) return answers ? 0 : 1;
  io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  for (const warning of config.warnings) io.stderr(`warning: ${warning}\n`);
  if (config.insecureSkipVerify) io.stderr('warning: --insecure-skip-verify accepts unsigned webhooks; never use it in production\n');
  return answers ? 0 : 1;
}

export const WAIT_HEALTHY_DEFAULT_TIMEOUT = '30s';
/** Between two /health requests: the daemon is usually healthy within about 100 ms of exec. */
const WAIT_HEALTHY_POLL_MS = 20;
/** One /health request may take this long before it counts as no answer. */
const HEALTH_REQUEST_TIMEOUT_MS = 1000;

/** An address the daemon listens on, as a URL base on this machine: a wildcard address is reached on loopback. */
function localBase(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** The daemon's /health for its --host/--port. */
export function defaultHealthUrl(host: string, port: number): string {
  if (port === 0) throw new ConfigError('wait-healthy: --port is 0 (the daemon picks a free port): give --url');
  return `${localBase(host, port)}/health`;
}

function durationFlag(parsed: ParsedArgs, fallback: string): { text: string; ms: number } {
  const text = (parsed.values.get('--timeout') as string | undefined) ?? fallback;
  const ms = parseDuration(text);
  if (ms === null) throw new ConfigError(`--timeout: ${JSON.stringify(text)} is not a duration such as 500ms, 30s or 2m`);
  return { text, ms };
}

/**
 * `wait-healthy [--url U] [--timeout D]`: polls /health until it answers
 * 200 (exit 0), or fails (CommandFailure, exit 1) when the timeout passes
 * or, under systemd, the daemon's main process ($MAINPID) is gone. The unit
 * runs it as ExecStartPost=, so `systemctl start` returns only once the
 * daemon answers, and fails when it cannot get there. Node cannot send
 * sd_notify's datagram, and minimal systems have no curl: the executable
 * waits for itself.
 */
export async function waitHealthyCommand(parsed: ParsedArgs, io: CommandIo, clock: () => number = () => performance.now()): Promise<number> {
  const { text: timeoutText, ms: timeoutMs } = durationFlag(parsed, WAIT_HEALTHY_DEFAULT_TIMEOUT);
  const given = parsed.values.get('--url') as string | undefined;
  let url: string;
  if (given === undefined) {
    const { host, port } = loadAddresses(parsed, io.env);
    url = defaultHealthUrl(host, port);
  } else {
    try {
      url = new URL(given).href;
    } catch {
      throw new ConfigError(`--url: ${JSON.stringify(given)} is not a URL`);
    }
  }
  const mainPidText = io.env.MAINPID?.trim();
  const mainPid = mainPidText && /^[1-9]\d*$/.test(mainPidText) ? Number(mainPidText) : null;

  const started = clock();
  let last = 'no answer yet';
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS) });
      const body = await response.text();
      if (response.status === 200) {
        const elapsed = Math.round(clock() - started);
        // Under systemd this would be a line of text in the unit's journal.
        if (!io.journal.stdout) io.stdout(`healthy: ${url} answered 200 after ${elapsed} ms\n`);
        return 0;
      }
      last = `${response.status} ${body.slice(0, 200)}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      last = cause?.code ?? (error as Error).name ?? String(error);
    }
    if (mainPid !== null && !io.processExists(mainPid)) {
      throw new CommandFailure(`wait-healthy: the daemon (PID ${mainPid}) exited before ${url} answered 200 (last: ${last}); its own lines say why`);
    }
    if (clock() - started >= timeoutMs) throw new CommandFailure(`wait-healthy: ${url} did not answer 200 within ${timeoutText} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_HEALTHY_POLL_MS));
  }
}

export const RELOAD_DEFAULT_TIMEOUT = '10s';

interface ReloadCounts {
  readonly success: number;
  readonly failure: number;
}

/** control_plane_key_reloads_total by result, from the Prometheus text. */
export function reloadCounts(metricsText: string): ReloadCounts | null {
  const count = (result: string): number | null => {
    const match = new RegExp(`^control_plane_key_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(metricsText);
    return match ? Number(match[1]) : null;
  };
  const success = count('success');
  const failure = count('failure');
  return success === null || failure === null ? null : { success, failure };
}

/**
 * `reload [--pid P] [--timeout D]`: what `systemctl reload` runs. It sends
 * SIGHUP to the daemon (P, or $MAINPID under systemd) and, when there is a
 * keys file, waits until the daemon's own reload counter
 * (control_plane_key_reloads_total on /metrics) says whether the keys
 * loaded: exit 0, or CommandFailure (exit 1) while the daemon keeps its
 * previous keys. It asks the daemon rather than reading the keys file
 * itself because under systemd it cannot: credentials are not mounted for
 * ExecReload= (systemd#35227), and what counts is what the daemon loaded.
 */
export async function reloadCommand(parsed: ParsedArgs, io: CommandIo, clock: () => number = () => performance.now()): Promise<number> {
  const { text: timeoutText, ms: timeoutMs } = durationFlag(parsed, RELOAD_DEFAULT_TIMEOUT);
  const pidText = ((parsed.values.get('--pid') as string | undefined) ?? io.env.MAINPID ?? '').trim();
  if (!/^[1-9]\d*$/.test(pidText)) throw new ConfigError('reload: give the daemon\'s --pid (systemd sets $MAINPID for ExecReload=)');
  const pid = Number(pidText);
  const addresses = loadAddresses(parsed, io.env);
  const sighup = (): void => {
    try {
      io.signal(pid, 'SIGHUP');
    } catch (error) {
      throw new CommandFailure(`reload: cannot signal PID ${pid} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  };
  const say = (text: string): void => {
    if (!io.journal.stdout) io.stdout(`${text}\n`);
  };
  if (addresses.keysFile === null) {
    // Nothing to check: the log file is reopened, which cannot fail here (a failure shows on the next write).
    sighup();
    say(`reload: SIGHUP sent to ${pid} (log file reopened; no keys file configured)`);
    return 0;
  }
  const metricsUrl =
    addresses.metricsPort === null
      ? `${localBase(addresses.host, addresses.port)}/metrics`
      : `${localBase(addresses.metricsHost, addresses.metricsPort)}/metrics`;
  const scrape = async (): Promise<ReloadCounts> => {
    let text: string;
    try {
      const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS) });
      text = await response.text();
      if (response.status !== 200) throw new CommandFailure(`reload: ${metricsUrl} answered ${response.status}`);
    } catch (error) {
      if (error instanceof CommandFailure) throw error;
      const cause = (error as { cause?: { code?: string } }).cause;
      throw new CommandFailure(`reload: cannot read ${metricsUrl} (${cause?.code ?? (error as Error).name}) to learn whether the keys loaded`);
    }
    const counts = reloadCounts(text);
    if (counts === null) throw new CommandFailure(`reload: ${metricsUrl} has no control_plane_key_reloads_total`);
    return counts;
  };

  const before = await scrape();
  sighup();
  const started = clock();
  for (;;) {
    const now = await scrape();
    if (now.failure > before.failure) {
      throw new CommandFailure(`reload: the keys file ${addresses.keysFile} did not load; the daemon keeps its previous keys (its control_plane.warning line says why)`);
    }
    if (now.success > before.success) {
      say(`reload: keys file ${addresses.keysFile} reloaded`);
      return 0;
    }
    if (!io.processExists(pid)) throw new CommandFailure(`reload: the daemon (PID ${pid}) exited`);
    if (clock() - started >= timeoutMs) throw new CommandFailure(`reload: the daemon reported no reload within ${timeoutText}`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_HEALTHY_POLL_MS));
  }
}

function fileIdentity(fd: number): { dev: bigint; ino: bigint } | null {
  try {
    const stats = fstatSync(fd, { bigint: true });
    return { dev: stats.dev, ino: stats.ino };
  } catch {
    return null;
  }
}

export function defaultIo(): CommandIo {
  return {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readText: (path) => readFileSync(path, 'utf8'),
    readMode: (path) => statSync(path).mode,
    readBytes: (path) => readFileSync(path === '-' ? 0 : path),
    journal: journalStreams(process.env.JOURNAL_STREAM, fileIdentity),
    processExists: (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        // EPERM: it exists, under another user.
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    signal: (pid, signal) => process.kill(pid, signal),
  };
}
