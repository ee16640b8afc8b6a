// Spawns the real program for end-to-end tests: the sources through tsx, or
// the built executable when CONTROL_PLANE_BIN is set (CI runs the e2e tests
// both ways). The program is spawned directly, never through `npm start`.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { fileURLToPath } from 'node:url';
import { signWebhook } from '../../src/livekit/sign.ts';
import type { KeyPair } from '../../src/config.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_KEY: KeyPair = { keyId: 'APItestkey', secret: 'test-secret-that-is-long-enough-0123456789' };
export const OTHER_KEY: KeyPair = { keyId: 'APIotherkey', secret: 'another-secret-that-is-long-enough-987654' };

export type ObsLine = Record<string, unknown> & { seq: number; event_type: string; level: string; session_id: string | null };

/** The command that runs the program: [executable, ...leading args]. */
export function programCommand(): [string, string[]] {
  const bin = process.env.CONTROL_PLANE_BIN;
  if (bin) return [bin, []];
  return [process.execPath, ['--import', 'tsx', `${REPO_ROOT}src/main.ts`]];
}

export interface StartOptions {
  readonly args?: readonly string[];
  /** Environment added to a clean one (PATH and HOME are kept). Keys default to TEST_KEY. */
  readonly env?: Record<string, string>;
  /** Read lines from this file instead of stdout (pass --log-file in args yourself). */
  readonly logFile?: string;
  readonly startTimeoutMs?: number;
}

export class Daemon {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  port = 0;
  private readonly logFile: string | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(child: ChildProcess, logFile: string | undefined) {
    this.child = child;
    this.logFile = logFile;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The raw output text (stdout, or the log file). */
  output(): string {
    if (this.logFile) return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    return this.stdout;
  }

  /** Every complete output line, parsed. Throws on a line that is not JSON (a test failure). */
  lines(): ObsLine[] {
    const text = this.output();
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as ObsLine;
        } catch {
          throw new Error(`output line is not JSON: ${line.slice(0, 200)}`);
        }
      });
  }

  async waitForLine(predicate: (line: ObsLine) => boolean, timeoutMs = 10_000): Promise<ObsLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines().find(predicate);
      if (found) return found;
      if (this.child.exitCode !== null) throw new Error(`program exited (${this.child.exitCode}) before the line appeared; stderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a line; output so far:\n${this.output().slice(-2000)}\nstderr: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    LIVEKIT_API_KEY: TEST_KEY.keyId,
    LIVEKIT_API_SECRET: TEST_KEY.secret,
    ...extra,
  };
}

/** Starts the daemon on 127.0.0.1 and a free port; resolves once control_plane.started is written. */
export async function startDaemon(options: StartOptions = {}): Promise<Daemon> {
  const [command, leading] = programCommand();
  const args = [...leading, '--host', '127.0.0.1', '--port', '0', ...(options.args ?? [])];
  const child = spawn(command, args, { env: testEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const daemon = new Daemon(child, options.logFile);
  const started = await daemon.waitForLine((line) => line.event_type === 'control_plane.started', options.startTimeoutMs ?? 15_000);
  daemon.port = Number(String(started.listen).split(':').pop());
  return daemon;
}

/** Runs the program to completion (for CLI sub-commands and start-up failures). */
export function runProgram(args: readonly string[], env: Record<string, string> = testEnv(), input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, leading] = programCommand();
  const child = spawn(command, [...leading, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // The program may exit before reading stdin (e.g. --version): ignore EPIPE.
  child.stdin.on('error', () => {});
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The Authorization value LiveKit would send for `body`, signed with TEST_KEY by default. */
export function authorize(body: string, key: KeyPair = TEST_KEY): string {
  return signWebhook(body, key);
}

/** A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** POSTs `body` as LiveKit would (its content type, the given headers) and reads the whole answer. */
export async function postWebhook(baseUrl: string, body: string | Buffer, headers: Record<string, string> = {}, path = '/webhook'): Promise<Answer> {
  const response = await request(`${baseUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/webhook+json', ...headers } });
  return { status: response.statusCode, headers: response.headers as IncomingHttpHeaders, text: await response.body.text() };
}

/** POSTs `body` signed with `key` (TEST_KEY by default), as LiveKit sends it. */
export function postSigned(baseUrl: string, body: string, key: KeyPair = TEST_KEY): Promise<Answer> {
  return postWebhook(baseUrl, body, { authorization: signWebhook(body, key) });
}
