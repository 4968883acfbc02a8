-- leave: removes a member from its group, releasing its slot (its deactivate handler has
-- settled), and ranks the group again so the next member activates without waiting.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 heartbeat (the member's key)
-- ARGV: 1 channel  2 memberId  3 nonce (see join.lua; another object that holds the id now
--       is left alone, and so is its heartbeat key)
-- Reply: the member's view; its role is 'gone'.
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local G = load_group(read_now())
local m = read_member(id)
if replaced(m, id, ARGV[3]) then return view(G, id, false) end
if m then
  local _, by_member = read_slots()
  remove_member(G, id, 'leave', by_member)
  reconcile(G)
end
call('DEL', KEYS[7])
commit(G, channel)
return view(G, id, false)
