#!lua flags=no-writes
-- observe: everything a queue monitor shows, read-only (EVALSHA_RO / EVAL_RO).
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)
-- ARGV: 1 limit (how many tasks in flight to list, soonest deadline first)
-- Reply: { now, quarantineUntil, quarantineReason, createdAt ('' for no queue), length (tasks in
--          the stream), inFlight (tasks in flight), dead (dead letters), workers { id, json, ... },
--          leases { id, deadline, ... }, listed (tasks in flight) { id, deadline, ... }, deliveries
--          (of the listed tasks) { json, ... } }, or an error:
--   CORRUPT <key> <problem>
--@include guard.lua

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream', 'sorted set', 'stream' })
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local config = call('HMGET', KEYS[1], 'quarantineUntil', 'quarantineReason', 'createdAt')
local listed = call('ZRANGE', KEYS[7], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local ids = {}
for i = 1, #listed, 2 do ids[#ids + 1] = listed[i] end
return {
  tostring(now),
  config[1] or '0',
  config[2] or '',
  config[3] or '',
  call('XLEN', KEYS[6]),
  call('ZCARD', KEYS[7]),
  call('XLEN', KEYS[8]),
  call('HGETALL', KEYS[2]),
  call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  listed,
  #ids > 0 and call('HMGET', KEYS[5], unpack(ids)) or {},
}
