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
-- Reply: the member's view (see `view` in lib.lua), or serverNow alone (a number: the steady state,
--   see `steady` below), or an error:
--   PARAM_MISMATCH <field> <requested> <current>   the group runs with other parameters, or in
--                                                  quorum mode (field quorum, 0 1)
--   MEMBER_EXISTS <id>                             another member object holds the id now
--@include lib.lua

local channel, id = ARGV[1], ARGV[2]
local weight, goal, activation = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local heartbeat, preparation = tonumber(ARGV[6]), tonumber(ARGV[7])
local claimed_epoch, claimed_slot = tonumber(ARGV[10]), tonumber(ARGV[11])

-- The steady state: the member's view is current, so the reply is the server's time alone (the
-- member keeps the rest of its view). Proven without decoding JSON, in O(log n) plus O(goal):
-- the group's incarnation and version are the ones the member knows (every change of anyone's
-- role, weight or membership bumps the version), no quarantine, the member is neither next in
-- line nor preparing (their replies carry a watch deadline that moves with the holders'
-- renewals), the keys agree as `verify_keys` counts them, the member's record carries its
-- nonce and weight, the slots name exactly what it claims (and only members with records), its
-- lease is not older than it was told (S6), no lease has lapsed, and no reconcile is due.
-- Records are matched by the exact tokens cjson writes for them (`"n":"<nonce>"`, `"w":<weight>`,
-- `"e":"<epoch>"`, `"m":"<id>"`): cjson escapes every quote inside a string, so a token can only
-- be the field itself; a record that does not match exactly takes the full renewal. Returns
-- nil, having written nothing, when anything differs: the full renewal below runs.
local function steady(now)
  local G = read_config(now)
  if not G.exists or G.held == nil or G.goal == 0 or G.activation ~= activation or quarantined(G) then return nil end
  if tonumber(ARGV[13]) ~= tonumber(G.created) or tonumber(ARGV[14]) ~= G.version then return nil end
  if tonumber(ARGV[15]) > G.epoch or G.next == id or G.preparing == id then return nil end
  local nonce = '"n":"' .. ARGV[12] .. '"'
  local record = call('HGET', K.members, id)
  if not record or not string.find(record, nonce, 1, true) then return nil end
  local w = '"w":' .. tostring(weight)
  local at = string.find(record, w, 1, true)
  local after = at and string.sub(record, at + #w, at + #w)
  if after ~= ',' and after ~= '}' then return nil end
  -- `verify_keys`, by counts.
  local members = call('HLEN', K.members)
  if call('ZCARD', K.leases) ~= members or call('ZCARD', K.rank) ~= members or call('EXISTS', K.log) == 0 then
    return nil
  end
  local flat = call('HGETALL', K.slots)
  if #flat ~= 2 * G.held then return nil end
  local mine = nil
  for i = 1, #flat, 2 do
    local holder = string.match(flat[i + 1], '"m":"([^"\\]*)"')
    if holder == id then
      mine = i
    elseif not holder or call('HEXISTS', K.members, holder) == 0 then
      return nil
    end
  end
  -- `settle_claim`: the member claims exactly the slot the server lists for it, granted to this
  -- object (its nonce), or claims nothing and is listed for nothing.
  if claimed_epoch > 0 then
    if not mine or tonumber(flat[mine]) ~= claimed_slot then return nil end
    local s = flat[mine + 1]
    if not string.find(s, '"e":"' .. fmt(claimed_epoch) .. '"', 1, true) or not string.find(s, nonce, 1, true) then
      return nil
    end
  elseif mine then
    return nil
  end
  -- S6 (as below): a lease that ends before the member was told.
  local score = tonumber(call('ZSCORE', K.leases, id))
  if not score or score < tonumber(ARGV[16]) then return nil end
  -- `needs_reconcile`: a lapsed lease (the earliest), or a free slot someone could take.
  local first = call('ZRANGE', K.leases, 0, 0, 'WITHSCORES')
  if tonumber(first[2]) <= now then return nil end
  if G.held < G.goal then
    local positive = call('ZCOUNT', K.rank, '-inf', '(' .. fmt(ZERO_WEIGHT_BASE))
    if G.held < (positive > 0 and positive or members) then return nil end
  end
  call('ZADD', K.leases, 'GT', now + G.activation, id)
  local role = 'standby'
  if mine then role = string.find(flat[mine + 1], '"s":"releasing"', 1, true) and 'releasing' or 'active' end
  heartbeat_key(G, KEYS[7], role)
  return now
end

local now = read_now()
local short = steady(now)
if short then return short end

local G = load_group(now)
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
