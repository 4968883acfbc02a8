-- Shared by the group and the queue scripts (after guard.lua, whose `call` it uses).

-- Integers below 2^53 (epochs, tokens, times) without exponent notation.
local function fmt(n)
  return string.format('%.0f', n)
end

local function read_now()
  local t = call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The server's replication history: a new one on every start and every promotion of a replica,
-- so a failover back to a server that wrote the state before (and lagged since) is seen too.
local function server_repl_id()
  return string.match(call('INFO', 'replication'), 'master_replid:(%x+)')
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
