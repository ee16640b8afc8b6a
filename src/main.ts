// argv + env → config → serve (or another sub-command). The only file that
// touches the process: signals, exit codes, timers, stderr.

import { createReadStream } from 'node:fs';
import { hostname } from 'node:os';
import {
  checkConfigCommand,
  CommandFailure,
  type CommandIo,
  configFrom,
  defaultIo,
  parseCommand,
  reloadCommand,
  reportCommand,
  sendCommand,
  signCommand,
  simulateCommand,
  usage,
  VERSION,
  versionText,
  waitHealthyCommand,
} from './cli.ts';
import { type Config, ConfigError, type ParsedArgs } from './config.ts';
import type { Forwarder } from './forward/forwarder.ts';
import { MetricsListener } from './http/metrics-listener.ts';
import { WebhookServer } from './http/server.ts';
import { DaemonMetrics } from './metrics.ts';
import { redactPhoneNumbers } from './obs/redact.ts';
import { encodeDiagnostic, type ObsEvent } from './obs/schema.ts';
import { processLine, warningLine } from './obs/webhook-lines.ts';
import { LineWriter } from './output/line-writer.ts';
import { Output } from './output/output.ts';
import { KeyRing } from './pipeline/verify.ts';
import { FileSink } from './sinks/file.ts';
import type { PlannedWebhook } from './pipeline/plan.ts';
import type { Sink } from './sinks/sink.ts';
import { StderrLines } from './sinks/stderr.ts';
import { StdoutSink } from './sinks/stdout.ts';
import { MemoryStore } from './store/memory.ts';
import { StateJournal } from './store/state-journal.ts';
import type { StateStore } from './store/store.ts';

/** How long SIGTERM waits for requests in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Expiry and caps are applied at least this often, also when no webhook arrives. */
const STORE_MAINTENANCE_INTERVAL_MS = 10_000;
const SUMMARY_FLUSH_INTERVAL_MS = 5_000;

export async function main(argv: readonly string[], io: CommandIo = defaultIo()): Promise<number> {
  try {
    const { command, parsed, help, version } = parseCommand(argv);
    if (help) {
      io.stdout(usage());
      return 0;
    }
    if (version) {
      io.stdout(`${versionText()}\n`);
      return 0;
    }
    switch (command) {
      case 'sign':
        return signCommand(parsed, io);
      case 'send':
        return await sendCommand(parsed, io);
      case 'simulate': {
        // Ctrl-C stops the call early; simulate still finishes its room.
        const interrupted = new AbortController();
        const stop = () => interrupted.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          return await simulateCommand(parsed, io, interrupted.signal);
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      }
      case 'report':
        return await reportCommand(parsed, io, { stdin: process.stdin, stdout: process.stdout, openFile: (path) => createReadStream(path) });
      case 'check-config':
        return await checkConfigCommand(parsed, io);
      case 'wait-healthy':
        return await waitHealthyCommand(parsed, io);
      case 'reload':
        return await reloadCommand(parsed, io);
      case 'serve':
        return await serve(configFrom(parsed, io), parsed, io);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      refuse(io, error.message);
      return 2;
    }
    if (error instanceof CommandFailure) {
      refuse(io, error.message);
      return 1;
    }
    throw error;
  }
}

/**
 * Why a command stops (exit 1 or 2): one plain line for a person at a
 * terminal; under systemd a JSON line with its priority prefix, so the
 * refusal to start is in `journalctl -o cat _SYSTEMD_UNIT=... | jq` and in
 * `journalctl -p err` like everything else.
 */
function refuse(io: CommandIo, message: string): void {
  io.stderr(io.journal.stderr ? encodeDiagnostic(message, Date.now(), 'error', true) : `control-plane: ${message}\n`);
}

function openSink(config: Config, reportProblem: (message: string) => void): Sink {
  if (config.logFile === null) return new StdoutSink();
  try {
    return new FileSink({ path: config.logFile, maxSize: config.logMaxSize, keep: config.logKeep, compress: config.logCompress, fsync: config.fsync, reportProblem });
  } catch (error) {
    // FileSink's messages already name --log-file and the path.
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * The store: shared in Redis (--store redis://…), or embedded and made
 * durable by a state journal with --state-file; the warnings of loading it.
 */
async function openStore(
  config: Config,
  reportProblem: (message: string) => void,
  observeStore: (operation: 'read' | 'commit', seconds: number) => void,
): Promise<{ store: StateStore; journal: StateJournal | null; warnings: string[]; connected?: Promise<boolean> }> {
  if (config.store.kind === 'redis') {
    // Loaded only when used: the Redis client costs start-up time every other daemon would pay for nothing.
    const { RedisStore } = await import('./store/redis.ts');
    const store = new RedisStore({
      setting: config.store,
      instanceId: instanceIdOf(config),
      observe: observeStore,
      onConnectionChange: (problem) => reportProblem(problem === null ? `store ${config.store.description} answers` : `store ${config.store.description}: ${problem}; webhooks are answered 503 until it answers`),
    });
    store.connect();
    return { store, journal: null, warnings: [], connected: store.connected() };
  }
  if (!config.stateFile) return { store: new MemoryStore(), journal: null, warnings: [] };
  const store = new MemoryStore({}, `memory (state file ${config.stateFile})`);
  const journal = new StateJournal({ path: config.stateFile, fsync: config.fsync, warn: reportProblem });
  try {
    return { store, journal, warnings: journal.open(store) };
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
}

/** The name in every line's `instance` field with a shared store, and in forwarded deliveries. */
const instanceIdOf = (config: Config): string => config.instanceId ?? hostname();

const formatListen = (address: { host: string; port: number }): string => `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;

/** What a started daemon holds, for its reload and its stop. */
interface Running {
  readonly config: Config;
  readonly sink: Sink;
  readonly writer: LineWriter;
  readonly store: StateStore;
  readonly journal: StateJournal | null;
  readonly metrics: DaemonMetrics;
  readonly forwarding: Forwarder | null;
  readonly output: Output;
  readonly server: WebhookServer;
  readonly metricsListener: MetricsListener | null;
  readonly reportProblem: (message: string) => void;
}

/**
 * The daemon, step by step: diagnostics, the output lines, the store, the
 * metrics, forwarding, the output stage, the HTTP server; then listen,
 * announce, and serve until a signal.
 */
async function serve(config: Config, parsed: ParsedArgs, io: CommandIo): Promise<number> {
  // Never blocking, also when stderr is a pipe whose reader stalled.
  const stderr = new StderrLines();
  const reportProblem = (message: string) => stderr.write(encodeDiagnostic(message, Date.now(), 'warn', io.journal.stderr));

  const sink = openSink(config, reportProblem);
  const shared = config.store.kind !== 'memory';
  const writer = new LineWriter(sink, {
    redact: config.redactPhoneNumbers ? redactPhoneNumbers : undefined,
    priorityPrefix: sink instanceof StdoutSink && io.journal.stdout,
    // seq counts this process's lines: with several instances, gaps are found per (instance, seq).
    instance: shared ? instanceIdOf(config) : undefined,
  });

  // Store round trips happen only once the server runs, after `metrics` exists.
  const { store, journal, warnings, connected } = await openStore(config, reportProblem, (operation, seconds) => metrics.storeDuration.observe(seconds, { operation }));
  const metrics = new DaemonMetrics({
    store: () => store.counts(),
    sinkRotations: () => writer.rotations,
    outputSymlinksRefused: () => sink.stats.symlinksRefused,
    outputHealthy: () => writer.healthy,
    version: VERSION,
  });
  if (shared) for (const operation of ['read', 'commit']) metrics.storeDuration.init({ operation });
  // Listen once the shared store answers (bounded by its timeout): otherwise the first webhooks would all be 503.
  if (connected !== undefined && !(await connected)) reportProblem(`store ${store.description} does not answer yet; webhooks are answered 503 until it does`);

  const forwarding = await openForwarding(config, writer, metrics, reportProblem, () => server.webhooksInFlight > 0);
  const output = openOutputStage(writer, store, shared, metrics, forwarding, reportProblem);
  let keys = new KeyRing(config.keys);
  const server = new WebhookServer({
    keys: () => keys,
    insecureSkipVerify: config.insecureSkipVerify,
    clockToleranceMs: config.clockToleranceMs,
    output,
    writer,
    metrics,
    maxBody: config.maxBody,
    maxBodyMemory: config.maxBodyMemory,
    maxConnections: config.maxConnections,
    problem: () => writer.problem ?? store.problem(),
    servesMetrics: config.metricsPort === null,
    // The backend being down does not make the audit trail unhealthy: shown, not degraded.
    healthDetails: forwarding ? () => ({ forwarding: forwarding.status().map(({ url, state, queued, oldestAgeSeconds }) => ({ url, state, queued, oldest_age_seconds: Math.round(oldestAgeSeconds) })) }) : undefined,
    reportProblem,
  });
  const metricsListener = config.metricsPort === null ? null : new MetricsListener(metrics.registry);
  const running: Running = { config, sink, writer, store, journal, metrics, forwarding, output, server, metricsListener, reportProblem };

  // Signals are handled from here on, so a SIGHUP right after the start line never kills the daemon.
  const stopped = waitForStop(running, () => {
    const fresh = reloadKeys(running, parsed, io);
    if (fresh) keys = fresh;
  });

  const listening = await listen(running, io);
  if (listening === null) return 2;
  const startupWarnings = [...config.warnings, ...warnings];
  if (config.insecureSkipVerify) {
    startupWarnings.push('--insecure-skip-verify: webhook signatures are NOT checked; anyone who can reach this port can write events. Development only.');
    reportProblem('WARNING: --insecure-skip-verify is on: webhook signatures are not checked. Never use this in production.');
  }
  if (config.dev) {
    startupWarnings.push('--dev: the public development key pair devkey/secret is accepted. Development only.');
    reportProblem('WARNING: --dev is on: the public key pair devkey/secret is accepted. Never use this in production.');
  }
  if (forwarding) startupWarnings.push(...listening.forwardingWarnings);
  const started = processLine('control_plane.started', {
    version: VERSION,
    listen: formatListen(listening.address),
    sink: writer.description,
    store: store.description,
    key_ids: keys.keyIds,
    detail: listening.metricsAddress ? `/metrics on ${formatListen(listening.metricsAddress)}` : undefined,
  });
  writeOrReport(writer, [started, ...startupWarnings.map(warningLine)], reportProblem, 'the start line');
  return stopped;
}

/** The output stage: plan, write, commit, acknowledge; acknowledged lines feed the call metrics and forwarding. */
function openOutputStage(writer: LineWriter, store: StateStore, shared: boolean, metrics: DaemonMetrics, forwarding: Forwarder | null, reportProblem: (message: string) => void): Output {
  return new Output({
    writer,
    store,
    storeReadsKeys: shared,
    schedule: setImmediate,
    onWriteFailed: (error, webhooks) => {
      metrics.outputErrors.inc({ code: error.code });
      reportProblem(`output write failed (${error.code}): ${error.message}; answering 503 to ${webhooks} webhook(s)`);
    },
    onStoreFailed: (error, webhooks) => {
      metrics.storeErrors.inc({ reason: error.reason });
      reportProblem(`store failed (${error.reason}): ${error.message}; answering 503 to ${webhooks} webhook(s)`);
    },
    onAcknowledged: (planned, firstSeq, ts) => {
      for (const webhook of planned) metrics.observeWrittenLines(webhook.lines);
      forwarding?.accept(acknowledgedLines(writer, planned, firstSeq, ts));
    },
  });
}

/** Listens on the public port (and the metrics port), and starts forwarding; null (after saying why) when it cannot. */
async function listen(running: Running, io: CommandIo): Promise<{ address: { host: string; port: number }; metricsAddress: { host: string; port: number } | null; forwardingWarnings: string[] } | null> {
  const { config, server, metricsListener, forwarding } = running;
  let address: { host: string; port: number };
  try {
    address = await server.listen(config.port, config.host);
  } catch (error) {
    refuse(io, `--host/--port: cannot listen on ${config.host}:${config.port} (${(error as NodeJS.ErrnoException).code ?? error})`);
    await release(running);
    return null;
  }
  let metricsAddress: { host: string; port: number } | null = null;
  if (metricsListener) {
    try {
      metricsAddress = await metricsListener.listen(config.metricsPort!, config.metricsHost);
    } catch (error) {
      refuse(io, `--metrics-host/--metrics-port: cannot listen on ${config.metricsHost}:${config.metricsPort} (${(error as NodeJS.ErrnoException).code ?? error})`);
      await server.shutdown(0);
      await release(running);
      return null;
    }
  }
  let forwardingWarnings: string[] = [];
  if (forwarding) {
    try {
      forwardingWarnings = forwarding.start();
    } catch (error) {
      refuse(io, `--forward-spool: cannot use ${config.forwardSpool} (${(error as NodeJS.ErrnoException).code ?? error})`);
      await Promise.all([server.shutdown(0), metricsListener?.close()]);
      await release(running);
      return null;
    }
  }
  return { address, metricsAddress, forwardingWarnings };
}

/** Lets go of what a start that failed had opened. */
async function release({ journal, store, writer, metrics, forwarding }: Running): Promise<void> {
  await forwarding?.stop();
  journal?.close();
  await store.close();
  writer.close();
  metrics.close();
}

/** SIGHUP: the log file reopened (logrotate), and the keys file read again; the new keys, or null (the old ones stay). */
function reloadKeys({ config, writer, metrics, reportProblem }: Running, parsed: ParsedArgs, io: CommandIo): KeyRing | null {
  writer.reopen();
  if (!config.keysFile) return null;
  try {
    // Re-read the keys the way start-up did (keys file + env + credential + --dev).
    const fresh = configFrom(parsed, io);
    const keys = new KeyRing(fresh.keys);
    metrics.keyReloads.inc({ result: 'success' });
    writeOrReport(writer, [processLine('control_plane.keys_reloaded', { key_ids: keys.keyIds }), ...fresh.warnings.map(warningLine)], reportProblem, 'the keys_reloaded line');
    return keys;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    metrics.keyReloads.inc({ result: 'failure' });
    writeOrReport(writer, [warningLine(`SIGHUP: keys not reloaded, the previous keys stay in use: ${reason}`)], reportProblem, 'a warning');
    reportProblem(`SIGHUP: keys not reloaded: ${reason}`);
    return null;
  }
}

/**
 * Handles the signals and the periodic work until SIGTERM or SIGINT, then
 * stops in order: no new connections, requests in flight finished (bounded),
 * the output stage drained, forwarding's spool saved, the state saved, the
 * stop line written. Resolves with the exit status.
 */
function waitForStop(running: Running, reload: () => void): Promise<number> {
  const { server, metricsListener, metrics, output, forwarding, journal, store, writer, sink, reportProblem } = running;
  const timers = [
    // Forget ended and abandoned sessions even when no webhook arrives.
    setInterval(() => void store.maintain(Date.now()), STORE_MAINTENANCE_INTERVAL_MS),
    setInterval(() => server.flushRejectionSummaries(), SUMMARY_FLUSH_INTERVAL_MS),
  ];
  for (const timer of timers) timer.unref();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      const deadline = new Promise((done) => setTimeout(done, SHUTDOWN_GRACE_MS).unref());
      await Promise.all([server.shutdown(SHUTDOWN_GRACE_MS), metricsListener?.close()]);
      metrics.close();
      await Promise.race([output.idle(), deadline]);
      for (const timer of timers) clearInterval(timer);
      await forwarding?.stop();
      server.flushRejectionSummaries();
      journal?.close();
      await store.close();
      writeOrReport(writer, [processLine('control_plane.stopped', { detail: `${signal} received; in-flight requests finished` })], reportProblem, 'the stop line');
      writer.close();
      // Let a background compression of a rotated file finish (bounded);
      // an unfinished one is completed at the next start anyway.
      if (sink instanceof FileSink) await Promise.race([sink.idle(), new Promise((done) => setTimeout(done, 5000).unref())]);
      resolve(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (!stopping) reload();
    });
  });
}

/** Forwarding of the derived events, when --forward-url is set (src/forward/). */
async function openForwarding(
  config: Config,
  writer: LineWriter,
  metrics: DaemonMetrics,
  reportProblem: (message: string) => void,
  ingestionBusy: () => boolean,
): Promise<Forwarder | null> {
  if (config.forwardUrls.length === 0) return null;
  // Loaded only when used, like the Redis client: the HTTP client is start-up time otherwise.
  const { Forwarder } = await import('./forward/forwarder.ts');
  const key = config.keys.find((candidate) => candidate.keyId === (config.forwardKey ?? config.keys[0]?.keyId));
  if (!key) throw new ConfigError('--forward-key: no key to sign the deliveries with');
  const forwarder = new Forwarder({
    urls: config.forwardUrls,
    events: config.forwardEvents,
    format: config.forwardFormat,
    key,
    spoolDirectory: config.forwardSpool!,
    spoolMaxBytes: config.forwardSpoolMax,
    batchSize: config.forwardBatchSize,
    lingerMs: config.forwardLingerMs,
    instance: instanceIdOf(config),
    ingestionBusy,
    warn: (detail) => {
      reportProblem(detail);
      writeOrReport(writer, [warningLine(detail)], reportProblem, 'a forwarding warning');
    },
  });
  metrics.registerForwarding(forwarder);
  return forwarder;
}

/** The acknowledged lines with a way to get each one's JSON exactly as written (seq from `firstSeq` on). */
function acknowledgedLines(writer: LineWriter, planned: readonly PlannedWebhook[], firstSeq: number, ts: string): Array<{ event: ObsEvent; json: () => string }> {
  const lines: Array<{ event: ObsEvent; json: () => string }> = [];
  let seq = firstSeq;
  for (const webhook of planned) {
    for (const event of webhook.lines) {
      const lineSeq = seq++;
      lines.push({ event, json: () => writer.encodeWritten(event, lineSeq, ts) });
    }
  }
  return lines;
}

/** Lines that answer no request: a failure is reported on stderr, not retried. */
function writeOrReport(writer: LineWriter, lines: readonly ObsEvent[], reportProblem: (message: string) => void, what: string): void {
  writer.writeUnanswered(lines, (failure) => reportProblem(`cannot write ${what} (${failure.code}); /health reports degraded`));
}

// `ps`, `top` and `systemctl status` name the process after the program,
// not after the runtime (`node-MainThread`).
process.title = 'control-plane';
const processIo = defaultIo();
main(process.argv.slice(2), processIo).then(
  (code) => {
    process.exitCode = code;
    // Normally the loop is empty now and the process exits by itself, after
    // stdout has drained. If a stray handle keeps it alive, exit anyway.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    const message = `fatal: ${error instanceof Error ? error.stack : String(error)}`;
    process.stderr.write(processIo.journal.stderr ? encodeDiagnostic(message, Date.now(), 'error', true) : `control-plane: ${message}\n`);
    process.exit(1);
  },
);
