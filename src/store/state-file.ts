// The state file (--state-file): open sessions, their calls and the recent
// event ids, so that a restart neither repeats nor loses a call's lines.
//
// Saved atomically: the JSON goes to a temporary file next to the target
// (same directory, so the rename cannot cross file systems), is fsynced,
// renamed over the target, and the directory is fsynced so the rename
// itself survives a power cut. A reader therefore sees the old file or the
// new one, never half of one. The file holds phone numbers and identities
// as LiveKit sent them (redaction applies to output lines, not to state),
// so it is created readable by its owner only (0600).
//
// Loading never throws: a missing, unreadable or corrupt file gives a
// warning (written as a control_plane.warning line) and an empty start.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseSessionSnapshot, type SessionSnapshot } from '../obs/sessions.ts';

export const STATE_FORMAT = 'control-plane-state';
export const STATE_VERSION = 1;

export interface SavedState {
  readonly sessions: SessionSnapshot;
  /** RecentIds.entries(): [event id, time first written (ms)], oldest first. */
  readonly recentIds: ReadonlyArray<readonly [string, number]>;
}

export interface LoadedState {
  readonly sessions?: SessionSnapshot;
  readonly recentIds?: Array<[string, number]>;
  /** Why the state could not be used (the daemon starts empty). */
  readonly warning?: string;
}

const describe = (error: unknown): string => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code ? `${code}: ${message}` : message;
};

/** The file's text for a state (exported for tests and tools). */
export function encodeState(state: SavedState, savedAtMs: number): string {
  return JSON.stringify({
    format: STATE_FORMAT,
    version: STATE_VERSION,
    saved_at: new Date(savedAtMs).toISOString(),
    sessions: state.sessions,
    recentIds: state.recentIds,
  });
}

/** Parses a state file's text; every problem becomes a warning, never an exception. */
export function decodeState(text: string, path: string): LoadedState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { warning: `state file ${path} is corrupt (${describe(error)}); starting with empty state` };
  }
  const fail = (what: string): LoadedState => ({ warning: `state file ${path} is not usable (${what}); starting with empty state` });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not a JSON object');
  const file = value as Record<string, unknown>;
  if (file.format !== STATE_FORMAT) return fail(`format is not "${STATE_FORMAT}"`);
  if (file.version !== STATE_VERSION) return fail(`unsupported version ${JSON.stringify(file.version)}`);
  const sessions = parseSessionSnapshot(file.sessions);
  if (!sessions.ok) return fail(sessions.error);
  const ids = file.recentIds;
  if (!Array.isArray(ids) || !ids.every((entry) => Array.isArray(entry) && entry.length === 2 && typeof entry[0] === 'string' && Number.isFinite(entry[1]))) {
    return fail('recentIds is not a list of [id, ms]');
  }
  return { sessions: sessions.snapshot, recentIds: ids as Array<[string, number]> };
}

/**
 * Reads the state saved by a previous run. `nowMs` is unused by the parser
 * itself (pass it on to SessionStore.restore and RecentIds.restore, which
 * prune what has expired meanwhile); it is accepted here so that callers
 * read the clock once.
 */
export function loadState(path: string, _nowMs: number): LoadedState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { warning: `state file ${path} does not exist yet; starting with empty state` };
    return { warning: `state file ${path} cannot be read (${describe(error)}); starting with empty state` };
  }
  return decodeState(text, path);
}

let temporaryCounter = 0;

/**
 * Writes the state atomically (temporary file, fsync, rename, directory
 * fsync). Returns undefined on success, or what went wrong (the previous
 * file is then left as it was). Never throws.
 */
export function saveState(path: string, state: SavedState, savedAtMs = Date.now()): string | undefined {
  const temporary = `${dirname(path)}/.${basename(path)}.${process.pid}.${++temporaryCounter}.tmp`;
  let fd: number | undefined;
  try {
    const text = encodeState(state, savedAtMs);
    fd = openSync(temporary, 'wx', 0o600);
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already reporting the first error
      }
    }
    try {
      unlinkSync(temporary);
    } catch {
      // it may never have been created
    }
    return `cannot save ${path} (${describe(error)})`;
  }
  // The rename is done; make it durable. A failure here loses nothing yet.
  try {
    const directory = openSync(dirname(path), 'r');
    try {
      fsyncSync(directory);
    } finally {
      closeSync(directory);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename still happened.
  }
  return undefined;
}
