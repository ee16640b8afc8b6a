// Reads a file sink's directory back and checks that the output is
// complete: for the durability tests, which drive the real daemon while
// logrotate, size rotation, SIGHUP, a full disk or kill -9 interfere.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Pool } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { authorize, type ObsLine } from '../helpers/daemon.ts';

export interface LogFile {
  readonly name: string;
  readonly text: string;
}

/**
 * Every file of the log named `base` in `directory` (the live file, the
 * sink's rotated files, logrotate's), decompressed. A `.gz` that does not
 * decompress fails. Compressions still in progress (`.gz.partial`) are
 * skipped: their source is still there. A `.gz` next to its source (a crash
 * after the rename, before the unlink) must hold the same bytes, and counts
 * once.
 */
export function readLogFiles(directory: string, base: string): LogFile[] {
  const names = readdirSync(directory).filter((name) => name.startsWith(base) && !name.endsWith('.partial'));
  const present = new Set(names);
  const read = (name: string): string => {
    const raw = readFileSync(join(directory, name));
    if (!name.endsWith('.gz')) return raw.toString('utf8');
    try {
      return gunzipSync(raw).toString('utf8');
    } catch (error) {
      throw new Error(`${name} is not a valid gzip file: ${(error as Error).message}`);
    }
  };
  const files: LogFile[] = [];
  for (const name of names.sort()) {
    const text = read(name);
    const source = name.slice(0, -'.gz'.length);
    if (name.endsWith('.gz') && present.has(source)) {
      assert.equal(text, read(source), `${name} holds the same lines as ${source}, which is still there`);
      continue;
    }
    files.push({ name, text });
  }
  return files;
}

/** Every line of every file, parsed; fails on a file that ends inside a line, or a line that is not JSON. */
export function parseLogFiles(files: readonly LogFile[]): ObsLine[] {
  const lines: ObsLine[] = [];
  for (const file of files) {
    if (file.text !== '' && !file.text.endsWith('\n')) assert.fail(`${file.name} ends with a partial line: ${JSON.stringify(file.text.slice(-120))}`);
    for (const text of file.text.split('\n')) {
      if (text === '') continue;
      try {
        lines.push(JSON.parse(text) as ObsLine);
      } catch {
        assert.fail(`${file.name} has a line that is not JSON (split or corrupt): ${JSON.stringify(text.slice(0, 200))}`);
      }
    }
  }
  return lines;
}

/**
 * The lines of one process, in whatever files they ended up: `seq` runs
 * 1..n, each exactly once (no loss, no duplicate); every accepted webhook
 * has its whole chunk — webhook.received, webhook.processing, its
 * livekit.* line and derived lines — at consecutive seqs, exactly once.
 * Returns the lines in seq order.
 */
export function assertCompleteOutput(lines: readonly ObsLine[], acceptedWebhookIds: Iterable<string>): ObsLine[] {
  const bySeq = [...lines].sort((a, b) => a.seq - b.seq);
  const duplicates = bySeq.filter((line, index) => index > 0 && bySeq[index - 1]!.seq === line.seq).map((line) => line.seq);
  assert.deepEqual(duplicates.slice(0, 10), [], `duplicated seqs (${duplicates.length})`);
  assert.equal(bySeq[0]?.seq, 1, 'the output starts at seq 1');
  const gaps: string[] = [];
  for (let index = 1; index < bySeq.length; index++) {
    const previous = bySeq[index - 1]!.seq;
    if (bySeq[index]!.seq > previous + 1) gaps.push(`${previous + 1}..${bySeq[index]!.seq - 1}`);
  }
  assert.deepEqual(gaps.slice(0, 10), [], `seq gaps, lines lost (${gaps.length} gaps)`);

  const linesOf = new Map<string, ObsLine[]>();
  for (const line of bySeq) {
    const id = line.webhook_id;
    if (typeof id !== 'string') continue;
    let group = linesOf.get(id);
    if (!group) linesOf.set(id, (group = []));
    group.push(line);
  }
  const seqIndex = new Map(bySeq.map((line, index) => [line.seq, index]));
  for (const id of acceptedWebhookIds) {
    const group = linesOf.get(id);
    assert.ok(group, `accepted webhook ${id} has no line in the output`);
    assert.equal(group.filter((line) => line.event_type === 'webhook.processing').length, 1, `webhook ${id}: exactly one webhook.processing`);
    assert.equal(group.filter((line) => line.event_type.startsWith('livekit.')).length, 1, `webhook ${id}: exactly one livekit.* line`);
    group.forEach((line, index) => {
      if (index > 0) assert.equal(line.seq, group[index - 1]!.seq + 1, `webhook ${id}: its lines are one chunk (consecutive seqs)`);
    });
    const received = bySeq[seqIndex.get(group[0]!.seq)! - 1];
    assert.equal(received?.event_type, 'webhook.received', `webhook ${id}: webhook.received comes right before its lines`);
  }
  return bySeq;
}

export interface LoadResult {
  /** Ids of webhooks answered 200. */
  readonly accepted: string[];
  /** Answers by status (and `error` for requests that got no answer). */
  readonly statuses: Map<number | 'error', number>;
  readonly retryAfter: string[];
}

const EVENTS = ['room_started', 'participant_joined', 'track_published', 'egress_updated', 'participant_left'] as const;

/**
 * `workers` loops, each sending one signed webhook after the other (as
 * LiveKit does per room), until `keepGoing()` is false.
 */
export async function sendWebhooks(url: string, options: { workers: number; keepGoing: () => boolean; onAnswer?: (status: number) => void }): Promise<LoadResult> {
  const pool = new Pool(url, { connections: options.workers, pipelining: 1 });
  const result: LoadResult = { accepted: [], statuses: new Map(), retryAfter: [] };
  const count = (key: number | 'error') => result.statuses.set(key, (result.statuses.get(key) ?? 0) + 1);
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (options.keepGoing()) {
      const event = sampleWebhook(EVENTS[sent++ % EVENTS.length]!, 'durability-room');
      const body = encodeBody(event);
      try {
        const response = await pool.request({ path: '/webhook', method: 'POST', body, headers: { 'content-type': 'application/webhook+json', authorization: authorize(body) } });
        await response.body.text();
        count(response.statusCode);
        if (response.statusCode === 200) result.accepted.push(event.id as string);
        const retry = response.headers['retry-after'];
        if (typeof retry === 'string') result.retryAfter.push(retry);
        options.onAnswer?.(response.statusCode);
      } catch {
        count('error');
        if (!options.keepGoing()) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.workers }, worker));
  } finally {
    await pool.destroy();
  }
  return result;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
