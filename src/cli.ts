// The sub-commands (SPEC §7): serve (default), sign, send, check-config.
// Each returns its exit status; only main.ts touches the process.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import packageJson from '../package.json' with { type: 'json' };
import { type Config, ConfigError, describeConfig, type KeyPair, loadConfig, parseArgs, type ParsedArgs, settingsHelp } from './config.ts';
import { encodeBody, SAMPLE_EVENTS, sampleWebhook } from './livekit/samples.ts';
import { signWebhook } from './livekit/sign.ts';
import { checkStore } from './store/redis.ts';

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
  /** The bytes of a file, or of standard input for `-`. */
  readonly readBytes: (path: string) => Buffer;
}

const USAGE = `control-plane ${VERSION}: receives LiveKit webhooks, verifies them, writes OBS-00 JSON lines.

Usage:
  control-plane [serve] [flags]              run the daemon
  control-plane sign [--key K] FILE|-        print the Authorization token LiveKit would send for that body
  control-plane send [--url U] EVENT [--room NAME]
                                             send one signed sample webhook and print the answer
                                             (default URL http://127.0.0.1:8000/webhook)
  control-plane check-config [flags]         validate the configuration, print a summary without secrets
  control-plane --help | --version

Events for send: ${SAMPLE_EVENTS.join(', ')}

Flags and environment (flags win):
${settingsHelp()}
  LIVEKIT_API_KEY, LIVEKIT_API_SECRET        the key pair LiveKit signs webhooks with
  $CREDENTIALS_DIRECTORY/livekit_api_secret  systemd LoadCredential= secret, used when LIVEKIT_API_SECRET is unset

Exit status: 0 ok, 1 failure (send: the daemon did not answer 200; check-config: the shared store does not answer), 2 bad configuration or usage.
`;

export type Command = 'serve' | 'sign' | 'send' | 'check-config';
const COMMANDS: readonly Command[] = ['serve', 'sign', 'send', 'check-config'];

/** Sub-command flags that are not daemon settings. */
const COMMAND_FLAGS: Record<Command, Record<string, 'string' | 'boolean'>> = {
  serve: {},
  sign: { '--key': 'string' },
  send: { '--url': 'string', '--room': 'string', '--key': 'string' },
  'check-config': {},
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
  const help = rest.includes('--help') || rest.includes('-h');
  const version = rest.includes('--version');
  const parsed = parseArgs(
    rest.filter((argument) => argument !== '--help' && argument !== '-h' && argument !== '--version'),
    COMMAND_FLAGS[command],
  );
  if (command === 'serve' || command === 'check-config') {
    if (parsed.positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} (see --help)`);
  }
  return { command, parsed, help, version };
}

export function usage(): string {
  return USAGE;
}

export function configFrom(parsed: ParsedArgs, io: CommandIo): Config {
  return loadConfig({ argv: [], env: io.env, readText: io.readText }, parsed);
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

/** `send [--url U] EVENT [--room NAME]`: posts one signed sample webhook and prints the answer. */
export async function sendCommand(parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const event = parsed.positionals[0];
  if (event === undefined || parsed.positionals.length > 1) throw new ConfigError(`send: name one EVENT (${SAMPLE_EVENTS.join(', ')})`);
  const url = (parsed.values.get('--url') as string | undefined) ?? 'http://127.0.0.1:8000/webhook';
  try {
    new URL(url);
  } catch {
    throw new ConfigError(`--url: ${JSON.stringify(url)} is not a URL`);
  }
  const room = (parsed.values.get('--room') as string | undefined) ?? 'demo-room';
  const config = configFrom(parsed, io);
  const body = encodeBody(sampleWebhook(event, room));
  const headers: Record<string, string> = { 'Content-Type': 'application/webhook+json', 'User-Agent': 'LiveKit' };
  if (!config.insecureSkipVerify || config.keys.length > 0) {
    headers.Authorization = signWebhook(body, pickKey(config, parsed.values.get('--key') as string | undefined));
  }
  try {
    // Node's built-in fetch is undici; no extra dependency.
    const response = await fetch(url, { method: 'POST', headers, body });
    io.stdout(`${response.status} ${await response.text()}\n`);
    return response.status === 200 ? 0 : 1;
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    io.stderr(`send: ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}\n`);
    return 1;
  }
}

/**
 * `check-config`: exit 0 with a summary (key ids, never secrets), or 2 via
 * ConfigError; with a shared store, it also connects: exit 1 when the
 * store does not answer.
 */
export async function checkConfigCommand(parsed: ParsedArgs, io: CommandIo): Promise<number> {
  const config = configFrom(parsed, io);
  const summary = describeConfig(config);
  let answers = true;
  if (config.store.kind === 'redis') {
    const check = await checkStore(config.store, config.instanceId ?? hostname());
    answers = check.ok;
    summary.store_status = check.ok ? `answers (${check.detail})` : `does not answer: ${check.detail}`;
  }
  io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  if (config.insecureSkipVerify) io.stderr('warning: --insecure-skip-verify accepts unsigned webhooks; never use it in production\n');
  if (!answers) io.stderr(`check-config: the store ${config.store.description} does not answer\n`);
  return answers ? 0 : 1;
}

export function defaultIo(): CommandIo {
  return {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readText: (path) => readFileSync(path, 'utf8'),
    readBytes: (path) => readFileSync(path === '-' ? 0 : path),
  };
}
