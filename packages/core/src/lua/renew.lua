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
-- A whole number as the scripts write it (digits only; absent: 0), at most `high`; else nil.
local function stored(raw, high)
  if raw == false then return 0 end
  if not string.find(raw, '^%d+$') then return nil end
  local n = tonumber(raw)
  return n <= high and n or nil
end

-- The steady state, before anything else (lib.lua's definitions are not even built): the
-- member's view is current, so the reply is the server's time alone and the member keeps the
-- rest of its view. Proven without decoding JSON, in O(log n) plus O(goal): the group's
-- incarnation and version are the ones the member knows (every change of anyone's role, weight
-- or membership bumps the version), its activation interval is the member's, no quarantine, the
-- member is neither next in line nor preparing (their replies carry a watch deadline that moves
-- with the holders' renewals), the keys agree as `verify_keys` counts them, the member's record
-- carries its nonce and weight, the slots name exactly what it claims (and only members with
-- records), its lease does not end before it was told (S6), no lease has lapsed, and no
-- reconcile is due (`needs_reconcile`). Numbers are compared as the strings the scripts and the
-- member write (the library sends integers without exponent, as `fmt` does). Records are matched
-- by the exact tokens cjson writes for them (`"n":"<nonce>"`, `"w":<weight>`, `"e":"<epoch>"`,
-- `"m":"<id>"`): cjson escapes every quote inside a string, so a token can only be the field
-- itself. Anything that does not match exactly, or an error (a key of the wrong type), takes the
-- full renewal below, which decides and reports as always (CORRUPT for a value the scripts never
-- write: every value read here is checked as strictly as `read_config`, `read_member` and
-- `read_slots` check it, or more); nothing is written before the checks have passed. Returns the
-- server's time, or nil.
local function steady()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local id = ARGV[2]
  local c = redis.call('HMGET', KEYS[1], 'version', 'createdAt', 'activationInterval', 'quarantineUntil',
    'activeGoal', 'held', 'epoch', 'next', 'preparing', 'heartbeatInterval', 'quorum')
  if c[1] ~= ARGV[14] or c[2] ~= ARGV[13] or c[3] ~= ARGV[5] or c[8] == id or c[9] == id then return nil end
  -- A group in quorum mode refuses this member (`mode_mismatch`): the full renewal says so.
  if c[11] == '1' then return nil end
  -- Every value read is one the scripts could have written (`read_config` refuses anything else).
  local quarantine, goal, held = stored(c[4], now), stored(c[5], 10000), stored(c[6], 10000)
  local epoch, heartbeat = stored(c[7], 9007199254740991), stored(c[10], 86400000)
  if not (quarantine and goal and held and epoch and heartbeat) or c[6] == false or goal < 1 then return nil end
  for i = 8, 9 do
    local other = c[i]
    if other and other ~= '' and (#other > 200 or not string.find(other, '^[%w%._:@/%-]+$')) then return nil end
  end
  if tonumber(ARGV[15]) > epoch then return nil end
  local nonce = '"n":"' .. ARGV[12] .. '"'
  local record = redis.call('HGET', KEYS[2], id)
  if not record or string.sub(record, 1, 1) ~= '{' or string.sub(record, -1) ~= '}' then return nil end
  if not string.find(record, nonce, 1, true) then return nil end
  local w = '"w":' .. ARGV[3]
  local at = string.find(record, w, 1, true)
  local after = at and string.sub(record, at + #w, at + #w)
  if after ~= ',' and after ~= '}' then return nil end
  local q = string.match(record, '"q":(%d+)[,}]')
  if not q or tonumber(q) > 4294967295 then return nil end
  -- `verify_keys`, by counts.
  local members = redis.call('HLEN', KEYS[2])
  if redis.call('ZCARD', KEYS[3]) ~= members or redis.call('ZCARD', KEYS[4]) ~= members
    or redis.call('EXISTS', KEYS[6]) == 0 then
    return nil
  end
  -- The slots, as `read_slots` holds them: an index below the goal's bound, a holder with a
  -- record (one slot each), an epoch, a state.
  local flat = redis.call('HGETALL', KEYS[5])
  if #flat ~= 2 * held then return nil end
  local mine, holders = nil, {}
  for i = 1, #flat, 2 do
    local slot = flat[i + 1]
    local holder = string.match(slot, '"m":"([^"\\]*)"')
    local e = stored(string.match(slot, '"e":"(%d+)"') or '', 9007199254740991)
    if not holder or holders[holder] or not stored(flat[i], 9999) or not e or e < 1 then return nil end
    if not string.find(slot, '"s":"active"', 1, true) and not string.find(slot, '"s":"releasing"', 1, true) then
      return nil
    end
    holders[holder] = true
    if holder == id then
      mine = i
    elseif redis.call('HEXISTS', KEYS[2], holder) == 0 then
      return nil
    end
  end
  -- `settle_claim`: the member claims exactly the slot the server lists for it, granted to this
  -- object (its nonce), or claims nothing and is listed for nothing.
  if ARGV[10] ~= '0' then
    if not mine or flat[mine] ~= ARGV[11] then return nil end
    local s = flat[mine + 1]
    if not string.find(s, '"e":"' .. ARGV[10] .. '"', 1, true) or not string.find(s, nonce, 1, true) then return nil end
  elseif mine then
    return nil
  end
  -- S6 (as below): a lease that ends before the member was told.
  local score = tonumber(redis.call('ZSCORE', KEYS[3], id))
  if not score or score < tonumber(ARGV[16]) then return nil end
  -- `needs_reconcile`: a lapsed lease (the earliest), or a free slot someone could take.
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if tonumber(first[2]) <= now then return nil end
  if held < goal then
    -- Members of weight 0 score from 65535 · 2^33 on (`rank_score`).
    local positive = redis.call('ZCOUNT', KEYS[4], '-inf', string.format('(%.0f', 65535 * 2 * 4294967296))
    if held < (positive > 0 and positive or members) then return nil end
  end
  local activation = tonumber(c[3])
  redis.call('ZADD', KEYS[3], 'GT', now + activation, id)
  local role = 'standby'
  if mine then role = string.find(flat[mine + 1], '"s":"releasing"', 1, true) and 'releasing' or 'active' end
  -- The visible heartbeat (`heartbeat_key`).
  redis.call('SET', KEYS[7], role, 'PX', activation)
  return now
end

do
  local ok, now = pcall(steady)
  if ok and now then return now end
end

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
