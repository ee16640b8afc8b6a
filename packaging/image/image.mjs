// `npm run image`: a container image of the executable, built offline with
// Debian's buildah from scratch (no base image, nothing downloaded):
//
//   /usr/bin/control-plane          the executable (npm run build)
//   the libraries it links          exactly the files ldd resolves on this machine
//   /etc/passwd, /etc/group         the user control-plane (65532), which it runs as
//   /var/lib/control-plane          its state (a volume; CONTROL_PLANE_STATE_FILE points there)
//
// It listens on $PORT (default 8000, as platforms such as Render and Railway
// set it) on all addresses. Two archives of the same image:
//
//   dist/control-plane_<version>_oci.tar      OCI image layout (skopeo, podman load, registries)
//   dist/control-plane_<version>_docker.tar.gz  Docker archive (docker load, podman load); it also
//                                             carries the HEALTHCHECK, which the OCI format has no
//                                             field for: `control-plane wait-healthy` on /health
//
// Environment: SOURCE_DATE_EPOCH (default: the last commit's time) for the
// image's timestamps, so the same commit gives the same layers.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const executable = join(root, 'dist', 'control-plane');
const USER_ID = 65532;
const STATE_DIRECTORY = '/var/lib/control-plane';
const PORT = '8000';

function fail(message) {
  console.error(`image: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`${command}: ${result.error.code === 'ENOENT' ? 'not installed (Debian: apt-get install buildah)' : result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}${result.stdout}`);
  return result.stdout.trim();
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

if (process.getuid?.() !== 0) fail('buildah needs root here (it stores the image under dist/.buildah); run as root');
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = packageJson.version;
let versionLine = '';
try {
  versionLine = execFileSync(executable, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }).trim();
} catch {
  fail(`${relative(root, executable)} is missing or does not run: run 'npm run build' first`);
}
if (!versionLine.startsWith(`control-plane ${version} `)) fail(`${relative(root, executable)} says "${versionLine}", package.json is ${version}: run 'npm run build'`);
const nodeVersion = /\(node (v[\d.]+)\)/.exec(versionLine)?.[1] ?? 'unknown';
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? (git(['log', '-1', '--format=%ct']) || Math.floor(Date.now() / 1000)));
const revision = git(['rev-parse', 'HEAD']);

// --- the file tree ---------------------------------------------------------

const work = mkdtempSync(join(root, 'dist', '.image-'));
const storage = join(root, 'dist', '.buildah');
const tree = join(work, 'rootfs');
let container = '';
const buildah = (...args) => run('buildah', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'vfs', ...args]);
process.on('exit', () => {
  if (container) spawnSync('buildah', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'vfs', 'rm', container]);
  rmSync(work, { recursive: true, force: true });
});

function place(path, source, mode) {
  const target = join(tree, path);
  mkdirSync(dirname(target), { recursive: true });
  if (typeof source === 'string' && source.startsWith('/')) copyFileSync(source, target);
  else writeFileSync(target, source);
  chmodSync(target, mode);
}

place('usr/bin/control-plane', executable, 0o755);

// The shared libraries, at the paths the dynamic loader finds them on this
// machine (ldd), including the loader itself (the ELF interpreter).
const libraries = [];
for (const line of run('ldd', [executable]).split('\n')) {
  const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
  if (match) libraries.push(match[1]);
}
if (!libraries.some((path) => path.includes('ld-linux'))) fail(`ldd named no dynamic loader:\n${run('ldd', [executable])}`);
for (const path of libraries) place(path.slice(1), realpathSync(path), 0o755);

place('etc/passwd', `root:x:0:0:root:/root:/sbin/nologin\ncontrol-plane:x:${USER_ID}:${USER_ID}:control-plane:${STATE_DIRECTORY}:/sbin/nologin\n`, 0o644);
place('etc/group', `root:x:0:\ncontrol-plane:x:${USER_ID}:\n`, 0o644);
// Name resolution (a Redis host name, say) from /etc/hosts, then DNS.
place('etc/nsswitch.conf', 'hosts: files dns\n', 0o644);
mkdirSync(join(tree, STATE_DIRECTORY.slice(1)), { recursive: true });
chownSync(join(tree, STATE_DIRECTORY.slice(1)), USER_ID, USER_ID);
chmodSync(join(tree, STATE_DIRECTORY.slice(1)), 0o700);
mkdirSync(join(tree, 'tmp'));
chmodSync(join(tree, 'tmp'), 0o1777);

const layer = join(work, 'rootfs.tar');
run('tar', ['--create', '--file', layer, '--directory', tree, '--numeric-owner', '--sort=name', `--mtime=@${epoch}`, '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '.']);

// --- the image -------------------------------------------------------------

container = buildah('from', 'scratch');
buildah('add', container, layer, '/');
const healthcheck = ['/usr/bin/control-plane', 'wait-healthy', '--timeout', '3s'];
const labels = {
  'org.opencontainers.image.title': 'control-plane',
  'org.opencontainers.image.description': packageJson.description,
  'org.opencontainers.image.version': version,
  'org.opencontainers.image.licenses': packageJson.license,
  'org.opencontainers.image.created': new Date(epoch * 1000).toISOString(),
  ...(revision ? { 'org.opencontainers.image.revision': revision } : {}),
  // Where the runtime and the health check are spelled out for tools that read only labels.
  'org.opencontainers.image.base.name': 'scratch',
  'io.control-plane.node': nodeVersion,
  'io.control-plane.healthcheck': healthcheck.join(' '),
};
buildah(
  'config',
  '--user', `${USER_ID}:${USER_ID}`,
  '--entrypoint', JSON.stringify(['/usr/bin/control-plane']),
  '--cmd', JSON.stringify(['serve']),
  '--env', `PORT=${PORT}`,
  '--env', 'HOST=0.0.0.0',
  '--env', `CONTROL_PLANE_STATE_FILE=${STATE_DIRECTORY}/state.json`,
  '--port', `${PORT}/tcp`,
  '--volume', STATE_DIRECTORY,
  '--workingdir', STATE_DIRECTORY,
  '--stop-signal', 'SIGTERM',
  '--healthcheck', `CMD ${healthcheck.join(' ')}`,
  '--healthcheck-interval', '30s',
  '--healthcheck-timeout', '5s',
  '--healthcheck-start-period', '5s',
  '--healthcheck-retries', '3',
  ...Object.entries(labels).flatMap(([name, value]) => ['--label', `${name}=${value}`]),
  container,
);
// --format docker keeps the HEALTHCHECK in the local image; the OCI archive
// drops it (the OCI format has no field for it), the Docker archive keeps it.
const reference = `localhost/control-plane:${version}`;
buildah('commit', '--quiet', '--format', 'docker', '--timestamp', String(epoch), '--rm', container, reference);
container = '';

const outputs = {
  oci: join(root, 'dist', `control-plane_${version}_oci.tar`),
  docker: join(root, 'dist', `control-plane_${version}_docker.tar.gz`),
};
for (const path of Object.values(outputs)) rmSync(path, { force: true });
buildah('push', '--quiet', '--disable-compression=false', '--format', 'oci', reference, `oci-archive:${outputs.oci}:control-plane:${version}`);
// A Docker archive's layers are plain tar: the whole file is gzipped instead (docker load reads it).
const dockerTar = join(work, 'docker.tar');
buildah('push', '--quiet', '--format', 'docker', reference, `docker-archive:${dockerTar}:control-plane:${version}`);
writeFileSync(outputs.docker, gzipSync(readFileSync(dockerTar), { level: 6 }));
buildah('rmi', reference);

const megabytes = (path) => (statSync(path).size / 1024 / 1024).toFixed(1);
let unpacked = 0;
for (const path of ['usr/bin/control-plane', ...libraries.map((library) => library.slice(1))]) if (existsSync(join(tree, path))) unpacked += statSync(join(tree, path)).size;
console.log(
  `image: ${relative(root, outputs.oci)} ${megabytes(outputs.oci)} MB, ${relative(root, outputs.docker)} ${megabytes(outputs.docker)} MB ` +
    `(control-plane ${version}, ${libraries.length} libraries; ${(unpacked / 1024 / 1024).toFixed(1)} MB unpacked)`,
);
