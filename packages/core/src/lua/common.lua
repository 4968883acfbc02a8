-- Shared by the group and the queue scripts (after guard.lua, whose `call` it uses).

-- Integers below 2^53 (epochs, tokens, times) without exponent notation ('%d': a long, less than
-- half the cost of '%.0f', which formats through the floating-point printer).
local function fmt(n)
  return string.format('%d', n)
end

-- Redis time in ms, and the microseconds past that ms (a queue worker times its wake-ups by them:
-- ReapWatch in src/queue/lease.ts).
local function read_now()
  local t = call('TIME')
  local micros = tonumber(t[2])
  return tonumber(t[1]) * 1000 + math.floor(micros / 1000), micros % 1000
end

-- The server's replication history: a new one on every start and every promotion of a replica,
-- so a failover back to a server that wrote the state before (and lagged since) is seen too.
-- (Found as plain text: a Lua pattern over the INFO text cost a third of the check.)
local function server_repl_id()
  local info = call('INFO', 'replication')
  local at = string.find(info, 'master_replid:', 1, true)
  return at and string.sub(info, at + 14, at + 53) or nil
end

-- Field `name` of a hash as read by HMGET into `c[i]`, a whole number the scripts store: absent
-- (0), or within [0, high]; anything else is corrupt state.
local function hash_number(key, c, i, name, high)
  local raw = c[i]
  if raw == false then return 0 end
  local n = tonumber(raw)
  -- (NaN fails n % 1 == 0; infinities fail the bounds.)
  if n == nil or n < 0 or n > high or n % 1 ~= 0 then
    corrupt(key, 'field ' .. name .. ' is not a whole number from 0 to ' .. fmt(high))
  end
  return n
end

-- S2: the next fencing number (a group's epoch, a queue's token), kept in S[field] (S: the
-- script's G or Q) and stored in `field` of the hash `key`: above the last one, and at least
-- Redis time in ms × 1000, so that it keeps growing when the stored one was lost. `...`: more
-- fields and values of `key` to write in the same HSET.
local function next_fence(S, key, field, ...)
  local n = math.max(S[field] + 1, S.now * 1000)
  if n > 9007199254740991 then corrupt(key, 'field ' .. field .. ' cannot grow past 2^53 - 1') end
  call('HSET', key, field, fmt(n), ...)
  S[field] = n
  return n
end

-- Rebuilding after lost state: drops from each sorted set in `keys` the ids `known` lacks.
local function drop_unknown(keys, known)
  for _, key in ipairs(keys) do
    for _, id in ipairs(call('ZRANGE', key, 0, -1)) do
      if not known[id] then call('ZREM', key, id) end
    end
  end
end
