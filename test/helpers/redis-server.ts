// A real Redis for the tests: Debian's redis-server, started by the test
// itself on a free loopback port with persistence off, and stopped by it.
// Without the binary the tests skip, saying what to install.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './daemon.ts';

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

/** Why the Redis tests cannot run here, or undefined when they can (pass it as `skip` to describe/test). */
export function redisMissing(): string | undefined {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `${BINARY} not found: install Debian's redis-server package (apt-get install redis-server) to run the shared-store tests`;
  return undefined;
}

export interface RedisServerOptions {
  /** Extra `--name value` arguments (e.g. requirepass). */
  readonly args?: readonly string[];
  readonly port?: number;
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private readonly directory = mkdtempSync(join(tmpdir(), 'cp-redis-'));
  log = '';

  private constructor(
    readonly port: number,
    private readonly args: readonly string[],
  ) {}

  /** Starts a server on a free port (or `port`), persistence off; resolves once it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await freePort()), options.args ?? []);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const child = spawn(
      BINARY,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.directory, '--daemonize', 'no', ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.log = (this.log + chunk).slice(-20_000)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.log = (this.log + chunk).slice(-20_000)));
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${this.log}`);
      if ((await this.command('PING').catch(() => '')).startsWith('+PONG') || (await this.answersAuth())) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${this.port}: ${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** With requirepass, PING answers NOAUTH: the server is up. */
  private async answersAuth(): Promise<boolean> {
    return (await this.command('PING').catch(() => '')).startsWith('-NOAUTH');
  }

  /** Sends one inline command and returns the raw reply (enough for the tests' few commands). */
  command(...words: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port: this.port });
      let reply = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('redis command timed out'));
      }, 5_000);
      socket.setEncoding('utf8');
      socket.on('connect', () => {
        // RESP arrays, so arguments may hold spaces.
        socket.write(`*${words.length}\r\n${words.map((word) => `$${Buffer.byteLength(word)}\r\n${word}\r\n`).join('')}`);
      });
      socket.on('data', (chunk: string) => {
        reply += chunk;
        if (reply.endsWith('\r\n')) {
          clearTimeout(timer);
          socket.end();
          resolve(reply);
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Stops the server (SIGKILL when `hard`), keeping the port for restart(). */
  async stop(hard = false): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  /** Starts it again on the same port (empty: persistence is off). */
  async restart(): Promise<void> {
    await this.stop(true);
    await this.launch();
  }

  async close(): Promise<void> {
    await this.stop(true);
    rmSync(this.directory, { recursive: true, force: true });
  }
}
