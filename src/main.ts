// argv + env → config → serve (or another sub-command). The only file that
// touches the process: signals, exit codes, timers, stderr.

import {
  checkConfigCommand,
  CommandFailure,
  type CommandIo,
  configFrom,
  defaultIo,
  parseCommand,
  reloadCommand,
  sendCommand,
  signCommand,
  usage,
  VERSION,
  versionText,
  waitHealthyCommand,
} from './cli.ts';
import { type Config, ConfigError, type ParsedArgs } from './config.ts';
import { MetricsListener } from './http/metrics-listener.ts';
import { DaemonMetrics } from './metrics.ts';
import { redactPhoneNumbers } from './obs/redact.ts';
import { type Level, type ObsEvent, PRIORITY_PREFIX } from './obs/schema.ts';
import { SessionStore } from './obs/sessions.ts';
import { WebhookServer } from './http/server.ts';
import { FileSink } from './sinks/file.ts';
import { LineWriter } from './output/line-writer.ts';
import type { Sink } from './sinks/sink.ts';
import { StdoutSink } from './sinks/stdout.ts';
import { loadState, saveState } from './store/state-file.ts';
import { RecentIds } from './store/recent-ids.ts';
import { KeyRing } from './pipeline/verify.ts';

/** How long SIGTERM waits for requests in flight before closing connections. */
const SHUTDOWN_GRACE_MS = 10_000;
/** SPEC §1: state is saved at shutdown and at least this often. */
const STATE_SAVE_INTERVAL_MS = 10_000;
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
        return checkConfigCommand(parsed, io);
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
  io.stderr(io.journal.stderr ? diagnosticLine(message, Date.now(), 'error', true) : `control-plane: ${message}\n`);
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
 * What the daemon says on stderr once it runs. Under systemd stderr shares
 * the journal with the output, so it is JSON too: `journalctl -o cat | jq`
 * must not stop at a line of text. No `seq`: these lines are not part of
 * the output stream that `seq` counts. `priorityPrefix` when stderr is the
 * journal: `journalctl -p` then sees the level.
 */
function diagnosticLine(message: string, nowMs: number, level: Level = 'warn', priorityPrefix = false): string {
  const line = JSON.stringify({ ts: new Date(nowMs).toISOString(), level, component: 'control_plane', event_type: 'control_plane.diagnostic', session_id: null, detail: message });
  return `${priorityPrefix ? PRIORITY_PREFIX[level] : ''}${line}\n`;
}

function warning(detail: string): ObsEvent {
  return { level: 'warn', event_type: 'control_plane.warning', session_id: null, detail };
}

async function serve(config: Config, parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const reportProblem = (message: string) => io.stderr(diagnosticLine(message, Date.now(), 'warn', io.journal.stderr));
  const sink = openSink(config, reportProblem);
  const writer = new LineWriter(sink, {
    redact: config.redactPhoneNumbers ? redactPhoneNumbers : undefined,
    priorityPrefix: sink instanceof StdoutSink && io.journal.stdout,
  });
  const sessions = new SessionStore();
  const recentIds = new RecentIds();
  let keys = new KeyRing(config.keys);

  const startupWarnings: ObsEvent[] = [];
  if (config.stateFile) {
    const loaded = loadState(config.stateFile, Date.now());
    if (loaded.sessions) sessions.restore(loaded.sessions, Date.now());
    if (loaded.recentIds) recentIds.restore(loaded.recentIds, Date.now());
    if (loaded.warning) startupWarnings.push(warning(loaded.warning));
  }
  if (config.insecureSkipVerify) {
    startupWarnings.push(warning('--insecure-skip-verify: webhook signatures are NOT checked; anyone who can reach this port can write events. Development only.'));
    reportProblem('WARNING: --insecure-skip-verify is on: webhook signatures are not checked. Never use this in production.');
  }
  if (config.dev) {
    startupWarnings.push(warning('--dev: the public development key pair devkey/secret is accepted. Development only.'));
    reportProblem('WARNING: --dev is on: the public key pair devkey/secret is accepted. Never use this in production.');
  }

  const metrics = new DaemonMetrics({
    openSessions: () => sessions.openSessions,
    openCalls: () => sessions.openCalls,
    sinkRotations: () => writer.rotations,
    outputHealthy: () => writer.healthy,
    evictedSessions: () => sessions.evictedSessions,
    version: VERSION,
  });
  const server = new WebhookServer({
    pipeline: { keys: () => keys, insecureSkipVerify: config.insecureSkipVerify, clockToleranceMs: config.clockToleranceMs, recentIds, sessions },
    writer,
    metrics,
    maxBody: config.maxBody,
    maxConnections: config.maxConnections,
    reportProblem,
    servesMetrics: config.metricsPort === null,
  });

  let address: { host: string; port: number };
  try {
    address = await server.listen(config.port, config.host);
  } catch (error) {
    refuse(io, `--host/--port: cannot listen on ${config.host}:${config.port} (${(error as NodeJS.ErrnoException).code ?? error})`);
    writer.close();
    metrics.close();
    return 2;
  }
  const metricsListener = config.metricsPort === null ? null : new MetricsListener(metrics.registry);
  let metricsAddress: { host: string; port: number } | null = null;
  if (metricsListener) {
    try {
      metricsAddress = await metricsListener.listen(config.metricsPort!, config.metricsHost);
    } catch (error) {
      refuse(io, `--metrics-host/--metrics-port: cannot listen on ${config.metricsHost}:${config.metricsPort} (${(error as NodeJS.ErrnoException).code ?? error})`);
      await server.shutdown(0);
      writer.close();
      metrics.close();
      return 2;
    }
  }
  const hostPort = ({ host, port }: { host: string; port: number }): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const started: ObsEvent = {
    level: 'info',
    event_type: 'control_plane.started',
    session_id: null,
    version: VERSION,
    listen: hostPort(address),
    sink: writer.description,
    key_ids: keys.keyIds,
    ...(metricsAddress ? { detail: `/metrics on ${hostPort(metricsAddress)}` } : {}),
  };
  const startFailure = writer.write([started, ...startupWarnings]);
  if (startFailure) reportProblem(`cannot write the start line (${startFailure.code}); serving anyway, /health reports degraded`);

  let stateSaveFailing = false;
  const saveStateNow = (): void => {
    if (!config.stateFile) return;
    const problem = saveState(config.stateFile, { sessions: sessions.snapshot(), recentIds: recentIds.entries() });
    if (problem) {
      reportProblem(`state file: ${problem}`);
      // One line in the output when saving starts failing, not one every 10 s.
      if (!stateSaveFailing) writer.write([warning(`state file: ${problem}; sessions and recent ids would not survive a restart until saving works again`)]);
    }
    stateSaveFailing = problem !== undefined;
  };
  const timers = [
    setInterval(() => {
      // Forget ended and abandoned sessions even when no webhook arrives.
      sessions.prune(Date.now());
      saveStateNow();
    }, STATE_SAVE_INTERVAL_MS),
    setInterval(() => server.flushRejectionSummaries(), SUMMARY_FLUSH_INTERVAL_MS),
  ];
  for (const timer of timers) timer.unref();

  const reload = (): void => {
    writer.reopen();
    if (!config.keysFile) return;
    try {
      // Re-read the keys the way start-up did (keys file + env + credential + --dev).
      const fresh = configFrom(parsed, io);
      keys = new KeyRing(fresh.keys);
      metrics.keyReloads.inc({ result: 'success' });
      writer.write([{ level: 'info', event_type: 'control_plane.keys_reloaded', session_id: null, key_ids: keys.keyIds }]);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      metrics.keyReloads.inc({ result: 'failure' });
      writer.write([warning(`SIGHUP: keys not reloaded, the previous keys stay in use: ${reason}`)]);
      reportProblem(`SIGHUP: keys not reloaded: ${reason}`);
    }
  };

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      await Promise.all([server.shutdown(SHUTDOWN_GRACE_MS), metricsListener?.close()]);
      metrics.close();
      for (const timer of timers) clearInterval(timer);
      server.flushRejectionSummaries();
      saveStateNow();
      writer.write([{ level: 'info', event_type: 'control_plane.stopped', session_id: null, detail: `${signal} received; in-flight requests finished` }]);
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
    process.stderr.write(processIo.journal.stderr ? diagnosticLine(message, Date.now(), 'error', true) : `control-plane: ${message}\n`);
    process.exit(1);
  },
);
