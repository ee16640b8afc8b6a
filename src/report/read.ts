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
