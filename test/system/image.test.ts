// `npm run image` (packaging/image/image.mjs): the OCI archive is unpacked
// by hand (index.json → manifest → config and layers, as the OCI image
// layout specifies) and its entrypoint runs in a chroot as the image's user
// with the image's environment, the way a container runtime would start it.
// (`podman run` cannot set rlimits on these machines, so the runtime itself
// is not used.) A signed webhook goes to it; the health check the Docker
// archive declares runs against it.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { freePort, REPO_ROOT, TEST_KEY } from '../helpers/daemon.ts';
import { run } from './sandbox.ts';

const packageJson = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string };
const OCI_ARCHIVE = `${REPO_ROOT}dist/control-plane_${packageJson.version}_oci.tar`;
/** By its path: the image's environment, which the commands get, has no PATH. */
const CHROOT = '/usr/sbin/chroot';
const DOCKER_ARCHIVE = `${REPO_ROOT}dist/control-plane_${packageJson.version}_docker.tar.gz`;

function unavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (buildah, chroot); run `sudo npm run test:system`';
  if (spawnSync('sh', ['-c', 'command -v buildah']).status !== 0) return 'needs buildah (Debian: apt-get install buildah)';
  return null;
}

interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly config: {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    Healthcheck?: { Test?: string[] };
    StopSignal?: string;
  };
}

describe('the container image (npm run image)', { skip: unavailable() ?? false }, () => {
  let scratch = '';
  let rootfs = '';
  let config: ImageConfig;

  before(async () => {
    const build = await run(process.execPath, ['build.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000 });
    assert.equal(build.code, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
    const image = await run(process.execPath, ['packaging/image/image.mjs'], { cwd: REPO_ROOT, timeoutMs: 280_000 });
    assert.equal(image.code, 0, `npm run image failed:\n${image.stdout}\n${image.stderr}`);
    scratch = mkdtempSync(join(tmpdir(), 'control-plane-image-'));
    rootfs = join(scratch, 'rootfs');
  }, { timeout: 600_000 });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('is an OCI image layout: index → manifest → config and gzip layers, with the labels, user, port and volume', async (t) => {
    t.diagnostic(`${OCI_ARCHIVE.slice(REPO_ROOT.length)}: ${(statSync(OCI_ARCHIVE).size / 1024 / 1024).toFixed(1)} MB`);
    const layout = join(scratch, 'layout');
    mkdirSync(layout);
    assert.equal((await run('tar', ['-xf', OCI_ARCHIVE, '-C', layout])).code, 0);
    assert.deepEqual(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const blob = (digest: string): Buffer => readFileSync(join(layout, 'blobs', ...digest.split(':')));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], `control-plane:${packageJson.version}`);
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString('utf8'));
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    config = JSON.parse(blob(manifest.config.digest).toString('utf8')) as ImageConfig;
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.os, 'linux');
    assert.equal(config.config.User, '65532:65532', 'runs as a non-root user');
    assert.deepEqual(config.config.Entrypoint, ['/usr/bin/control-plane']);
    assert.deepEqual(config.config.Cmd, ['serve']);
    assert.ok(config.config.Env?.includes('PORT=8000'));
    assert.ok(config.config.Env?.includes('CONTROL_PLANE_STATE_FILE=/var/lib/control-plane/state.json'));
    assert.deepEqual(Object.keys(config.config.ExposedPorts ?? {}), ['8000/tcp']);
    assert.deepEqual(Object.keys(config.config.Volumes ?? {}), ['/var/lib/control-plane']);
    const labels = config.config.Labels ?? {};
    assert.equal(labels['org.opencontainers.image.title'], 'control-plane');
    assert.equal(labels['org.opencontainers.image.version'], packageJson.version);
    assert.equal(labels['org.opencontainers.image.licenses'], 'MIT');
    assert.match(labels['org.opencontainers.image.created'] ?? '', /^\d{4}-\d\d-\d\dT/);

    // From scratch: one layer, only the executable, its libraries and a few files of /etc.
    assert.equal(manifest.layers.length, 1);
    for (const layer of manifest.layers) {
      assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
      mkdirSync(rootfs, { recursive: true });
      const extracted = await run('tar', ['-xzf', join(layout, 'blobs', ...layer.digest.split(':')), '-C', rootfs, '--numeric-owner']);
      assert.equal(extracted.code, 0, extracted.stderr);
    }
    const listing = (await run('find', ['.', '-type', 'f'], { cwd: rootfs })).stdout.split('\n').filter(Boolean).sort();
    t.diagnostic(`files: ${listing.join(' ')}`);
    assert.ok(listing.includes('./usr/bin/control-plane'));
    assert.ok(listing.some((path) => /libatomic\.so\.1$/.test(path)), 'libatomic is in the image');
    assert.ok(listing.every((path) => /^\.\/(usr\/bin\/control-plane|etc\/(passwd|group|nsswitch\.conf)|(usr\/)?lib(64|\/x86_64-linux-gnu)?\/[^/]+\.so[.\d]*)$/.test(path)), `unexpected files: ${listing.join(' ')}`);
    const state = statSync(join(rootfs, 'var/lib/control-plane'));
    assert.equal(state.uid, 65532, 'the state volume belongs to the image user');
  });

  it('the Docker archive is the same image and carries the health check: wait-healthy on /health', async () => {
    const dockerDir = join(scratch, 'docker');
    mkdirSync(dockerDir);
    const tarPath = join(scratch, 'docker.tar');
    writeFileSync(tarPath, gunzipSync(readFileSync(DOCKER_ARCHIVE)));
    assert.equal((await run('tar', ['-xf', tarPath, '-C', dockerDir])).code, 0);
    const [entry] = JSON.parse(readFileSync(join(dockerDir, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[] }>;
    assert.ok(entry!.RepoTags.some((tag) => tag.endsWith(`/control-plane:${packageJson.version}`)), `tags: ${entry!.RepoTags}`);
    const dockerConfig = JSON.parse(readFileSync(join(dockerDir, entry!.Config), 'utf8')) as ImageConfig;
    assert.deepEqual(dockerConfig.config.Healthcheck?.Test, ['CMD', '/usr/bin/control-plane', 'wait-healthy', '--timeout', '3s']);
    assert.equal(dockerConfig.config.User, config.config.User);
    assert.deepEqual(dockerConfig.config.Entrypoint, config.config.Entrypoint);
  });

  it('runs in a chroot as the image user: --version, then serves on $PORT, takes a signed webhook, passes its health check, keeps state in the volume', { timeout: 60_000 }, async () => {
    const chroot = (args: string[], env: Record<string, string>) =>
      run(CHROOT, ['--userspec=65532:65532', rootfs, ...args], { env, timeoutMs: 20_000 });
    const imageEnv = Object.fromEntries((config.config.Env ?? []).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));

    const version = await chroot([...config.config.Entrypoint!, '--version'], imageEnv);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, new RegExp(`^control-plane ${packageJson.version.replaceAll('.', '\\.')} \\(node v[\\d.]+\\)\\n$`));

    // As a platform starts it: its own PORT, the secret in the environment.
    const port = await freePort();
    const env = { ...imageEnv, PORT: String(port), LIVEKIT_API_KEY: TEST_KEY.keyId, LIVEKIT_API_SECRET: TEST_KEY.secret };
    const daemon = spawn(CHROOT, ['--userspec=65532:65532', rootfs, ...config.config.Entrypoint!, ...config.config.Cmd!], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    daemon.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
    try {
      // The image's health check, run the way the runtime would (inside, with the image's environment).
      const health = await chroot(['/usr/bin/control-plane', 'wait-healthy', '--timeout', '20s'], { ...imageEnv, PORT: String(port) });
      assert.equal(health.code, 0, `${health.stdout}${health.stderr}\n${errors}`);
      const sent = await chroot(['/usr/bin/control-plane', 'send', '--url', `http://127.0.0.1:${port}/webhook`, 'participant_joined', '--room', 'image-room'], env);
      assert.equal(sent.code, 0, `${sent.stdout}${sent.stderr}`);
      assert.match(sent.stdout, /^200 /);
    } finally {
      daemon.kill('SIGTERM');
    }
    assert.equal(await exited, 0, errors);
    const lines = output.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines[0]!.event_type, 'control_plane.started');
    assert.equal(lines[0]!.listen, `0.0.0.0:${port}`);
    assert.ok(lines.some((line) => line.event_type === 'livekit.participant.joined' && line.room_name === 'image-room'));
    assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
    assert.ok(existsSync(join(rootfs, 'var/lib/control-plane/state.json')), 'the state file is written in the volume');
  });
});
