// The Lua scripts the shared store runs in Redis (or Valkey). They compare
// and set, nothing more: which lines an event causes and what a session
// becomes are decided in TypeScript (src/pipeline/plan.ts) before a script
// runs. Each script is atomic in Redis, and each is one round trip for a
// whole group of webhooks. docs/shared-store.md explains why a group takes
// leases when it reads and checks them when it commits.
//
// Values: a room is `<version>|<JSON session record>` while its session is
// open and `<version>|E<ended at, ms>` once it ended; an event id or a
// provider trouble key holds the time it was accepted. Missing is version 0.
//
// The scripts use only commands of Redis 6.2 and Valkey, no shebang flags.

/**
 * Takes a lease on every key of a group, all or none, and returns the keys'
 * values. All or none: an instance never holds some keys while it waits for
 * others, so two instances cannot block each other.
 *
 * KEYS[1..n]: the leases; KEYS[n+1..2n]: the data keys, in the same order.
 * ARGV[1]: the group's token; ARGV[2]: the lease's lifetime (ms).
 * Returns {1, values} (nil for a missing key), or {0, i} when the i-th key is
 * leased by another group.
 */
export const LEASE_AND_READ = `
local n = #KEYS / 2
local token = ARGV[1]
for i = 1, n do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= token then
    return {0, i}
  end
end
local values = {}
for i = 1, n do
  redis.call('SET', KEYS[i], token, 'PX', ARGV[2])
  values[i] = redis.call('GET', KEYS[n + i])
end
return {1, values}
`;

/** Arguments per key in COMMIT: op, expected version, value, ttl (ms), room SID, index score (ms), live legs. */
export const COMMIT_ARGS_PER_KEY = 7;

/**
 * Commits a group's changes if, and only if, no other group holds one of
 * its keys and nothing it read has changed since (compare-and-set), then
 * releases its leases. On any mismatch nothing is written, the group's
 * leases are released, and the reason is returned.
 *
 * KEYS[1..n]: the leases; KEYS[n+1..2n]: the data keys (as read); then the
 * open-session index, the live-legs hash, the ended-session index, the
 * counters hash, and this minute's count of accepted ids.
 * ARGV[1]: token; ARGV[2]: n; ARGV[3]: ids added; ARGV[4]: the id count's
 * lifetime; ARGV[5]: the indexes' lifetime; then COMMIT_ARGS_PER_KEY per key:
 *   op: `room` (write a room: version must equal the expected one),
 *       `same` (a room read, not changed: version must still be the expected one),
 *       `add` (an id or provider key: must not exist yet),
 *       `seen` (an id or key read, not changed: nothing to check);
 *   value, ttl: what `room` and `add` write and for how long;
 *   SID, score, live legs (-1: the session ended): the room's index entries.
 * Returns {1}, or {0, reason, i}: reason `lease`, `version` or `exists` for the i-th key.
 */
export const COMMIT = `
local token = ARGV[1]
local n = tonumber(ARGV[2])
local per = ${COMMIT_ARGS_PER_KEY}
local function versionOf(value)
  if not value then return 0 end
  local bar = string.find(value, '|', 1, true)
  return tonumber(string.sub(value, 1, bar - 1))
end
local function releaseOwn()
  for i = 1, n do
    if redis.call('GET', KEYS[i]) == token then redis.call('DEL', KEYS[i]) end
  end
end
for i = 1, n do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= token then
    releaseOwn()
    return {0, 'lease', i}
  end
  local a = 6 + (i - 1) * per
  local op = ARGV[a]
  if op == 'room' or op == 'same' then
    if versionOf(redis.call('GET', KEYS[n + i])) ~= tonumber(ARGV[a + 1]) then
      releaseOwn()
      return {0, 'version', i}
    end
  elseif op == 'add' then
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      releaseOwn()
      return {0, 'exists', i}
    end
  end
end
local openKey, liveKey, endedKey, statsKey, idCountKey = KEYS[2 * n + 1], KEYS[2 * n + 2], KEYS[2 * n + 3], KEYS[2 * n + 4], KEYS[2 * n + 5]
local legs = 0
for i = 1, n do
  local a = 6 + (i - 1) * per
  local op = ARGV[a]
  if op == 'room' then
    redis.call('SET', KEYS[n + i], (tonumber(ARGV[a + 1]) + 1) .. '|' .. ARGV[a + 2], 'PX', ARGV[a + 3])
    local sid = ARGV[a + 4]
    legs = legs - (tonumber(redis.call('HGET', liveKey, sid)) or 0)
    local live = tonumber(ARGV[a + 6])
    if live < 0 then
      redis.call('ZREM', openKey, sid)
      redis.call('HDEL', liveKey, sid)
      redis.call('ZADD', endedKey, ARGV[a + 5], sid)
    else
      redis.call('ZADD', openKey, ARGV[a + 5], sid)
      redis.call('ZREM', endedKey, sid)
      redis.call('HSET', liveKey, sid, live)
      legs = legs + live
    end
  elseif op == 'add' then
    redis.call('SET', KEYS[n + i], ARGV[a + 2], 'PX', ARGV[a + 3])
  end
  redis.call('DEL', KEYS[i])
end
if legs ~= 0 then redis.call('HINCRBY', statsKey, 'calls', legs) end
if tonumber(ARGV[3]) > 0 then
  redis.call('INCRBY', idCountKey, ARGV[3])
  redis.call('PEXPIRE', idCountKey, ARGV[4])
end
for _, index in ipairs({openKey, liveKey, endedKey, statsKey}) do
  if redis.call('EXISTS', index) == 1 then redis.call('PEXPIRE', index, ARGV[5]) end
end
return {1}
`;

/**
 * Lets go of a group's leases (its lines were not written). Only the
 * group's own: a lease that expired and was taken by another is left alone.
 * KEYS: the leases; ARGV[1]: the token.
 */
export const RELEASE = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return #KEYS
`;

/**
 * Forgets idle sessions in the indexes (their records expire by their own
 * TTL at the same time) and ended sessions past the grace period, and
 * returns the counts /metrics shows.
 * KEYS: open-session index, live-legs hash, ended-session index, counters
 * hash, then the per-minute counts of accepted ids within the dedup window.
 * ARGV[1]: now (ms); ARGV[2]: idle timeout; ARGV[3]: ended grace; ARGV[4]: at most this many idle sessions per call.
 * Returns {open sessions, open calls, ended sessions, remembered ids, evicted sessions}.
 */
export const MAINTAIN = `
local now = tonumber(ARGV[1])
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])), 'LIMIT', 0, tonumber(ARGV[4]))
local legs = 0
for _, sid in ipairs(idle) do
  legs = legs + (tonumber(redis.call('HGET', KEYS[2], sid)) or 0)
  redis.call('HDEL', KEYS[2], sid)
  redis.call('ZREM', KEYS[1], sid)
end
if #idle > 0 then
  redis.call('HINCRBY', KEYS[4], 'evicted', #idle)
  if legs ~= 0 then redis.call('HINCRBY', KEYS[4], 'calls', -legs) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[3])))
local ids = 0
for i = 5, #KEYS do ids = ids + (tonumber(redis.call('GET', KEYS[i])) or 0) end
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('HGET', KEYS[4], 'calls')) or 0, redis.call('ZCARD', KEYS[3]), ids, tonumber(redis.call('HGET', KEYS[4], 'evicted')) or 0}
`;
