// argv + env → config → serve (or another sub-command). The only file that
// touches the process: signals, exit codes, timers, stderr.

import { checkConfigCommand, type CommandIo, configFrom, defaultIo, parseCommand, sendCommand, signCommand, usage, VERSION, versionText } from './cli.ts';
import { type Config, ConfigError, type ParsedArgs } from './config.ts';
import { WebhookServer } from './http/server.ts';
import { DaemonMetrics } from './metrics.ts';
import { redactPhoneNumbers } from './obs/redact.ts';
import type { ObsEvent } from './obs/schema.ts';
import { processLine, warningLine } from './obs/webhook-lines.ts';
import { LineWriter } from './output/line-writer.ts';
import { Output } from './output/output.ts';
import { KeyRing } from './pipeline/verify.ts';
import { FileSink } from './sinks/file.ts';
import type { Sink, SinkWriteError } from './sinks/sink.ts';
import { StdoutSink } from './sinks/stdout.ts';
import { hostname } from 'node:os';
import { MemoryStore } from './store/memory.ts';
import { RedisStore } from './store/redis.ts';
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
      case 'check-config':
        return await checkConfigCommand(parsed, io);
      case 'serve':
        return await serve(configFrom(parsed, io), parsed, io);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`control-plane: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
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
function openStore(
  config: Config,
  reportProblem: (message: string) => void,
  observeStore: (operation: 'read' | 'commit', seconds: number) => void,
): { store: StateStore; journal: StateJournal | null; warnings: string[]; connected?: Promise<boolean> } {
  if (config.store.kind === 'redis') {
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

/**
 * What the daemon says on stderr once it runs. Under systemd stderr shares
 * the journal with the output, so it is JSON too: `journalctl -o cat | jq`
 * must not stop at a line of text. No `seq`: these lines are not part of
 * the output stream that `seq` counts.
 */
function diagnosticLine(message: string, nowMs: number): string {
  return `${JSON.stringify({ ts: new Date(nowMs).toISOString(), level: 'warn', component: 'control_plane', event_type: 'control_plane.diagnostic', session_id: null, detail: message })}\n`;
}

/** The name in every line's `instance` field with a shared store. */
const instanceIdOf = (config: Config): string => config.instanceId ?? hostname();

const formatListen = (address: { host: string; port: number }): string => `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;

async function serve(config: Config, parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const reportProblem = (message: string) => io.stderr(diagnosticLine(message, Date.now()));
  const sink = openSink(config, reportProblem);
  const shared = config.store.kind !== 'memory';
  // seq counts this process's lines: with several instances, gaps are found per (instance, seq).
  const writer = new LineWriter(sink, { redact: config.redactPhoneNumbers ? redactPhoneNumbers : undefined, instance: shared ? instanceIdOf(config) : undefined });
  // Store round trips happen only once the server runs, after `metrics` exists.
  const { store, journal, warnings, connected } = openStore(config, reportProblem, (operation, seconds) => metrics.storeDuration.observe(seconds, { operation }));
  // Listen once the shared store answers (bounded by its timeout): otherwise the first webhooks would all be 503.
  if (connected !== undefined && !(await connected)) reportProblem(`store ${store.description} does not answer yet; webhooks are answered 503 until it does`);
  let keys = new KeyRing(config.keys);
  const metrics = new DaemonMetrics({ store: () => store.counts(), sinkRotations: () => writer.rotations, outputHealthy: () => writer.healthy });
  if (shared) for (const operation of ['read', 'commit']) metrics.storeDuration.init({ operation });
  const output = new Output({
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
  });
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
    reportProblem,
  });

  let address: { host: string; port: number };
  try {
    address = await server.listen(config.port, config.host);
  } catch (error) {
    io.stderr(`control-plane: --host/--port: cannot listen on ${config.host}:${config.port} (${(error as NodeJS.ErrnoException).code ?? error})\n`);
    journal?.close();
    await store.close();
    writer.close();
    return 2;
  }

  const startupWarnings = [...warnings];
  if (config.insecureSkipVerify) {
    startupWarnings.push('--insecure-skip-verify: webhook signatures are NOT checked; anyone who can reach this port can write events. Development only.');
    reportProblem('WARNING: --insecure-skip-verify is on: webhook signatures are not checked. Never use this in production.');
  }
  if (config.dev) {
    startupWarnings.push('--dev: the public development key pair devkey/secret is accepted. Development only.');
    reportProblem('WARNING: --dev is on: the public key pair devkey/secret is accepted. Never use this in production.');
  }
  const started = processLine('control_plane.started', { version: VERSION, listen: formatListen(address), sink: writer.description, store: store.description, key_ids: keys.keyIds });
  writeOrReport(writer, [started, ...startupWarnings.map(warningLine)], reportProblem, 'the start line');

  const timers = [
    // Forget ended and abandoned sessions even when no webhook arrives.
    setInterval(() => void store.maintain(Date.now()), STORE_MAINTENANCE_INTERVAL_MS),
    setInterval(() => server.flushRejectionSummaries(), SUMMARY_FLUSH_INTERVAL_MS),
  ];
  for (const timer of timers) timer.unref();

  const reload = (): void => {
    writer.reopen();
    if (!config.keysFile) return;
    try {
      // Re-read the keys the way start-up did (keys file + env + credential + --dev).
      keys = new KeyRing(configFrom(parsed, io).keys);
      metrics.keyReloads.inc({ result: 'success' });
      writeOrReport(writer, [processLine('control_plane.keys_reloaded', { key_ids: keys.keyIds })], reportProblem, 'the keys_reloaded line');
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      metrics.keyReloads.inc({ result: 'failure' });
      writeOrReport(writer, [warningLine(`SIGHUP: keys not reloaded, the previous keys stay in use: ${reason}`)], reportProblem, 'a warning');
      reportProblem(`SIGHUP: keys not reloaded: ${reason}`);
    }
  };

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      const deadline = new Promise((done) => setTimeout(done, SHUTDOWN_GRACE_MS).unref());
      await server.shutdown(SHUTDOWN_GRACE_MS);
      await Promise.race([output.idle(), deadline]);
      for (const timer of timers) clearInterval(timer);
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
    process.on('SIGHUP', reload);
  });
}

/** Lines that answer no request: a failure is reported on stderr, not retried. */
function writeOrReport(writer: LineWriter, lines: readonly ObsEvent[], reportProblem: (message: string) => void, what: string): void {
  const result = writer.write(lines);
  const report = (failure: SinkWriteError | null): void => {
    if (failure) reportProblem(`cannot write ${what} (${failure.code}); /health reports degraded`);
  };
  if (result instanceof Promise) void result.then(report);
  else report(result);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Normally the loop is empty now and the process exits by itself, after
    // stdout has drained. If a stray handle keeps it alive, exit anyway.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`control-plane: fatal: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
