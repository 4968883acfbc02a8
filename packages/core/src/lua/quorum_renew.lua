-- quorum_renew: a member's join and renewal on one of the K servers of a group in quorum mode
-- (DESIGN §9). Like renew.lua it extends the member's lease (adding a member the server does not
-- know), and the member says what this server granted it that it still holds; unlike it, a
-- slot is never granted by the ranking alone: the member proposes a slot and an epoch, and the
-- server accepts only if the member is among the `activeGoal` best ranked here, the slot is
-- free here, no quarantine holds, and the epoch is above this server's floor, which then rises
-- to it. The member is active once Q servers accepted the same slot and epoch. The epoch the
-- member holds raises the floor too (`knownFloor`, after the proposal is decided, so that a
-- grant a majority gave can still be added here); a floor that is gone (lost state) is set
-- again from TIME in µs, and the server grants nothing for A (S6).
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log  7 heartbeat (the member's key)
--       8 floor (string: the highest epoch this server accepted or was told of)
-- ARGV: 1 channel  2 memberId  3 weight  4 activeGoal  5 activationInterval (ms)
--       6 heartbeatInterval (ms)  7 preparationInterval (ms)  8 host  9 pid
--       10 nonce (see join.lua)  11 stamp (the join stamp, Redis ms; 0: not known yet)
--       12 knownFloor (the epoch the member holds; 0: none)
--       13 claimedEpoch (what this server granted the member and it holds; 0: nothing)
--       14 claimedSlot  15 proposedEpoch (0: no proposal)  16 proposedSlot
-- Reply: { view (the member's view, see `view` in lib.lua), floor (this server's, after the
--          script), eligible (1: among the best ranked here and holding no slot here),
--          free (slot indices free here, while eligible) }, or an error:
--   PARAM_MISMATCH <field> <requested> <current>   the group runs with other parameters, or with
--                                                  single-server members (field quorum, 1 0)
--   MEMBER_EXISTS <id>                             another member object holds the id now
--   CORRUPT <key> ...                              state the scripts did not write
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local weight, goal, activation = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heartbeat, preparation = tonumber(ARGV[6]), tonumber(ARGV[7])
local stamp, known_floor = tonumber(ARGV[11]), tonumber(ARGV[12])
local claimed_epoch, claimed_slot = tonumber(ARGV[13]), tonumber(ARGV[14])
local proposed_epoch, proposed_slot = tonumber(ARGV[15]), tonumber(ARGV[16])
local floor_key = KEYS[8]

local G = load_group(read_now())
local marked = G.quorum
G.quorum = true
local m = read_member(id)
local gone = replaced(m, id, ARGV[10])
if gone then return gone end
if m then
  local mismatch = activation_mismatch(G, activation)
  if mismatch then
    commit(G, channel)
    return mismatch
  end
else
  local refused = admit(G, channel, goal, activation)
  if refused then return refused end
  -- A group with single-server members refuses a quorum member (checked with the config's flag).
  G.quorum = marked
  refused = mode_mismatch(G, channel, true)
  if refused then return refused end
  G.quorum = true
end
local existed = G.exists
ensure_group(G, goal, activation, heartbeat)
if existed and not marked then call('HSET', K.config, 'quorum', '1') end

-- The floor: every epoch this server accepted or heard of. Gone while the group was here: lost
-- state, set again from TIME in µs (above any epoch proposed before now), and a quarantine.
local raw_floor = call('GET', floor_key)
local floor = tonumber(raw_floor)
if raw_floor and not whole(floor, 0, MAX_EPOCH) then corrupt(floor_key, 'is not an epoch') end
if not raw_floor then
  local t = call('TIME')
  floor = math.max(G.epoch, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  if existed then lost_state(G, 'floor') end
end
if not raw_floor then call('SET', floor_key, fmt(floor)) end

local rejoined = false
if m then
  call('ZADD', K.leases, 'GT', G.now + G.activation, id)
  if m.w ~= weight then
    local _, by_member = read_slots()
    change_weight(G, id, m, weight, by_member[id] ~= nil)
  end
else
  m = add_member(G, id, weight, ARGV[8], ARGV[9], ARGV[10], ARGV[13] == '0' and 'join' or 'rejoin')
  rejoined = claimed_epoch > 0
end
-- Until the member knows its stamp (Q join replies), this server's time stands in for it.
local wanted_stamp = stamp > 0 and stamp or (m.s or G.now)
if m.s ~= wanted_stamp then
  m.s = wanted_stamp
  write_member(id, m)
  local _, by_member = read_slots()
  set_rank(id, m, by_member[id] ~= nil)
end
settle_claim(G, id, m, claimed_epoch, claimed_slot, rejoined)
reconcile(G)

-- Eligible: among the best `goal` ranked here, holding no slot here.
local function eligible()
  local _, by_member = read_slots()
  if by_member[id] or G.goal == 0 then return false end
  for _, top in ipairs(ranked(G, G.goal)) do
    if top == id then return true end
  end
  return false
end

if proposed_epoch > 0 and eligible() and proposed_epoch > floor and proposed_epoch <= MAX_EPOCH
  and proposed_slot >= 0 and proposed_slot < G.goal and not quarantined(G) and not server_changed(G) then
  local slots = read_slots()
  if not slots[proposed_slot] then
    local reason = call('HGET', K.config, 'freed:' .. proposed_slot) or 'initial'
    if not FREED_AS[reason] then corrupt(K.config, 'field freed:' .. proposed_slot .. ' is not an activation reason') end
    write_slot({ index = proposed_slot, m = id, e = proposed_epoch, t = G.now, s = 'active', r = reason, n = m.n })
    count_held(G)
    set_rank(id, m, true)
    floor = proposed_epoch
    call('SET', floor_key, fmt(floor))
    if proposed_epoch > G.epoch then
      G.epoch = proposed_epoch
      call('HSET', K.config, 'epoch', fmt(proposed_epoch))
    end
    log_event(G, 'activate', id, { 'epoch', fmt(proposed_epoch), 'slot', proposed_slot, 'reason', reason })
    note(G, id, 'active', proposed_epoch, proposed_slot, reason)
    -- Granted: no longer preparing (reconcile would otherwise announce it 'standby', rank-changed).
    if G.preparing == id then
      G.preparing = ''
      call('HSET', K.config, 'preparing', '')
    end
    reconcile(G)
  end
end

if known_floor > floor then
  floor = math.min(known_floor, MAX_EPOCH)
  call('SET', floor_key, fmt(floor))
end

update_prepare(G, id, preparation)
commit(G, channel)
local reply = view(G, id, rejoined)
heartbeat_key(G, KEYS[7], reply[1])
local is_eligible = eligible()
local free = {}
if is_eligible then
  local slots = read_slots()
  for i = 0, G.goal - 1 do
    if not slots[i] then free[#free + 1] = i end
  end
end
return { reply, fmt(floor), is_eligible and 1 or 0, free }
