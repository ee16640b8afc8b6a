// Settings: one table (SETTINGS) is the single source of truth for every
// flag, its environment variable, default and meaning. The parser, `--help`
// and README all follow it. Parsing is pure: argv, env and a file reader go
// in, a frozen Config or a ConfigError naming the setting comes out.

import { dirname, join } from 'node:path';
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
  /** Where derived events are forwarded (none: forwarding off). */
  readonly forwardUrls: readonly string[];
  readonly forwardEvents: readonly string[];
  readonly forwardFormat: 'json' | 'ndjson';
  /** The key id deliveries are signed with (null: the first configured key). */
  readonly forwardKey: string | null;
  readonly forwardSpool: string | null;
  readonly forwardSpoolMax: number;
  readonly forwardBatchSize: number;
  readonly forwardLingerMs: number;
  /**
   * What the operator should know but that does not stop the program (a
   * keys file others can read): main.ts writes each as a
   * control_plane.warning line at start and after a reload, check-config
   * prints them.
   */
  readonly warnings: readonly string[];
  /** Where /metrics is served instead of the public port; null: on the public port. */
  readonly metricsHost: string;
  readonly metricsPort: number | null;
}

/** A setting that is missing, malformed or impossible: the program prints `message` and exits 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'port' | 'optional-port' | 'boolean' | 'size' | 'duration' | 'count' | 'fsync' | 'path' | 'list' | 'urls' | 'format';

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
  { name: 'redactPhoneNumbers', flag: '--redact-phone-numbers', env: 'CONTROL_PLANE_REDACT_PHONE_NUMBERS', kind: 'boolean', default: 'false', help: 'mask phone numbers: from and to whatever their format, numbers found in identities, room names, error and detail (+31*******89)' },
  { name: 'logFile', flag: '--log-file', env: 'CONTROL_PLANE_LOG_FILE', kind: 'path', default: '', help: 'write JSON lines to this file instead of stdout' },
  { name: 'logMaxSize', flag: '--log-max-size', env: 'CONTROL_PLANE_LOG_MAX_SIZE', kind: 'size', default: '100M', help: 'rotate the log file when it would pass this size (K, M, G)' },
  { name: 'logKeep', flag: '--log-keep', env: 'CONTROL_PLANE_LOG_KEEP', kind: 'count', default: '14', help: 'rotated log files kept' },
  { name: 'logCompress', flag: '--log-compress', env: 'CONTROL_PLANE_LOG_COMPRESS', kind: 'boolean', default: 'false', help: 'gzip rotated log files (in the background)' },
  { name: 'fsync', flag: '--fsync', env: 'CONTROL_PLANE_FSYNC', kind: 'fsync', default: 'never', help: 'never | always: fdatasync the log file before answering' },
  { name: 'maxBody', flag: '--max-body', env: 'CONTROL_PLANE_MAX_BODY', kind: 'size', default: '1M', help: 'largest webhook body accepted (K, M, G)' },
  { name: 'clockToleranceMs', flag: '--clock-tolerance', env: 'CONTROL_PLANE_CLOCK_TOLERANCE', kind: 'duration', default: '60s', help: 'allowed clock skew on the token exp/nbf (ms, s, m)' },
  { name: 'maxConnections', flag: '--max-connections', env: 'CONTROL_PLANE_MAX_CONNECTIONS', kind: 'count', default: '1024', help: 'open connections accepted at once; more are refused' },
  { name: 'forwardUrls', flag: '--forward-url', env: 'CONTROL_PLANE_FORWARD_URL', kind: 'urls', default: '', help: 'forward derived events to this URL, signed like LiveKit webhooks (repeat the flag, or a comma-separated list)' },
  { name: 'forwardEvents', flag: '--forward-events', env: 'CONTROL_PLANE_FORWARD_EVENTS', kind: 'list', default: 'call.*,session.*,provider.*', help: 'event types forwarded (comma-separated globs)' },
  { name: 'forwardFormat', flag: '--forward-format', env: 'CONTROL_PLANE_FORWARD_FORMAT', kind: 'format', default: 'json', help: 'json: one event per request | ndjson: batches of lines' },
  { name: 'forwardKey', flag: '--forward-key', env: 'CONTROL_PLANE_FORWARD_KEY', kind: 'path', default: '', help: 'key id whose secret signs the deliveries (default: the first configured key)' },
  { name: 'forwardSpool', flag: '--forward-spool', env: 'CONTROL_PLANE_FORWARD_SPOOL', kind: 'path', default: '', help: "directory of the delivery spool (default: forward-spool beside --state-file, or in systemd's StateDirectory)" },
  { name: 'forwardSpoolMax', flag: '--forward-spool-max', env: 'CONTROL_PLANE_FORWARD_SPOOL_MAX', kind: 'size', default: '256M', help: 'spool size; beyond it the oldest undelivered events are dropped with a warning (K, M, G)' },
  { name: 'forwardBatchSize', flag: '--forward-batch-size', env: 'CONTROL_PLANE_FORWARD_BATCH_SIZE', kind: 'count', default: '100', help: 'ndjson: lines per request' },
  { name: 'forwardLingerMs', flag: '--forward-linger', env: 'CONTROL_PLANE_FORWARD_LINGER', kind: 'duration', default: '200ms', help: 'ndjson: how long a partial batch waits for more lines (ms, s, m)' },
  { name: 'maxBodyMemory', flag: '--max-body-memory', env: 'CONTROL_PLANE_MAX_BODY_MEMORY', kind: 'size', default: '64M', help: 'request bodies held in memory at once, all connections together; beyond it 503 (K, M, G)' },
  { name: 'metricsPort', flag: '--metrics-port', env: 'CONTROL_PLANE_METRICS_PORT', kind: 'optional-port', default: '', help: 'serve /metrics on this port of --metrics-host instead of the public port (which then answers /metrics 404)' },
  { name: 'metricsHost', flag: '--metrics-host', env: 'CONTROL_PLANE_METRICS_HOST', kind: 'string', default: '127.0.0.1', help: 'listen address of the --metrics-port listener' },
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

/** LiveKit refuses shorter API secrets (HS256 wants a key as long as its 32-byte hash). */
export const MIN_SECRET_BYTES = 32;

/** Refuses a secret shorter than MIN_SECRET_BYTES, naming the key and where it came from, never the secret. */
function checkSecretLength(pair: KeyPair, where: string): void {
  const bytes = Buffer.byteLength(pair.secret, 'utf8');
  if (bytes >= MIN_SECRET_BYTES) return;
  throw new ConfigError(
    `${where}: the secret of key "${pair.keyId}" is ${bytes} byte${bytes === 1 ? '' : 's'}; LiveKit requires at least ${MIN_SECRET_BYTES} ` +
      '(generate a pair with `livekit-server generate-keys`)',
  );
}

/** The escapes of a YAML double-quoted scalar that a secret could need. */
const YAML_ESCAPES: Readonly<Record<string, string>> = { '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b', ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029' };
const HEX_ESCAPE_DIGITS: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };
/** A plain (unquoted) YAML scalar cannot start with these. */
const YAML_INDICATORS = new Set(['-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`']);
const YAML_NULLS = new Set(['~', 'null', 'Null', 'NULL']);

/** A problem on one line of the keys file; parseKeysFile adds where. Never carries the secret. */
class KeysLineError extends Error {}

interface Scalar {
  readonly value: string;
  /** Index just after the scalar (after its closing quote). */
  readonly end: number;
  readonly quoted: boolean;
}

/** A double- or single-quoted YAML scalar starting at `start` (on the quote). */
function readQuoted(line: string, start: number): Scalar {
  const quote = line[start]!;
  let value = '';
  let index = start + 1;
  while (index < line.length) {
    const character = line[index]!;
    if (character === quote) {
      // In single quotes, '' is one quote.
      if (quote === "'" && line[index + 1] === "'") {
        value += "'";
        index += 2;
        continue;
      }
      return { value, end: index + 1, quoted: true };
    }
    if (quote === '"' && character === '\\') {
      const code = line[index + 1];
      if (code !== undefined && Object.hasOwn(HEX_ESCAPE_DIGITS, code)) {
        const digits = HEX_ESCAPE_DIGITS[code]!;
        const hex = line.slice(index + 2, index + 2 + digits);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits || Number.parseInt(hex, 16) > 0x10ffff) throw new KeysLineError(`a bad \\${code} escape in double quotes`);
        value += String.fromCodePoint(Number.parseInt(hex, 16));
        index += 2 + digits;
        continue;
      }
      if (code === undefined || !Object.hasOwn(YAML_ESCAPES, code)) throw new KeysLineError('an unknown escape in double quotes');
      value += YAML_ESCAPES[code];
      index += 2;
      continue;
    }
    value += character;
    index++;
  }
  throw new KeysLineError(`unterminated ${quote}`);
}

/**
 * One `key: secret` line of a keys file, read as YAML reads a top-level
 * mapping entry (LiveKit decodes its key file with a YAML decoder into a
 * map of strings): the key and the secret plain or quoted; in a plain
 * secret ` #` starts a comment and trailing spaces go; `~`/`null` or
 * nothing is no secret.
 */
function parseKeyLine(line: string): KeyPair {
  let index = 0;
  const skipSpaces = (): void => {
    while (line[index] === ' ' || line[index] === '\t') index++;
  };
  skipSpaces();
  let keyId: string;
  if (line[index] === '"' || line[index] === "'") {
    const key = readQuoted(line, index);
    keyId = key.value;
    index = key.end;
    skipSpaces();
    if (line[index] !== ':') throw new KeysLineError('expected "key: secret"');
  } else {
    // A plain key ends at the first `: ` (or a `:` ending the line).
    const colon = line.search(/:(?=[ \t]|$)/);
    if (colon <= index || YAML_INDICATORS.has(line[index]!)) throw new KeysLineError('expected "key: secret"');
    keyId = line.slice(index, colon).trimEnd();
    index = colon;
  }
  if (keyId === '') throw new KeysLineError('expected "key: secret"');
  if (/\s/.test(keyId)) throw new KeysLineError('a key id has no spaces');
  index++; // the colon
  if (index < line.length && line[index] !== ' ' && line[index] !== '\t') throw new KeysLineError('expected "key: secret"');
  skipSpaces();

  let secret: string;
  if (line[index] === '"' || line[index] === "'") {
    const quoted = readQuoted(line, index);
    secret = quoted.value;
    index = quoted.end;
    const rest = line.slice(index);
    // Only spaces, then perhaps a comment (which needs a space before its #).
    if (!/^(?:[ \t]*|[ \t]+#.*)$/.test(rest)) throw new KeysLineError('unexpected text after the quoted secret');
  } else {
    const comment = line.slice(index).search(/(?:^|[ \t])#/);
    const plain = (comment === -1 ? line.slice(index) : line.slice(index, index + comment)).trim();
    // `-`, `?` and `:` are indicators only when a space follows (checked below).
    if (plain !== '' && YAML_INDICATORS.has(plain[0]!) && !'-?:'.includes(plain[0]!)) {
      throw new KeysLineError(`key "${keyId}": a secret starting with ${plain[0]} must be quoted`);
    }
    if (/:(?:[ \t]|$)/.test(plain) || /^[-?:](?:[ \t]|$)/.test(plain)) throw new KeysLineError(`key "${keyId}": quote the secret (YAML reads ": " in it as a nested mapping)`);
    secret = YAML_NULLS.has(plain) ? '' : plain;
  }
  if (secret === '') throw new KeysLineError(`key "${keyId}" has no secret`);
  return { keyId, secret };
}

/**
 * Parses a keys file: one `key: secret` a line, as LiveKit reads its own
 * (YAML: quoted values, ` #` comments; parseKeyLine). Blank lines, comment
 * lines and a leading `---` are skipped. A secret shorter than 32 bytes is
 * refused, except `exempt` (--dev's pair when --dev is on). Errors name
 * the line and the key, never the secret.
 */
export function parseKeysFile(text: string, source: string, exempt?: KeyPair): KeyPair[] {
  const keys: KeyPair[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const where = `${source} line ${index + 1}`;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line === '---' && keys.length === 0) return;
    let pair: KeyPair;
    try {
      pair = parseKeyLine(rawLine);
    } catch (error) {
      if (error instanceof KeysLineError) throw new ConfigError(`${where}: ${error.message}`);
      throw error;
    }
    if (keys.some((key) => key.keyId === pair.keyId)) {
      throw new ConfigError(`${where}: key "${pair.keyId}" is listed twice`);
    }
    if (!isSamePair(pair, exempt)) checkSecretLength(pair, where);
    keys.push(pair);
  });
  if (keys.length === 0) throw new ConfigError(`${source}: no "key: secret" line found`);
  return keys;
}

function isSamePair(pair: KeyPair, other: KeyPair | undefined): boolean {
  return other !== undefined && pair.keyId === other.keyId && pair.secret === other.secret;
}

/** Reads a file as text; injected so parsing stays free of I/O in tests. */
export type ReadText = (path: string) => string;
/** A file's st_mode (type and permission bits), as stat(2) gives it; injected like ReadText. */
export type ReadMode = (path: string) => number;

export interface ParsedArgs {
  /** Raw flag values by setting name, `true` for a bare boolean flag. */
  readonly values: Map<string, string | true>;
  readonly positionals: string[];
}

/**
 * Splits argv into known flags and positionals. `extraFlags` lets a
 * sub-command accept its own flags (`--key`, `--url`, `--room`).
 * Accepts `--flag value` and `--flag=value`; `--` ends the flags.
 */
export function parseArgs(argv: readonly string[], extraFlags: Record<string, 'string' | 'boolean'> = {}): ParsedArgs {
  const values = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--') {
      // The end of the flags, as in getopt: what follows is positional even if it starts with `--`.
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!argument.startsWith('--')) {
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
    // A list flag given twice adds up (--forward-url a --forward-url b).
    const earlier = values.get(flag);
    values.set(flag, kind === 'urls' && typeof earlier === 'string' ? `${earlier},${value}` : value);
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
    case 'optional-port': {
      if (raw.trim() === '') return null;
      const port = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : fail('a port number (1-65535)');
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
    case 'list': {
      const items = raw.split(',').map((item) => item.trim()).filter(Boolean);
      return items.length > 0 ? items : fail('a comma-separated list');
    }
    case 'urls': {
      const items = raw.split(/[,\s]+/).map((item) => item.trim()).filter(Boolean);
      for (const item of items) {
        let url: URL | undefined;
        try {
          url = new URL(item);
        } catch {
          url = undefined;
        }
        if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) fail('a list of http:// or https:// URLs');
      }
      return items;
    }
    case 'format':
      return raw === 'json' || raw === 'ndjson' ? raw : fail('"json" or "ndjson"');
    case 'fsync':
      return raw === 'never' || raw === 'always' ? raw : fail('"never" or "always"');
  }
}

/** One setting's value: the flag, else the environment variable, else the default. */
function resolveSetting(setting: Setting, parsed: ParsedArgs, env: ConfigInput['env']): unknown {
  const fromFlag = parsed.values.get(setting.flag);
  const fromEnv = env[setting.env];
  if (fromFlag !== undefined) return fromFlag === true ? true : convert(setting, fromFlag, setting.flag);
  if (fromEnv !== undefined && fromEnv !== '') return convert(setting, fromEnv, setting.env);
  return convert(setting, setting.default, setting.flag);
}

/** Where the daemon listens and whether it has a keys file: what `wait-healthy` and `reload` need to find it. */
export interface DaemonAddresses {
  readonly host: string;
  readonly port: number;
  readonly metricsHost: string;
  readonly metricsPort: number | null;
  readonly keysFile: string | null;
}

/**
 * The daemon's addresses as it reads them, without the rest of the
 * configuration (no key needed): `wait-healthy` and `reload` run beside the
 * daemon with its flags and environment but, under systemd, without its
 * credentials.
 */
export function loadAddresses(parsed: ParsedArgs, env: ConfigInput['env']): DaemonAddresses {
  const value = (name: string): unknown => resolveSetting(SETTINGS.find((candidate) => candidate.name === name)!, parsed, env);
  return {
    host: value('host') as string,
    port: value('port') as number,
    metricsHost: value('metricsHost') as string,
    metricsPort: value('metricsPort') as number | null,
    keysFile: value('keysFile') as string | null,
  };
}

export interface ConfigInput {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readText: ReadText;
  readonly readMode: ReadMode;
}

/**
 * Builds the daemon Config from flags (which win) and environment. Throws
 * ConfigError with one line naming the setting when anything is wrong,
 * including the fail-closed rule: no key and no --dev/--insecure-skip-verify.
 */
export function loadConfig({ argv, env, readText, readMode }: ConfigInput, parsed: ParsedArgs = parseArgs(argv)): Config {
  const result: Record<string, unknown> = {};
  for (const setting of SETTINGS) result[setting.name] = resolveSetting(setting, parsed, env);
  if ((result.maxConnections as number) < 1) throw new ConfigError('--max-connections: must be at least 1');
  if ((result.maxBodyMemory as number) < (result.maxBody as number)) throw new ConfigError('--max-body-memory: must be at least --max-body (one largest webhook must fit)');
  if (result.metricsPort === null && (parsed.values.has('--metrics-host') || (env.CONTROL_PLANE_METRICS_HOST ?? '') !== '')) {
    throw new ConfigError('--metrics-host: only applies with --metrics-port');
  }
  if (result.metricsPort !== null && result.metricsPort === result.port) throw new ConfigError(`--metrics-port: ${result.port} is already --port`);
  if ((result.logKeep as number) > 10_000) throw new ConfigError('--log-keep: at most 10000 rotated files');
  if (result.logFile === null) {
    for (const flag of ['--log-max-size', '--log-keep', '--log-compress', '--fsync']) {
      if (parsed.values.has(flag)) throw new ConfigError(`${flag}: only applies with --log-file`);
    }
  }

  const forwardUrls = result.forwardUrls as string[];
  if (forwardUrls.length === 0) {
    for (const flag of ['--forward-events', '--forward-format', '--forward-key', '--forward-spool', '--forward-spool-max', '--forward-batch-size', '--forward-linger']) {
      if (parsed.values.has(flag)) throw new ConfigError(`${flag}: only applies with --forward-url`);
    }
  } else {
    if ((result.forwardBatchSize as number) < 1) throw new ConfigError('--forward-batch-size: must be at least 1');
    if (result.forwardSpool === null) {
      const stateFile = result.stateFile as string | null;
      const stateDirectory = env.STATE_DIRECTORY?.split(':')[0];
      if (stateFile) result.forwardSpool = join(dirname(stateFile), 'forward-spool');
      else if (stateDirectory) result.forwardSpool = join(stateDirectory, 'forward-spool');
      else throw new ConfigError('--forward-spool: --forward-url needs a directory for its delivery spool (set --forward-spool, or --state-file)');
    }
  }

  result.store = loadStore(result, parsed, env, readText);
  delete result.storeUrl;

  const warnings: string[] = [];
  const keys = loadKeys(result, env, readText, readMode, warnings);
  if (forwardUrls.length > 0 && result.forwardKey !== null && !keys.some((key) => key.keyId === result.forwardKey)) {
    throw new ConfigError(`--forward-key: "${String(result.forwardKey)}" is not a configured key id`);
  }
  if (forwardUrls.length > 0 && keys.length === 0) throw new ConfigError('--forward-url: deliveries are signed with a LiveKit key; configure one (LIVEKIT_API_KEY, --keys-file or --dev)');
  if (keys.length === 0 && !result.insecureSkipVerify) {
    throw new ConfigError(
      'no LiveKit key configured: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or --keys-file, ' +
        '(or --dev for local development); refusing to accept unverifiable webhooks',
    );
  }
  result.keys = Object.freeze(keys);
  result.warnings = Object.freeze(warnings);
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

/**
 * All key pairs from the keys file, the environment (or systemd credential)
 * and --dev, deduplicated by key id. Every secret has at least 32 bytes but
 * --dev's own pair. Warnings (a keys file others can read) go to `warnings`.
 */
function loadKeys(result: Record<string, unknown>, env: ConfigInput['env'], readText: ReadText, readMode: ReadMode, warnings: string[]): KeyPair[] {
  const keys: KeyPair[] = [];
  const devPair = result.dev ? DEV_KEY : undefined;
  const add = (pair: KeyPair, source: string) => {
    const existing = keys.find((key) => key.keyId === pair.keyId);
    if (existing && existing.secret !== pair.secret) {
      throw new ConfigError(`${source}: key "${pair.keyId}" is configured twice with different secrets`);
    }
    if (!existing) keys.push(Object.freeze(pair));
  };

  const keysFile = result.keysFile as string | null;
  if (keysFile) {
    for (const pair of readKeysFile(keysFile, readText, devPair)) add(pair, '--keys-file');
    const warning = keysFilePermissionWarning(keysFile, readMode);
    if (warning) warnings.push(warning);
  }

  const apiKey = env.LIVEKIT_API_KEY?.trim();
  let apiSecret = env.LIVEKIT_API_SECRET?.trim();
  let secretSource = 'LIVEKIT_API_SECRET';
  if (apiKey && !apiSecret && env.CREDENTIALS_DIRECTORY) {
    const credentialPath = `${env.CREDENTIALS_DIRECTORY}/${CREDENTIAL_NAME}`;
    try {
      apiSecret = readText(credentialPath).trim();
    } catch (error) {
      throw new ConfigError(`LIVEKIT_API_SECRET: not set, and the credential ${credentialPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    secretSource = credentialPath;
  }
  if (apiKey && !apiSecret) throw new ConfigError('LIVEKIT_API_SECRET: LIVEKIT_API_KEY is set but its secret is not');
  if (!apiKey && apiSecret) throw new ConfigError('LIVEKIT_API_KEY: LIVEKIT_API_SECRET is set but its key is not');
  if (apiKey && apiSecret) {
    const pair = { keyId: apiKey, secret: apiSecret };
    if (!isSamePair(pair, devPair)) checkSecretLength(pair, secretSource);
    add(pair, 'LIVEKIT_API_KEY');
  }

  if (devPair) add({ ...devPair }, '--dev');
  return keys;
}

/** Group and others: read permission bits of st_mode. */
const READABLE_BY_GROUP = 0o040;
const READABLE_BY_OTHERS = 0o004;

/** The warning for a keys file that group or others may read (LiveKit refuses those), or undefined. */
function keysFilePermissionWarning(path: string, readMode: ReadMode): string | undefined {
  let mode: number;
  try {
    mode = readMode(path);
  } catch {
    // The file was just read: a mode that cannot be read is no reason to refuse it.
    return undefined;
  }
  const group = (mode & READABLE_BY_GROUP) !== 0;
  const others = (mode & READABLE_BY_OTHERS) !== 0;
  if (!group && !others) return undefined;
  const who = group && others ? 'group and others' : group ? 'group' : 'others';
  return `--keys-file ${path} is readable by ${who} (mode 0${(mode & 0o777).toString(8).padStart(3, '0')}); chmod 600 it (LiveKit refuses a key file others can read)`;
}

/** Reads and parses a keys file; used at start and on SIGHUP. `exempt`: --dev's pair when --dev is on. */
export function readKeysFile(path: string, readText: ReadText, exempt?: KeyPair): KeyPair[] {
  let text: string;
  try {
    text = readText(path);
  } catch (error) {
    throw new ConfigError(`--keys-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  return parseKeysFile(text, `--keys-file ${path}`, exempt);
}

/** A summary safe to print: key ids, never secrets. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { keys, warnings: _warnings, store, ...rest } = config;
  return { ...rest, store: store.description, key_ids: keys.map((key) => key.keyId) };
}

/** The settings table as `--help` text. */
export function settingsHelp(): string {
  return SETTINGS.map((setting) => {
    const defaultText = setting.default && setting.default !== 'false' ? ` (default ${setting.default})` : '';
    return `  ${setting.flag.padEnd(26)} ${setting.env.padEnd(36)} ${setting.help}${defaultText}`;
  }).join('\n');
}
