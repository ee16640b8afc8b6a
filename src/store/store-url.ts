// The `--store` setting: `memory` (this process) or the address of a Redis
// or Valkey server shared by several instances (README, "Running two or
// more"). Pure: the text in, the parsed setting or an error message out.
// The password never leaves the parsed setting: `description` is what
// every output shows.

export interface MemoryStoreSetting {
  readonly kind: 'memory';
  readonly description: 'memory';
}

export interface RedisStoreSetting {
  readonly kind: 'redis';
  /** `redis://host:port/db` or `rediss://…`: the address without user or password, safe to print. */
  readonly description: string;
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username: string | null;
  readonly password: string | null;
}

export type StoreSetting = MemoryStoreSetting | RedisStoreSetting;

export const MEMORY_STORE: MemoryStoreSetting = Object.freeze({ kind: 'memory', description: 'memory' });

const REDIS_DEFAULT_PORT = 6379;

/** Parses `memory`, `redis://[user:password@]host[:port][/db]` or `rediss://…`; returns an error message (never quoting the password) when it is none of them. */
export function parseStoreSetting(text: string): StoreSetting | { readonly error: string } {
  const trimmed = text.trim();
  if (trimmed === 'memory') return MEMORY_STORE;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme !== 'redis' && scheme !== 'rediss') return { error: 'is neither "memory" nor a redis:// or rediss:// URL' };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { error: 'is not a valid URL (redis://[user:password@]host:port[/db])' };
  }
  if (url.hostname === '') return { error: 'names no host (redis://host:port[/db])' };
  if (url.search !== '' || url.hash !== '') return { error: 'takes no query or fragment (redis://[user:password@]host:port[/db])' };
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) return { error: 'has a database that is not a number (redis://host:port/0)' };
  const db = path === '' ? 0 : Number(path);
  const port = url.port === '' ? REDIS_DEFAULT_PORT : Number(url.port);
  const tls = scheme === 'rediss';
  // WHATWG URLs keep IPv6 hosts in brackets; the client wants them bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const username = url.username === '' ? null : decodeURIComponent(url.username);
  const password = url.password === '' ? null : decodeURIComponent(url.password);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ kind: 'redis', description: `${scheme}://${shownHost}:${port}/${db}`, tls, host, port, db, username, password });
}
