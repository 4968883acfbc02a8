-- set_weight: changes a member's weight and ranks the group again (a higher weight may
-- preempt an active member; a lower one may be preempted).
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log
-- ARGV: 1 channel  2 memberId  3 weight  4 preparationInterval (ms)  5 nonce (see join.lua)
-- Reply: the member's view (see `view` in lib.lua); role 'gone' if the group does not know
-- the member (its next renewal adds it again with the new weight); or an error:
--   MEMBER_EXISTS <id>   another member object holds the id now
--@include lib.lua

local channel, id, weight = ARGV[1], ARGV[2], tonumber(ARGV[3])
local G = load_group(read_now())
local m = read_member(id)
local gone = replaced(m, id, ARGV[5])
if gone then return gone end
if m and m.w ~= weight then
  local _, by_member = read_slots()
  change_weight(G, id, m, weight, by_member[id] ~= nil)
  reconcile(G)
  update_prepare(G, id, tonumber(ARGV[4]))
end
commit(G, channel)
return view(G, id, false)
