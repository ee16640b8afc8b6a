// Shared by the file sink tests: temporary directories, a settable clock,
// reading every line the sink produced (plain and gzipped files), and
// failure injection into node:fs for the sink's synchronous calls.

import fs, { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export function temporaryDirectory(t: { after: (fn: () => void) => void }, prefix = 'file-sink-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

/** A clock the test moves by hand (rotation names come from it). */
export function manualClock(start = '2025-01-02T03:04:05.678Z'): { now: () => Date; set: (iso: string) => void; advance: (ms: number) => void } {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (iso) => (current = new Date(iso).getTime()),
    advance: (ms) => (current += ms),
  };
}

/** One line of `n` bytes including its newline, recognisable by its number. */
export function line(n: number, bytes = 40): string {
  const head = `{"n":${n},"pad":"`;
  const tail = '"}\n';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

export function readMaybeGzip(path: string): string {
  const raw = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
}

export function sortedNames(directory: string): string[] {
  return readdirSync(directory).sort();
}

/** The `n` of every line in `text`, failing on any line that is not whole JSON. */
export function lineNumbers(text: string): number[] {
  if (text !== '' && !text.endsWith('\n')) throw new Error(`text ends with a partial line: ${JSON.stringify(text.slice(-80))}`);
  return text
    .split('\n')
    .filter((entry) => entry !== '')
    .map((entry) => (JSON.parse(entry) as { n: number }).n);
}

type FsFunctionName = 'ftruncateSync' | 'fdatasyncSync' | 'openSync' | 'statSync' | 'lstatSync' | 'renameSync';

/**
 * Replaces one node:fs function (also for modules that imported it by name)
 * until the returned restore function is called. `replacement` receives the
 * original.
 */
export function replaceFs<Name extends FsFunctionName>(
  name: Name,
  replacement: (original: (typeof fs)[Name], ...args: Parameters<(typeof fs)[Name]>) => ReturnType<(typeof fs)[Name]>,
): { calls: () => number; restore: () => void } {
  const original = fs[name];
  let calls = 0;
  const wrapper = ((...args: Parameters<(typeof fs)[Name]>) => {
    calls++;
    return replacement(original, ...args);
  }) as unknown as (typeof fs)[Name];
  (fs as unknown as Record<string, unknown>)[name] = wrapper;
  syncBuiltinESMExports();
  return {
    calls: () => calls,
    restore: () => {
      (fs as unknown as Record<string, unknown>)[name] = original;
      syncBuiltinESMExports();
    },
  };
}

type BufferWrite = (fd: number, buffer: Buffer, offset: number, length: number) => number;

/** replaceFs for writeSync, in the (fd, buffer, offset, length) form the sink uses. */
export function replaceWriteSync(replacement: (original: BufferWrite, fd: number, buffer: Buffer, offset: number, length: number) => number): { calls: () => number; restore: () => void } {
  const original = fs.writeSync as unknown as BufferWrite;
  let calls = 0;
  (fs as unknown as Record<string, unknown>).writeSync = (fd: number, buffer: Buffer, offset: number, length: number) => {
    calls++;
    return replacement(original, fd, buffer, offset, length);
  };
  syncBuiltinESMExports();
  return {
    calls: () => calls,
    restore: () => {
      (fs as unknown as Record<string, unknown>).writeSync = original;
      syncBuiltinESMExports();
    },
  };
}

export function errnoError(code: string, message = code): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${message}`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}
