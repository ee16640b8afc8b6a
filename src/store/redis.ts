// The shared store: sessions, calls, recent event ids and reported
// provider troubles in Redis (or Valkey), so that several instances behind
// a load balancer act on one truth (README, "Running two or more";
// docs/shared-store.md has the argument in full).
//
// One group of webhooks is at most two round trips, whatever its size:
//
//   read:   lease every key the group touches (all or none) and read them
//   ...     the output stage plans in TypeScript and writes the lines
//   commit: if the leases are still ours and nothing read has changed,
//           write the records (version + 1) with their TTLs and let go;
//           then lease and read the next group's keys (the webhooks that
//           arrived meanwhile), so that in a steady stream the next read
//           needs no round trip of its own
//
// A key leased by another instance's group is waited for (briefly, then
// re-read) within the store timeout; after it, and whenever Redis does not
// answer in time, the group fails with StoreUnavailableError and its
// webhooks are answered 503 (LiveKit retries them). The rules stay in
// TypeScript; the Lua scripts (redis-scripts.ts) only compare and set.

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { ENDED, isSessionRecord, type RoomState, type SessionRecord } from '../obs/sessions.ts';
import { MEMORY_DEFAULTS } from './memory.ts';
import { COMMIT, KEY_PREFIX, LEASE_AND_READ, MAINTAIN, RELEASE, ROOM_PREFIX } from './redis-scripts.ts';
import type { StateChanges, StateKeys, StateStore, StateView, StoreCounts } from './store.ts';
import { STORE_ERROR_REASONS, type StoreErrorReason, StoreUnavailableError } from './store.ts';
import type { RedisStoreSetting } from './store-url.ts';

export interface RedisStoreOptions {
  readonly setting: RedisStoreSetting;
  /** Written into lease tokens and the client name, so `CLIENT LIST` and a stuck lease name the instance. */
  readonly instanceId: string;
  /** The longest a read (leases included) or a commit may take before the group is answered 503. */
  readonly timeoutMs?: number;
  /** How long a group's leases live if it never commits (its instance died). */
  readonly leaseMs?: number;
  readonly dedupWindowMs?: number;
  readonly endedGraceMs?: number;
  readonly idleTimeoutMs?: number;
  readonly providerKeyWindowMs?: number;
  /** Every read and commit, with its duration, for /metrics. */
  readonly observe?: (operation: 'read' | 'commit', seconds: number) => void;
  /** The connection was lost or came back (for a diagnostic line). */
  readonly onConnectionChange?: (problem: string | null) => void;
}

export const REDIS_DEFAULTS = {
  timeoutMs: 2_000,
  leaseMs: 5_000,
} as const;

const idKey = (id: string): string => `${KEY_PREFIX}id:${id}`;
const roomKey = (sid: string): string => `${ROOM_PREFIX}${sid}`;
const providerKey = (key: string): string => `${KEY_PREFIX}prov:${key}`;
/** A room's lease (ids and provider keys are their own lease, redis-scripts.ts). */
const roomLeaseKey = (sid: string): string => `${KEY_PREFIX}lease:${sid}`;
const OPEN_INDEX = `${KEY_PREFIX}open`;
const LIVE_LEGS = `${KEY_PREFIX}live`;
const ENDED_INDEX = `${KEY_PREFIX}ended`;
const COUNTERS = `${KEY_PREFIX}stats`;
const ID_COUNT_MINUTE_MS = 60_000;
const idCountKey = (minute: number): string => `${KEY_PREFIX}ids:${minute}`;
/** Idle sessions dropped from the indexes per maintenance call (the rest at the next). */
const EVICTIONS_PER_MAINTENANCE = 1_000;
/** Between two attempts at keys leased by another instance: short, jittered, so two waiting instances do not keep colliding. */
const BUSY_RETRY_MIN_MS = 2;
const BUSY_RETRY_MAX_MS = 15;

type KeyKind = 'id' | 'room' | 'provider';

interface KeyEntry {
  readonly kind: KeyKind;
  readonly name: string;
  readonly key: string;
}

/** /health's reason until the first connection is up. */
const CONNECTING = 'store_connecting';

interface ReadRoom {
  readonly version: number;
  readonly state: RoomState | undefined;
}

/** What one group read: the values, their versions, and the leases it holds. */
class RedisView implements StateView {
  readonly ids = new Map<string, boolean>();
  readonly rooms = new Map<string, ReadRoom>();
  readonly providers = new Map<string, boolean>();
  settled = false;

  constructor(
    readonly token: string,
    /** The id and provider keys, in lease order. */
    readonly timed: readonly KeyEntry[],
    /** The rooms, in lease order. */
    readonly roomEntries: readonly KeyEntry[],
  ) {}

  idSeen(id: string): boolean {
    const seen = this.ids.get(id);
    if (seen === undefined) throw new Error(`the shared store was asked about event id ${id}, which the group did not read`);
    return seen;
  }

  room(sid: string): RoomState | undefined {
    const read = this.rooms.get(sid);
    if (read === undefined) throw new Error(`the shared store was asked about room ${sid}, which the group did not read`);
    return read.state;
  }

  providerReported(key: string): boolean {
    const reported = this.providers.get(key);
    if (reported === undefined) throw new Error(`the shared store was asked about provider key ${key}, which the group did not read`);
    return reported;
  }
}

/** A group's keys: ids and provider keys (their own leases), then rooms; each once. */
function entriesOf(keys: StateKeys): { timed: KeyEntry[]; rooms: KeyEntry[] } {
  const timed: KeyEntry[] = [];
  const rooms: KeyEntry[] = [];
  const seen = new Set<string>();
  const add = (list: KeyEntry[], kind: KeyKind, name: string, key: string): void => {
    if (seen.has(key)) return;
    seen.add(key);
    list.push({ kind, name, key });
  };
  for (const id of keys.eventIds) add(timed, 'id', id, idKey(id));
  for (const key of keys.providerKeys) add(timed, 'provider', key, providerKey(key));
  for (const sid of keys.roomSids) add(rooms, 'room', sid, roomKey(sid));
  return { timed, rooms };
}

/** KEYS as the lease function takes them: the id and provider keys, the room leases, the room keys. */
function leaseKeysOf(timed: readonly KeyEntry[], rooms: readonly KeyEntry[]): string[] {
  const keys: string[] = [];
  for (const entry of timed) keys.push(entry.key);
  for (const entry of rooms) keys.push(roomLeaseKey(entry.name));
  for (const entry of rooms) keys.push(entry.key);
  return keys;
}

/** A prefetched view with the keys read after it (same token): one group's view. */
function mergeViews(first: RedisView, second: RedisView): RedisView {
  const merged = new RedisView(first.token, [...first.timed, ...second.timed], [...first.roomEntries, ...second.roomEntries]);
  for (const view of [first, second]) {
    for (const [id, seen] of view.ids) merged.ids.set(id, seen);
    for (const [sid, room] of view.rooms) merged.rooms.set(sid, room);
    for (const [key, reported] of view.providers) merged.providers.set(key, reported);
  }
  return merged;
}

/** A stored room value → its version and state; a value that is not ours reads as corrupt (the group fails rather than overwrite it). */
export function parseRoomValue(value: string | null): ReadRoom {
  if (value === null) return { version: 0, state: undefined };
  const bar = value.indexOf('|');
  const version = Number(value.slice(0, bar));
  if (bar <= 0 || !Number.isSafeInteger(version) || version < 1) throw new StoreUnavailableError('corrupt', 'a room record in the shared store has no version');
  if (value.charCodeAt(bar + 1) === 0x45 /* E */) return { version, state: ENDED };
  let record: unknown;
  try {
    record = JSON.parse(value.slice(bar + 1));
  } catch {
    record = undefined;
  }
  if (!isSessionRecord(record)) throw new StoreUnavailableError('corrupt', 'a room record in the shared store is not a session');
  return { version, state: record };
}

const liveLegs = (record: SessionRecord): number => {
  let live = 0;
  for (const leg of record.calls) if (leg.phase !== 'ended') live++;
  return live;
};

/** The client's error → a short reason for /health and the metric label. */
function reasonOf(error: unknown): StoreErrorReason {
  if (error instanceof StoreUnavailableError) return error.reason;
  const message = error instanceof Error ? error.message : String(error);
  if (/timed? ?out/i.test(message)) return 'timeout';
  if (/ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Connection is closed|Stream isn't writeable|enableOfflineQueue|Reached the max retries/i.test(message)) return 'connection';
  if (/NOAUTH|WRONGPASS|NOPERM/i.test(message)) return 'auth';
  if (/^OOM/.test(message)) return 'out_of_memory';
  if (/LOADING/.test(message)) return 'loading';
  if (/READONLY/.test(message)) return 'read_only';
  return 'error';
}

/** A reason read back from a problem string, bounded to the known ones. */
const storeReason = (text: string | undefined): StoreErrorReason => (STORE_ERROR_REASONS as readonly string[]).includes(text ?? '') ? (text as StoreErrorReason) : 'timeout';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type ScriptRunner = (numberOfKeys: number, ...args: Array<string | number>) => Promise<unknown>;

export class RedisStore implements StateStore {
  readonly description: string;
  private readonly client: Redis;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly dedupWindowMs: number;
  private readonly endedGraceMs: number;
  private readonly idleTimeoutMs: number;
  private readonly providerKeyWindowMs: number;
  private readonly observe: RedisStoreOptions['observe'];
  private readonly onConnectionChange: RedisStoreOptions['onConnectionChange'];
  private readonly tokenPrefix: string;
  private tokenCounter = 0;
  /** The next group's keys, leased and read by the last commit. */
  private prefetched: RedisView | null = null;
  private prefetchedAt = 0;
  /** The token the last commit leased the next group's keys with (also when it failed: it may have done so). */
  private nextGroupToken: string | null = null;
  private lastCounts: StoreCounts = { openSessions: 0, openCalls: 0, endedSessions: 0, rememberedIds: 0, evictedSessions: 0 };
  /** Why the last operation failed (or the connection is down), until one succeeds. */
  private failure: string | null = null;
  private connectionProblem: string | null = CONNECTING;
  private closed = false;
  /** The client's last error message (never holds the password), for check-config. */
  private lastError = '';

  constructor(options: RedisStoreOptions) {
    const { setting } = options;
    this.description = setting.description;
    this.timeoutMs = options.timeoutMs ?? REDIS_DEFAULTS.timeoutMs;
    this.leaseMs = options.leaseMs ?? REDIS_DEFAULTS.leaseMs;
    this.dedupWindowMs = options.dedupWindowMs ?? MEMORY_DEFAULTS.dedupWindowMs;
    this.endedGraceMs = options.endedGraceMs ?? MEMORY_DEFAULTS.endedGraceMs;
    this.idleTimeoutMs = options.idleTimeoutMs ?? MEMORY_DEFAULTS.idleTimeoutMs;
    this.providerKeyWindowMs = options.providerKeyWindowMs ?? MEMORY_DEFAULTS.providerKeyWindowMs;
    this.observe = options.observe;
    this.onConnectionChange = options.onConnectionChange;
    this.tokenPrefix = `${options.instanceId}:${process.pid}:${randomBytes(6).toString('hex')}:`;
    this.client = new Redis({
      host: setting.host,
      port: setting.port,
      db: setting.db,
      username: setting.username ?? undefined,
      password: setting.password ?? undefined,
      // SNI takes a name, never an address (RFC 6066).
      tls: setting.tls ? (isIP(setting.host) === 0 ? { servername: setting.host } : {}) : undefined,
      connectionName: `control-plane:${options.instanceId}`,
      lazyConnect: true,
      // Fail at once while disconnected (503, LiveKit retries) rather than queue webhooks behind a dead connection.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A command sent but unanswered when the connection broke is not sent again: its group was already answered 503.
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // Reconnect for ever, quickly at first: a failover or restart is over in seconds.
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
      scripts: {
        leaseAndRead: { lua: LEASE_AND_READ },
        commitGroup: { lua: COMMIT },
        releaseLeases: { lua: RELEASE },
        maintainIndexes: { lua: MAINTAIN },
      },
    });
    this.client.on('ready', () => {
      this.setConnectionProblem(null);
      // The counts /metrics shows, at once rather than at the next maintenance.
      void this.maintain(Date.now());
    });
    this.client.on('error', (error: Error) => {
      this.lastError = error.message;
      this.setConnectionProblem(`store_${reasonOf(error)}`);
    });
    this.client.on('close', () => {
      if (!this.closed) this.setConnectionProblem('store_connection');
    });
  }

  /** Starts connecting (in the background: webhooks are answered 503 until it is up). */
  connect(): void {
    this.client.connect().catch(() => {
      // Reported through the 'error' event; ioredis keeps retrying.
    });
  }

  /** Resolves once connected, or after `timeoutMs` whatever the connection (never rejects). */
  connected(timeoutMs = this.timeoutMs): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ready);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  /** Resolves once connected, or rejects after `timeoutMs` (check-config, tests). */
  async ping(timeoutMs = this.timeoutMs): Promise<string> {
    if (this.client.status === 'wait') this.connect();
    const deadline = Date.now() + timeoutMs;
    while (this.client.status !== 'ready') {
      if (Date.now() > deadline) {
        throw new StoreUnavailableError(storeReason(this.connectionProblem?.replace(/^store_/, '')), `no answer from ${this.description} within ${timeoutMs} ms${this.lastError ? ` (${this.lastError})` : ''}`);
      }
      await sleep(20);
    }
    const info = await this.client.info('server');
    const version = /(?:valkey|redis)_version:(\S+)/.exec(info);
    const server = /server_name:valkey/.test(info) ? 'valkey' : 'redis';
    return `${server} ${version?.[1] ?? 'unknown version'}`;
  }

  private setConnectionProblem(problem: string | null): void {
    const previous = this.connectionProblem;
    if (problem === previous) return;
    this.connectionProblem = problem;
    // The first connection is no news; a loss and a recovery are.
    if (previous !== CONNECTING) this.onConnectionChange?.(problem);
  }

  private script(name: 'leaseAndRead' | 'commitGroup' | 'releaseLeases' | 'maintainIndexes'): ScriptRunner {
    return (this.client as unknown as Record<string, ScriptRunner>)[name]!.bind(this.client);
  }

  private nextToken(): string {
    return `${this.tokenPrefix}${++this.tokenCounter}`;
  }

  // --- read ----------------------------------------------------------------

  read(keys: StateKeys, _nowMs: number): StateView | Promise<StateView> {
    const { timed, rooms } = entriesOf(keys);
    const prefetched = this.takePrefetched();
    if (prefetched !== null) {
      // The previous commit leased and read the keys of the webhooks that were waiting: read only what arrived since.
      const known = new Set<string>();
      for (const entry of prefetched.timed) known.add(entry.key);
      for (const entry of prefetched.roomEntries) known.add(entry.key);
      const missingTimed = timed.filter((entry) => !known.has(entry.key));
      const missingRooms = rooms.filter((entry) => !known.has(entry.key));
      if (missingTimed.length === 0 && missingRooms.length === 0) return prefetched;
      return this.leaseAndRead(missingTimed, missingRooms, prefetched.token).then(
        (view) => mergeViews(prefetched, view as RedisView),
        (error: unknown) => {
          // The group fails as a whole: let go of what the commit leased for it too.
          void this.abandon(prefetched);
          throw error;
        },
      );
    }
    if (timed.length === 0 && rooms.length === 0) {
      const view = new RedisView('', timed, rooms);
      view.settled = true;
      return view;
    }
    // A commit that tried to lease this group's keys may have done so even if it failed: the same token finds them its own.
    const token = this.nextGroupToken ?? this.nextToken();
    this.nextGroupToken = null;
    return this.leaseAndRead(timed, rooms, token);
  }

  /** The view the last commit leased for this group, if it is still young enough to plan on. */
  private takePrefetched(): RedisView | null {
    const prefetched = this.prefetched;
    if (prefetched === null) return null;
    this.prefetched = null;
    this.nextGroupToken = null;
    if (performance.now() - this.prefetchedAt <= this.leaseMs / 2) return prefetched;
    void this.abandon(prefetched);
    return null;
  }

  private async leaseAndRead(timed: readonly KeyEntry[], rooms: readonly KeyEntry[], token: string): Promise<StateView> {
    const started = performance.now();
    const deadline = started + this.timeoutMs;
    const args = leaseKeysOf(timed, rooms);
    args.push(token, String(this.leaseMs), String(timed.length));
    const run = this.script('leaseAndRead');
    try {
      for (let attempt = 1; ; attempt++) {
        const sentAt = performance.now();
        const reply = (await run(timed.length + rooms.length * 2, ...args)) as [number, unknown];
        if (reply[0] === 1) {
          const view = this.viewOf(token, timed, rooms, reply[1] as Array<string | null>);
          if (performance.now() - sentAt > this.leaseMs / 2) {
            // Half the leases' life is gone before planning even starts (the process stalled): too little is left to write and commit on them.
            void this.abandon(view);
            throw new StoreUnavailableError('timeout', `the leases of ${timed.length + rooms.length} key(s) were granted too late to use`);
          }
          this.succeeded('read', started);
          return view;
        }
        // Another instance's group holds one of these keys: it commits or lets go within milliseconds, or its lease expires.
        const index = (reply[1] as number) - 1;
        const busyKey = (index < timed.length ? timed[index] : rooms[index - timed.length])?.key ?? 'a key';
        if (performance.now() + BUSY_RETRY_MAX_MS >= deadline) {
          throw new StoreUnavailableError('busy', `${busyKey} stayed leased by another instance for ${this.timeoutMs} ms (${attempt} attempts)`);
        }
        await sleep(BUSY_RETRY_MIN_MS + Math.random() * (BUSY_RETRY_MAX_MS - BUSY_RETRY_MIN_MS));
      }
    } catch (error) {
      // A read whose answer was lost may have leased the keys: the next group uses the same token, so it finds them its own.
      this.nextGroupToken = token;
      throw this.failed('read', started, error);
    }
  }

  private viewOf(token: string, timed: readonly KeyEntry[], rooms: readonly KeyEntry[], values: ReadonlyArray<string | null>): RedisView {
    const view = new RedisView(token, timed, rooms);
    for (let index = 0; index < timed.length; index++) {
      const { kind, name } = timed[index]!;
      // A committed key holds a time; one this group just leased reads as missing.
      const present = (values[index] ?? null) !== null;
      if (kind === 'id') view.ids.set(name, present);
      else view.providers.set(name, present);
    }
    for (let index = 0; index < rooms.length; index++) view.rooms.set(rooms[index]!.name, parseRoomValue(values[timed.length + index] ?? null));
    return view;
  }

  // --- commit ----------------------------------------------------------------

  commit(view: StateView, changes: StateChanges, nowMs: number, next?: StateKeys): void | Promise<void> {
    const group = view as RedisView;
    if (group.settled) {
      if (changes.ids.size > 0 || changes.rooms.size > 0 || changes.providerKeys.size > 0) throw new Error('changes to keys the group did not read');
      return;
    }
    group.settled = true;
    // The lines are written; if the leases may have run out meanwhile (a stalled output), another
    // instance may be planning the same keys: commit anyway, the script refuses if it did.
    return this.commitGroup(group, changes, nowMs, next);
  }

  private async commitGroup(view: RedisView, changes: StateChanges, nowMs: number, next: StateKeys | undefined): Promise<void> {
    const started = performance.now();
    this.checkChangesWereRead(view, changes);
    const following = next === undefined ? null : entriesOf(next);
    const nextToken = following === null || following.timed.length + following.rooms.length === 0 ? '' : this.nextToken();
    this.nextGroupToken = nextToken === '' ? null : nextToken;
    const { timed, roomEntries } = view;
    const keyArgs: string[] = [];
    for (const entry of timed) keyArgs.push(entry.key);
    for (const entry of roomEntries) keyArgs.push(roomLeaseKey(entry.name));
    for (const entry of roomEntries) keyArgs.push(entry.key);
    keyArgs.push(OPEN_INDEX, LIVE_LEGS, ENDED_INDEX, COUNTERS, idCountKey(Math.floor(nowMs / ID_COUNT_MINUTE_MS)));
    if (nextToken !== '') keyArgs.push(...leaseKeysOf(following!.timed, following!.rooms));
    let newIds = 0;
    const operations: Array<string | number> = [];
    for (const entry of timed) {
      const atMs = entry.kind === 'id' ? changes.ids.get(entry.name) : changes.providerKeys.get(entry.name);
      if (atMs === undefined) {
        operations.push('free');
      } else {
        if (entry.kind === 'id') newIds++;
        operations.push('add', atMs, entry.kind === 'id' ? this.dedupWindowMs : this.providerKeyWindowMs);
      }
    }
    for (const entry of roomEntries) {
      const read = view.rooms.get(entry.name)!;
      const next = changes.rooms.get(entry.name);
      if (next === undefined) {
        operations.push('same', read.version);
      } else if (next === ENDED) {
        const endedAt = changes.endedAtMs.get(entry.name) ?? nowMs;
        operations.push('room', read.version, `E${endedAt}`, this.endedGraceMs, endedAt, -1);
      } else {
        operations.push('room', read.version, JSON.stringify(next), this.idleTimeoutMs, next.touchedAtMs, liveLegs(next));
      }
    }
    try {
      const sentAt = performance.now();
      const reply = (await this.script('commitGroup')(
        keyArgs.length,
        ...keyArgs,
        view.token,
        timed.length,
        roomEntries.length,
        newIds,
        this.dedupWindowMs + 2 * ID_COUNT_MINUTE_MS,
        this.idleTimeoutMs + this.endedGraceMs,
        this.leaseMs,
        nextToken,
        following?.timed.length ?? 0,
        following?.rooms.length ?? 0,
        ...operations,
      )) as [number, (string | number | Array<string | null>)?, number?];
      if (reply[0] !== 1) {
        const index = (reply[2] ?? 1) - 1;
        const key = (index < timed.length ? timed[index] : roomEntries[index - timed.length])?.key ?? 'a key';
        const why = reply[1] === 'lease' ? 'is leased by another instance (ours expired)' : reply[1] === 'version' ? 'changed since it was read' : 'was added by another instance';
        throw new StoreUnavailableError('conflict', `${key} ${why}; nothing committed, LiveKit's retry is planned again`);
      }
      if (Array.isArray(reply[1])) {
        this.prefetched = this.viewOf(nextToken, following!.timed, following!.rooms, reply[1]);
        this.prefetchedAt = sentAt;
      }
      this.succeeded('commit', started);
    } catch (error) {
      throw this.failed('commit', started, error);
    }
  }

  private checkChangesWereRead(view: RedisView, changes: StateChanges): void {
    for (const sid of changes.rooms.keys()) if (!view.rooms.has(sid)) throw new Error(`a change to room ${sid}, which the group did not read`);
    for (const id of changes.ids.keys()) if (!view.ids.has(id)) throw new Error(`a change to event id ${id}, which the group did not read`);
    for (const key of changes.providerKeys.keys()) if (!view.providers.has(key)) throw new Error(`a change to provider key ${key}, which the group did not read`);
  }

  abandon(view: StateView): void | Promise<void> {
    const group = view as RedisView;
    if (group.settled) return;
    group.settled = true;
    const keys = [...group.timed.map((entry) => entry.key), ...group.roomEntries.map((entry) => roomLeaseKey(entry.name))];
    return this.script('releaseLeases')(keys.length, ...keys, group.token, group.timed.length).then(
      () => undefined,
      // Not released: they expire after leaseMs.
      () => undefined,
    );
  }

  private succeeded(operation: 'read' | 'commit', started: number): void {
    this.observe?.(operation, (performance.now() - started) / 1000);
    this.failure = null;
  }

  private failed(operation: 'read' | 'commit', started: number, error: unknown): StoreUnavailableError {
    this.observe?.(operation, (performance.now() - started) / 1000);
    const reason = reasonOf(error);
    // Contention and conflicts are the store working as meant; everything else degrades /health until an operation succeeds.
    if (reason !== 'busy' && reason !== 'conflict') this.failure = `store_${reason}`;
    if (error instanceof StoreUnavailableError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StoreUnavailableError(reason, `${this.description}: ${operation} failed: ${message}`);
  }

  // --- upkeep ------------------------------------------------------------------

  async maintain(nowMs: number): Promise<void> {
    if (this.client.status !== 'ready') return;
    const minute = Math.floor(nowMs / ID_COUNT_MINUTE_MS);
    const windowMinutes = Math.ceil(this.dedupWindowMs / ID_COUNT_MINUTE_MS);
    const countKeys: string[] = [];
    for (let back = 0; back <= windowMinutes; back++) countKeys.push(idCountKey(minute - back));
    try {
      const reply = (await this.script('maintainIndexes')(
        4 + countKeys.length,
        OPEN_INDEX,
        LIVE_LEGS,
        ENDED_INDEX,
        COUNTERS,
        ...countKeys,
        nowMs,
        this.idleTimeoutMs,
        this.endedGraceMs,
        EVICTIONS_PER_MAINTENANCE,
      )) as number[];
      this.lastCounts = { openSessions: reply[0]!, openCalls: reply[1]!, endedSessions: reply[2]!, rememberedIds: reply[3]!, evictedSessions: reply[4]! };
      this.failure = null;
    } catch (error) {
      this.failure = `store_${reasonOf(error)}`;
    }
  }

  /** As of the last maintain() (every few seconds): the whole shared store's, not this instance's. */
  counts(): StoreCounts {
    return this.lastCounts;
  }

  problem(): string | null {
    return this.connectionProblem ?? this.failure;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.prefetched !== null) await this.abandon(this.prefetched);
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

/** Connects, asks the server who it is, disconnects: for `check-config`. Never throws. */
export async function checkStore(setting: RedisStoreSetting, instanceId: string, timeoutMs = REDIS_DEFAULTS.timeoutMs): Promise<{ ok: boolean; detail: string }> {
  const store = new RedisStore({ setting, instanceId });
  try {
    return { ok: true, detail: await store.ping(timeoutMs) };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    await store.close();
  }
}
