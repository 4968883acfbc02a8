-- Refuses to work on state understudy did not write: a key of the wrong type, a field that is
-- not what the scripts store. The script stops with `CORRUPT <key> <problem>` (the library
-- raises CorruptStateError) instead of a Lua error, and before it grants anything on top of it.
-- KEYS of the group scripts (the first five are the same in each): 1 config  2 members
-- 3 leases  4 rank  5 slots  6 log (not in observe.lua). A script whose KEYS differ names
-- their kinds itself with `key_kinds`.

-- KINDS: the type of each of KEYS, in order; KIND: of a key a script names without declaring
-- it, by key. Looked up only when a command fails (`kind_of`): a script does not build a table
-- of its keys on every call.
local KINDS, KIND = {}, {}

local function key_kinds(kinds)
  KINDS, KIND = kinds, {}
end

local function kind_of(key)
  for i = 1, #KEYS do
    if KEYS[i] == key then return KINDS[i] end
  end
  return KIND[key]
end

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream' })

local function corrupt(key, problem)
  error({ err = 'CORRUPT ' .. key .. ' ' .. problem })
end

-- redis.call, except that a key of the wrong type is reported as corrupt state, naming the key.
local function call(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then
    local key = select(2, ...)
    local kind = kind_of(key)
    if kind and string.sub(reply.err, 1, 9) == 'WRONGTYPE' then
      corrupt(key, 'is not a ' .. kind .. ' (WRONGTYPE); understudy did not write it')
    end
    error(reply)
  end
  return reply
end

-- A value to show in a message: ids understudy writes are shown, anything else is not echoed.
local function shown(value)
  if type(value) == 'string' and #value <= 200 and string.match(value, '^[%w%._:@/%-]+$') then return value end
  return '(a value understudy does not write)'
end

local function decode_object(key, field, raw)
  local ok, value = pcall(cjson.decode, raw)
  if not ok or type(value) ~= 'table' then corrupt(key, 'field ' .. shown(field) .. ' is not a JSON object') end
  return value
end

local function whole(value, low, high)
  local n = tonumber(value)
  return n ~= nil and n == math.floor(n) and n >= low and n <= high
end
