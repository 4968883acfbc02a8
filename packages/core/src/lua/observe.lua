#!lua flags=no-writes
-- observe: everything a monitor shows about a group, read-only (runs as FCALL_RO, or
-- EVALSHA_RO / EVAL_RO, so it works under a Redis user without write permission). Decisions about
-- lapsed leases are the reader's: this script only reports, with Redis's clock.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots
-- ARGV: none
-- Reply: { now, config (fields { activeGoal, activationInterval, heartbeatInterval, version,
--          epoch, quarantineUntil, next, preparing, createdAt }),
--          rank { id, score, ... } (best first), leases { id, deadline, ... },
--          members { id, json, ... }, slots { index, json, ... } }, or an error:
--   CORRUPT <key> ...   a key of the wrong type (see guard.lua)
--@include guard.lua

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local config = call('HMGET', KEYS[1], 'activeGoal', 'activationInterval', 'heartbeatInterval', 'version',
  'epoch', 'quarantineUntil', 'next', 'preparing', 'createdAt')
for i = 1, #config do
  if config[i] == false then config[i] = '' end
end
return {
  string.format('%.0f', now),
  config,
  call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES'),
  call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  call('HGETALL', KEYS[2]),
  call('HGETALL', KEYS[5]),
}
