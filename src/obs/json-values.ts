// Checks on values read back from JSON that the program did not write in
// this run: a state file, a shared store's records, a token's claims.

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A `[key, ms]` pair (an id, a room SID or a provider key with the time it was remembered). */
export function isTimedKey(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isFinite(value[1]);
}
