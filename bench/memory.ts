// Memory at the caps: what the embedded store (src/store/memory.ts) costs
// per entry, and what the executable's RSS is with every memory full.
//
//   npm run bench:memory [-- --out DIR]   both parts below
//   npm run bench                   part 1 only (it is quick), unless --no-memory
//
// Part 1, heap per entry: a MemoryStore filled to one cap at a time, each in
// a fresh process (the runtime the executable embeds, --expose-gc), through
// the daemon's own path: LiveKit-shaped bodies (ids are a prefix and 12
// base57 characters, phone numbers E.164) decoded by decodeWebhook, planned
// by planWebhook in groups of 64 against a GroupState, committed. The heap
// is measured after two full GCs before and after the fill; the entries
// built for the fill and their garbage are gone by then, so the difference
// is what the store keeps. A few cheaper representations are measured the
// same way, to say what changing src/store would save.
//
// Part 2, the executable at the caps: dist/control-plane (a fresh copy) is
// filled over HTTP until every cap is full (100 000 ended sessions, 10 000
// provider troubles, 100 000 open sessions with an answered call, which
// also fills the 200 000 remembered event ids), then takes a burst of
// replayed SIP calls at 64 in flight. Its RSS at rest and its peak (VmHWM)
// are read from /proc.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { decodeWebhook } from '../src/pipeline/decode.ts';
import { GroupState, planWebhook } from '../src/pipeline/plan.ts';
import { MEMORY_DEFAULTS, MemoryStore } from '../src/store/memory.ts';
import { encodeBody, envelope, type JsonObject, livekitId, newRoom, participantJson, roomJson, sipParticipant } from '../src/livekit/samples.ts';
import { signWebhook } from '../src/livekit/sign.ts';
import { peakRss, send, type StartedServer, startServer } from './burst.ts';
import { EMBEDDED_RUNTIME, EXECUTABLE, installedCopy, REPO_ROOT, runtimeVersion } from './targets.ts';
import { BENCH_KEY, buildWorkload, type Webhook, type Workload } from './workload.ts';

const GROUP = 64;
const MB = 1024 * 1024;

// ------------------------------------------------------ realistic entries

/** E.164: + country code 1 and ten digits. */
function phoneNumber(): string {
  let digits = '';
  for (let index = 0; index < 10; index++) digits += Math.floor(Math.random() * 10);
  return `+1${digits}`;
}

function trackJson(): JsonObject {
  return { sid: livekitId('TR'), name: 'microphone', source: 'MICROPHONE', mimeType: 'audio/opus', mid: '0', stream: 'microphone' };
}

/** The webhooks that leave one open session with one answered SIP call: room_started, the SIP participant_joined, its track_published. */
function openCallEvents(createdAt: number): JsonObject[] {
  const remote = phoneNumber();
  const room = newRoom(`call_${remote}_${livekitId('R').slice(2, 8)}`, createdAt - 5);
  const sip = sipParticipant(Math.random() < 0.5 ? 'inbound' : 'outbound', { remote, trunkNumber: phoneNumber(), joinedAtMs: (createdAt - 4) * 1000 });
  return [
    envelope('room_started', { room: roomJson(room) }, { createdAt: createdAt - 5 }),
    envelope('participant_joined', { room: roomJson(room), participant: participantJson(sip, 'ACTIVE') }, { createdAt: createdAt - 4 }),
    envelope('track_published', { room: roomJson(room, false), participant: { sid: sip.sid, identity: sip.identity }, track: trackJson() }, { createdAt }),
  ];
}

/** A room that started and finished: its session ends and leaves a tombstone. */
function endedRoomEvents(createdAt: number): JsonObject[] {
  const room = newRoom(`call_${phoneNumber()}_${livekitId('R').slice(2, 8)}`, createdAt - 60);
  return [envelope('room_started', { room: roomJson(room) }, { createdAt: createdAt - 60 }), envelope('room_finished', { room: roomJson(room) }, { createdAt })];
}

/** An egress that failed: one provider trouble (keyed by its egress id). */
function failedEgressEvent(createdAt: number): JsonObject {
  const room = newRoom(`call_${phoneNumber()}_${livekitId('R').slice(2, 8)}`, createdAt - 60);
  return envelope(
    'egress_ended',
    {
      room: roomJson(room, false),
      egressInfo: {
        egressId: livekitId('EG'),
        roomId: room.sid,
        roomName: room.name,
        status: 'EGRESS_FAILED',
        error: 'could not upload: 403 Forbidden',
        startedAt: String(BigInt(createdAt - 50) * 1_000_000_000n),
        endedAt: String(BigInt(createdAt) * 1_000_000_000n),
        roomComposite: { roomName: room.name, layout: 'speaker', audioOnly: true },
      },
    },
    { createdAt },
  );
}

// ------------------------------------------------------------ part 1: heap

type ProbeId = 'ids' | 'ids-seconds' | 'ids-set' | 'ids-strings' | 'ended' | 'open' | 'open-literal' | 'providers' | 'all';

interface ProbeSpec {
  readonly id: ProbeId;
  readonly what: string;
  readonly candidate: string;
}

const PROBES: readonly ProbeSpec[] = [
  { id: 'ids', what: 'remembered event id', candidate: 'MemoryStore today: Map<id, ms> + eviction queue (string[] + number[])' },
  { id: 'ids-seconds', what: 'remembered event id', candidate: 'candidate: the same, times as whole seconds since the store started (small integers, not boxed)' },
  { id: 'ids-set', what: 'remembered event id', candidate: 'candidate: Set<id> + the queue (string[] + Float64 times); ids are stamped once, so the queue order is the order added' },
  { id: 'ids-strings', what: 'remembered event id', candidate: 'floor: the id strings alone in one array' },
  { id: 'ended', what: 'ended session (tombstone)', candidate: 'MemoryStore today: Map<room SID, ms> + eviction queue' },
  { id: 'open', what: 'open session with one answered SIP call', candidate: 'MemoryStore today: the session record + its call record, Map entries, touch counter, eviction queue' },
  { id: 'open-literal', what: 'open session with one answered SIP call', candidate: 'candidate: the same records built as object literals with a fixed set of fields' },
  { id: 'providers', what: 'reported provider trouble', candidate: 'MemoryStore today: Map<key, ms> + eviction queue' },
  { id: 'all', what: 'every cap full at once', candidate: 'MemoryStore today' },
];

export interface HeapProbe {
  readonly id: ProbeId;
  readonly what: string;
  readonly candidate: string;
  readonly entries: number;
  readonly heapBytes: number;
  readonly bytesPerEntry: number;
  readonly counts: Record<string, number> | null;
}

function heapNow(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('bench/memory.ts --probe needs node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Decoded events of `bodies`, planned and committed to `store` in groups of 64; `keep` picks which changes the store gets. */
function commitThrough(store: MemoryStore, events: readonly JsonObject[], nowMs: number, keep: { ids: boolean; rooms: boolean; providers: boolean }): void {
  for (let start = 0; start < events.length; start += GROUP) {
    const group = new GroupState(store);
    for (const json of events.slice(start, start + GROUP)) {
      const decoded = decodeWebhook(Buffer.from(encodeBody(json)));
      if (!decoded.ok) throw new Error(`sample did not decode: ${decoded.detail}`);
      planWebhook(decoded.event, group, nowMs);
    }
    if (!keep.ids) group.ids.clear();
    if (!keep.rooms) {
      group.rooms.clear();
      group.endedAtMs.clear();
    }
    if (!keep.providers) group.providerKeys.clear();
    store.commit(store, group, nowMs);
  }
}

/** Decoded event ids, as the daemon holds them (strings made by JSON.parse of the body). */
function decodedIds(count: number): string[] {
  const ids: string[] = [];
  const createdAt = Math.floor(Date.now() / 1000);
  for (let index = 0; index < count; index++) {
    const decoded = decodeWebhook(Buffer.from(encodeBody(endedRoomEvents(createdAt)[0]!)));
    if (!decoded.ok) throw new Error(decoded.detail);
    ids.push(decoded.event.id);
  }
  return ids;
}

/** One probe, in this process (started with --expose-gc). */
function probe(id: ProbeId): HeapProbe {
  const spec = PROBES.find((candidate) => candidate.id === id)!;
  const o = MEMORY_DEFAULTS;
  const startedMs = Date.now();
  const createdAt = Math.floor(startedMs / 1000);
  const BATCH = 4096;
  let store: MemoryStore | null = null;
  const keepAlive: unknown[] = [];
  let entries = 0;
  const before = heapNow();

  const fill = (count: number, eventsOf: (index: number) => JsonObject[], keep: { ids: boolean; rooms: boolean; providers: boolean }): void => {
    store ??= new MemoryStore();
    for (let done = 0; done < count; ) {
      const events: JsonObject[] = [];
      const batch = Math.min(BATCH, count - done);
      for (let index = 0; index < batch; index++) events.push(...eventsOf(done + index));
      // One commit time per batch of groups, advancing like the receiver's clock.
      commitThrough(store, events, startedMs + done, keep);
      done += batch;
    }
  };

  switch (id) {
    case 'ids':
      fill(o.maxRecentIds, () => [endedRoomEvents(createdAt)[0]!], { ids: true, rooms: false, providers: false });
      entries = o.maxRecentIds;
      break;
    case 'ids-seconds':
    case 'ids-set': {
      const base = Math.floor(startedMs / 1000);
      const times = id === 'ids-seconds' ? new Map<string, number>() : null;
      const set = id === 'ids-set' ? new Set<string>() : null;
      const keys: string[] = [];
      const stamps: number[] = [];
      for (let done = 0; done < o.maxRecentIds; done += BATCH) {
        const nowMs = startedMs + done + 0.5;
        for (const key of decodedIds(Math.min(BATCH, o.maxRecentIds - done))) {
          if (times) {
            const seconds = Math.floor(nowMs / 1000) - base;
            times.set(key, seconds);
            stamps.push(seconds);
          } else {
            set!.add(key);
            stamps.push(nowMs);
          }
          keys.push(key);
        }
      }
      keepAlive.push(times, set, keys, stamps);
      entries = o.maxRecentIds;
      break;
    }
    case 'ids-strings': {
      const keys: string[] = [];
      for (let done = 0; done < o.maxRecentIds; done += BATCH) keys.push(...decodedIds(Math.min(BATCH, o.maxRecentIds - done)));
      keepAlive.push(keys);
      entries = o.maxRecentIds;
      break;
    }
    case 'ended':
      fill(o.maxEndedSessions, () => endedRoomEvents(createdAt), { ids: false, rooms: true, providers: false });
      entries = o.maxEndedSessions;
      break;
    case 'open':
    case 'open-literal':
      fill(Math.min(o.maxOpenSessions, o.maxCalls), () => openCallEvents(createdAt), { ids: false, rooms: true, providers: false });
      entries = Math.min(o.maxOpenSessions, o.maxCalls);
      if (id === 'open-literal') {
        // Rebuilt with every field present from the start, in one order.
        const open = (store as unknown as { open: Map<string, import('../src/obs/sessions.ts').SessionRecord> }).open;
        for (const [sid, record] of open) {
          open.set(sid, {
            sid: record.sid,
            name: record.name,
            state: record.state,
            calls: record.calls.map((call) => ({
              participantSid: call.participantSid,
              identity: call.identity,
              direction: call.direction,
              from: call.from,
              to: call.to,
              sipCallId: call.sipCallId,
              trunkId: call.trunkId,
              phase: call.phase,
              startedAtMs: call.startedAtMs,
              answeredAtMs: call.answeredAtMs,
              answerSignal: call.answerSignal,
            })),
            touchedAtMs: record.touchedAtMs,
          });
        }
      }
      break;
    case 'providers':
      fill(o.maxProviderKeys, () => [failedEgressEvent(createdAt)], { ids: false, rooms: false, providers: true });
      entries = o.maxProviderKeys;
      break;
    case 'all':
      fill(o.maxEndedSessions, () => endedRoomEvents(createdAt), { ids: true, rooms: true, providers: false });
      fill(o.maxProviderKeys, () => [failedEgressEvent(createdAt)], { ids: true, rooms: false, providers: true });
      fill(Math.min(o.maxOpenSessions, o.maxCalls), () => openCallEvents(createdAt), { ids: true, rooms: true, providers: false });
      entries = 1;
      break;
  }
  const after = heapNow();
  const counts = store ? ({ ...(store as MemoryStore).counts() } as unknown as Record<string, number>) : null;
  keepAlive.push(store);
  return {
    id,
    what: spec.what,
    candidate: spec.candidate,
    entries,
    heapBytes: after - before,
    bytesPerEntry: (after - before) / entries,
    counts,
  };
}

// ---------------------------------------------- part 2: the executable full

export interface CapsFill {
  readonly runtime: string;
  readonly counts: Record<string, number>;
  readonly rssStartedBytes: number;
  readonly rssFullBytes: number;
  readonly peakFillingBytes: number;
  readonly peakBurstBytes: number;
  readonly burstRequestsPerSecond: number;
  readonly fillWebhooks: number;
  readonly notOk: number;
}

function currentRss(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function signedRooms(rooms: readonly JsonObject[][]): Workload {
  const issuedAt = Math.floor(Date.now() / 1000);
  let count = 0;
  const signed = rooms.map((events) =>
    events.map((event): Webhook => {
      const body = Buffer.from(encodeBody(event));
      count++;
      return { id: String(event.id), event: String(event.event), body, authorization: signWebhook(body, BENCH_KEY, { issuedAt }) };
    }),
  );
  return { rooms: signed, count, mix: new Map(), meanBodyBytes: 0 };
}

/** `scale` < 1 fills that share of each cap (a quick check of this code, not a measurement). */
export async function fillExecutable(log: (line: string) => void, scale: number): Promise<CapsFill> {
  const o = Object.fromEntries(Object.entries(MEMORY_DEFAULTS).map(([name, value]) => [name, name.startsWith('max') ? Math.round(value * scale) : value])) as typeof MEMORY_DEFAULTS;
  const copy = installedCopy(EXECUTABLE);
  let server: StartedServer | null = null;
  let pool: Pool | null = null;
  try {
    server = await startServer(copy.path, ['--host', '127.0.0.1', '--port', '0'], { LIVEKIT_API_KEY: BENCH_KEY.keyId, LIVEKIT_API_SECRET: BENCH_KEY.secret }, 'control-plane-memory-');
    const port = server.port;
    const child = server.child;
    const pid = child.pid!;
    pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssStartedBytes = currentRss(pid);
    let fillWebhooks = 0;
    let notOk = 0;
    const CHUNK = 10_000;
    const stage = async (label: string, rooms: number, roomOf: () => JsonObject[]): Promise<void> => {
      for (let done = 0; done < rooms; done += CHUNK) {
        const chunk: JsonObject[][] = [];
        for (let index = 0; index < Math.min(CHUNK, rooms - done); index++) chunk.push(roomOf());
        const workload = signedRooms(chunk);
        const result = await send(pool!, workload, 64);
        fillWebhooks += workload.count;
        notOk += workload.count - result.acceptedIds.length;
      }
      log(`  filled ${label}: RSS ${(currentRss(pid) / MB).toFixed(0)} MB`);
    };
    const now = () => Math.floor(Date.now() / 1000);
    await stage(`${o.maxEndedSessions.toLocaleString('en-US')} ended sessions`, o.maxEndedSessions, () => endedRoomEvents(now()));
    await stage(`${o.maxProviderKeys.toLocaleString('en-US')} provider troubles`, o.maxProviderKeys, () => [failedEgressEvent(now())]);
    await stage(`${o.maxOpenSessions.toLocaleString('en-US')} open sessions with a call`, Math.min(o.maxOpenSessions, o.maxCalls), () => openCallEvents(now()));
    const peakFillingBytes = peakRss(pid);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rssFullBytes = currentRss(pid);
    const metrics = await (await pool.request({ path: '/metrics', method: 'GET' })).body.text();
    const counts: Record<string, number> = {};
    for (const name of ['control_plane_open_sessions', 'control_plane_open_calls', 'control_plane_ended_sessions_remembered', 'control_plane_event_ids_remembered', 'control_plane_sessions_evicted_total', 'nodejs_heap_size_used_bytes']) {
      counts[name] = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    }
    const burst = await send(pool, buildWorkload({ count: 20_000, seed: 4242, kind: 'sip-calls' }), 64);
    notOk += burst.latencies.length - burst.acceptedIds.length;
    const peakBurstBytes = peakRss(pid);
    await pool.close();
    pool = null;
    return {
      runtime: runtimeVersion(EMBEDDED_RUNTIME),
      counts,
      rssStartedBytes,
      rssFullBytes,
      peakFillingBytes,
      peakBurstBytes,
      burstRequestsPerSecond: (burst.latencies.length * 1000) / burst.elapsedMs,
      fillWebhooks,
      notOk,
    };
  } finally {
    if (pool) await pool.destroy();
    await server?.close();
    copy.remove();
  }
}

// ------------------------------------------------------------ the report

export interface MemoryResult {
  readonly runtime: string;
  readonly heap: readonly HeapProbe[];
  readonly caps: CapsFill | null;
}

/** Runs part 1 (each probe in a fresh process) and, with `executable`, part 2. */
export async function runMemory(options: { executable: boolean; log: (line: string) => void; scale?: number }): Promise<MemoryResult> {
  const runtime = EMBEDDED_RUNTIME;
  const node = spawnSync(runtime, ['--version']).status === 0 ? runtime : process.execPath;
  const heap: HeapProbe[] = [];
  for (const spec of PROBES) {
    const child = spawnSync(node, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--probe', spec.id], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 16 * MB });
    if (child.status !== 0) throw new Error(`memory probe ${spec.id} failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
    const result = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as HeapProbe;
    heap.push(result);
    options.log(`  ${spec.id.padEnd(13)} ${result.entries === 1 ? `${(result.heapBytes / MB).toFixed(1)} MB heap` : `${result.bytesPerEntry.toFixed(0)} B/entry over ${result.entries.toLocaleString('en-US')}`}`);
  }
  let caps: CapsFill | null = null;
  if (options.executable) {
    options.log('  the executable, filled to every cap over HTTP:');
    caps = await fillExecutable(options.log, options.scale ?? 1);
  }
  return { runtime: runtimeVersion(node), heap, caps };
}

function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((side) => (side === 'r' ? '---:' : ':---'))), ...rows.map(line)].join('\n');
}

export function memoryTables(result: MemoryResult): string {
  const perEntry = result.heap.filter((probe) => probe.id !== 'all');
  const parts: string[] = [];
  const baseline = new Map(perEntry.filter((probe) => probe.candidate.startsWith('MemoryStore today')).map((probe) => [probe.what, probe.bytesPerEntry]));
  parts.push(
    `Heap kept per entry (${result.runtime}, after two full GCs; each row a fresh process filled to the cap):\n\n` +
      table(
        ['entry', 'representation', 'entries', 'heap MB', 'bytes per entry', 'vs today'],
        perEntry.map((probe) => [
          probe.what,
          probe.candidate,
          probe.entries.toLocaleString('en-US'),
          (probe.heapBytes / MB).toFixed(1),
          probe.bytesPerEntry.toFixed(0),
          baseline.has(probe.what) ? `${((probe.bytesPerEntry / baseline.get(probe.what)!) * 100).toFixed(0)}%` : '—',
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r'],
      ),
  );
  const all = result.heap.find((probe) => probe.id === 'all');
  if (all) {
    const c = all.counts ?? {};
    parts.push(
      `Every cap full in one MemoryStore (${Number(c.rememberedIds).toLocaleString('en-US')} ids, ${Number(c.openSessions).toLocaleString('en-US')} open sessions with ${Number(c.openCalls).toLocaleString('en-US')} calls, ` +
        `${Number(c.endedSessions).toLocaleString('en-US')} ended, ${MEMORY_DEFAULTS.maxProviderKeys.toLocaleString('en-US')} provider troubles): ${(all.heapBytes / MB).toFixed(1)} MB of heap (the executable's RSS at the caps: part 2, \`npm run bench:memory\`).`,
    );
  }
  if (result.caps) {
    const caps = result.caps;
    const c = caps.counts;
    parts.push(
      `The executable (${caps.runtime}) filled to every cap over HTTP (${caps.fillWebhooks.toLocaleString('en-US')} webhooks; /metrics then: ${c.control_plane_event_ids_remembered?.toLocaleString('en-US')} ids, ` +
        `${c.control_plane_open_sessions?.toLocaleString('en-US')} open sessions, ${c.control_plane_open_calls?.toLocaleString('en-US')} open calls, ${c.control_plane_ended_sessions_remembered?.toLocaleString('en-US')} ended sessions; ` +
        `${caps.notOk} not answered 200):\n\n` +
        table(
          ['moment', 'RSS MB'],
          [
            ['started, idle', (caps.rssStartedBytes / MB).toFixed(0)],
            [`every cap full, idle (V8 heap in use then: ${((c.nodejs_heap_size_used_bytes ?? Number.NaN) / MB).toFixed(0)} MB, garbage not yet collected included)`, (caps.rssFullBytes / MB).toFixed(0)],
            ['peak while filling (VmHWM)', (caps.peakFillingBytes / MB).toFixed(0)],
            [`peak after a burst of 20 000 SIP-call webhooks at 64 in flight on top (VmHWM; ${Math.round(caps.burstRequestsPerSecond).toLocaleString('en-US')} req/s)`, (caps.peakBurstBytes / MB).toFixed(0)],
          ],
          ['l', 'r'],
        ),
    );
  }
  return parts.join('\n\n');
}

function machine(): string {
  const cores = cpus();
  return `${cores.length} × ${cores[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GB RAM, ${process.platform} ${process.arch}`;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--probe') {
    process.stdout.write(`${JSON.stringify(probe(argv[1] as ProbeId))}\n`);
    return;
  }
  let out = join(REPO_ROOT, 'bench', 'results');
  let scale = 1;
  for (let index = 0; index < argv.length; index += 2) {
    if (argv[index] === '--out' && argv[index + 1]) out = argv[index + 1]!;
    else if (argv[index] === '--scale' && Number(argv[index + 1]) > 0 && Number(argv[index + 1]) <= 1) scale = Number(argv[index + 1]);
    else throw new Error('usage: npm run bench:memory -- [--out DIR] [--scale S (0 < S ≤ 1: fill that share of each cap in part 2, to check this code quickly)]');
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const startedAt = new Date();
  log(`control-plane memory at the caps — ${startedAt.toISOString()}\nmachine: ${machine()}`);
  const result = await runMemory({ executable: true, log, scale });
  const tables = memoryTables(result);
  log(`\n${tables}`);
  mkdirSync(out, { recursive: true });
  const path = join(out, `${startedAt.toISOString().slice(0, 19).replace(/:/g, '-')}-memory.md`);
  writeFileSync(path, `# control-plane memory at the caps, ${startedAt.toISOString()}\n\nMachine: ${machine()}.\n\n${tables}\n`);
  log(`\nwrote ${path}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
