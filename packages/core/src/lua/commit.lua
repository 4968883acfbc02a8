-- commit: the holder of a slot records that it acted on the group feed up to a message (DESIGN
-- §10), then the feed is trimmed to the lowest commit of the slots. The commit names the slot
-- and epoch: only the member object that holds them now, actively and within its lease, may
-- commit; any other commit is refused, and the message is delivered again to the slot's next
-- holder (it replays after the slot's last commit).
-- KEYS: 1 config  2 leases  3 slots  4 commits  5 feed
-- ARGV: 1 memberId  2 nonce  3 slot  4 epoch  5 id (the message's stream id)
-- Reply: { outcome, detail }:
--   committed <n>   recorded; n entries trimmed from the feed
--   stale <why>     refused: the slot is not held by this member object with this epoch, actively
--                   and within its lease (why: free, holder, epoch, releasing, lease)
--   behind <id>     refused: the slot's commit is already at or after the message (id)
--   ahead <id>      refused: the message is after the feed's last entry (id, '' for none)
-- or an error: CORRUPT <key> ... (a key holds what understudy never writes there, see guard.lua)
--
-- Trimming: every message before the lowest commit of slots 0 .. activeGoal − 1 has been acted
-- on by a holder of each slot, and goes (XTRIM MINID, exact: the entry a slot committed last
-- stays, so a slot's replay can tell whether anything after its commit was trimmed). A slot
-- without a commit (never committed, a raised goal, or a commits key lost: S6) holds everything:
-- nothing is trimmed until each slot has committed again, and its next holder replays the whole
-- feed. Losing the commits costs deliveries again, never messages. Only the cap of publish
-- (feedMaxLength) trims past commits.
--@include guard.lua

key_kinds({ 'hash', 'sorted set', 'hash', 'hash', 'stream' })

local config, leases, slots, commits, feed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local member, nonce, slot, epoch, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- Stream ids `<ms>-<seq>`: unsigned 64-bit decimals, past what Lua's doubles hold exactly.
local function id_parts(value)
  return string.match(value, '^(%d+)%-(%d+)$')
end

local function compare_decimal(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function compare_ids(a, b)
  local a_ms, a_seq = id_parts(a)
  local b_ms, b_seq = id_parts(b)
  local by_ms = compare_decimal(a_ms, b_ms)
  if by_ms ~= 0 then return by_ms end
  return compare_decimal(a_seq, b_seq)
end

local function stored_id(key, field, value)
  if not id_parts(value) then corrupt(key, 'field ' .. shown(field) .. ' is not a stream id') end
  return value
end

if not id_parts(id) then return redis.error_reply('ERR commit: ' .. shown(id) .. ' is not a stream id') end

local raw = call('HGET', slots, slot)
if not raw then return { 'stale', 'free' } end
local s = decode_object(slots, slot, raw)
if s.m ~= member or (s.n ~= nil and s.n ~= nonce) then return { 'stale', 'holder' } end
if tostring(s.e) ~= epoch then return { 'stale', 'epoch' } end
if s.s ~= 'active' then return { 'stale', 'releasing' } end
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(call('ZSCORE', leases, member))
if not lease or lease <= now then return { 'stale', 'lease' } end

local current = call('HGET', commits, slot)
if current and compare_ids(id, stored_id(commits, slot, current)) <= 0 then return { 'behind', current } end
local last = call('XREVRANGE', feed, '+', '-', 'COUNT', 1)[1]
if not last or compare_ids(id, last[1]) > 0 then return { 'ahead', last and last[1] or '' } end
call('HSET', commits, slot, id)

local goal = tonumber(call('HGET', config, 'activeGoal') or '0') or 0
local lowest, counted = nil, 0
local flat = call('HGETALL', commits)
for i = 1, #flat, 2 do
  local index = tonumber(flat[i])
  if index and index >= 0 and index < goal and index % 1 == 0 then
    local committed = stored_id(commits, flat[i], flat[i + 1])
    counted = counted + 1
    if not lowest or compare_ids(committed, lowest) < 0 then lowest = committed end
  end
end
local trimmed = 0
if goal > 0 and counted == goal then trimmed = call('XTRIM', feed, 'MINID', lowest) end
return { 'committed', trimmed }
