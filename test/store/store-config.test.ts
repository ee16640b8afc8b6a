// --store and --instance-id: the URL forms, where the password may come
// from, the combinations refused at start, and that no summary shows the
// password.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.ts';
import { parseStoreSetting } from '../../src/store/store-url.ts';

const KEY_ENV = { LIVEKIT_API_KEY: 'APIk', LIVEKIT_API_SECRET: 'a-secret-of-at-least-32-bytes-0123456789' };
const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
};
const ownerOnly = (): number => 0o100600;
const load = (argv: string[], env: Record<string, string> = KEY_ENV, readText = noFiles) => loadConfig({ argv, env, readText, readMode: ownerOnly });
const refusal = (argv: string[], env: Record<string, string> = KEY_ENV): string => {
  try {
    load(argv, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail('expected a ConfigError');
};

describe('--store URLs', () => {
  test('memory is the default', () => {
    assert.equal(load([]).store.kind, 'memory');
    assert.equal(load([]).instanceId, null);
  });

  test('redis:// and rediss:// with user, password, port and database', () => {
    const store = parseStoreSetting('redis://cp:s%40cret@redis.internal:6380/3');
    assert.deepEqual(store, { kind: 'redis', description: 'redis://redis.internal:6380/3', tls: false, host: 'redis.internal', port: 6380, db: 3, username: 'cp', password: 's@cret' });
    const tls = parseStoreSetting('rediss://:pw@[::1]');
    assert.ok(!('error' in tls) && tls.kind === 'redis');
    assert.equal(tls.description, 'rediss://[::1]:6379/0');
    assert.equal(tls.tls, true);
    assert.equal(tls.host, '::1');
    assert.equal(tls.username, null);
    assert.equal(tls.password, 'pw');
  });

  test('anything else is refused, naming the setting and never quoting the value', () => {
    for (const bad of ['postgres://x', 'redis://', 'redis://host/db', 'redis://host:6379/0?x=1', 'memorie']) {
      const message = refusal(['--store', `${bad.replace('x', 'hunter2')}`]);
      assert.match(message, /^--store: /);
      assert.doesNotMatch(message, /hunter2/);
    }
    assert.match(refusal([], { ...KEY_ENV, CONTROL_PLANE_STORE: 'http://redis:6379' }), /^CONTROL_PLANE_STORE: /);
  });
});

describe('the store password', () => {
  test('from the URL first, then CONTROL_PLANE_STORE_PASSWORD, then the credential store_password', () => {
    const credentials = (path: string): string => {
      if (path === '/run/credentials/cp/store_password') return 'from-credential\n';
      return noFiles(path);
    };
    const env = { ...KEY_ENV, CREDENTIALS_DIRECTORY: '/run/credentials/cp' };
    const storeOf = (argv: string[], extra: Record<string, string> = {}) => {
      const store = load(argv, { ...env, ...extra }, credentials).store;
      assert.equal(store.kind, 'redis');
      return store.kind === 'redis' ? store.password : null;
    };
    assert.equal(storeOf(['--store', 'redis://:from-url@h:1']), 'from-url');
    assert.equal(storeOf(['--store', 'redis://h:1'], { CONTROL_PLANE_STORE_PASSWORD: 'from-env' }), 'from-env');
    assert.equal(storeOf(['--store', 'redis://h:1']), 'from-credential');
    assert.equal(load(['--store', 'redis://h:1']).store.kind === 'redis' && (load(['--store', 'redis://h:1']).store as { password: string | null }).password, null);
  });

  test('never in the check-config summary', () => {
    const config = load(['--store', 'redis://user:hunter2@h:6379/1'], { ...KEY_ENV, CONTROL_PLANE_STORE_PASSWORD: 'other' });
    const summary = JSON.stringify(describeConfig(config));
    assert.doesNotMatch(summary, /hunter2/);
    assert.match(summary, /"store":"redis:\/\/h:6379\/1"/);
  });
});

describe('impossible combinations', () => {
  test('--state-file with a shared store', () => {
    assert.match(refusal(['--store', 'redis://h:6379', '--state-file', '/var/lib/cp/state.json']), /^--state-file: not with a shared store/);
    // With the memory store it is the embedded store's journal, as before.
    assert.equal(load(['--state-file', '/tmp/x.json']).stateFile, '/tmp/x.json');
  });

  test('--instance-id takes a printable name', () => {
    assert.equal(load(['--instance-id', 'cp-a']).instanceId, 'cp-a');
    assert.equal(load([], { ...KEY_ENV, CONTROL_PLANE_INSTANCE_ID: 'cp-b' }).instanceId, 'cp-b');
    assert.match(refusal(['--instance-id', 'a\u0007b']), /^--instance-id: /);
  });
});
