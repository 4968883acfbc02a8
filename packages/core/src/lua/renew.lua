-- renew: extends a member's lease by one activation interval. A member the group no longer
-- knows (its lease lapsed, or the group's state was lost) is added again. A member that
-- believes it holds a slot the group has no record of may reclaim it only while the group
-- is quarantined after lost state: then no slot was granted to anyone else meanwhile.
-- Cheap when nothing changed: O(log n) in the group size, plus O(goal).
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 the member's heartbeat key
-- ARGV: 1 channel  2 member id  3 weight  4 activeGoal  5 activationInterval (ms)
--       6 heartbeatInterval (ms)  7 preparationInterval (ms)  8 host  9 pid
--       10 claimed epoch (0 if the member believes it is not active)  11 claimed slot
--       12 nonce (see join.lua)
-- Reply: the member's view (see `view` in lib.lua).
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local weight, goal, activation = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heartbeat, preparation = tonumber(ARGV[6]), tonumber(ARGV[7])
local claimed_epoch, claimed_slot = tonumber(ARGV[10]), tonumber(ARGV[11])

local G = load_group(read_now())
ensure_group(G, goal, activation, heartbeat)

local m = read_member(id)
local rejoined = false
if m then
  call('ZADD', K.leases, G.now + G.activation, id)
else
  m = add_member(G, id, weight, ARGV[8], ARGV[9], ARGV[12], 'rejoin')
  rejoined = true
end

if claimed_epoch > 0 then
  local slots, by_member, held = read_slots()
  if not by_member[id] and held < G.goal and (quarantined(G) or server_changed(G)) then
    local index = claimed_slot
    if index < 0 or index >= G.goal or slots[index] then
      index = 0
      while slots[index] do index = index + 1 end
    end
    write_slot({ index = index, m = id, e = claimed_epoch, t = G.now, s = 'active', r = 'reclaimed' })
    if claimed_epoch > G.epoch then
      G.epoch = claimed_epoch
      call('HSET', K.config, 'epoch', fmt(claimed_epoch))
    end
    set_rank(id, m, true)
    log_event(G, 'activate', id, { 'epoch', fmt(claimed_epoch), 'slot', index, 'reason', 'reclaimed' })
    note(G, id, 'active', claimed_epoch, index, 'reclaimed')
  end
end

if G.changed or needs_reconcile(G) then reconcile(G) end
update_prepare(G, id, preparation)
commit(G, channel)
local reply = view(G, id, rejoined)
heartbeat_key(G, KEYS[7], reply[1])
return reply
