-- leave: removes a member from its group, releasing its slot (its deactivate handler has
-- settled), and ranks the group again so the next member activates without waiting.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 the member's heartbeat key
-- ARGV: 1 channel  2 member id
-- Reply: the member's view; its role is 'gone'.
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local G = load_group(read_now())
if call('HEXISTS', K.members, id) == 1 then
  local _, by_member = read_slots()
  remove_member(G, id, 'leave', by_member)
  reconcile(G)
end
call('DEL', KEYS[7])
commit(G, channel)
return view(G, id, false)
