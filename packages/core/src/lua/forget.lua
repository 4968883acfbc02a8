-- forget: deletes a group that has no live members (its config, ranking and transition
-- log), for tidying up after demos and tests. A group with members is refused.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log
-- ARGV: none
-- Reply: the number of keys deleted, or an error:
--   GROUP_NOT_EMPTY <n>   n members hold a lease
--   CORRUPT <key> ...     the leases key is not a sorted set: delete it by hand first
--@include guard.lua

local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
if live > 0 then return redis.error_reply('GROUP_NOT_EMPTY ' .. live) end
return call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
