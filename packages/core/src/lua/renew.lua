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
-- Reply: the member's view (see `view` in lib.lua), or serverNow alone in the steady state (a
--   number; to the next in line { serverNow, watchDeadline }: see `steady` below), or an error:
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
-- member's view is current, so the reply is the server's time alone (to the next in line also
-- the slot holders' earliest lease deadline, which moves with their renewals) and the member
-- keeps the rest of its view. Proven from what the member sends, the config and its own
-- entries, in a few commands and no JSON decoding:
-- - the group's incarnation and version are the ones the member knows: every change of anyone's
--   role, weight or membership, every grant, release, goal change and quarantine bumps the
--   version (the activation interval, the mode and the epochs change only with it);
-- - no quarantine, not even one that ended unclosed (a full renewal closes it with a reconcile:
--   it may have held back a preemption), and the member is not preparing; the next in line gets
--   its watch deadline only while every slot is held, without prepare hints (P = 0) and before
--   any holder's lease ended;
-- - its record carries its nonce and weight; a holder's slot names it, with the epoch it claims
--   and its nonce;
-- - every key of the group exists (one deleted or evicted is lost state, S6);
-- - no lease has lapsed (none scores at or below now: read without scores, which Redis 7.0
--   prints as doubles at a cost);
-- - its lease ends exactly where it was told (S6: leases restored from an older copy end
--   earlier), and is extended by the time that passed since (ZADD INCR: one command for both).
-- A member that holds no slot reads the config's seal (`seal` in lib.lua: the incarnation,
-- version and activation interval it must know, who is next in line, whether any slot is held,
-- as the last script that finished left them): one field where the config would be nine. A
-- holder and the next in line, whose roles act on the config, read it and check every value
-- read as the full renewal would (`read_config` refuses what the scripts never write), so a
-- value written there by hand is found by their renewals, and by any full script. Records and
-- slots are matched by the exact tokens cjson writes (`"n":"<nonce>"`, `"w":<weight>`,
-- `"e":"<epoch>"`, `"m":"<id>"`: cjson escapes every quote inside a string, so a token can only
-- be the field itself). What changes without a version (a slot, or another member's record,
-- restored from an older copy by hand) is found by the full renewals: the next in line sends one
-- whenever a slot is free or a lease ends, and nothing is granted outside them. Anything that
-- does not match exactly, or an error (a key of the wrong type), takes the full renewal below,
-- which decides and reports as always (CORRUPT for a value the scripts never write); what is
-- written before a check fails is written by it too (the heartbeat key), or put back (the
-- lease). The lapse bound and the increment go to Redis as '%d' text (a Lua number is printed as
-- a double); the activation interval is the member's own text, equal to the group's.
-- Returns the server's time (and the watch deadline), or nil.
local function steady()
  local told = tonumber(ARGV[16])
  if not told or told <= 0 then return nil end
  -- Not before a full renewal of the group checked this server (below: F29).
  if SEEN_HERE and not SEEN_HERE[KEYS[1]] then return nil end
  local id = ARGV[2]
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local holds, next_in_line, held = ARGV[10] ~= '0', false, nil
  if not holds then
    local stamp = redis.call('HGET', KEYS[1], 'stamp')
    local head = ARGV[13] .. ':' .. ARGV[14] .. ':' .. ARGV[5] .. '|'
    if not stamp or string.find(stamp, head, 1, true) ~= 1 then return nil end
    next_in_line = string.find(stamp, '|' .. id .. '|', #head, true) ~= nil
    held = string.find(stamp, '|0', -2, true) and 0 or 1
  end
  if holds or next_in_line then
    local c = redis.call('HMGET', KEYS[1], 'version', 'createdAt', 'next', 'preparing', 'quarantineUntil',
      'activeGoal', 'held', 'epoch', 'activationInterval')
    if c[1] ~= ARGV[14] or c[2] ~= ARGV[13] or c[4] == id or c[9] ~= ARGV[5] then return nil end
    local goal = stored(c[6], 10000)
    held = stored(c[7], 10000)
    local epoch = stored(c[8], 9007199254740991)
    if c[5] ~= '0' or not (goal and held and epoch) or c[7] == false or goal < 1 then return nil end
    for i = 3, 4 do
      local other = c[i]
      if other and other ~= '' and (#other > 200 or not string.find(other, '^[%w%._:@/%-]+$')) then return nil end
    end
    if next_in_line and (c[3] ~= id or held < goal or ARGV[7] ~= '0') then return nil end
  end
  local record = redis.call('HGET', KEYS[2], id)
  if not record or string.sub(record, 1, 1) ~= '{' or string.sub(record, -1) ~= '}' then return nil end
  local nonce = '"n":"' .. ARGV[12] .. '"'
  local w = '"w":' .. ARGV[3]
  local at = string.find(record, w, 1, true)
  local after = at and string.sub(record, at + #w, at + #w)
  if (after ~= ',' and after ~= '}') or not string.find(record, nonce, 1, true) then return nil end
  local role, watch = 'standby', nil
  if holds then
    local s = redis.call('HGET', KEYS[5], ARGV[11])
    if not s or not string.find(s, '"m":"' .. id .. '"', 1, true)
      or not string.find(s, '"e":"' .. ARGV[10] .. '"', 1, true) or not string.find(s, nonce, 1, true) then
      return nil
    end
    if string.find(s, '"s":"active"', 1, true) then
      role = 'active'
    elseif string.find(s, '"s":"releasing"', 1, true) then
      role = 'releasing'
    else
      return nil
    end
  elseif next_in_line then
    local holders = redis.call('HVALS', KEYS[5])
    if #holders ~= held then return nil end
    for i = 1, held do
      holders[i] = string.match(holders[i], '"m":"([^"\\]*)"')
      if not holders[i] then return nil end
    end
    local deadlines = redis.call('ZMSCORE', KEYS[3], unpack(holders))
    for i = 1, held do
      local d = tonumber(deadlines[i])
      if not d or d <= now then return nil end
      if not watch or d < watch then watch = d end
    end
  end
  if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[5]) ~= (held > 0 and 5 or 4) then return nil end
  if redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', now), 'LIMIT', '0', '1')[1] then return nil end
  local activation = tonumber(ARGV[5])
  -- XX: a member without a lease is not added here. Told in this very ms (by = 0): GT would
  -- refuse the increment, and there is nothing to extend.
  local by = now + activation - told
  if by == 0 then
    local score = tonumber(redis.call('ZSCORE', KEYS[3], id))
    if not score or score < told then return nil end
  else
    local extended = tonumber(redis.call('ZADD', KEYS[3], 'XX', 'GT', 'INCR', string.format('%d', by), id) or nil)
    if not extended then return nil end
    if extended ~= now + activation then
      local old = extended - by
      if old < told then
        redis.call('ZADD', KEYS[3], 'XX', old, id)
        return nil
      end
      -- It was told less than the server held (a reply it never got): never shortened.
      redis.call('ZADD', KEYS[3], 'XX', math.max(old, now + activation), id)
    end
  end
  -- The visible heartbeat (`heartbeat_key`).
  redis.call('SET', KEYS[7], role, 'PX', ARGV[5])
  if watch then return { now, watch } end
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
-- S6 within H of a change of server, though every renewal may be steady (`steady` reads no INFO):
-- the first renewal of the group on a server since it started (or was promoted, or loaded the
-- library) takes the full path and checks the server here, so a quarantine a restart calls for
-- starts then, not at the next grant, one A later (F29). Kept for at most SEEN_MOST groups (then
-- forgotten all at once: each checks once more).
local SEEN_MOST = 10000
if SEEN_HERE and not SEEN_HERE[KEYS[1]] then
  server_changed(G)
  if (SEEN_HERE.n or 0) >= SEEN_MOST then SEEN_HERE = {} end
  SEEN_HERE[KEYS[1]] = true
  SEEN_HERE.n = (SEEN_HERE.n or 0) + 1
end
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
heartbeat_key(G, KEYS[7], reply[1], ARGV[3], ARGV[12])
return reply
