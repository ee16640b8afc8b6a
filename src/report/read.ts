// `control-plane report`, the streaming half: bytes in (a file, a rotated
// .gz file, or standard input from journalctl), lines out to the
// aggregator, one chunk at a time. Memory holds one chunk and at most one
// partial line; a line longer than the limit is skipped without being held.

import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { MAX_LINE_BYTES } from './aggregate.ts';

export interface LineConsumer {
  line(text: string): void;
  /** A line that was too long to hand over. */
  skipLine(): void;
}

export interface ReadOptions {
  /** The input is gzip-compressed (a rotated `.gz` file). */
  readonly gzip: boolean;
  readonly maxLineBytes?: number;
  /** Runs after each chunk's lines; the caller writes its output here and may wait for it to drain. */
  readonly afterChunk?: () => Promise<void> | void;
  /** Checked after each chunk: true stops reading (the reader of our output went away). */
  readonly stopped?: () => boolean;
}

/** Feeds every line of `input` to `consumer`; resolves at the end of the input, rejects on a read or decompression error. */
export async function readLines(input: Readable, consumer: LineConsumer, options: ReadOptions): Promise<void> {
  const maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
  let source: Readable = input;
  if (options.gzip) {
    const gunzip = createGunzip();
    input.on('error', (error) => gunzip.destroy(error));
    source = input.pipe(gunzip);
  }
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let discarding = false;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    const text = decoder.write(chunk);
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      if (discarding) {
        consumer.skipLine();
        discarding = false;
      } else {
        consumer.line(carry === '' ? text.slice(start, newline) : carry + text.slice(start, newline));
        carry = '';
      }
      start = newline + 1;
    }
    if (!discarding && start < text.length) {
      carry += text.slice(start);
      if (carry.length > maxLine) {
        carry = '';
        discarding = true;
      }
    }
    if (options.afterChunk) await options.afterChunk();
    if (options.stopped?.()) {
      source.destroy();
      if (source !== input) input.destroy();
      return;
    }
  }
  const rest = carry + decoder.end();
  if (discarding) consumer.skipLine();
  else if (rest !== '') consumer.line(rest);
}

// Rotated names: this daemon's own (`<file>.<YYYYMMDDTHHMMSSZ>[-<n>][.gz]`,
// src/sinks/rotated-files.ts) and logrotate's numbered ones (`<file>.<n>[.gz]`,
// `.1` the newest).
const OWN_ROTATION = /^(.*)\.(\d{8}T\d{6}Z)(?:-([1-9]\d*))?(?:\.gz)?$/;
const NUMBERED_ROTATION = /^(.*)\.([1-9]\d*)(?:\.gz)?$/;

interface Placed {
  readonly path: string;
  readonly group: string;
  /** Older first within a group; the live file (Infinity) last. */
  readonly rank: readonly [number, string, number];
}

function place(path: string): Placed {
  const own = OWN_ROTATION.exec(path);
  if (own) return { path, group: own[1]!, rank: [0, own[2]!, Number(own[3] ?? 0)] };
  const numbered = NUMBERED_ROTATION.exec(path);
  if (numbered) return { path, group: numbered[1]!, rank: [1, '', -Number(numbered[2])] };
  return { path, group: path, rank: [2, '', 0] };
}

/**
 * The files in the order their lines were written: a log file's rotated
 * files oldest first (a shell glob sorts `x.…Z-1.gz` before `x.…Z.gz` and
 * `x.10` before `x.2`), then the live file itself. Files of different logs
 * keep the order they were given in.
 */
export function inWritingOrder(paths: readonly string[]): string[] {
  const placed = paths.map(place);
  const groupOrder = new Map<string, number>();
  for (const item of placed) if (!groupOrder.has(item.group)) groupOrder.set(item.group, groupOrder.size);
  return placed
    .map((item, index) => ({ item, index }))
    .sort((a, b) => {
      const group = groupOrder.get(a.item.group)! - groupOrder.get(b.item.group)!;
      if (group !== 0) return group;
      const [kindA, stampA, countA] = a.item.rank;
      const [kindB, stampB, countB] = b.item.rank;
      return kindA - kindB || stampA.localeCompare(stampB) || countA - countB || a.index - b.index;
    })
    .map(({ item }) => item.path);
}
