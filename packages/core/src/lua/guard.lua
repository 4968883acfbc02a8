-- Refuses to work on state understudy did not write: a key of the wrong type, a field that is
-- not what the scripts store. The script stops with `CORRUPT <key> <problem>` (the library
-- raises CorruptStateError) instead of a Lua error, and before it grants anything on top of it.
-- KEYS of the group scripts (the first five are the same in each): 1 config  2 members
-- 3 leases  4 rank  5 slots  6 log (not in observe.lua). A script whose KEYS differ names
-- their kinds itself with `key_kinds`.
-- Every script that includes this file runs its code after the include through `guarded`
-- (lua.ts and lua-library.ts put it there), which names a key of the wrong type.

-- KINDS: the type of each of KEYS, in order; KIND: of a key a script names without declaring
-- it, by key. Looked up only when a command fails (`mistyped`): a script does not build a table
-- of its keys on every call.
local KINDS, KIND = {}, {}

local function key_kinds(kinds)
  KINDS, KIND = kinds, {}
end

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream' })

local function corrupt(key, problem)
  error({ err = 'CORRUPT ' .. key .. ' ' .. problem })
end

-- Redis's own command, called directly: a wrapper around it (pcall, a check of every reply) cost
-- about a twentieth of a queue's Redis time per task. `guarded` names a key of the wrong type.
local call = redis.call

-- The key, among KEYS and those in KIND, whose type is not the kind the script keeps there, and
-- that kind; nil when every one is right or absent, or TYPE is refused (a user made by an earlier
-- `understudy acl`: the error then stays WRONGTYPE).
local function mistyped()
  local type_of = { hash = 'hash', ['sorted set'] = 'zset', stream = 'stream', list = 'list' }
  local function wrong(key, kind)
    local found = redis.pcall('TYPE', key).ok
    return found ~= nil and found ~= 'none' and found ~= type_of[kind]
  end
  for i = 1, #KEYS do
    if KINDS[i] and wrong(KEYS[i], KINDS[i]) then return KEYS[i], KINDS[i] end
  end
  for key, kind in pairs(KIND) do
    if wrong(key, kind) then return key, kind end
  end
end

-- Runs `body` (a script's code after its include) and returns what it returns. An error stops the
-- script as it would have stopped it, with two differences: WRONGTYPE from a command on a key the
-- script declares (KEYS, or named in KIND) is `CORRUPT <key> ...`; and an error with a code
-- (`CORRUPT ...`, `NOPERM ...`) keeps it, where Redis hands an error caught by a pcall on the way
-- (`saving` in queue/lib.lua) back as text, which thrown again would reach the client as 'ERR ...'.
local function guarded(body)
  local ok, result = pcall(body)
  if ok then return result end
  local message = type(result) == 'table' and result.err or tostring(result)
  if string.sub(message, 1, 10) == 'WRONGTYPE ' then
    local key, kind = mistyped()
    if key then message = 'CORRUPT ' .. key .. ' is not a ' .. kind .. ' (WRONGTYPE); understudy did not write it' end
  end
  if string.find(message, '^%u+ ') then error({ err = message }) end
  error(result, 0)
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
