// The TLS recipe, packaging/nginx/control-plane.conf, run by Debian's nginx
// with a self-signed certificate (openssl) in front of control-plane on
// 127.0.0.1: signed webhooks arrive through it byte for byte (undici trusts
// that certificate), and nothing but /webhook is reachable through it.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { type Daemon, freePort, OTHER_KEY, REPO_ROOT, startDaemon, TEST_KEY } from '../helpers/daemon.ts';
import { run } from './sandbox.ts';

const RECIPE = `${REPO_ROOT}packaging/nginx/control-plane.conf`;

function unavailable(): string | null {
  for (const tool of ['nginx', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0) return `needs ${tool} (Debian: apt-get install ${tool === 'nginx' ? 'nginx-light' : tool})`;
  }
  return null;
}

/** The recipe with this test's ports and certificate; fails when a value it replaces is no longer in the recipe. */
function adapt(recipe: string, replacements: Array<[string, string]>): string {
  let text = recipe;
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `the recipe no longer contains ${JSON.stringify(from)}`);
    text = text.replaceAll(from, to);
  }
  return text;
}

describe('TLS with nginx in front (packaging/nginx/control-plane.conf)', { skip: unavailable() ?? false }, () => {
  let directory = '';
  let daemon: Daemon;
  let nginx: ChildProcess;
  let nginxExited: Promise<unknown>;
  let base = '';
  let agent: Agent;
  let certificate = '';

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'control-plane-nginx-'));
    // nginx's workers run as an unprivileged user when nginx starts as root.
    chmodSync(directory, 0o755);
    const key = join(directory, 'key.pem');
    const cert = join(directory, 'cert.pem');
    const made = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert]);
    assert.equal(made.code, 0, made.stderr);
    certificate = readFileSync(cert, 'utf8');

    // control-plane as the recipe expects it: HOST=127.0.0.1 (startDaemon's --host).
    daemon = await startDaemon();
    const port = await freePort();
    const server = adapt(readFileSync(RECIPE, 'utf8'), [
      ['server 127.0.0.1:8000;', `server 127.0.0.1:${daemon.port};`],
      ['    listen 443 ssl http2;\n', `    listen 127.0.0.1:${port} ssl http2;\n`],
      ['    listen [::]:443 ssl http2;\n', ''],
      ['/etc/letsencrypt/live/control-plane.example.com/fullchain.pem', cert],
      ['/etc/letsencrypt/live/control-plane.example.com/privkey.pem', key],
    ]);
    writeFileSync(join(directory, 'control-plane.conf'), server);
    const temp = (name: string) => `${name}_temp_path ${join(directory, name)};`;
    writeFileSync(
      join(directory, 'nginx.conf'),
      `worker_processes 1;\npid ${join(directory, 'nginx.pid')};\nerror_log ${join(directory, 'error.log')} warn;\ndaemon off;\nevents { worker_connections 256; }\n` +
        `http {\n  access_log ${join(directory, 'access.log')};\n  ${temp('client_body')}\n  ${temp('proxy')}\n  ${temp('fastcgi')}\n  ${temp('uwsgi')}\n  ${temp('scgi')}\n  include ${join(directory, 'control-plane.conf')};\n}\n`,
    );
    const check = await run('nginx', ['-t', '-q', '-e', join(directory, 'error.log'), '-c', join(directory, 'nginx.conf')]);
    assert.equal(check.code, 0, `nginx -t:\n${check.stderr}${readFileSync(join(directory, 'error.log'), 'utf8')}`);
    nginx = spawn('nginx', ['-e', join(directory, 'error.log'), '-c', join(directory, 'nginx.conf')], { stdio: 'ignore' });
    nginxExited = new Promise((resolve) => nginx.on('exit', resolve));

    base = `https://localhost:${port}`;
    agent = new Agent({ connect: { ca: certificate } });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ready = await request(`${base}/`, { dispatcher: agent }).then(
        async (response) => (await response.body.dump(), true),
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) assert.fail(`nginx did not answer: ${readFileSync(join(directory, 'error.log'), 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }, { timeout: 60_000 });

  after(async () => {
    await agent?.close();
    nginx?.kill('SIGQUIT');
    await nginxExited;
    await daemon?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  const post = async (body: string, authorization: string) => {
    const response = await request(`${base}/webhook`, {
      dispatcher: agent,
      method: 'POST',
      body,
      headers: { 'content-type': 'application/webhook+json', authorization },
    });
    return { status: response.statusCode, body: await response.body.text() };
  };

  it('passes signed webhooks through, byte for byte (an odd spacing and a trailing newline included)', async () => {
    const bodies = [
      encodeBody(sampleWebhook('room_started', 'tls-room')),
      `${JSON.stringify(sampleWebhook('participant_joined', 'tls-room')).replaceAll('","', '", "')}\n`,
    ];
    for (const body of bodies) {
      const answer = await post(body, signWebhook(body, TEST_KEY));
      assert.equal(answer.status, 200, answer.body);
    }
    const lines = await daemon.waitForLine((line) => line.event_type === 'livekit.participant.joined');
    assert.equal(lines.room_name, 'tls-room');
  });

  it("passes control-plane's own refusals through (a wrong key: 401 as JSON)", async () => {
    const body = encodeBody(sampleWebhook('room_started', 'tls-forged'));
    const answer = await post(body, signWebhook(body, OTHER_KEY));
    assert.equal(answer.status, 401);
    assert.deepEqual(JSON.parse(answer.body), { error: 'unknown_key' });
  });

  it('exposes nothing but /webhook: /health and /metrics are 404 at the proxy', async () => {
    for (const path of ['/health', '/metrics', '/', '/webhook/../metrics']) {
      const response = await request(`${base}${path}`, { dispatcher: agent });
      assert.equal(response.statusCode, 404, path);
      assert.deepEqual(await response.body.json(), { error: 'not_found' });
    }
    // control-plane itself never saw those requests.
    assert.ok(!daemon.lines().some((line) => line.event_type === 'webhook.rejected' && line.reason === 'not_found'));
  });

  it('refuses to talk to a client that does not trust the certificate (it is TLS, not plain HTTP)', async () => {
    await assert.rejects(request(`${base}/webhook`, { method: 'POST', body: '{}' }), /self.signed|certificate/i);
  });
});
