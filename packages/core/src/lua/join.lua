-- join: adds a member to its group (creating the group, or adopting its parameters if it
-- has none), then ranks the group.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 heartbeat (the member's key)
-- ARGV: 1 channel  2 memberId  3 weight  4 activeGoal  5 activationInterval (ms)
--       6 heartbeatInterval (ms)  7 preparationInterval (ms)  8 host  9 pid
--       10 nonce (random per member object: a join retried after a timeout finds itself)
-- Reply: the member's view (see `view` in lib.lua), or an error:
--   PARAM_MISMATCH <field> <requested> <current>   the group runs with other parameters, or in
--                                                  quorum mode (field quorum, 0 1)
--   MEMBER_EXISTS <id>                             a live member already uses this id
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local weight, goal, activation = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heartbeat, preparation = tonumber(ARGV[6]), tonumber(ARGV[7])

local G = load_group(read_now())
local refused = admit(G, channel, goal, activation)
if refused then return refused end
refused = mode_mismatch(G, channel, false)
if refused then return refused end
local existing = read_member(id)
if existing and existing.n ~= ARGV[10] then
  return redis.error_reply('MEMBER_EXISTS ' .. id)
end

ensure_group(G, goal, activation, heartbeat)
if existing then
  -- This member's own join, retried after its reply timed out: it is in already.
  call('ZADD', K.leases, 'GT', G.now + G.activation, id)
else
  add_member(G, id, weight, ARGV[8], ARGV[9], ARGV[10], 'join')
end
reconcile(G)
update_prepare(G, id, preparation)
commit(G, channel)
local reply = view(G, id, false)
heartbeat_key(G, KEYS[7], reply[1])
return reply
