// Prints the runtime flags `npm start` and `npm run dev` give Node.js:
// package.json's controlPlane.execArgv (the flags build.mjs bakes into the
// executable, explained there), minus any this Node.js does not know (Node
// 20's V8 has no --invocation-count-for-turbofan; it only makes the first
// burst after a start faster). The scripts use it as
//
//   exec node $(node runtime-flags.mjs) --import tsx src/main.ts
//
// so the daemon runs as one process, the shell's own replaced by exec: the
// signals a process manager or npm sends (SIGHUP, SIGTERM) reach the daemon
// itself, and no wrapper process can die and leave it orphaned.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const packageJson = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const flags = packageJson.controlPlane?.execArgv ?? [];

/** Every V8 flag name this runtime knows (`node --v8-options` lists them as `  --name (...`). */
const v8Flags = new Set(
  execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s+--([\w-]+)\s/.exec(line)?.[1])
    .filter(Boolean)
    .map((name) => name.replace(/_/g, '-')),
);

function known(flag) {
  const name = flag.replace(/=.*$/, '');
  if (process.allowedNodeEnvironmentFlags.has(name)) return true;
  const bare = name.replace(/^--(no-)?/, '');
  return v8Flags.has(bare);
}

process.stdout.write(flags.filter(known).join(' '));
