// Settings: one table (SETTINGS) is the single source of truth for every
// flag, its environment variable, default and meaning. The parser, `--help`
// and README all follow it. Parsing is pure: argv, env and a file reader go
// in, a frozen Config or a ConfigError naming the setting comes out.

import { MEMORY_STORE, parseStoreSetting, type StoreSetting } from './store/store-url.ts';

export type FsyncMode = 'never' | 'always';

export interface KeyPair {
  readonly keyId: string;
  readonly secret: string;
}

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly keys: readonly KeyPair[];
  readonly keysFile: string | null;
  readonly dev: boolean;
  readonly insecureSkipVerify: boolean;
  readonly stateFile: string | null;
  /** Where sessions, calls and recent ids live: this process, or a Redis shared by several instances. */
  readonly store: StoreSetting;
  /** This instance's name in the `instance` field with a shared store; null: the host name. */
  readonly instanceId: string | null;
  readonly redactPhoneNumbers: boolean;
  readonly logFile: string | null;
  readonly logMaxSize: number;
  readonly logKeep: number;
  readonly logCompress: boolean;
  readonly fsync: FsyncMode;
  readonly maxBody: number;
  readonly clockToleranceMs: number;
  readonly maxConnections: number;
  readonly maxBodyMemory: number;
}

/** A setting that is missing, malformed or impossible: the program prints `message` and exits 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'port' | 'boolean' | 'size' | 'duration' | 'count' | 'fsync' | 'path';

interface Setting {
  readonly name: keyof Config | 'keysFile' | 'storeUrl';
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  readonly default: string;
  readonly help: string;
}

/** Every daemon setting. Order is the order of `--help` and README's table. */
export const SETTINGS: readonly Setting[] = [
  { name: 'host', flag: '--host', env: 'HOST', kind: 'string', default: '0.0.0.0', help: 'listen address' },
  { name: 'port', flag: '--port', env: 'PORT', kind: 'port', default: '8000', help: 'listen port (0 = pick a free one, printed in control_plane.started)' },
  { name: 'keysFile', flag: '--keys-file', env: 'LIVEKIT_KEYS_FILE', kind: 'path', default: '', help: 'file of "key: secret" lines (several keys, for rotation; reloaded on SIGHUP)' },
  { name: 'dev', flag: '--dev', env: 'CONTROL_PLANE_DEV', kind: 'boolean', default: 'false', help: "add LiveKit's development key pair devkey/secret" },
  { name: 'insecureSkipVerify', flag: '--insecure-skip-verify', env: 'CONTROL_PLANE_INSECURE_SKIP_VERIFY', kind: 'boolean', default: 'false', help: 'development only: accept webhooks without checking their signature' },
  { name: 'stateFile', flag: '--state-file', env: 'CONTROL_PLANE_STATE_FILE', kind: 'path', default: '', help: 'keep sessions, calls and recent event ids across restarts in this file' },
  { name: 'storeUrl', flag: '--store', env: 'CONTROL_PLANE_STORE', kind: 'string', default: 'memory', help: 'memory, or redis://[user:password@]host:port[/db] (rediss:// for TLS) shared by several instances' },
  { name: 'instanceId', flag: '--instance-id', env: 'CONTROL_PLANE_INSTANCE_ID', kind: 'path', default: '', help: 'this instance\'s name in the instance field of every line with a shared store (default: the host name)' },
  { name: 'redactPhoneNumbers', flag: '--redact-phone-numbers', env: 'CONTROL_PLANE_REDACT_PHONE_NUMBERS', kind: 'boolean', default: 'false', help: 'mask phone numbers in from, to, identities, room names, error and detail (+31*******89)' },
  { name: 'logFile', flag: '--log-file', env: 'CONTROL_PLANE_LOG_FILE', kind: 'path', default: '', help: 'write JSON lines to this file instead of stdout' },
  { name: 'logMaxSize', flag: '--log-max-size', env: 'CONTROL_PLANE_LOG_MAX_SIZE', kind: 'size', default: '100M', help: 'rotate the log file when it would pass this size (K, M, G)' },
  { name: 'logKeep', flag: '--log-keep', env: 'CONTROL_PLANE_LOG_KEEP', kind: 'count', default: '14', help: 'rotated log files kept' },
  { name: 'logCompress', flag: '--log-compress', env: 'CONTROL_PLANE_LOG_COMPRESS', kind: 'boolean', default: 'false', help: 'gzip rotated log files (in the background)' },
  { name: 'fsync', flag: '--fsync', env: 'CONTROL_PLANE_FSYNC', kind: 'fsync', default: 'never', help: 'never | always: fdatasync the log file before answering' },
  { name: 'maxBody', flag: '--max-body', env: 'CONTROL_PLANE_MAX_BODY', kind: 'size', default: '1M', help: 'largest webhook body accepted (K, M, G)' },
  { name: 'clockToleranceMs', flag: '--clock-tolerance', env: 'CONTROL_PLANE_CLOCK_TOLERANCE', kind: 'duration', default: '60s', help: 'allowed clock skew on the token exp/nbf (ms, s, m)' },
  { name: 'maxConnections', flag: '--max-connections', env: 'CONTROL_PLANE_MAX_CONNECTIONS', kind: 'count', default: '1024', help: 'open connections accepted at once; more are refused' },
  { name: 'maxBodyMemory', flag: '--max-body-memory', env: 'CONTROL_PLANE_MAX_BODY_MEMORY', kind: 'size', default: '64M', help: 'request bodies held in memory at once, all connections together; beyond it 503 (K, M, G)' },
];

/** LiveKit's own development key pair (`livekit-server --dev`). */
export const DEV_KEY: KeyPair = Object.freeze({ keyId: 'devkey', secret: 'secret' });

export const CREDENTIAL_NAME = 'livekit_api_secret';
/** The systemd credential holding the shared store's password. */
export const STORE_PASSWORD_CREDENTIAL = 'store_password';

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

export function parseSize(text: string): number | null {
  const match = /^(\d+)([KMG]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) return null;
  const value = Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!;
  return Number.isSafeInteger(value) ? value : null;
}

export function parseDuration(text: string): number | null {
  const match = /^(\d+)(ms|s|m)$/.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
}

function parseBoolean(text: string): boolean | null {
  const lowered = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lowered)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(lowered)) return false;
  return null;
}

/**
 * Parses the `key: secret` lines of a keys file. Blank lines and `#`
 * comments are skipped. Errors name the line, never the secret.
 */
export function parseKeysFile(text: string, source: string): KeyPair[] {
  const keys: KeyPair[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const keyId = colon > 0 ? line.slice(0, colon).trim() : '';
    const secret = colon > 0 ? line.slice(colon + 1).trim() : '';
    if (!keyId || !secret || /\s/.test(keyId)) {
      throw new ConfigError(`${source} line ${index + 1}: expected "key: secret"`);
    }
    if (keys.some((key) => key.keyId === keyId)) {
      throw new ConfigError(`${source} line ${index + 1}: key "${keyId}" is listed twice`);
    }
    keys.push({ keyId, secret });
  });
  if (keys.length === 0) throw new ConfigError(`${source}: no "key: secret" line found`);
  return keys;
}

/** Reads a file as text; injected so parsing stays free of I/O in tests. */
export type ReadText = (path: string) => string;

export interface ParsedArgs {
  /** Raw flag values by setting name, `true` for a bare boolean flag. */
  readonly values: Map<string, string | true>;
  readonly positionals: string[];
}

/**
 * Splits argv into known flags and positionals. `extraFlags` lets a
 * sub-command accept its own flags (`--key`, `--url`, `--room`).
 * Accepts `--flag value` and `--flag=value`.
 */
export function parseArgs(argv: readonly string[], extraFlags: Record<string, 'string' | 'boolean'> = {}): ParsedArgs {
  const values = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (!argument.startsWith('--') || argument === '--') {
      positionals.push(argument);
      continue;
    }
    const equals = argument.indexOf('=');
    const flag = equals === -1 ? argument : argument.slice(0, equals);
    const inline = equals === -1 ? undefined : argument.slice(equals + 1);
    const setting = SETTINGS.find((candidate) => candidate.flag === flag);
    const kind = setting?.kind ?? extraFlags[flag];
    if (!kind) throw new ConfigError(`unknown flag ${flag} (see --help)`);
    if (kind === 'boolean') {
      values.set(flag, inline ?? true);
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    values.set(flag, value);
  }
  return { values, positionals };
}

function convert(setting: Setting, raw: string, origin: string): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(`${origin}: ${JSON.stringify(raw)} is not ${expected}`);
  };
  switch (setting.kind) {
    case 'string':
      return raw.trim() === '' ? fail('a value') : raw.trim();
    case 'path':
      return raw.trim() === '' ? null : raw.trim();
    case 'port': {
      const port = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      return Number.isInteger(port) && port >= 0 && port <= 65535 ? port : fail('a port number (0-65535)');
    }
    case 'boolean': {
      const value = parseBoolean(raw);
      return value ?? fail('a boolean (1/0, true/false)');
    }
    case 'size': {
      const size = parseSize(raw);
      return size !== null && size > 0 ? size : fail('a size such as 512K, 100M or 1G');
    }
    case 'duration': {
      const duration = parseDuration(raw);
      return duration ?? fail('a duration such as 500ms, 60s or 2m');
    }
    case 'count': {
      const count = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      return Number.isSafeInteger(count) ? count : fail('a whole number');
    }
    case 'fsync':
      return raw === 'never' || raw === 'always' ? raw : fail('"never" or "always"');
  }
}

export interface ConfigInput {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readText: ReadText;
}

/**
 * Builds the daemon Config from flags (which win) and environment. Throws
 * ConfigError with one line naming the setting when anything is wrong,
 * including the fail-closed rule: no key and no --dev/--insecure-skip-verify.
 */
export function loadConfig({ argv, env, readText }: ConfigInput, parsed: ParsedArgs = parseArgs(argv)): Config {
  const result: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const fromFlag = parsed.values.get(setting.flag);
    const fromEnv = env[setting.env];
    if (fromFlag !== undefined) {
      result[setting.name] = fromFlag === true ? true : convert(setting, fromFlag, setting.flag);
    } else if (fromEnv !== undefined && fromEnv !== '') {
      result[setting.name] = convert(setting, fromEnv, setting.env);
    } else {
      result[setting.name] = convert(setting, setting.default, setting.flag);
    }
  }
  if ((result.maxConnections as number) < 1) throw new ConfigError('--max-connections: must be at least 1');
  if ((result.maxBodyMemory as number) < (result.maxBody as number)) throw new ConfigError('--max-body-memory: must be at least --max-body (one largest webhook must fit)');
  if ((result.logKeep as number) > 10_000) throw new ConfigError('--log-keep: at most 10000 rotated files');
  if (result.logFile === null) {
    for (const flag of ['--log-max-size', '--log-keep', '--log-compress', '--fsync']) {
      if (parsed.values.has(flag)) throw new ConfigError(`${flag}: only applies with --log-file`);
    }
  }

  result.store = loadStore(result, parsed, env, readText);
  delete result.storeUrl;

  const keys = loadKeys(result, env, readText);
  if (keys.length === 0 && !result.insecureSkipVerify) {
    throw new ConfigError(
      'no LiveKit key configured: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or --keys-file, ' +
        '(or --dev for local development); refusing to accept unverifiable webhooks',
    );
  }
  result.keys = Object.freeze(keys);
  return Object.freeze(result) as unknown as Config;
}

/** The --store setting, with its password from the URL, CONTROL_PLANE_STORE_PASSWORD or the credential store_password (in that order). */
function loadStore(result: Record<string, unknown>, parsed: ParsedArgs, env: ConfigInput['env'], readText: ReadText): StoreSetting {
  const origin = parsed.values.has('--store') ? '--store' : 'CONTROL_PLANE_STORE';
  const setting = parseStoreSetting(result.storeUrl as string);
  // The message names the setting, never the value: it may hold a password.
  if ('error' in setting) throw new ConfigError(`${origin}: the value ${setting.error}`);
  const instanceId = result.instanceId as string | null;
  if (instanceId !== null && (instanceId.length > 200 || /[\u0000-\u001f\u007f]/.test(instanceId))) {
    throw new ConfigError('--instance-id: at most 200 printable characters');
  }
  if (setting.kind === 'memory') return MEMORY_STORE;
  if (result.stateFile !== null) {
    throw new ConfigError(`--state-file: not with a shared store (${origin} ${setting.description}): the state lives in the store, and every instance picks it up from there`);
  }
  if (setting.password !== null) return setting;
  let password = env.CONTROL_PLANE_STORE_PASSWORD || null;
  if (password === null && env.CREDENTIALS_DIRECTORY) {
    const credentialPath = `${env.CREDENTIALS_DIRECTORY}/${STORE_PASSWORD_CREDENTIAL}`;
    try {
      password = readText(credentialPath).trim() || null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // No such credential: the store needs no password.
      if (code !== 'ENOENT') throw new ConfigError(`CONTROL_PLANE_STORE_PASSWORD: not set, and the credential ${credentialPath} cannot be read (${code ?? error})`);
    }
  }
  return Object.freeze({ ...setting, password });
}

/** All key pairs from the keys file, the environment (or systemd credential) and --dev, deduplicated by key id. */
function loadKeys(result: Record<string, unknown>, env: ConfigInput['env'], readText: ReadText): KeyPair[] {
  const keys: KeyPair[] = [];
  const add = (pair: KeyPair, source: string) => {
    const existing = keys.find((key) => key.keyId === pair.keyId);
    if (existing && existing.secret !== pair.secret) {
      throw new ConfigError(`${source}: key "${pair.keyId}" is configured twice with different secrets`);
    }
    if (!existing) keys.push(Object.freeze(pair));
  };

  const keysFile = result.keysFile as string | null;
  if (keysFile) for (const pair of readKeysFile(keysFile, readText)) add(pair, '--keys-file');

  const apiKey = env.LIVEKIT_API_KEY?.trim();
  let apiSecret = env.LIVEKIT_API_SECRET?.trim();
  if (apiKey && !apiSecret && env.CREDENTIALS_DIRECTORY) {
    const credentialPath = `${env.CREDENTIALS_DIRECTORY}/${CREDENTIAL_NAME}`;
    try {
      apiSecret = readText(credentialPath).trim();
    } catch (error) {
      throw new ConfigError(`LIVEKIT_API_SECRET: not set, and the credential ${credentialPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  }
  if (apiKey && !apiSecret) throw new ConfigError('LIVEKIT_API_SECRET: LIVEKIT_API_KEY is set but its secret is not');
  if (!apiKey && apiSecret) throw new ConfigError('LIVEKIT_API_KEY: LIVEKIT_API_SECRET is set but its key is not');
  if (apiKey && apiSecret) add({ keyId: apiKey, secret: apiSecret }, 'LIVEKIT_API_KEY');

  if (result.dev) add({ ...DEV_KEY }, '--dev');
  return keys;
}

/** Reads and parses a keys file; used at start and on SIGHUP. */
export function readKeysFile(path: string, readText: ReadText): KeyPair[] {
  let text: string;
  try {
    text = readText(path);
  } catch (error) {
    throw new ConfigError(`--keys-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  return parseKeysFile(text, `--keys-file ${path}`);
}

/** A summary safe to print: key ids, never secrets. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { keys, store, ...rest } = config;
  return { ...rest, store: store.description, key_ids: keys.map((key) => key.keyId) };
}

/** The settings table as `--help` text. */
export function settingsHelp(): string {
  return SETTINGS.map((setting) => {
    const defaultText = setting.default && setting.default !== 'false' ? ` (default ${setting.default})` : '';
    return `  ${setting.flag.padEnd(26)} ${setting.env.padEnd(36)} ${setting.help}${defaultText}`;
  }).join('\n');
}
