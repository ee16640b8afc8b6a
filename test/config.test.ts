import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, loadAddresses, parseArgs, parseDuration, parseKeysFile, parseSize, SETTINGS } from '../src/config.ts';

/** Secrets of 32 bytes and more, as LiveKit requires. */
const SECRET = 'a-secret-of-at-least-32-bytes-0123456789';
const OLD_SECRET = 'the-old-secret-of-at-least-32-bytes-012345';
const NEW_SECRET = 'the-new-secret-of-at-least-32-bytes-543210';
const KEY_ENV = { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: SECRET };
const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
};
/** Every file owner-only unless a test says otherwise. */
const ownerOnly = (_path: string): number => 0o100600;
const load = (argv: string[], env: Record<string, string> = KEY_ENV, readText = noFiles, readMode = ownerOnly) => loadConfig({ argv, env, readText, readMode });
const refusal = (argv: string[], env: Record<string, string> = KEY_ENV, readText = noFiles, readMode = ownerOnly): string => {
  try {
    load(argv, env, readText, readMode);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail('expected a ConfigError');
};

describe('defaults and precedence', () => {
  test('defaults follow the settings table of docs/contract.md#configuration', () => {
    const config = load([]);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8000);
    assert.equal(config.logMaxSize, 100 * 1024 * 1024);
    assert.equal(config.logKeep, 14);
    assert.equal(config.fsync, 'never');
    assert.equal(config.maxBody, 1024 * 1024);
    assert.equal(config.clockToleranceMs, 60_000);
    assert.equal(config.logFile, null);
    assert.equal(config.stateFile, null);
    assert.deepEqual(config.keys, [{ keyId: 'APIk', secret: SECRET }]);
    assert.deepEqual(config.warnings, []);
  });

  test('environment sets values, flags win over environment', () => {
    const config = load(['--port', '9001', '--max-body=2K'], { ...KEY_ENV, PORT: '9000', HOST: '127.0.0.1', CONTROL_PLANE_MAX_BODY: '5M' });
    assert.equal(config.port, 9001);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.maxBody, 2048);
  });

  test('boolean settings take a bare flag or 1/0 in the environment', () => {
    assert.equal(load(['--redact-phone-numbers']).redactPhoneNumbers, true);
    assert.equal(load([], { ...KEY_ENV, CONTROL_PLANE_REDACT_PHONE_NUMBERS: '1' }).redactPhoneNumbers, true);
    assert.equal(load([], { ...KEY_ENV, CONTROL_PLANE_REDACT_PHONE_NUMBERS: '0' }).redactPhoneNumbers, false);
  });

  test('the config is frozen', () => {
    assert.ok(Object.isFrozen(load([])));
  });
});

describe('keys', () => {
  test('--dev adds devkey/secret and needs no other key', () => {
    assert.deepEqual(load(['--dev'], {}).keys, [{ keyId: 'devkey', secret: 'secret' }]);
    assert.equal(load([], { CONTROL_PLANE_DEV: '1' }).keys.length, 1);
  });

  test('fails closed with no key and no --dev/--insecure-skip-verify', () => {
    assert.match(refusal([], {}), /no LiveKit key configured/);
  });

  test('--insecure-skip-verify may start with no key', () => {
    assert.equal(load(['--insecure-skip-verify'], {}).insecureSkipVerify, true);
  });

  test('reads the secret from $CREDENTIALS_DIRECTORY when LIVEKIT_API_SECRET is absent', () => {
    const files = (path: string) => (path === '/run/credentials/cp/livekit_api_secret' ? `${SECRET}\n` : noFiles(path));
    const config = load([], { LIVEKIT_API_KEY: 'APIk', CREDENTIALS_DIRECTORY: '/run/credentials/cp' }, files);
    assert.deepEqual(config.keys, [{ keyId: 'APIk', secret: SECRET }]);
  });

  test('a key without its secret, or a secret without its key, is refused', () => {
    assert.match(refusal([], { LIVEKIT_API_KEY: 'APIk' }), /^LIVEKIT_API_SECRET/);
    assert.match(refusal([], { LIVEKIT_API_SECRET: SECRET }), /^LIVEKIT_API_KEY/);
  });

  test('--keys-file holds several pairs, with comments and blank lines', () => {
    const files = (path: string) => (path === '/etc/keys' ? `# rotation\nAPIold: ${OLD_SECRET}\n\nAPInew:  ${NEW_SECRET}  \n` : noFiles(path));
    const config = load(['--keys-file', '/etc/keys'], {}, files);
    assert.deepEqual(config.keys.map((key) => key.keyId), ['APIold', 'APInew']);
    assert.equal(config.keys[1]!.secret, NEW_SECRET);
  });

  test('a malformed keys file names the line, never the secret', () => {
    assert.throws(() => parseKeysFile(`APIa: ${SECRET}\nno colon here\n`, 'keys'), /keys line 2: expected "key: secret"/);
    assert.throws(() => parseKeysFile(`APIa: ${SECRET}\nAPIa: ${OLD_SECRET}\n`, 'keys'), /listed twice/);
    assert.throws(() => parseKeysFile('# only comments\n', 'keys'), /no "key: secret" line/);
    const message = refusal(['--keys-file', '/nope'], {});
    assert.match(message, /--keys-file: cannot read \/nope \(ENOENT\)/);
  });
});

describe('the keys file is read as LiveKit reads its own (YAML key: secret)', () => {
  const accepted: Array<[string, string, string]> = [
    ['a plain pair', `APIkey: ${SECRET}`, SECRET],
    ['a comment after the secret', `APIkey: ${SECRET} # rotated 2026-11`, SECRET],
    ['a comment after a tab', `APIkey: ${SECRET}\t# note`, SECRET],
    ['a # inside the secret', `APIkey: ${SECRET}#not-a-comment`, `${SECRET}#not-a-comment`],
    ['a double-quoted secret', `APIkey: "${SECRET} #1" # comment`, `${SECRET} #1`],
    ['a single-quoted secret', `APIkey: '${SECRET} it''s' # comment`, `${SECRET} it's`],
    ['escapes in double quotes', `APIkey: "${SECRET}\\t\\"\\\\\\u00e9"`, `${SECRET}\t"\\é`],
    ['a quoted key', `"APIkey": ${SECRET}`, SECRET],
    ['spaces around', `   APIkey  :   ${SECRET}   `, SECRET],
    ['Windows line ends', `APIkey: ${SECRET}\r`, SECRET],
    ['a document start marker', `---\nAPIkey: ${SECRET}`, SECRET],
    ['a byte order mark', `\ufeffAPIkey: ${SECRET}`, SECRET],
  ];
  for (const [name, text, secret] of accepted) {
    test(`${name}: ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseKeysFile(text, 'keys'), [{ keyId: 'APIkey', secret }]);
    });
  }

  const refused: Array<[string, string, RegExp]> = [
    ['no space after the colon (YAML reads one scalar)', `APIkey:${SECRET}`, /keys line 1: expected "key: secret"/],
    ['an empty secret', 'APIkey:', /keys line 1: key "APIkey" has no secret/],
    ['only a comment as the secret', 'APIkey: # nothing', /key "APIkey" has no secret/],
    ['a null secret', 'APIkey: ~', /key "APIkey" has no secret/],
    ['an unterminated quote', `APIkey: "${SECRET}`, /keys line 1: unterminated "/],
    ['text after a quoted secret', `APIkey: "${SECRET}" junk`, /keys line 1: unexpected text after the quoted secret/],
    ['a second colon in a plain secret', `APIkey: ${SECRET}: more`, /keys line 1: .*quote the secret/],
    ['a nested mapping (a livekit.yaml pasted in)', `keys:\n  APIkey: ${SECRET}`, /keys line 1: key "keys" has no secret/],
    ['a YAML list', `- APIkey: ${SECRET}`, /keys line 1: expected "key: secret"/],
    ['a flow mapping', `{APIkey: ${SECRET}}`, /keys line 1: expected "key: secret"/],
    ['a key with a space', `API key: ${SECRET}`, /keys line 1: a key id has no spaces/],
  ];
  for (const [name, text, pattern] of refused) {
    test(`refuses ${name}`, () => {
      assert.throws(() => parseKeysFile(text, 'keys'), pattern);
      try {
        parseKeysFile(text, 'keys');
      } catch (error) {
        assert.ok(!(error as Error).message.includes(SECRET), 'the message never quotes the secret');
      }
    });
  }
});

describe('secrets shorter than 32 bytes are refused', () => {
  test('in the keys file, naming the key and never the secret', () => {
    const files = (path: string) => (path === '/etc/keys' ? `APIgood: ${SECRET}\nAPIx: x\n` : noFiles(path));
    const message = refusal(['--keys-file', '/etc/keys'], {}, files);
    assert.match(message, /^--keys-file \/etc\/keys line 2: the secret of key "APIx" is 1 byte; LiveKit requires at least 32/);
    assert.doesNotMatch(message, /: x\b/);
  });

  test('a comment no longer lengthens a short secret', () => {
    const files = (path: string) => (path === '/etc/keys' ? 'APIkey: short # a comment that used to become part of it\n' : noFiles(path));
    assert.match(refusal(['--keys-file', '/etc/keys'], {}, files), /key "APIkey" is 5 bytes/);
  });

  test('counted in UTF-8 bytes: 31 is refused, 32 accepted', () => {
    assert.match(refusal([], { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'x'.repeat(31) }), /^LIVEKIT_API_SECRET: the secret of key "APIk" is 31 bytes/);
    assert.equal(load([], { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'x'.repeat(32) }).keys[0]!.secret.length, 32);
    assert.equal(load([], { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'é'.repeat(16) }).keys.length, 1, '16 × 2 bytes');
  });

  test('from the systemd credential', () => {
    const files = (path: string) => (path === '/run/credentials/cp/livekit_api_secret' ? 'short\n' : noFiles(path));
    assert.match(refusal([], { LIVEKIT_API_KEY: 'APIk', CREDENTIALS_DIRECTORY: '/run/credentials/cp' }, files), /^\/run\/credentials\/cp\/livekit_api_secret: the secret of key "APIk" is 5 bytes/);
  });

  test("--dev's devkey/secret stays the one exception", () => {
    assert.deepEqual(load(['--dev'], {}).keys, [{ keyId: 'devkey', secret: 'secret' }]);
    const files = (path: string) => (path === '/etc/keys' ? 'devkey: secret\n' : noFiles(path));
    assert.equal(load(['--dev', '--keys-file', '/etc/keys'], {}, files).keys.length, 1, 'the same pair in a keys file, with --dev');
    assert.match(refusal(['--keys-file', '/etc/keys'], {}, files), /key "devkey" is 6 bytes/, 'without --dev it is just a short secret');
    assert.match(refusal(['--dev'], { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'secret' }), /^LIVEKIT_API_SECRET/, 'only devkey/secret itself');
  });
});

describe('a keys file readable by group or others gives a warning', () => {
  const files = (path: string) => (path === '/etc/keys' ? `APIkey: ${SECRET}\n` : noFiles(path));
  for (const [mode, warns] of [[0o100600, false], [0o100400, false], [0o100640, true], [0o100604, true], [0o100644, true], [0o100660, true], [0o100620, false]] as const) {
    test(`mode ${(mode & 0o777).toString(8)}: ${warns ? 'a warning' : 'no warning'}`, () => {
      const config = load(['--keys-file', '/etc/keys'], {}, files, (path) => {
        assert.equal(path, '/etc/keys');
        return mode;
      });
      assert.equal(config.warnings.length, warns ? 1 : 0);
      if (warns) assert.match(config.warnings[0]!, /^--keys-file \/etc\/keys is readable by (group|others|group and others) \(mode 0\d{3}\); chmod 600 it/);
    });
  }

  test('a mode that cannot be read gives no warning and no failure (reading the file decides)', () => {
    const config = load(['--keys-file', '/etc/keys'], {}, files, () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    });
    assert.deepEqual(config.warnings, []);
  });
});

describe('refusals name the setting', () => {
  const cases: Array<[string[], Record<string, string> | undefined, RegExp]> = [
    [['--bogus'], undefined, /unknown flag --bogus/],
    [['--port', '70000'], undefined, /^--port: "70000" is not a port/],
    [['--port'], undefined, /^--port needs a value/],
    [[], { ...KEY_ENV, PORT: 'http' }, /^PORT: "http"/],
    [['--max-body', '1T'], undefined, /^--max-body: "1T" is not a size/],
    [['--max-body', '0'], undefined, /^--max-body/],
    [['--clock-tolerance', '60'], undefined, /^--clock-tolerance: "60" is not a duration/],
    [['--fsync', 'sometimes', '--log-file', '/tmp/x.log'], undefined, /^--fsync: "sometimes"/],
    [['--log-keep', 'many', '--log-file', '/tmp/x.log'], undefined, /^--log-keep/],
    [['--log-compress'], undefined, /^--log-compress: only applies with --log-file/],
    [[], { ...KEY_ENV, CONTROL_PLANE_DEV: 'maybe' }, /^CONTROL_PLANE_DEV: "maybe" is not a boolean/],
  ];
  for (const [argv, env, pattern] of cases) {
    test(`${argv.join(' ') || JSON.stringify(env)} → ${pattern}`, () => {
      assert.match(refusal(argv, env ?? KEY_ENV), pattern);
    });
  }
});

test('sizes and durations take the documented units', () => {
  assert.equal(parseSize('512K'), 512 * 1024);
  assert.equal(parseSize('100M'), 100 * 1024 * 1024);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('42'), 42);
  assert.equal(parseSize('1.5M'), null);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('60s'), 60_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), null);
});

test('every setting has a flag, an environment variable and help text', () => {
  for (const setting of SETTINGS) {
    assert.match(setting.flag, /^--[a-z-]+$/);
    assert.match(setting.env, /^[A-Z_]+$/);
    assert.ok(setting.help.length > 5);
  }
});

describe('the command line: -- and the metrics listener', () => {
  test('-- ends the flags: what follows is positional, even when it starts with --', () => {
    const parsed = parseArgs(['--port', '9000', '--', '--log-file', 'body.json']);
    assert.equal(parsed.values.get('--port'), '9000');
    assert.ok(!parsed.values.has('--log-file'));
    assert.deepEqual(parsed.positionals, ['--log-file', 'body.json']);
    assert.deepEqual(parseArgs(['--']).positionals, []);
  });

  test('--metrics-port takes /metrics off the public port; --metrics-host defaults to 127.0.0.1', () => {
    const plain = load([]);
    assert.equal(plain.metricsPort, null);
    const separate = load(['--metrics-port', '9100']);
    assert.equal(separate.metricsPort, 9100);
    assert.equal(separate.metricsHost, '127.0.0.1');
    const fromEnv = load([], { ...KEY_ENV, CONTROL_PLANE_METRICS_PORT: '9101', CONTROL_PLANE_METRICS_HOST: '10.0.0.5' });
    assert.equal(fromEnv.metricsPort, 9101);
    assert.equal(fromEnv.metricsHost, '10.0.0.5');
  });

  test('metrics settings that cannot work are refused', () => {
    assert.match(refusal(['--metrics-host', '0.0.0.0']), /^--metrics-host: only applies with --metrics-port/);
    assert.match(refusal([], { ...KEY_ENV, CONTROL_PLANE_METRICS_HOST: '::1' }), /^--metrics-host: only applies with --metrics-port/);
    assert.match(refusal(['--metrics-port', '8000']), /^--metrics-port: 8000 is already --port/);
    assert.match(refusal(['--metrics-port', '0']), /^--metrics-port: "0" is not a port number \(1-65535\)/);
    assert.match(refusal(['--metrics-port', 'x']), /--metrics-port/);
  });

  test('loadAddresses reads the addresses and the keys file like the daemon, without needing a key', () => {
    assert.deepEqual(loadAddresses(parseArgs([]), {}), { host: '0.0.0.0', port: 8000, metricsHost: '127.0.0.1', metricsPort: null, keysFile: null });
    assert.deepEqual(loadAddresses(parseArgs(['--port', '9001', '--metrics-port', '9100']), { HOST: '127.0.0.2', PORT: '9999', LIVEKIT_KEYS_FILE: '/k' }), {
      host: '127.0.0.2',
      port: 9001,
      metricsHost: '127.0.0.1',
      metricsPort: 9100,
      keysFile: '/k',
    });
  });
});

test("README's configuration table lists every setting with its environment variable (one source of truth)", async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Command line'));
  for (const setting of SETTINGS) {
    const row = table.split('\n').find((line) => line.startsWith(`| \`${setting.flag}\` |`));
    assert.ok(row, `README's configuration table has no row for ${setting.flag}`);
    assert.ok(row.includes(`\`${setting.env}`), `${setting.flag}: README does not name ${setting.env}`);
  }
});

test('--forward-url keeps its spool beside the state file (a relative one too), or in systemd\'s state directory, or asks for one', () => {
  const env = { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'a-secret-of-at-least-32-bytes-0123456789' };
  const spoolOf = (argv: string[], extra: Record<string, string> = {}) => loadConfig({ argv, env: { ...env, ...extra }, readText: noFiles, readMode: ownerOnly }).forwardSpool;
  assert.equal(spoolOf(['--forward-url', 'http://127.0.0.1:9/hooks', '--state-file', '/var/lib/cp/state.json']), '/var/lib/cp/forward-spool');
  assert.equal(spoolOf(['--forward-url', 'http://127.0.0.1:9/hooks', '--state-file', 'state.json']), 'forward-spool');
  assert.equal(spoolOf(['--forward-url', 'http://127.0.0.1:9/hooks'], { STATE_DIRECTORY: '/var/lib/control-plane' }), '/var/lib/control-plane/forward-spool');
  assert.throws(() => spoolOf(['--forward-url', 'http://127.0.0.1:9/hooks']), /--forward-spool/);
  assert.throws(() => spoolOf(['--forward-url', 'ftp://example.com/x']), /http:\/\/ or https:\/\//);
  assert.throws(() => spoolOf(['--forward-events', 'call.*']), /only applies with --forward-url/);
});
