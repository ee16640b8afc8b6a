// exec → healthy: the time from spawning the program to the first `200`
// from GET /health. The program prints control_plane.started once it
// listens; we ask /health at that moment, so the figure is an upper bound
// on when it became able to serve.

import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Target } from './burst.ts';

const TIMEOUT_MS = 20_000;

function healthStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = request({ host: '127.0.0.1', port, path: '/health', method: 'GET', agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    call.on('error', reject);
    call.end();
  });
}

/** One start: ms from spawn to /health answering 200. */
export async function timeToHealthy(target: Target): Promise<number> {
  const started = performance.now();
  const child = spawn(target.command, [...target.args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...target.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`no start line within ${TIMEOUT_MS} ms; stderr: ${stderr}`)), TIMEOUT_MS);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const match = /"listen":"[^"]*:(\d+)"/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code}) before listening; stderr: ${stderr}`));
      });
    });
    for (;;) {
      const status = await healthStatus(port);
      if (status === 200) return performance.now() - started;
      if (performance.now() - started > TIMEOUT_MS) throw new Error(`/health answered ${status} for ${TIMEOUT_MS} ms`);
    }
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** `repeats` starts, one after the other; the samples in ms, sorted. */
export async function measureStartup(target: Target, repeats: number): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < repeats; index++) samples.push(await timeToHealthy(target));
  return samples.sort((a, b) => a - b);
}
