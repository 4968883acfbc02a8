-- release: a member gives back the slot it held with the given epoch, after its deactivate
-- handler settled (demote before promote), then the group is ranked again so the next
-- member can take the slot at once. Releasing a slot the member no longer holds is a no-op.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log
-- ARGV: 1 channel  2 memberId  3 epoch  4 reason (why the member deactivated)
--       5 preparationInterval (ms)  6 nonce (see join.lua)
-- Reply: the member's view (see `view` in lib.lua), or an error:
--   MEMBER_EXISTS <id>   another member object holds the id now
--@include lib.lua

local channel, id, epoch, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local G = load_group(read_now())
local gone = replaced(read_member(id), id, ARGV[6])
if gone then return gone end
local _, by_member = read_slots()
local s = by_member[id]
if s and fmt(s.e) == epoch then
  local fields = { 'epoch', epoch, 'slot', s.index, 'reason', reason }
  if s.s == 'releasing' then
    fields[#fields + 1] = 'requested'
    fields[#fields + 1] = fmt(s.t)
  end
  free_slot(G, s, 'handover')
  log_event(G, 'deactivate', id, fields)
  note(G, id, 'standby', s.e, s.index, reason)
end
if G.exists and G.goal > 0 then
  reconcile(G)
  update_prepare(G, id, tonumber(ARGV[5]))
end
commit(G, channel)
return view(G, id, false)
