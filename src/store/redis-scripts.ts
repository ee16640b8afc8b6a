// The Lua scripts the shared store runs in Redis (or Valkey). They compare
// and set, nothing more: which lines an event causes and what a session
// becomes are decided in TypeScript (src/pipeline/plan.ts) before a script
// runs. Each script is atomic in Redis, and each is one round trip for a
// whole group of webhooks. docs/shared-store.md explains why a group takes
// leases when it reads and checks them when it commits.
//
// Values: a room is `<version>|<JSON session record>` while its session is
// open and `<version>|E<ended at, ms>` once it ended; an event id or a
// provider trouble key holds `L<token>` while a group plans on it and the
// time it was accepted once committed. A missing room is version 0.

/** Every key starts with this: one control-plane deployment per Redis database. */
export const KEY_PREFIX = 'cp:';
export const ROOM_PREFIX = `${KEY_PREFIX}room:`;
const ROOM_PREFIX_LENGTH = ROOM_PREFIX.length;
//
// The scripts use only commands of Redis 6.2 and Valkey, no shebang flags.

/**
 * Lua: takes a lease on every key of a group for `token`, all or none, and
 * returns the keys' values; or nil and the index of a key another group
 * holds. All or none: an instance never holds some keys while it waits for
 * others, so two instances cannot block each other.
 *
 * An event id or a provider key is its own lease: while a group plans on
 * it, it holds `L<token>` (for the lease's lifetime); once committed, the
 * time it was accepted. A key already committed needs no lease (it only
 * ever expires). A room keeps its record readable, so its lease is a key of
 * its own.
 *
 * The keys start at KEYS[first]: the m id and provider keys, then the r
 * room leases, then the r room keys. A key this token already holds counts
 * as its own (and reads as missing).
 */
const LEASE_FUNCTION = `
local function leaseAndRead(first, m, r, token, leaseMs)
  local pending = 'L' .. token
  local values = {}
  for i = 1, m do
    local value = redis.call('GET', KEYS[first + i - 1])
    if value == pending then
      value = false
    elseif value and string.byte(value, 1) == 76 then
      return nil, i
    end
    values[i] = value
  end
  for j = 1, r do
    local holder = redis.call('GET', KEYS[first + m + j - 1])
    if holder and holder ~= token then return nil, m + j end
  end
  for i = 1, m do
    if not values[i] then redis.call('SET', KEYS[first + i - 1], pending, 'PX', leaseMs) end
  end
  for j = 1, r do
    redis.call('SET', KEYS[first + m + j - 1], token, 'PX', leaseMs)
    values[m + j] = redis.call('GET', KEYS[first + m + r + j - 1])
  end
  return values
end
`;

/**
 * Leases and reads one group's keys (LEASE_FUNCTION).
 * KEYS: the m id and provider keys, the r room leases, the r room keys.
 * ARGV[1]: the group's token; ARGV[2]: the lease's lifetime (ms); ARGV[3]: m.
 * Returns {1, values} (nil for a missing or newly leased key), or {0, i}
 * when the i-th key is leased by another group.
 */
export const LEASE_AND_READ = `${LEASE_FUNCTION}
local m = tonumber(ARGV[3])
local values, busy = leaseAndRead(1, m, (#KEYS - m) / 2, ARGV[1], ARGV[2])
if not values then return {0, busy} end
return {1, values}
`;

/**
 * Commits a group's changes if, and only if, no other group holds one of
 * its keys and nothing it read has changed since (compare-and-set), then
 * lets go of its leases. On any mismatch nothing is written, the group's
 * leases are released, and the reason is returned. After a commit, leases
 * and reads the next group's keys (those of the webhooks that arrived
 * meanwhile), so that in a steady stream a group costs one round trip.
 *
 * KEYS: the m id and provider keys, the r room leases, the r room keys (as
 * read), then the open-session index, the live-legs hash, the ended-session
 * index, the counters hash, and this minute's count of accepted ids; then
 * the next group's keys as LEASE_FUNCTION takes them.
 * ARGV[1]: token; ARGV[2]: m; ARGV[3]: r; ARGV[4]: ids added; ARGV[5]: the
 * id count's lifetime; ARGV[6]: the indexes' lifetime; ARGV[7]: the lease's
 * lifetime; ARGV[8]: the next group's token ('' for none); ARGV[9], ARGV[10]:
 * its m and r; then, for each id or provider key, `add <value> <ttl>` (must
 * be absent or ours) or `free` (let go if ours); then, for each room,
 * `room <version> <value> <ttl> <score> <live legs, -1 once ended>` (the
 * version must still be the one read) or `same <version>` (read, not
 * changed: the version must still be the one read). A room's SID is its key
 * after the `cp:room:` prefix.
 * Returns {1} (no next group), {1, values} (the next group's values, as
 * LEASE_AND_READ), {1, 0} (another group holds one of the next keys), or
 * {0, reason, i}: reason `lease`, `version` or `exists` for the i-th key.
 */
export const COMMIT = `${LEASE_FUNCTION}
local token = ARGV[1]
local pending = 'L' .. token
local m = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local function versionOf(value)
  if not value then return 0 end
  local bar = string.find(value, '|', 1, true)
  return tonumber(string.sub(value, 1, bar - 1))
end
local function releaseOwn()
  for i = 1, m do
    if redis.call('GET', KEYS[i]) == pending then redis.call('DEL', KEYS[i]) end
  end
  for j = 1, r do
    if redis.call('GET', KEYS[m + j]) == token then redis.call('DEL', KEYS[m + j]) end
  end
end
local timed = {}
local a = 11
for i = 1, m do
  local op = ARGV[a]
  timed[i] = a
  if op == 'add' then
    local value = redis.call('GET', KEYS[i])
    if value and value ~= pending then
      releaseOwn()
      if string.byte(value, 1) == 76 then return {0, 'lease', i} end
      return {0, 'exists', i}
    end
    a = a + 3
  else
    a = a + 1
  end
end
local rooms = {}
for j = 1, r do
  rooms[j] = a
  local holder = redis.call('GET', KEYS[m + j])
  if holder and holder ~= token then
    releaseOwn()
    return {0, 'lease', m + j}
  end
  if versionOf(redis.call('GET', KEYS[m + r + j])) ~= tonumber(ARGV[a + 1]) then
    releaseOwn()
    return {0, 'version', m + j}
  end
  if ARGV[a] == 'room' then a = a + 6 else a = a + 2 end
end
for i = 1, m do
  local at = timed[i]
  if ARGV[at] == 'add' then
    redis.call('SET', KEYS[i], ARGV[at + 1], 'PX', ARGV[at + 2])
  elseif redis.call('GET', KEYS[i]) == pending then
    redis.call('DEL', KEYS[i])
  end
end
local openKey, liveKey, endedKey, statsKey, idCountKey = KEYS[m + 2 * r + 1], KEYS[m + 2 * r + 2], KEYS[m + 2 * r + 3], KEYS[m + 2 * r + 4], KEYS[m + 2 * r + 5]
local legs = 0
for j = 1, r do
  local at = rooms[j]
  if ARGV[at] == 'room' then
    local key = KEYS[m + r + j]
    redis.call('SET', key, (tonumber(ARGV[at + 1]) + 1) .. '|' .. ARGV[at + 2], 'PX', ARGV[at + 3])
    local sid = string.sub(key, ${ROOM_PREFIX_LENGTH + 1})
    legs = legs - (tonumber(redis.call('HGET', liveKey, sid)) or 0)
    local live = tonumber(ARGV[at + 5])
    if live < 0 then
      redis.call('ZREM', openKey, sid)
      redis.call('HDEL', liveKey, sid)
      redis.call('ZADD', endedKey, ARGV[at + 4], sid)
    else
      redis.call('ZADD', openKey, ARGV[at + 4], sid)
      redis.call('HSET', liveKey, sid, live)
      legs = legs + live
    end
  end
  redis.call('DEL', KEYS[m + j])
end
if legs ~= 0 then redis.call('HINCRBY', statsKey, 'calls', legs) end
if tonumber(ARGV[4]) > 0 then
  redis.call('INCRBY', idCountKey, ARGV[4])
  redis.call('PEXPIRE', idCountKey, ARGV[5])
end
if r > 0 then
  redis.call('PEXPIRE', openKey, ARGV[6])
  redis.call('PEXPIRE', liveKey, ARGV[6])
  redis.call('PEXPIRE', endedKey, ARGV[6])
  redis.call('PEXPIRE', statsKey, ARGV[6])
end
if ARGV[8] == '' then return {1} end
local values = leaseAndRead(m + 2 * r + 6, tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[8], ARGV[7])
if not values then return {1, 0} end
return {1, values}
`;

/**
 * Lets go of a group's leases (its lines were not written). Only the
 * group's own: a lease that expired and was taken by another is left alone.
 * KEYS: the m id and provider keys, then the room leases. ARGV[1]: the token; ARGV[2]: m.
 */
export const RELEASE = `
local pending = 'L' .. ARGV[1]
local m = tonumber(ARGV[2])
for i = 1, #KEYS do
  local mine = i <= m and pending or ARGV[1]
  if redis.call('GET', KEYS[i]) == mine then redis.call('DEL', KEYS[i]) end
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
