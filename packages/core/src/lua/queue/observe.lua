#!lua flags=no-writes
-- observe: everything a queue monitor shows, read-only (EVALSHA_RO / EVAL_RO).
-- KEYS: 1-8 as in queue/lib.lua
-- ARGV: none
-- Reply: { now, quarantineUntil, tasks in the stream, tasks in flight, dead letters,
--          workers { id, json, ... }, leases { id, deadline, ... } }, or an error:
--   CORRUPT <key> <problem>
--@include guard.lua

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream', 'sorted set', 'stream' })
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {
  tostring(now),
  call('HGET', KEYS[1], 'quarantineUntil') or '0',
  call('XLEN', KEYS[6]),
  call('ZCARD', KEYS[7]),
  call('XLEN', KEYS[8]),
  call('HGETALL', KEYS[2]),
  call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
}
