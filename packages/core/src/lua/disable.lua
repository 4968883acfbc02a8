-- disable: a member whose activate handler failed drops its weight to 0 and releases its
-- slot in the same script: a renewal in between would hand the slot straight back.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log
-- ARGV: 1 channel  2 memberId  3 epoch (of the slot to release)  4 preparationInterval (ms)
--       5 nonce (see join.lua)
-- Reply: the member's view (see `view` in lib.lua), or an error:
--   MEMBER_EXISTS <id>   another member object holds the id now
--@include lib.lua

local channel, id, epoch = ARGV[1], ARGV[2], ARGV[3]
local G = load_group(read_now())
local m = read_member(id)
local gone = replaced(m, id, ARGV[5])
if gone then return gone end
if m then
  local _, by_member = read_slots()
  local s = by_member[id]
  if s and fmt(s.e) == epoch then
    free_slot(G, s, 'handover')
    log_event(G, 'deactivate', id, { 'epoch', epoch, 'slot', s.index, 'reason', 'disabled' })
    note(G, id, 'standby', s.e, s.index, 'disabled')
  end
  m.w = 0
  write_member(id, m)
  set_rank(id, m, false)
  log_event(G, 'weight', id, { 'weight', 0, 'reason', 'disabled' })
  note(G, id, 'weight', 0, -1, '0')
  reconcile(G)
  update_prepare(G, id, tonumber(ARGV[4]))
end
commit(G, channel)
return view(G, id, false)
