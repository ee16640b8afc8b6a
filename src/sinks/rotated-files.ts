// The files the size rotation of the file sink leaves behind: how they are
// named, how many are kept, and their compression, which runs in the
// background (libuv's thread pool) and never on the request path.
//
// Naming, for `--log-file /var/log/control-plane/control-plane.log`:
//
//   control-plane.log.20250102T030405Z        rotated at 03:04:05 UTC
//   control-plane.log.20250102T030405Z-1      the next rotation in that same second
//   control-plane.log.20250102T030405Z.gz     the same, compressed (--log-compress)
//   control-plane.log.20250102T030405Z.gz.partial   a compression in progress
//
// Names sort in the order of rotation, which is the order --log-keep
// keeps by: a new name always sorts after every rotated name in the
// directory and every name given before. Several rotations in one second
// count up from the highest counter of that second, never from a freed
// name (the cleanup may have deleted `…Z` while `…Z-1` and `…Z-2` are kept:
// reusing `…Z` would make the newest file sort as the oldest, and delete
// it). If the clock goes back, the newest existing stamp is reused with
// the next counter, so the name then tells the order, not the time.
//
// Only names of exactly this shape are ever deleted. logrotate's names
// (`control-plane.log.1`, `control-plane.log.2.gz`, or `-20250102` with
// dateext) never match it, and ours do not end in `.log`, so logrotate's
// `*.log` glob never picks ours up.
//
// Crash safety of compression: the `.gz` is written as `.gz.partial`,
// fsynced, renamed into place, the directory fsynced, and only then is the
// uncompressed file removed. At any moment the uncompressed file or a
// complete `.gz` exists. A `.gz.partial` left by a crash is deleted by the
// next pass, and an uncompressed rotated file is (re)compressed, also when a
// `.gz` of it exists already (a crash between the rename and the unlink).
//
// No symbolic link is ever followed: a rotated file is read with
// O_NOFOLLOW, the `.gz.partial` is created with O_CREAT | O_EXCL (which
// never follows a link and never truncates an existing file), and deleting
// or renaming a name acts on the link itself, never on its target. A link
// in the way is refused with an ELOOP error (the sink counts it); a link
// left at `.gz.partial` is removed by the next pass.

import { constants, lstatSync, readdirSync } from 'node:fs';
import { type FileHandle, lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const PARTIAL_SUFFIX = '.partial';

/** `20250102T030405Z`: the UTC second of `date`. */
export function rotationStamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface RotatedName {
  /** The file name without `.gz` / `.gz.partial`: `<base>.<stamp>[-<n>]`. */
  readonly stem: string;
  readonly stamp: string;
  readonly counter: number;
  readonly kind: 'plain' | 'gz' | 'partial';
}

/** Recognises the names this sink gives (and nothing else) for the log file named `base`. */
export function rotatedNamePattern(base: string): RegExp {
  return new RegExp(`^(${escapeRegExp(base)}\\.(\\d{8}T\\d{6}Z)(?:-([1-9]\\d*))?)(\\.gz(?:${escapeRegExp(PARTIAL_SUFFIX)})?)?$`);
}

export function parseRotatedName(pattern: RegExp, name: string): RotatedName | null {
  const match = pattern.exec(name);
  if (!match) return null;
  const suffix = match[4];
  return {
    stem: match[1]!,
    stamp: match[2]!,
    counter: match[3] === undefined ? 0 : Number(match[3]),
    kind: suffix === undefined ? 'plain' : suffix === '.gz' ? 'gz' : 'partial',
  };
}

interface RotatedFile {
  readonly stem: string;
  readonly stamp: string;
  readonly counter: number;
  plain: boolean;
  gz: boolean;
  partial: boolean;
}

/** Rotation order: the stamp (fixed width, so text order is time order), then the counter. */
function oldestFirst(a: { readonly stamp: string; readonly counter: number }, b: { readonly stamp: string; readonly counter: number }): number {
  if (a.stamp !== b.stamp) return a.stamp < b.stamp ? -1 : 1;
  return a.counter - b.counter;
}

/** Whether anything (a file, or a link, even a dangling one) has this name. */
function nameTaken(path: string): boolean {
  return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `bytes` at the handle's position (a regular file may take them in parts). */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset);
    if (bytesWritten === 0) throw new Error('write made no progress');
    offset += bytesWritten;
  }
}

/** An ELOOP error saying which name is a symbolic link that was not followed. */
function symlinkRefused(path: string, cause: unknown): NodeJS.ErrnoException {
  const error = new Error(`${path} is a symbolic link; refusing to follow it`, { cause }) as NodeJS.ErrnoException;
  error.code = 'ELOOP';
  return error;
}

async function isSymbolicLink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Opens a rotated file for reading; a symbolic link there is refused (ELOOP). */
async function openForReading(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(path, error);
    throw error;
  }
}

/** Creates a new file: never one that exists, never through a symbolic link (ELOOP), never truncating anything. */
async function createExclusively(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
  } catch (error) {
    // EEXIST: a leftover of a crash (the next pass removes it), or a planted link.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && (await isSymbolicLink(path))) throw symlinkRefused(path, error);
    throw error;
  }
}

/**
 * Compresses `source` to `source.gz` without ever having neither a complete
 * copy: `.gz.partial` → fsync → rename → fsync directory → unlink source.
 * The `.gz` keeps the modification time of the source. Never follows a
 * symbolic link (see the top of this file): ELOOP when one is in the way.
 */
export async function gzipRotatedFile(source: string): Promise<void> {
  const target = `${source}.gz`;
  const partial = `${target}${PARTIAL_SUFFIX}`;
  const input = await openForReading(source);
  let output: FileHandle | undefined;
  try {
    output = await createExclusively(partial);
  } catch (error) {
    await input.close();
    throw error;
  }
  try {
    const sourceStat = await input.stat();
    const handle = output;
    await pipeline(input.createReadStream(), createGzip(), async (compressed: AsyncIterable<Buffer>) => {
      for await (const chunk of compressed) await writeAll(handle, chunk);
    });
    // On disk before the rename publishes it as a complete `.gz`.
    await output.utimes(sourceStat.atime, sourceStat.mtime);
    await output.sync();
    await output.close();
    output = undefined;
    await rename(partial, target);
  } catch (error) {
    await output?.close().catch(() => undefined);
    await input.close().catch(() => undefined);
    await removeIfPresent(partial).catch(() => undefined);
    throw error;
  }
  await fsyncDirectory(dirname(source));
  await unlink(source);
}

export interface RotatedFilesOptions {
  /** The live log file; rotated files sit next to it. */
  readonly path: string;
  /** Rotated files kept (the newest ones); older ones are deleted. */
  readonly keep: number;
  readonly compress: boolean;
  readonly onError: (error: Error) => void;
}

/**
 * Names new rotated files and, in the background, enforces `keep` and
 * compresses. Passes run one at a time; requests made during a pass
 * coalesce into one more pass after it.
 */
export class RotatedFiles {
  private readonly path: string;
  private readonly directory: string;
  private readonly pattern: RegExp;
  private readonly keep: number;
  private readonly compress: boolean;
  private readonly onError: (error: Error) => void;
  private running: Promise<void> | null = null;
  private again = false;
  /** The last name nextName gave: never given again, even once deleted. */
  private lastGiven: { readonly stamp: string; readonly counter: number } | null = null;

  constructor(options: RotatedFilesOptions) {
    this.path = options.path;
    this.directory = dirname(options.path);
    this.pattern = rotatedNamePattern(basename(options.path));
    this.keep = options.keep;
    this.compress = options.compress;
    this.onError = options.onError;
  }

  /**
   * The name for a rotation at `date`: one that no file has and that sorts
   * after every rotated file in the directory and every name given before
   * (see the top of this file). Reads the directory: rotations are rare.
   */
  nextName(date: Date): string {
    let stamp = rotationStamp(date);
    let counter = 0;
    const newest = this.newestName();
    if (newest !== null && newest.stamp >= stamp) {
      stamp = newest.stamp;
      counter = newest.counter + 1;
    }
    for (; ; counter++) {
      const candidate = counter === 0 ? `${this.path}.${stamp}` : `${this.path}.${stamp}-${counter}`;
      if (nameTaken(candidate) || nameTaken(`${candidate}.gz`)) continue;
      this.lastGiven = { stamp, counter };
      return candidate;
    }
  }

  /** The latest in rotation order of the names in the directory and the last name given. */
  private newestName(): { readonly stamp: string; readonly counter: number } | null {
    let newest = this.lastGiven;
    let names: string[] = [];
    try {
      names = readdirSync(this.directory);
    } catch {
      // Unreadable or gone: the names given in this run still order the new one.
    }
    for (const name of names) {
      const parsed = parseRotatedName(this.pattern, name);
      if (parsed !== null && (newest === null || oldestFirst(newest, parsed) < 0)) newest = parsed;
    }
    return newest;
  }

  /** Schedules a pass (compress, enforce keep). Returns at once. */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runPasses();
  }

  /** Resolves when no pass is running or scheduled (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async runPasses(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    } finally {
      this.running = null;
    }
  }

  /** Every rotated file of ours in the directory, oldest first. */
  async list(): Promise<RotatedFile[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      // No directory (removed, or a file in its place): nothing to maintain until the sink recreates it.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw error;
    }
    const byStem = new Map<string, RotatedFile>();
    for (const name of names) {
      const parsed = parseRotatedName(this.pattern, name);
      if (!parsed) continue;
      let file = byStem.get(parsed.stem);
      if (!file) {
        file = { stem: parsed.stem, stamp: parsed.stamp, counter: parsed.counter, plain: false, gz: false, partial: false };
        byStem.set(parsed.stem, file);
      }
      file[parsed.kind] = true;
    }
    return [...byStem.values()].sort(oldestFirst);
  }

  private async pass(): Promise<void> {
    let files: RotatedFile[];
    try {
      files = await this.list();
    } catch (error) {
      this.onError(new Error(`cannot list rotated log files in ${this.directory}: ${(error as Error).message}`));
      return;
    }
    // A pass never overlaps a compression, so any `.gz.partial` is a leftover.
    for (const file of files) {
      if (file.partial) await this.attempt(`removing ${file.stem}.gz${PARTIAL_SUFFIX}`, () => removeIfPresent(`${this.directory}/${file.stem}.gz${PARTIAL_SUFFIX}`));
    }
    const excess = Math.max(0, files.length - this.keep);
    for (const file of files.slice(0, excess)) {
      await this.attempt(`deleting rotated log ${file.stem}`, async () => {
        await removeIfPresent(`${this.directory}/${file.stem}`);
        await removeIfPresent(`${this.directory}/${file.stem}.gz`);
      });
    }
    if (!this.compress) return;
    for (const file of files.slice(excess)) {
      if (!file.plain) continue;
      await this.attempt(`compressing rotated log ${file.stem}`, () => gzipRotatedFile(`${this.directory}/${file.stem}`));
    }
  }

  private async attempt(what: string, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      // Gone in the meantime (an operator, or the directory was removed): nothing to do.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.onError(new Error(`${what}: ${(error as Error).message}`));
    }
  }
}
