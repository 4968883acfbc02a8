-- Shared by every member script (included where a script says `--@include lib.lua`).
-- Conventions: `now` is Redis time in ms, read once per script (Redis 7.0 lets TIME advance
-- during a script while keys never expire mid-script). Epochs are integers below 2^53,
-- formatted with %.0f so Lua never writes them in exponent notation.
--
-- Every script refuses state it did not write with the error `CORRUPT <key> <problem>` (guard.lua).
--
-- KEYS (the same order in every member script):
--   1 config   hash    activeGoal, activationInterval, heartbeatInterval, createdAt, replId,
--                      version, epoch, seq, quarantineUntil, next, preparing, freed:<slot>,
--                      quorum ('1': one of K servers in quorum mode, DESIGN §9), stamp (`seal`)
--   2 members  hash    member id -> cjson { w = weight, q = join sequence, h = host, p = pid,
--                      n = nonce of the member object that joined, s = join stamp in quorum mode }
--   3 leases   zset    member id -> lease deadline (Redis ms)
--   4 rank     zset    member id -> rank score (lower ranks first), see rank_score
--   5 slots    hash    slot index -> cjson { m = member, e = epoch, t = since (granted, or
--                      asked back while releasing), s = 'active' | 'releasing',
--                      r = activation or release reason }
--   6 log      stream  transitions: join, leave, lapse, activate, deactivate, weight, goal;
--                      a deactivate that frees a slot names it, and says since when the slot
--                      has had no working holder where that is earlier than the entry: the
--                      holder's last renewal (`renewed`, a lapse) or when the group asked for
--                      the slot back (`requested`, a preemption or a lowered goal)

--@include guard.lua
--@include common.lua

local K = {
  config = KEYS[1], members = KEYS[2], leases = KEYS[3], rank = KEYS[4], slots = KEYS[5], log = KEYS[6],
}

local LOG_MAXLEN = 1000
local TWO32 = 4294967296
-- Scores below this belong to members with a positive weight.
local ZERO_WEIGHT_BASE = 65535 * 2 * TWO32
-- Bounds of what the scripts store (the library validates the same bounds on its side).
local MAX_EPOCH = 9007199254740991 -- 2^53 - 1: epochs travel as JavaScript numbers
local MAX_INTERVAL = 86400000 -- ms
local MAX_GOAL = 10000
local FREED_AS = { initial = true, failover = true, handover = true, ['goal-raised'] = true }

-- Writes config fields the seal covers (`seal`): the first such write of a script drops the seal,
-- so that a script that stops part way (an error, an early reply) leaves none, and every renewal
-- runs in full until a script finishes and seals the config again.
local unsealed = false
local function write_config(command, ...)
  if not unsealed then
    call('HDEL', K.config, 'stamp')
    unsealed = true
  end
  call(command, K.config, ...)
end

-- Weight first (higher first), then a member holding a slot before one that does not
-- (no failback between equals), then the earlier joiner.
local function rank_score(weight, holding, seq)
  return (65535 - weight) * 2 * TWO32 + (holding and 0 or TWO32) + seq
end

-- A config field the scripts store as a whole number: absent (0), or within [0, high].
local function config_number(c, i, name, high)
  return hash_number(K.config, c, i, name, high)
end

-- A config field that holds a member id, or ''.
local function config_member(c, i, name)
  local raw = c[i]
  if raw == false then return '' end
  if raw ~= '' and shown(raw) ~= raw then corrupt(K.config, 'field ' .. name .. ' is not a member id') end
  return raw
end

local function read_config(now)
  local c = call('HMGET', K.config, 'activeGoal', 'activationInterval', 'heartbeatInterval', 'version',
    'epoch', 'quarantineUntil', 'next', 'preparing', 'replId', 'createdAt', 'held', 'quorum')
  config_number(c, 10, 'createdAt', MAX_EPOCH)
  local G = {
    now = now,
    exists = c[10] ~= false,
    goal = config_number(c, 1, 'activeGoal', MAX_GOAL),
    activation = config_number(c, 2, 'activationInterval', MAX_INTERVAL),
    heartbeat = config_number(c, 3, 'heartbeatInterval', MAX_INTERVAL),
    version = config_number(c, 4, 'version', MAX_EPOCH),
    epoch = config_number(c, 5, 'epoch', MAX_EPOCH),
    -- A quarantine lasts one activation interval from now at most.
    quarantine_until = config_number(c, 6, 'quarantineUntil', now + MAX_INTERVAL),
    next = config_member(c, 7, 'next'),
    preparing = config_member(c, 8, 'preparing'),
    repl_id = c[9] or '',
    -- The group's incarnation: its versions count from 0 again after a loss of state.
    created = c[10] or '',
    -- Slots held, as the scripts counted them: a slots key that lost entries disagrees (S6).
    held = c[11] ~= false and config_number(c, 11, 'held', MAX_GOAL) or nil,
    -- Quorum mode (DESIGN §9): slots are granted only on a member's own proposal (quorum_renew.lua).
    quorum = c[12] == '1',
    changes = {},
    changed = false,
  }
  return G
end

local function log_event(G, kind, member, fields)
  local args = { 'XADD', K.log, 'MAXLEN', '~', LOG_MAXLEN, '*', 'type', kind, 'member', member, 'time', fmt(G.now) }
  for i = 1, #fields, 2 do
    args[#args + 1] = fields[i]
    args[#args + 1] = tostring(fields[i + 1])
  end
  call(unpack(args))
end

-- Records a change of a member's role, to publish and to count in the version.
local function note(G, member, role, epoch, slot, reason)
  G.changed = true
  G.changes[#G.changes + 1] = { member, role, fmt(epoch or 0), slot or -1, reason or '' }
end

-- Defined below: mark the group's state as lost (quarantine), and make its keys agree again.
local lost_state, rebuild

-- A fresh group, or one whose state was lost: remember the parameters, and grant nothing
-- for one activation interval, so that an old active we cannot see has stopped first.
local function create_group(G, goal, activation, heartbeat)
  G.exists = true
  G.goal, G.activation, G.heartbeat = goal, activation, heartbeat
  G.quarantine_until = G.now + activation
  G.repl_id = server_repl_id()
  G.created = fmt(G.now)
  G.changed = true
  write_config('HSET', 'activeGoal', goal, 'activationInterval', activation, 'heartbeatInterval', heartbeat,
    'createdAt', fmt(G.now), 'quarantineUntil', fmt(G.quarantine_until), 'replId', G.repl_id)
  if G.quorum then call('HSET', K.config, 'quorum', '1') end
  log_event(G, 'goal', '', { 'goal', goal, 'reason', 'created' })
  -- The config alone was lost (deleted, evicted): what the other keys hold must agree with it.
  if call('HLEN', K.members) > 0 or call('EXISTS', K.slots) == 1 then rebuild(G) end
end

-- Sets the parameters of a group that exists but forgot them when it last became empty.
local function adopt_parameters(G, goal, activation, heartbeat)
  G.goal, G.activation, G.heartbeat = goal, activation, heartbeat
  write_config('HSET', 'activeGoal', goal, 'activationInterval', activation, 'heartbeatInterval', heartbeat)
  log_event(G, 'goal', '', { 'goal', goal, 'reason', 'adopted' })
  G.changed = true
end

-- A request from a member object other than the one whose record holds the id (the record was
-- dropped and another object joined with the id since): it is not this object's group any more.
local function replaced(m, id, nonce)
  if m and m.n ~= nil and m.n ~= nonce then return redis.error_reply('MEMBER_EXISTS ' .. id) end
  return nil
end

-- A member's activation interval must be the group's (once the group has one): Redis gives
-- leases of the group's A, the member believes for its own.
local function activation_mismatch(G, activation)
  if not G.exists or G.activation == 0 or activation == G.activation then return nil end
  return redis.error_reply('PARAM_MISMATCH activationInterval ' .. activation .. ' ' .. G.activation)
end

-- A join (or a rejoin) must match the group's parameters, unless the group has none.
local function param_mismatch(G, goal, activation)
  if not G.exists or G.goal == 0 then return nil end
  if goal ~= G.goal then
    return redis.error_reply('PARAM_MISMATCH activeGoal ' .. goal .. ' ' .. G.goal)
  end
  return activation_mismatch(G, activation)
end

-- Makes sure the group has parameters: creates it (with quarantine) if its state is missing.
local function ensure_group(G, goal, activation, heartbeat)
  if not G.exists then
    create_group(G, goal, activation, heartbeat)
  elseif G.goal == 0 then
    adopt_parameters(G, goal, activation, heartbeat)
  end
end

-- Reads are memoised for the length of one script (a plain renewal reads its member and the
-- slots twice otherwise); every write below goes through the functions that keep them true.
local slots_memo = nil
local members_memo = {}

local function read_member(id)
  local memo = members_memo[id]
  if memo == nil then
    local raw = call('HGET', K.members, id)
    memo = false
    if raw then
      memo = decode_object(K.members, id, raw)
      if not whole(memo.w, 0, 65535) or not whole(memo.q, 0, TWO32 - 1) then
        corrupt(K.members, 'field ' .. shown(id) .. ' has no valid weight (w) and join sequence (q)')
      end
    end
    members_memo[id] = memo
  end
  return memo or nil
end

local function read_slots()
  if slots_memo then return slots_memo[1], slots_memo[2], slots_memo[3] end
  local flat = call('HGETALL', K.slots)
  local slots, by_member, count, orphans = {}, {}, 0, 0
  for i = 1, #flat, 2 do
    local index = tonumber(flat[i])
    local s = decode_object(K.slots, flat[i], flat[i + 1])
    if not whole(index, 0, MAX_GOAL - 1) or type(s.m) ~= 'string' or not whole(s.e, 1, MAX_EPOCH)
      or (s.s ~= 'active' and s.s ~= 'releasing') or by_member[s.m] then
      corrupt(K.slots, 'field ' .. shown(flat[i]) .. ' is not a slot (index, holder, epoch, state)')
    end
    s.index = index
    s.e = tonumber(s.e)
    s.t = tonumber(s.t) or 0
    -- A holder without a record (a slots key older than the members key): lost state, left out
    -- here and dropped by the rebuild (`verify_keys`). HEXISTS: cheaper than reading it.
    if members_memo[s.m] == false or (members_memo[s.m] == nil and call('HEXISTS', K.members, s.m) == 0) then
      orphans = orphans + 1
    else
      slots[index] = s
      by_member[s.m] = s
      count = count + 1
    end
  end
  slots_memo = { slots, by_member, count, orphans }
  return slots, by_member, count, orphans
end

-- Keeps config `held` equal to the number of slots (S6: a slots key that lost entries is found).
local function count_held(G)
  G.held = call('HLEN', K.slots)
  write_config('HSET', 'held', G.held)
end

local function write_slot(s)
  slots_memo = nil
  -- cjson writes numbers with 14 significant digits: epochs and times travel as strings. `n`:
  -- the nonce of the member object it was granted to (another object with the id never has it).
  call('HSET', K.slots, s.index, cjson.encode({ m = s.m, e = fmt(s.e), t = fmt(s.t), s = s.s, r = s.r, n = s.n }))
end

local function write_member(id, m)
  members_memo[id] = m
  call('HSET', K.members, id, cjson.encode(m))
end

-- In quorum mode the join stamp (m.s) orders equals instead of this server's join sequence: it
-- is too large for the score, so equals score alike and `ranked` orders them.
local function set_rank(id, m, holding)
  call('ZADD', K.rank, rank_score(m.w, holding, m.s and 0 or m.q), id)
end

-- A member's new weight, ranked at once; the caller reconciles.
local function change_weight(G, id, m, weight, holding)
  m.w = weight
  write_member(id, m)
  set_rank(id, m, holding)
  log_event(G, 'weight', id, { 'weight', weight })
  note(G, id, 'weight', 0, -1, tostring(weight))
end

-- Frees a slot; `reason` is how the next holder of the slot will be told it got it.
local function free_slot(G, s, freed_as)
  slots_memo = nil
  call('HDEL', K.slots, s.index)
  count_held(G)
  call('HSET', K.config, 'freed:' .. s.index, freed_as)
  local m = read_member(s.m)
  if m then set_rank(s.m, m, false) end
end

local function remove_member(G, id, kind, by_member)
  local s = by_member[id]
  if s then
    local fields = { 'epoch', fmt(s.e), 'slot', s.index, 'reason', kind == 'lapse' and 'lease-lost' or 'leave' }
    if s.s == 'releasing' then
      fields[#fields + 1] = 'requested'
      fields[#fields + 1] = fmt(s.t)
    elseif kind == 'lapse' then
      -- The lease deadline is the last renewal + A: metrics time a failover from the renewal.
      fields[#fields + 1] = 'renewed'
      fields[#fields + 1] = fmt(tonumber(call('ZSCORE', K.leases, id)) - G.activation)
    end
    free_slot(G, s, kind == 'lapse' and 'failover' or 'handover')
    by_member[id] = nil
    log_event(G, 'deactivate', id, fields)
  end
  call('HDEL', K.members, id)
  members_memo[id] = false
  call('ZREM', K.leases, id)
  call('ZREM', K.rank, id)
  if G.preparing == id then
    G.preparing = ''
    call('HSET', K.config, 'preparing', '')
  end
  log_event(G, kind, id, {})
  note(G, id, 'gone', s and s.e or 0, s and s.index or -1, kind)
end

-- Members whose lease lapsed go, unless the lease is an older copy (S6): every renewal sets the
-- member's heartbeat key with its lease, so the key expires with the lease written last (a full
-- script sets it to expire at that lease, `heartbeat_key`; a steady renewal sets PX = A at most
-- a millisecond after it read the time the lease counts from, renew.lua): at most HB_SLACK ms
-- after it. A key that outlives a lapsed lease by more says the leases were restored from an
-- older copy: a script other than the member's own renewal (a join, a leave) would otherwise drop
-- a live holder and grant its slot at once. The lease is put back from the key, with a quarantine.
-- (Another member's heartbeat key is named without being declared, like a queue's inboxes: it
-- carries the group's hash tag, so it lives in the same slot.)
local HB_SLACK = 2
local function expire_lapsed(G)
  local lapsed = call('ZRANGEBYSCORE', K.leases, '-inf', G.now, 'WITHSCORES')
  if #lapsed == 0 then return end
  local _, by_member = read_slots()
  for i = 1, #lapsed, 2 do
    local id, lease = lapsed[i], tonumber(lapsed[i + 1])
    -- (pcall: a user made by an earlier `understudy acl` may not run PTTL; the check is skipped.)
    local left = redis.pcall('PTTL', string.sub(K.config, 1, -7) .. 'hb:' .. id)
    if type(left) == 'number' and left > 0 and G.now + left > lease + HB_SLACK then
      if G.now >= G.quarantine_until then lost_state(G, 'leases') end
      call('ZADD', K.leases, fmt(G.now + left), id)
    else
      remove_member(G, id, 'lapse', by_member)
    end
  end
end

local function add_member(G, id, weight, host, pid, nonce, reason)
  -- Checked here rather than on every renewal: only a join reads the join sequence.
  local seq = redis.pcall('HINCRBY', K.config, 'seq', 1)
  if type(seq) == 'table' then
    if string.find(seq.err, 'not an integer', 1, true) then corrupt(K.config, 'field seq is not a whole number') end
    error(seq)
  end
  local m = { w = weight, q = seq, h = host, p = pid, n = nonce }
  write_member(id, m)
  call('ZADD', K.leases, G.now + G.activation, id)
  set_rank(id, m, false)
  log_event(G, 'join', id, { 'weight', weight, 'reason', reason })
  note(G, id, 'standby', 0, -1, reason)
  return m
end

-- The member's visible heartbeat: its role, expiring with the lease this script wrote (exactly:
-- `expire_lapsed` compares the two).
local function heartbeat_key(G, hb_key, role)
  call('SET', hb_key, role, 'PXAT', fmt(G.now + G.activation))
end

local function quarantined(G)
  return G.now < G.quarantine_until
end

-- Before granting on a server that did not write the group last (restart, failover), hold
-- every grant for one activation interval: data written to the old server may be lost.
local function server_changed(G)
  local repl_id = server_repl_id()
  if repl_id == G.repl_id then return false end
  G.repl_id = repl_id
  G.quarantine_until = G.now + G.activation
  write_config('HSET', 'replId', repl_id, 'quarantineUntil', fmt(G.quarantine_until))
  log_event(G, 'quarantine', '', { 'until', fmt(G.quarantine_until), 'reason', 'server-changed' })
  G.changed = true
  return true
end

-- A group left with no members forgets its parameters (the next member sets them again);
-- the epoch, version, join sequence and server id stay, so epochs keep increasing.
local function forget_if_empty(G)
  if call('ZCARD', K.leases) > 0 or G.goal == 0 then return end
  local fields = { 'activeGoal', 'activationInterval', 'heartbeatInterval', 'next', 'preparing' }
  for i = 0, G.goal - 1 do fields[#fields + 1] = 'freed:' .. i end
  write_config('HDEL', unpack(fields))
  G.goal, G.activation, G.heartbeat, G.next, G.preparing = 0, 0, 0, '', ''
  log_event(G, 'goal', '', { 'goal', 0, 'reason', 'group-empty' })
  G.changed = true
end

-- The first `count` members in rank order. Quorum mode (DESIGN §9): weight, holding a slot,
-- then the join stamp, then the id, the same on every server.
local function ranked(G, count)
  if count <= 0 then return {} end
  if not G.quorum then return call('ZRANGE', K.rank, 0, count - 1) end
  local last = call('ZRANGE', K.rank, count - 1, count - 1, 'WITHSCORES')[2]
  local flat = call('ZRANGEBYSCORE', K.rank, '-inf', last or '+inf', 'WITHSCORES')
  local entries = {}
  for i = 1, #flat, 2 do
    local m = read_member(flat[i])
    entries[#entries + 1] = { id = flat[i], score = tonumber(flat[i + 1]), stamp = m and tonumber(m.s) or math.huge }
  end
  table.sort(entries, function(a, b)
    if a.score ~= b.score then return a.score < b.score end
    if a.stamp ~= b.stamp then return a.stamp < b.stamp end
    return a.id < b.id
  end)
  local top = {}
  for i = 1, math.min(count, #entries) do top[i] = entries[i].id end
  return top
end

-- The ranking: keep the best `goal` live members active; members with weight 0 only when
-- no member with a positive weight is live. Demote before promote: a slot is granted only
-- once its holder has released it (or its lease lapsed).
local function reconcile(G)
  -- Leases last one activation interval: one ending later than a day from now was not written here.
  local far = call('ZRANGEBYSCORE', K.leases, '(' .. fmt(G.now + MAX_INTERVAL), '+inf', 'LIMIT', 0, 1)
  if #far > 0 then corrupt(K.leases, 'holds a lease of ' .. shown(far[1]) .. ' ending more than a day from now') end
  expire_lapsed(G)
  local positive = call('ZCOUNT', K.rank, '-inf', '(' .. fmt(ZERO_WEIGHT_BASE))
  local pool = positive > 0 and positive or call('ZCARD', K.rank)
  local wanted = math.min(G.goal, pool)
  local slots, by_member, held = read_slots()
  local top = ranked(G, wanted)
  local desired = {}
  for _, id in ipairs(top) do
    -- A rank without a member record: the ranking is older than the records (lost state).
    if not read_member(id) then
      lost_state(G, 'rank')
      rebuild(G)
      return reconcile(G)
    end
    desired[id] = true
  end

  for _, s in pairs(slots) do
    -- A ranking on a server that lost writes may be stale (a weight change lost with the old
    -- master, set again by the member's next renewal): during a quarantine nobody is preempted.
    if s.s == 'active' and not desired[s.m] and (held > G.goal or not (quarantined(G) or server_changed(G))) then
      s.s = 'releasing'
      s.t = G.now
      s.r = held > G.goal and 'goal-lowered' or 'preempted'
      write_slot(s)
      note(G, s.m, 'releasing', s.e, s.index, s.r)
    end
  end

  -- Quorum mode: a slot is granted only on its member's proposal (quorum_renew.lua).
  if held < G.goal and not G.quorum and not quarantined(G) then
    local checked_server = false
    for _, id in ipairs(top) do
      if held >= G.goal then break end
      if not by_member[id] then
        if not checked_server then
          checked_server = true
          if server_changed(G) then break end
        end
        local index = 0
        while slots[index] do index = index + 1 end
        local reason = call('HGET', K.config, 'freed:' .. index) or 'initial'
        if not FREED_AS[reason] then corrupt(K.config, 'field freed:' .. index .. ' is not an activation reason') end
        local epoch = next_fence(G, K.config, 'epoch')
        local s = { index = index, m = id, e = epoch, t = G.now, s = 'active', r = reason, n = read_member(id).n }
        write_slot(s)
        count_held(G)
        slots[index], by_member[id] = s, s
        held = held + 1
        set_rank(id, read_member(id), true)
        log_event(G, 'activate', id, { 'epoch', fmt(s.e), 'slot', index, 'reason', reason })
        note(G, id, 'active', s.e, index, reason)
        if G.preparing == id then
          G.preparing = ''
          call('HSET', K.config, 'preparing', '')
        end
      end
    end
  end

  -- Next in line: the best-ranked member that holds no slot. It watches the actives' leases.
  local next = ''
  local candidates = ranked(G, held + 1)
  for _, id in ipairs(candidates) do
    if not by_member[id] then
      if not read_member(id) then
        lost_state(G, 'rank')
        rebuild(G)
        return reconcile(G)
      end
      next = id
      break
    end
  end
  if next ~= G.next then
    G.next = next
    write_config('HSET', 'next', next)
  end
  if G.preparing ~= '' and G.preparing ~= next then
    note(G, G.preparing, 'standby', 0, -1, 'rank-changed')
    G.preparing = ''
    call('HSET', K.config, 'preparing', '')
  end
  -- A quarantine that ended is closed here: what it held back (grants, preemptions) has now
  -- been decided, and renewals may take the steady path again (renew.lua).
  if G.quarantine_until > 0 and not quarantined(G) then
    G.quarantine_until = 0
    write_config('HSET', 'quarantineUntil', '0')
  end
  forget_if_empty(G)
end

-- Cheap test for whether a plain renewal must run the full reconcile: a lease lapsed, a
-- quarantine ended that no reconcile has closed (it may have held back a preemption, with
-- nothing changing since), or a slot is free while someone could take it.
local function needs_reconcile(G)
  if #call('ZRANGEBYSCORE', K.leases, '-inf', G.now, 'LIMIT', 0, 1) > 0 then return true end
  if quarantined(G) then return false end
  if G.quarantine_until > 0 then return true end
  local _, _, held = read_slots()
  if held >= G.goal then return false end
  -- Members of weight 0 take a slot only when nobody with a positive weight is live: a slot
  -- that only they could fill while someone positive is live stays free without a reconcile.
  local positive = call('ZCOUNT', K.rank, '-inf', '(' .. fmt(ZERO_WEIGHT_BASE))
  return held < (positive > 0 and positive or call('ZCARD', K.rank))
end

-- The earliest lease deadline among the slot holders (0 when nobody holds a slot).
local function earliest_holder_deadline()
  local slots = read_slots()
  local earliest = 0
  for _, s in pairs(slots) do
    local d = tonumber(call('ZSCORE', K.leases, s.m)) or 0
    if earliest == 0 or d < earliest then earliest = d end
  end
  return earliest
end

-- The next in line gets `prepare` once an active's last renewal is older than its
-- preparation interval; the hint is withdrawn when the actives renew again.
local function update_prepare(G, id, preparation)
  if preparation <= 0 or G.next ~= id then return end
  local earliest = earliest_holder_deadline()
  local due = earliest > 0 and G.now >= earliest - G.activation + preparation
  if due and G.preparing ~= id then
    G.preparing = id
    call('HSET', K.config, 'preparing', id)
    note(G, id, 'preparing', 0, -1, 'lease-aging')
  elseif not due and G.preparing == id then
    G.preparing = ''
    call('HSET', K.config, 'preparing', '')
    note(G, id, 'standby', 0, -1, 'lease-renewed')
  end
end

-- The seal (config `stamp`): what a steady renewal of a member that holds no slot reads instead
-- of the config (renew.lua): `<createdAt>:<version>:<activationInterval>|<next>|<held>`, as the
-- config holds them when a script has finished (`write_config` drops it before a script changes
-- any of them). Absent while a quarantine is set (even one that ended: a full renewal closes it)
-- and while the group has no goal or no count of its slots. Only the next in line is ever told
-- to prepare (`update_prepare`; `reconcile` withdraws it from anyone else), so the seal need not
-- say who prepares. Read back rather than taken from G: what the config holds is what a renewal
-- will compare; written only when it differs.
local function seal()
  local c = call('HMGET', K.config, 'createdAt', 'version', 'activationInterval', 'next', 'held', 'quarantineUntil',
    'activeGoal', 'stamp')
  local stamp = false
  if c[1] and c[2] and c[3] and c[5] and c[6] == '0' and c[7] and c[7] ~= '0' then
    stamp = c[1] .. ':' .. c[2] .. ':' .. c[3] .. '|' .. (c[4] or '') .. '|' .. c[5]
  end
  if stamp == c[8] then return end
  if stamp then
    call('HSET', K.config, 'stamp', stamp)
  else
    call('HDEL', K.config, 'stamp')
  end
end

-- Bumps the version and announces the changes, if there were any; seals the config again.
local function commit(G, channel)
  if G.changed then
    G.version = G.version + 1
    write_config('HSET', 'version', G.version)
    -- Sharded pub/sub: in a Cluster the message stays on the group's shard (the channel has the
    -- group's hash tag); a single Redis treats it like PUBLISH.
    call('SPUBLISH', channel, cjson.encode({ i = G.created, v = G.version, c = G.changes }))
  end
  seal()
end

-- Checks a join, or a rejoin, like the first member's: lapsed members go first (an id whose
-- member crashed is free again once its lease ran out, and a group whose members all lapsed
-- has forgotten its parameters), then the parameters must match the group's. Returns the
-- error to reply with, after announcing what the expiry changed, or nil.
local function admit(G, channel, goal, activation)
  if G.exists and G.goal > 0 then
    expire_lapsed(G)
    forget_if_empty(G)
  end
  local mismatch = param_mismatch(G, goal, activation)
  if mismatch then commit(G, channel) end
  return mismatch
end

-- Quorum mode and single-server mode do not mix (DESIGN §9): a group with members in one mode
-- refuses a member of the other (PARAM_MISMATCH quorum <requested> <current>, 1 for quorum
-- mode). An empty group (no parameters) takes the mode of the member that forms it again.
-- Call after `admit`, with G.quorum as the group's config says.
local function mode_mismatch(G, channel, quorum)
  if G.exists and G.goal > 0 and G.quorum ~= quorum then
    commit(G, channel)
    return redis.error_reply('PARAM_MISMATCH quorum ' .. (quorum and 1 or 0) .. ' ' .. (G.quorum and 1 or 0))
  end
  if not quorum and G.quorum then
    call('HDEL', K.config, 'quorum')
    G.quorum = false
  end
  return nil
end

-- The reply every member script sends to its caller: the member's role and what it
-- needs to arm its timers.
-- View: 1 role ('active' | 'releasing' | 'preparing' | 'standby' | 'gone')  2 epoch (string)
--   3 slot (-1 if none)  4 reason  5 version  6 activeGoal  7 activationInterval
--   8 heartbeatInterval  9 serverNow (Redis time)  10 watchDeadline (next in line: earliest
--   lease deadline of the slot holders, else 0)  11 quarantineUntil  12 slotsHeld
--   13 liveMembers  14 weight  15 rejoined (1 if the member had been dropped and was added
--   again)  16 incarnation (createdAt: versions are ordered within one)
local function view(G, id, rejoined)
  local role, epoch, slot, reason = 'standby', 0, -1, ''
  local m = read_member(id)
  local _, by_member, held = read_slots()
  local s = by_member[id]
  if not m then
    role = 'gone'
  elseif s then
    role, epoch, slot, reason = s.s, s.e, s.index, s.r
  elseif G.preparing == id then
    role = 'preparing'
  end
  local watch = 0
  if m and not s and G.next == id then
    watch = earliest_holder_deadline()
    if quarantined(G) and (watch == 0 or G.quarantine_until < watch) then watch = G.quarantine_until end
  end
  return {
    role, fmt(epoch), slot, reason, G.version, G.goal, G.activation, G.heartbeat, fmt(G.now), fmt(watch),
    fmt(G.quarantine_until), held, call('ZCARD', K.leases), m and m.w or 0, rejoined and 1 or 0, G.created,
  }
end

-- S6: lost state. The group's keys disagree with each other (one was deleted or evicted), or a
-- member knows more than the server (a version, an incarnation or an epoch the server never
-- reached: the server's copy is older than what it once said). Nothing is granted for one
-- activation interval, and a slot is reported active only to a member that claims it. A change
-- of server not noticed yet (`server_changed`) is found here too and quarantined from the same
-- moment: a restart that lost writes costs one quarantine, not a second one at the next grant.
lost_state = function(G, what)
  -- (A change of server found here sets the same quarantine itself.)
  if G.activation > 0 and not server_changed(G) then
    G.quarantine_until = G.now + G.activation
    write_config('HSET', 'quarantineUntil', fmt(G.quarantine_until))
  end
  log_event(G, 'quarantine', '', { 'until', fmt(G.quarantine_until), 'reason', 'lost-state', 'lost', what })
  G.changed = true
end

-- Makes the keys agree again after some were lost: members without a lease get one (a dead
-- one lapses after A), leases and ranks without a member record go (their member rejoins on
-- its next renewal), slots whose holder has no record go (the holder reclaims by its claim),
-- and the ranking, join sequence, epoch and slot count are rebuilt from what is left.
rebuild = function(G)
  local records = call('HGETALL', K.members)
  local known, max_seq = {}, 0
  for i = 1, #records, 2 do
    local m = decode_object(K.members, records[i], records[i + 1])
    if not whole(m.w, 0, 65535) or not whole(m.q, 0, TWO32 - 1) then
      corrupt(K.members, 'field ' .. shown(records[i]) .. ' has no valid weight (w) and join sequence (q)')
    end
    known[records[i]] = m
    members_memo[records[i]] = m
    if m.q > max_seq then max_seq = m.q end
  end
  drop_unknown({ K.leases, K.rank }, known)
  slots_memo = nil
  local flat = call('HGETALL', K.slots)
  for i = 1, #flat, 2 do
    local ok, s = pcall(cjson.decode, flat[i + 1])
    if ok and type(s) == 'table' and type(s.m) == 'string' and not known[s.m] then call('HDEL', K.slots, flat[i]) end
  end
  local slots, by_member, count = read_slots()
  for id, m in pairs(known) do
    if not call('ZSCORE', K.leases, id) then call('ZADD', K.leases, G.now + G.activation, id) end
    set_rank(id, m, by_member[id] ~= nil)
  end
  for _, s in pairs(slots) do
    if s.e > G.epoch then
      G.epoch = s.e
      call('HSET', K.config, 'epoch', fmt(s.e))
    end
  end
  if tonumber(call('HGET', K.config, 'seq') or '0') < max_seq then call('HSET', K.config, 'seq', max_seq) end
  G.held = count
  write_config('HSET', 'held', count)
end

-- The keys of a group that exists must agree: as many leases and ranks as member records, as
-- many slots as the scripts granted, and a transition log.
local function verify_keys(G)
  if not G.exists then return end
  if G.held == nil then
    -- A group written before the scripts counted slots: start counting.
    G.held = call('HLEN', K.slots)
    write_config('HSET', 'held', G.held)
  end
  local members = call('HLEN', K.members)
  local lost = {}
  if call('ZCARD', K.leases) ~= members then lost[#lost + 1] = 'leases' end
  if call('ZCARD', K.rank) ~= members then lost[#lost + 1] = 'rank' end
  local _, _, _, orphans = read_slots()
  if call('HLEN', K.slots) ~= G.held or orphans > 0 then lost[#lost + 1] = 'slots' end
  if call('EXISTS', K.log) == 0 then lost[#lost + 1] = 'log' end
  if #lost == 0 then return end
  lost_state(G, table.concat(lost, ','))
  rebuild(G)
end

local function load_group(now)
  local G = read_config(now)
  verify_keys(G)
  return G
end

-- S6 for the member that renews: what it knows (the group's incarnation and version from its
-- last reply, the highest epoch it has been told of for itself) may show that the server's
-- copy is older than what the group once said.
local function check_member_knowledge(G, incarnation, version, floor)
  local created = tonumber(G.created) or 0
  local behind = nil
  if G.exists and incarnation > 0 and (incarnation > created or (incarnation == created and version > G.version)) then
    behind = 'version'
  end
  if floor > G.epoch then
    G.epoch = floor
    call('HSET', K.config, 'epoch', fmt(floor))
    if G.exists then behind = 'epoch' end
  end
  if behind and not quarantined(G) then lost_state(G, behind) end
end

-- Frees a slot whose grant the server can no longer vouch for (S6): the member it names did
-- not claim it, and the server changed or lost state since. A grant never delivered is void.
local function revoke(G, s)
  free_slot(G, s, FREED_AS[s.r] and s.r or 'failover')
  log_event(G, 'deactivate', s.m, { 'epoch', fmt(s.e), 'slot', s.index, 'reason', 'revoked' })
  note(G, s.m, 'standby', s.e, s.index, 'revoked')
end

-- What the renewing member claims to hold (epoch 0: nothing), against what the server holds.
-- A claim the server has no record of, or one newer than its record, shows lost state: the
-- member keeps its slot and epoch (it may still be acting on them; nothing else was granted
-- meanwhile, see `lost_state`). A slot listed for the member that it does not claim is
-- reported only while the server vouches for its grant: same server, no lost state.
local function settle_claim(G, id, m, claimed_epoch, claimed_slot, rejoined)
  local slots, by_member = read_slots()
  local s = by_member[id]
  -- Granted to another object with this id (a copy of the slots older than its restart): never
  -- this one's.
  if s and s.n and s.n ~= m.n then
    revoke(G, s)
    slots, by_member = read_slots()
    s = nil
  end
  if claimed_epoch > 0 and not (s and s.e == claimed_epoch) then
    local other = slots[claimed_slot]
    local newer = not s or s.e < claimed_epoch
    -- A rejoined member's slot lapsed with its lease: only lost state (or a new server) lets it keep it.
    if newer and not rejoined and not quarantined(G) then lost_state(G, 'slot') end
    if newer and (quarantined(G) or server_changed(G)) then
      if s then revoke(G, s) end
      if other and other.m ~= id and other.e < claimed_epoch then revoke(G, other) end
      slots = read_slots()
      local index = claimed_slot
      if index < 0 or index >= G.goal or slots[index] then
        index = 0
        while slots[index] do index = index + 1 end
      end
      local _, _, held = read_slots()
      if held < G.goal then
        write_slot({ index = index, m = id, e = claimed_epoch, t = G.now, s = 'active', r = 'reclaimed', n = m.n })
        count_held(G)
        if claimed_epoch > G.epoch then
          G.epoch = claimed_epoch
          call('HSET', K.config, 'epoch', fmt(claimed_epoch))
        end
        set_rank(id, m, true)
        log_event(G, 'activate', id, { 'epoch', fmt(claimed_epoch), 'slot', index, 'reason', 'reclaimed' })
        note(G, id, 'active', claimed_epoch, index, 'reclaimed')
      end
      return
    end
  end
  if s and s.s == 'active' and s.e ~= claimed_epoch and (quarantined(G) or server_changed(G)) then revoke(G, s) end
end
