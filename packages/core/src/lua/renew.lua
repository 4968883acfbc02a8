-- renew: extends a member's lease by one activation interval. A member the group no longer
-- knows (its lease lapsed, or the group's state was lost) is added again, checked like a join.
-- The member says what it holds and what it knows; S6 (see `settle_claim` and
-- `check_member_knowledge` in lib.lua) decides what a server that may have lost writes reports.
-- Cheap when nothing changed: O(log n) in the group size, plus O(goal).
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 heartbeat (the member's key)
-- ARGV: 1 channel  2 memberId  3 weight (the member's own: a different one is set again)  4 activeGoal  5 activationInterval (ms)
--       6 heartbeatInterval (ms)  7 preparationInterval (ms)  8 host  9 pid
--       10 claimedEpoch (0 if the member believes it is not active)  11 claimedSlot
--       12 nonce (see join.lua)  13 knownIncarnation (the group's, in the member's last reply; 0: none)
--       14 knownVersion (the group's, in that reply; -1: none)
--       15 epochFloor (the highest epoch the member was told of for itself; 0: none)
--       16 leaseEnd (when its lease ends as the server last told it, Redis ms; 0: none)
-- Reply: the member's view (see `view` in lib.lua), or an error:
--   PARAM_MISMATCH <field> <requested> <current>   the group runs with other parameters, or in
--                                                  quorum mode (field quorum, 0 1)
--   MEMBER_EXISTS <id>                             another member object holds the id now
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local weight, goal, activation = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heartbeat, preparation = tonumber(ARGV[6]), tonumber(ARGV[7])
local claimed_epoch, claimed_slot = tonumber(ARGV[10]), tonumber(ARGV[11])

local G = load_group(read_now())
local m = read_member(id)
local gone = replaced(m, id, ARGV[12])
if gone then return gone end
-- S6: a lease that ends before the member was told (the leases, or the whole group, restored
-- from an older copy), or a record dropped before then, would drop a live holder as lapsed.
local lease_end = tonumber(ARGV[16])
if lease_end > 0 and G.exists and not quarantined(G) then
  local score = m and tonumber(call('ZSCORE', K.leases, id))
  if (m and (score == nil or score < lease_end)) or (not m and lease_end > G.now) then lost_state(G, 'leases') end
end
if m then
  -- A it once joined with, whatever became of the group's config since (a lost config recreated).
  local mismatch = activation_mismatch(G, activation)
  if mismatch then
    commit(G, channel)
    return mismatch
  end
else
  -- A rejoin is checked like a join.
  local refused = admit(G, channel, goal, activation) or mode_mismatch(G, channel, false)
  if refused then return refused end
end
ensure_group(G, goal, activation, heartbeat)
check_member_knowledge(G, tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]))

local rejoined = false
if m then
  -- GT: a lease is never shortened.
  call('ZADD', K.leases, 'GT', G.now + G.activation, id)
  -- The member is the authority on its weight: a change this server lost (a failover to a
  -- lagging replica) is made again.
  if m.w ~= weight then
    local _, by_member = read_slots()
    change_weight(G, id, m, weight, by_member[id] ~= nil)
  end
else
  m = add_member(G, id, weight, ARGV[8], ARGV[9], ARGV[12], 'rejoin')
  rejoined = true
end
settle_claim(G, id, m, claimed_epoch, claimed_slot, rejoined)

if G.changed or needs_reconcile(G) then reconcile(G) end
update_prepare(G, id, preparation)
commit(G, channel)
local reply = view(G, id, rejoined)
heartbeat_key(G, KEYS[7], reply[1])
return reply
