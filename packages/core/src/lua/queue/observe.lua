#!lua flags=no-writes
-- observe: everything a queue monitor shows, read-only (EVALSHA_RO / EVAL_RO).
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)
-- ARGV: 1 limit (how many tasks in flight to list, soonest deadline first)
-- Reply: { now, quarantineUntil, quarantineReason, createdAt ('' for no queue), length (tasks not
--          completed: `unfinished`), inFlight (tasks in flight), dead (dead letters), workers { id, json, ... },
--          leases { id, deadline, ... }, listed (tasks in flight) { id, deadline, ... }, deliveries
--          (of the listed tasks) { json, ... } }, or an error:
--   CORRUPT <key> <problem>
--@include guard.lua

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream', 'sorted set', 'stream' })

-- The records (queue/lib.lua: MessagePack values in a row, or a JSON object an earlier version
-- wrote) as the JSON objects the monitor reads, numbers as text (tokens need 16 digits). What is
-- neither is passed on as it is: the monitor reports it as corrupt.
local WORKER = { 'w', 'c', 't', 'd', 'a', 'f', 'q', 'r', 'n', 'h', 'p', 'l' }
local DELIVERY = { 'k', 'n', 'd', 'e', 'w', 'l', 'i' }
local function as_json(raw, names)
  if type(raw) ~= 'string' or string.byte(raw, 1) == 123 then return raw end
  local ok, values = pcall(function() return { cmsgpack.unpack(raw) } end)
  if not ok or values[1] ~= 2 then return raw end
  local object = {}
  for i, name in ipairs(names) do
    local value = values[i + 1]
    object[name] = type(value) == 'number' and string.format('%.0f', value) or value
  end
  return cjson.encode(object)
end
-- The tasks not completed: those the consumer group did not read yet (its lag) and those pending
-- in it (delivered, not acknowledged). XLEN counts more: an acknowledged task stays in the stream
-- until a completion trims its node (queue/lib.lua `trim`). The lag is unknown (nil) while a
-- deleted entry (XDEL: an earlier version, or by hand) lies ahead of the group's last read: then
-- the entries after it are counted.
local function unfinished(key)
  if call('EXISTS', key) == 0 then return 0 end
  for _, group in ipairs(call('XINFO', 'GROUPS', key)) do
    local f = {}
    for i = 1, #group, 2 do f[group[i]] = group[i + 1] end
    if f.name == 'workers' then
      local lag = f.lag or #call('XRANGE', key, '(' .. f['last-delivered-id'], '+')
      return f.pending + lag
    end
  end
  -- No group (lost state: the next worker script makes it again, reading from the start).
  return call('XLEN', key)
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local config = call('HMGET', KEYS[1], 'quarantineUntil', 'quarantineReason', 'createdAt')
local listed = call('ZRANGE', KEYS[7], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local ids = {}
for i = 1, #listed, 2 do ids[#ids + 1] = listed[i] end
local workers = call('HGETALL', KEYS[2])
for i = 2, #workers, 2 do workers[i] = as_json(workers[i], WORKER) end
local deliveries = #ids > 0 and call('HMGET', KEYS[5], unpack(ids)) or {}
for i = 1, #deliveries do deliveries[i] = as_json(deliveries[i], DELIVERY) end
return {
  tostring(now),
  config[1] or '0',
  config[2] or '',
  config[3] or '',
  unfinished(KEYS[6]),
  call('ZCARD', KEYS[7]),
  call('XLEN', KEYS[8]),
  workers,
  call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  listed,
  deliveries,
}
