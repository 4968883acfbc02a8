-- Shared by every queue script (included where a script says `--@include queue/lib.lua`).
-- Conventions as in lib.lua: `now` is Redis time in ms, read once per script; tokens are
-- integers below 2^53, formatted with fmt where they are written as text (MessagePack records
-- keep them as integers).
--
-- KEYS (the same order in every queue script):
--   1 config     hash    createdAt, replId, quarantineUntil, quarantineReason, token (newest delivery token),
--                        seq (deliveries made: ties go to the least recent receiver),
--                        activationInterval (the longest A of any worker: a quarantine lasts it),
--                        waiting ('1' while a task may wait for re-delivery: `dispatch` looks)
--   2 workers    hash    worker id -> record (below): w = weight, c = capacity, t = completeTime,
--                        d = maxDeliveries, a = activationInterval, f = tasks in flight,
--                        q = seq of its latest delivery (0: none yet), r = when it got it (Redis ms),
--                        n = nonce, h = host, p = pid
--   3 leases     zset    worker id -> lease deadline (Redis ms)
--   4 order      zset    worker id -> dispatch score (lowest first), only while it has free capacity
--   5 deliveries hash    task id -> record (below): w = worker ('' while waiting for re-delivery),
--                        k = token, n = deliveries so far, d = maxDeliveries of its latest worker,
--                        e = when its latest delivery expires (Redis ms), l = its previous worker,
--                        i = 1 when the delivery went in a script's reply, not through the inbox
--   6 tasks      stream  the tasks: consumer group `workers`, one consumer `w:<worker>` per worker,
--                        and `waiting` for re-deliveries; a task not completed is either not read
--                        by the group yet or pending in it (in flight, or waiting for re-delivery).
--                        A completed task (acknowledged) stays until `trim` drops its stream node
--   7 deadlines  zset    task id in flight -> when its delivery expires (Redis ms)
--   8 dead       stream  dead letters: id, deliveries, reason, t (data type), d (data)
-- Built here from KEYS[1] (same hash tag, so the same Cluster slot): `<base>inbox:<worker>`, the
-- list a worker blocks on (the script that dispatches chooses the worker, so it cannot declare
-- it), and `<base>receipts:<worker>`, the list of the tokens of its latest accepted completions
-- (complete.lua), newest first.
-- The channel `<base>events` (not a key) tells monitors that something changed.
-- Records: MessagePack values in a row (cmsgpack, which Redis ships), the format's version first:
--   worker    2 w c t d a f q r n h p l
--   delivery  2 k n d e w l i
-- (a tenth of the cost of JSON objects to read and write: every task reads and writes both). A
-- record an earlier version wrote as a JSON object is still read, and written back in this form;
-- an earlier version's scripts cannot read this form (docs/keys.md).
--@include guard.lua
--@include common.lua

key_kinds({ 'hash', 'hash', 'sorted set', 'sorted set', 'hash', 'stream', 'sorted set', 'stream', 'list' })

local K = {
  config = KEYS[1], workers = KEYS[2], leases = KEYS[3], order = KEYS[4], deliveries = KEYS[5],
  tasks = KEYS[6], deadlines = KEYS[7], dead = KEYS[8],
}
local BASE = string.sub(K.config, 1, -7)
local GROUP = 'workers'
local WAITING = 'waiting'
local TWO33 = 8589934592
local MAX_TOKEN = 9007199254740991
local MAX_INTERVAL = 86400000
-- A queue whose workers never said their A (only enqueues so far) quarantines for the default A.
local DEFAULT_ACTIVATION = 3000
local DEAD_MAXLEN = 100000
-- Numbers go to redis.call as text, formatted by `fmt` (a number Redis formats as '%.17g': five
-- times the instructions). Expired deliveries reaped per script: the rest by the next one.
local REAP_BATCH = '64'

local function inbox(id)
  local key = BASE .. 'inbox:' .. id
  KIND[key] = 'list'
  return key
end

local function receipts(id)
  local key = BASE .. 'receipts:' .. id
  KIND[key] = 'list'
  return key
end

local function consumer(id)
  return 'w:' .. id
end

local function config_number(c, i, name, high)
  return hash_number(K.config, c, i, name, high)
end

local function quarantined(Q)
  return Q.now < Q.quarantine_until
end

local function quarantine_length(Q)
  return Q.activation > 0 and Q.activation or DEFAULT_ACTIVATION
end

-- S6: the queue's state was lost (a key deleted, evicted, restored from an older copy) or it
-- runs on another server: nothing is dispatched for one activation interval, so every worker
-- renews (and reclaims what it holds) before anything it may still run goes to another.
local function start_quarantine(Q, reason)
  Q.quarantine_until = Q.now + quarantine_length(Q)
  Q.quarantine_reason = reason
  call('HSET', K.config, 'quarantineUntil', fmt(Q.quarantine_until), 'quarantineReason', reason)
  Q.changed = true
end

-- The worker records this script read or wrote, by id: a record is decoded once per script (a
-- completion frees the worker that dispatch then gives the next task). Every write of a record
-- goes through write_worker, and remove_worker forgets the one it deletes. UNSAVED: the records
-- written `later` (`saving`), by id.
local WORKERS = {}
local UNSAVED = {}

local RECORD = 2

-- A record's values (after its version), or its JSON object as an earlier version wrote it.
local function unpack_record(key, field, raw)
  if string.byte(raw, 1) == 123 then return decode_object(key, field, raw) end
  local ok, version, a, b, c, d, e, f, g, h, i, j, k, l = pcall(cmsgpack.unpack, raw)
  if not ok or version ~= RECORD then corrupt(key, 'field ' .. shown(field) .. ' is not a record understudy writes') end
  return nil, a, b, c, d, e, f, g, h, i, j, k, l
end

-- Whether a record's values are what the scripts write: whole numbers within their ranges, ids as
-- text. Compared in line, in one pcall (a value of another type fails its comparison with an
-- error), not a call of `whole` per value: two records are read for every task.
local function is_worker(w)
  return w.w >= 1 and w.w <= 65535 and w.w % 1 == 0 and w.c >= 0 and w.c <= 1000000 and w.c % 1 == 0
    and w.f >= 0 and w.f <= 1000000 and w.f % 1 == 0 and w.q >= 0 and w.q <= MAX_TOKEN and w.q % 1 == 0
    and w.t >= 1 and w.t <= MAX_INTERVAL and w.t % 1 == 0 and w.d >= 1 and w.d <= 1000000 and w.d % 1 == 0
    and w.a >= 1 and w.a <= MAX_INTERVAL and w.a % 1 == 0 and w.l >= 0 and w.l <= MAX_TOKEN and w.l % 1 == 0
end

local function is_delivery(r)
  return r.w >= '' and r.l >= '' and r.k >= 0 and r.k <= MAX_TOKEN and r.k % 1 == 0
    and r.n >= 0 and r.n <= 1000000 and r.n % 1 == 0 and r.d >= 1 and r.d <= 1000000 and r.d % 1 == 0
    and r.e >= 0 and r.e <= MAX_TOKEN and r.e % 1 == 0 and (r.i == 0 or r.i == 1)
end

local function read_worker(id)
  if WORKERS[id] then return WORKERS[id] end
  local raw = call('HGET', K.workers, id)
  if not raw then return nil end
  local w, ww, c, t, d, a, f, q, r, n, h, p, l = unpack_record(K.workers, id, raw)
  w = w or { w = ww, c = c, t = t, d = d, a = a, f = f, q = q, r = r, n = n, h = h, p = p, l = l }
  -- (l: absent in records an earlier version wrote.)
  w.l = w.l or 0
  local ok, valid = pcall(is_worker, w)
  if not (ok and valid) then corrupt(K.workers, 'field ' .. shown(id) .. ' is not a worker (w, c, f, q, t, d, a, l)') end
  WORKERS[id] = w
  return w
end

-- A worker's dispatch score: the heaviest first, then the one whose latest delivery is oldest.
local function score(w)
  return (65535 - w.w) * TWO33 + w.q
end

-- Its place in the order set, while it has room. `SPARE`: the id of a worker that a completion
-- freed and that has no place yet (it was full); `dispatch` weighs it beside the places, and
-- `saving` places it if dispatch did not fill it (a ZADD and a ZREM less per task under load).
local SPARE

local function place(id, w)
  local spare = SPARE == id
  if spare then SPARE = nil end
  if w.f < w.c then
    call('ZADD', K.order, fmt(score(w)), id)
  elseif not spare then
    call('ZREM', K.order, id)
  end
end

local function save_worker(id, w)
  UNSAVED[id] = nil
  call('HSET', K.workers, id, cmsgpack.pack(RECORD, w.w, w.c, w.t, w.d, w.a, w.f, w.q, w.r or 0, w.n or '', w.h or '', w.p or 0,
    w.l or 0))
end

-- `later`: the record is stored by `saving`, once, whether or not dispatch writes it again (a
-- completion frees the worker that dispatch then fills: one HSET, not two), and placed now, or
-- there if it is the SPARE.
local function write_worker(id, w, later)
  WORKERS[id] = w
  if later then UNSAVED[id] = true else save_worker(id, w) end
  if not (later and SPARE == id) then place(id, w) end
end

local function read_delivery(id)
  local raw = call('HGET', K.deliveries, id)
  if not raw then return nil end
  local r, k, n, d, e, w, l, i = unpack_record(K.deliveries, id, raw)
  if r then
    -- An earlier version's JSON object: tokens and times as text, some fields absent.
    r.k, r.e, r.d, r.l, r.i = tonumber(r.k), tonumber(r.e) or 0, tonumber(r.d) or 1, r.l or '', r.i or 0
  else
    r = { k = k, n = n, d = d, e = e, w = w, l = l or '', i = i or 0 }
  end
  local ok, valid = pcall(is_delivery, r)
  if not (ok and valid) then corrupt(K.deliveries, 'field ' .. shown(id) .. ' is not a delivery (w, k, n, d, e, l, i)') end
  return r
end

local function write_delivery(id, r)
  call('HSET', K.deliveries, id, cmsgpack.pack(RECORD, r.k, r.n, r.d, r.e, r.w, r.l or '', r.i or 0))
end

-- The earliest score of a sorted set (Redis ms), false when it is empty. A renewal reads the
-- earliest lease deadline and delivery expiry once (Q.lease_at, Q.expiry_at, in `reap`) and keeps
-- them while it changes the sets: nil where a change may have moved one (`reap_at` reads it again).
local function earliest(key)
  local score = call('ZRANGE', key, '0', '0', 'WITHSCORES')[2]
  return score and tonumber(score) or false
end

-- The two earliest leases: the first one's deadline and worker, and the second one's deadline
-- (false where there is none). A renewal extends its own lease after `reap`: the earliest deadline
-- is then still known (renew.lua, after its ZADD), without reading the set again.
local function earliest_leases(Q)
  local first = call('ZRANGE', K.leases, '0', '1', 'WITHSCORES')
  Q.lease_at = first[2] and tonumber(first[2]) or false
  Q.lease_first = first[1]
  Q.lease_next = first[4] and tonumber(first[4]) or false
end

-- The ids of a sorted set whose score (Redis ms) is due by now, at most REAP_BATCH, without their
-- scores (a score in a reply costs Redis a floating-point print).
local function due(Q, key)
  return call('ZRANGEBYSCORE', key, '-inf', fmt(Q.now), 'LIMIT', '0', REAP_BATCH)
end

local function entry_fields(entry)
  local f = {}
  local flat = entry[2] or {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end

-- A command on the consumer group. A stream that lost its group (deleted and written again by
-- hand) gets it back, reading from the start: lost state, so a quarantine; the command is not run
-- (nil). Any other error is raised as `call` raises it.
local function in_group(Q, ...)
  local reply = redis.pcall(...)
  if type(reply) ~= 'table' or not reply.err then return reply end
  if not string.find(reply.err, 'NOGROUP', 1, true) then return call(...) end
  call('XGROUP', 'CREATE', K.tasks, GROUP, '0', 'MKSTREAM')
  start_quarantine(Q, 'lost-state:tasks')
  return nil
end

-- The consumer that holds a task in the group: its name, false when the task is pending nowhere
-- (acknowledged, or never read), nil when the group was lost (`in_group` made it again).
local function pending_holder(Q, task)
  local found = in_group(Q, 'XPENDING', K.tasks, GROUP, task, task, '1')
  if not found then return nil end
  return found[1] and found[1][2] or false
end

-- The tasks a consumer holds (oldest first).
local function pending(Q, name, count)
  return in_group(Q, 'XPENDING', K.tasks, GROUP, '-', '+', count == 1 and '1' or fmt(count), name) or {}
end

-- Drops the acknowledged tasks from the stream, a whole node at a time (XTRIM MINID ~: an XDEL
-- per task walked its node from the start, and its tombstones hide the group's lag from
-- observe.lua): everything before the oldest task pending in the group. With none pending, the
-- group read (and acknowledged) everything up to `acked`, a task this script just acknowledged
-- (false: none); a task it did not read (the group was made again after lost state) is kept.
local function trim(acked)
  local oldest = call('XPENDING', K.tasks, GROUP, '-', '+', '1')[1]
  local below = oldest and oldest[1] or acked
  if below then call('XTRIM', K.tasks, 'MINID', '~', below) end
end

-- Whether a task may wait for re-delivery (config `waiting`), so that a completion's dispatch looks
-- at the `waiting` consumer only then; a renewal always looks, and sets it right.
local function note_waiting(Q, waiting)
  if waiting == Q.waiting then return end
  Q.waiting = waiting
  call('HSET', K.config, 'waiting', waiting and '1' or '0')
end

-- A task in flight waits for re-delivery: under the consumer `waiting`.
local function wait_again(Q, id)
  call('XCLAIM', K.tasks, GROUP, WAITING, '0', id, 'JUSTID')
  note_waiting(Q, true)
end

-- Moves a task to the dead letters: out of the consumer group for good (acknowledged; `trim`
-- drops it from the stream).
local function bury(Q, id, r, reason)
  local entry = call('XRANGE', K.tasks, id, id)[1]
  local f = entry and entry_fields(entry) or {}
  call('XADD', K.dead, 'MAXLEN', '~', DEAD_MAXLEN, '*', 'id', id, 'deliveries', r.n, 'reason', reason,
    't', f.t or 's', 'd', f.d or '')
  call('XACK', K.tasks, GROUP, id)
  call('HDEL', K.deliveries, id)
  Q.dead[#Q.dead + 1] = id
  Q.dead[#Q.dead + 1] = r.n
  Q.changed = true
end

-- Ends a task's delivery without a completion: it waits for re-delivery (under the consumer
-- `waiting`), or goes to the dead letters once its deliveries reached maxDeliveries. A delivery
-- handed back unstarted (`counted` false: the worker left) does not count.
local function withdraw(Q, id, r, reason, counted)
  call('ZREM', K.deadlines, id)
  Q.expiry_at = nil
  local holder = r.w ~= '' and read_worker(r.w)
  if holder then
    holder.f = math.max(0, holder.f - 1)
    write_worker(r.w, holder)
  end
  if not counted then r.n = math.max(0, r.n - 1) end
  if counted and r.n >= r.d then
    bury(Q, id, r, reason)
    return
  end
  r.l, r.w, r.e, r.i = r.w, '', 0, 0
  write_delivery(id, r)
  wait_again(Q, id)
  Q.changed = true
end

-- Counts each worker's tasks in flight again from the consumer group, which says who holds each
-- task; after lost state the delivery records may not (one restored from an older copy names a
-- worker the task was since taken from, one lost names nobody). `own`, `w`: the worker whose
-- script this is, which may be joining again (not in the workers hash yet). Returns the other
-- workers whose count changed, for the caller to store. Without a stream nothing is held; a group
-- that was lost (made again by `in_group`) holds nothing yet: the counts stay.
local function recount(Q, own, w)
  local held = {}
  if call('EXISTS', K.tasks) == 1 then
    local summary = in_group(Q, 'XPENDING', K.tasks, GROUP)
    if not summary then return {} end
    for _, c in ipairs(summary[4] or {}) do held[c[1]] = tonumber(c[2]) end
  end
  if own then w.f = held[consumer(own)] or 0 end
  local changed = {}
  local flat = call('HGETALL', K.workers)
  for i = 1, #flat, 2 do
    local id = flat[i]
    local other = id ~= own and read_worker(id)
    if other and other.f ~= (held[consumer(id)] or 0) then
      other.f = held[consumer(id)] or 0
      changed[#changed + 1] = id
    end
  end
  return changed
end

-- Hands back every task a worker holds, then forgets the worker. A task in its consumer's
-- pending list without a delivery record (lost state) is handed back too, as delivered once.
local function remove_worker(Q, id, reason)
  local w = read_worker(id)
  for _, p in ipairs(pending(Q, consumer(id), 1000)) do
    local r = read_delivery(p[1]) or { w = id, k = 0, n = 1, d = w and w.d or 1, e = 0 }
    if r.w == id then withdraw(Q, p[1], r, reason, reason ~= 'leave') end
  end
  if #pending(Q, consumer(id), 1) == 0 then
    call('XGROUP', 'DELCONSUMER', K.tasks, GROUP, consumer(id))
  end
  call('HDEL', K.workers, id)
  WORKERS[id] = nil
  UNSAVED[id] = nil
  if SPARE == id then SPARE = nil end
  call('ZREM', K.leases, id)
  Q.lease_at = nil
  call('ZREM', K.order, id)
  call('DEL', inbox(id), receipts(id))
  Q.changed = true
end

-- Workers whose lease lapsed (not during a quarantine: the leases may be an older copy, and every
-- live worker renews within it): what they held goes back. A worker whose record says its lease
-- ends later (`l`, written with every lease) is not gone: the leases are older than the records,
-- restored from an older copy (S6), and the lease is put back. Q.reaped: it ran in this script.
local function reap_lapsed(Q)
  if quarantined(Q) then return end
  Q.reaped = true
  for _, id in ipairs(due(Q, K.leases)) do
    local w = read_worker(id)
    if w and w.l > Q.now then
      if not quarantined(Q) then start_quarantine(Q, 'lost-state:leases') end
      call('ZADD', K.leases, fmt(w.l), id)
      Q.lease_at = nil
    else
      remove_worker(Q, id, 'lease-lost')
    end
  end
end

-- Deliveries that expired: their tasks wait for re-delivery, or go to the dead letters. The group,
-- not the record, says who held the task: a record restored from an older copy (S6) names a worker
-- it was since taken from, whose count the withdrawal would lower; the counts follow the group.
local function reap_expired(Q)
  local miscounted = false
  for _, id in ipairs(due(Q, K.deadlines)) do
    local r = read_delivery(id)
    local holder = r and pending_holder(Q, id)
    if holder ~= nil and holder ~= consumer(r.w) then
      if not quarantined(Q) then start_quarantine(Q, 'lost-state:deliveries') end
      miscounted = true
    end
    if holder == false or holder == WAITING then
      -- The deadline is older than the group: the task is gone (acknowledged), or waits for
      -- re-delivery already.
      call('ZREM', K.deadlines, id)
      if holder == false then call('HDEL', K.deliveries, id) end
    elseif r then
      withdraw(Q, id, r, 'complete-time', true)
    else
      call('ZREM', K.deadlines, id)
    end
    Q.expiry_at = nil
  end
  if miscounted then
    for _, other in ipairs(recount(Q)) do write_worker(other, WORKERS[other]) end
  end
end

-- Both. In a renewal (Q.renewal: its reply says reapAt) the earliest lease deadline and delivery
-- expiry are read first, kept for `reap_at`, and the due ids of a set only when its earliest is
-- due (one command per set, two when it is); otherwise (an enqueue, a leave: their replies say no
-- reapAt) the due ids are read directly, one command per set.
local function reap(Q)
  local renewal = Q.renewal
  if renewal then
    earliest_leases(Q)
    Q.expiry_at = earliest(K.deadlines)
  end
  if not renewal or (Q.lease_at and Q.lease_at <= Q.now) then reap_lapsed(Q) end
  if not renewal or (Q.expiry_at and Q.expiry_at <= Q.now) then reap_expired(Q) end
end

-- Makes the keys agree again after some were lost: workers without a lease get one, leases and
-- places without a worker go, a delivery whose task is gone is dropped, one whose worker is gone
-- waits for re-delivery, and the tasks in flight are counted again (`recount`).
local function rebuild(Q)
  local workers = {}
  local flat = call('HGETALL', K.workers)
  for i = 1, #flat, 2 do workers[flat[i]] = read_worker(flat[i]) end
  drop_unknown({ K.leases, K.order }, workers)
  local deliveries = call('HGETALL', K.deliveries)
  for i = 1, #deliveries, 2 do
    local id = deliveries[i]
    local r = read_delivery(id)
    if #call('XRANGE', K.tasks, id, id) == 0 then
      call('HDEL', K.deliveries, id)
      call('ZREM', K.deadlines, id)
    elseif r.w ~= '' and workers[r.w] then
      call('ZADD', K.deadlines, fmt(r.e), id)
    elseif r.w ~= '' then
      r.w = ''
      write_delivery(id, r)
      call('ZREM', K.deadlines, id)
      wait_again(Q, id)
    end
  end
  recount(Q)
  Q.lease_at, Q.expiry_at = nil, nil
  -- (Tasks may wait for re-delivery that no record says: the next dispatch looks.)
  note_waiting(Q, true)
  local longest = Q.activation
  for id, w in pairs(workers) do
    if not call('ZSCORE', K.leases, id) then call('ZADD', K.leases, Q.now + w.a, id) end
    write_worker(id, w)
    longest = math.max(longest, w.a)
  end
  -- A lost config forgot the longest A: the quarantine lasts the longest a worker still has.
  if longest > Q.activation then
    Q.activation = longest
    call('HSET', K.config, 'activationInterval', longest)
    start_quarantine(Q, Q.quarantine_reason)
  end
end

-- The keys of a queue must agree: a lease per worker, a delivery record per deadline, and the
-- tasks stream while deliveries exist. A script that finds them disagreeing quarantines and rebuilds.
-- Every script runs this first, so a key lost (deleted, evicted) is found before anything writes
-- it again: with the queue's keys all there (tasks in flight), or all but the deliveries and their
-- deadlines (none in flight: an idle queue's renewals), they agree, in one or two commands.
local function verify_keys(Q)
  if Q.exists then
    local present = call('EXISTS', K.workers, K.leases, K.deliveries, K.deadlines, K.tasks)
    if present == 5 or (present == 3 and call('EXISTS', K.deliveries, K.deadlines) == 0) then
      Q.stream = true
      return
    end
  end
  local workers = call('HLEN', K.workers)
  local deliveries = call('HLEN', K.deliveries)
  local lost = {}
  if not Q.exists and (workers > 0 or deliveries > 0 or call('EXISTS', K.tasks) == 1) then lost[#lost + 1] = 'config' end
  if call('ZCARD', K.leases) ~= workers then lost[#lost + 1] = 'leases' end
  if call('ZCARD', K.deadlines) > deliveries then lost[#lost + 1] = 'deliveries' end
  if deliveries > 0 then
    Q.stream = call('EXISTS', K.tasks) == 1
    if not Q.stream then lost[#lost + 1] = 'tasks' end
  end
  if #lost == 0 then return end
  start_quarantine(Q, 'lost-state:' .. table.concat(lost, ','))
  rebuild(Q)
end

local function load_queue()
  local now, micros = read_now()
  local c = call('HMGET', K.config, 'createdAt', 'replId', 'quarantineUntil', 'token', 'seq', 'activationInterval',
    'quarantineReason', 'waiting')
  local Q = {
    now = now,
    micros = micros,
    exists = c[1] ~= false,
    repl_id = c[2] or '',
    quarantine_until = config_number(c, 3, 'quarantineUntil', now + MAX_INTERVAL),
    token = config_number(c, 4, 'token', MAX_TOKEN),
    seq = config_number(c, 5, 'seq', MAX_TOKEN),
    activation = config_number(c, 6, 'activationInterval', MAX_INTERVAL),
    quarantine_reason = c[7] or '',
    waiting = c[8] == '1',
    changed = false,
    checked_server = false,
    dead = {},
    handed = {},
  }
  config_number(c, 1, 'createdAt', MAX_TOKEN)
  verify_keys(Q)
  if not Q.exists then
    Q.exists = true
    Q.repl_id = server_repl_id()
    call('HSET', K.config, 'createdAt', fmt(now), 'replId', Q.repl_id)
  end
  return Q
end

-- Before the first delivery on a server that did not write the queue last (restart, failover):
-- quarantine, since writes to the old server (deliveries, completions) may be lost.
local function server_changed(Q)
  if Q.checked_server then return false end
  Q.checked_server = true
  local repl_id = server_repl_id()
  if repl_id == Q.repl_id then return false end
  Q.repl_id = repl_id
  call('HSET', K.config, 'replId', repl_id)
  start_quarantine(Q, 'server-changed')
  return true
end

-- S2, S6: a token the worker was given that the server never reached: its copy is older.
local function check_floor(Q, floor)
  if floor <= Q.token then return end
  Q.token = floor
  call('HSET', K.config, 'token', fmt(floor))
  if not quarantined(Q) then start_quarantine(Q, 'lost-state:token') end
end

-- The tasks stream and its consumer group, created together (the group reads from the start).
local function ensure_stream()
  if call('EXISTS', K.tasks) == 0 then call('XGROUP', 'CREATE', K.tasks, GROUP, '0', 'MKSTREAM') end
end

-- A worker that may take a task now, best first, from `top` (the two first places) and the SPARE:
-- `skip` (the worker a re-delivery comes back from) only when nobody else has room. Places of
-- workers without a record are dropped. Also returns the places it chose from.
local function choose_worker(top, skip)
  local id, w
  while true do
    id = top[1]
    if id == skip and top[2] then id = top[2] end
    if not id then break end
    w = read_worker(id)
    if w then break end
    call('ZREM', K.order, id)
    top = call('ZRANGE', K.order, '0', '1')
  end
  local spare = SPARE and WORKERS[SPARE]
  if spare and (not id or (SPARE ~= skip and (id == skip or score(spare) < score(w)))) then return SPARE, spare, top end
  return id, w, top
end

-- A delivery as the worker reads it: the header line, then the data:
-- `<task> <token> <deliveries> <expires> <type>\n<data>`.
local function delivery_element(task, r, f)
  return task .. ' ' .. fmt(r.k) .. ' ' .. r.n .. ' ' .. fmt(r.e) .. ' ' .. (f.t or 's') .. '\n' .. (f.d or '')
end

-- Hands waiting tasks to the heaviest live workers with free capacity (ties: the one whose latest
-- delivery is oldest), one at a time, pushing each to the worker's inbox: re-deliveries first
-- (oldest first, to another worker than the last one where another has room), then new tasks.
-- A delivery to Q.inline (the worker whose completion runs this script) goes in the script's
-- reply instead (Q.handed; not bytes, which the reply would carry as text), marked in its record
-- (i = 1) so that a renewal sends it again if that reply was lost (`resend`).
local function dispatch(Q)
  -- (Q.stream: verify_keys saw the stream; a stream emptied by a trim stays.)
  if quarantined(Q) or not (Q.stream or call('EXISTS', K.tasks) == 1) then return end
  -- The places are read first: with nobody free, nothing else is (the server check included).
  local top = call('ZRANGE', K.order, '0', '1')
  if not (top[1] or SPARE) or server_changed(Q) or quarantined(Q) then return end
  while true do
    local waiting
    if Q.waiting or Q.renewal then
      waiting = pending(Q, WAITING, 1)[1]
      note_waiting(Q, waiting ~= nil)
    end
    local r = waiting and read_delivery(waiting[1])
    local id, w
    id, w, top = choose_worker(top, r and r.l)
    if not id then return end
    -- A worker whose lease lapsed (its record says when it ends) gets nothing: the lapsed workers
    -- go (`reap_lapsed`; once a script: a worker the leases still hold, its record older (S6), is
    -- live), and the choice starts again with what waits then.
    local lapsed = w.l <= Q.now and not Q.reaped
    if lapsed then
      reap_lapsed(Q)
      -- (A lease put back from a record: lost state.)
      if quarantined(Q) then return end
    else
      local entry
      if waiting then
        entry = call('XCLAIM', K.tasks, GROUP, consumer(id), '0', waiting[1])[1]
        -- Trimmed or deleted by hand: Redis keeps the reference, the task itself is gone.
        if not entry then call('HDEL', K.deliveries, waiting[1]) end
      else
        local read = in_group(Q, 'XREADGROUP', 'GROUP', GROUP, consumer(id), 'COUNT', '1', 'STREAMS', K.tasks, '>')
        if not read then return end
        entry = read[1][2][1]
      end
      if entry then
        local task = entry[1]
        local f = entry_fields(entry)
        r = r or { n = 0 }
        local inline = id == Q.inline and f.t ~= 'b'
        -- The token and the count of deliveries in one HSET, before anything of the delivery is
        -- written (a script that stops on an error keeps what it wrote so far).
        Q.seq = Q.seq + 1
        r.w, r.k, r.n, r.d, r.e = id, next_fence(Q, K.config, 'token', 'seq', Q.seq), r.n + 1, w.d, Q.now + w.t
        r.i = inline and 1 or 0
        write_delivery(task, r)
        call('ZADD', K.deadlines, fmt(r.e), task)
        if Q.expiry_at == false or (Q.expiry_at and r.e < Q.expiry_at) then Q.expiry_at = r.e end
        w.f, w.q, w.r = w.f + 1, Q.seq, Q.now
        write_worker(id, w)
        if inline then
          Q.handed[#Q.handed + 1] = delivery_element(task, r, f)
        else
          call('RPUSH', inbox(id), delivery_element(task, r, f))
        end
        Q.changed = true
      end
    end
    -- Nobody else has room: no other place was read, no SPARE waits, and the one chosen is full
    -- now (a ZRANGE less per task while all are busy).
    local other = top[1]
    if other == id then other = top[2] end
    if not (lapsed or other or SPARE) and w.f >= w.c then return end
    top = call('ZRANGE', K.order, '0', '1')
    if not (top[1] or SPARE) then return end
  end
end

-- Runs `step(...)` (what is left of a script: dispatch, at least), then stores the records
-- written `later`, also when `step` stops on an error (a key holding what understudy never writes
-- there), so that what the script wrote before agrees.
local function saving(step, ...)
  local ok, err = pcall(step, ...)
  if SPARE then place(SPARE, WORKERS[SPARE]) end
  for id in pairs(UNSAVED) do save_worker(id, WORKERS[id]) end
  if not ok then error(err, 0) end
end

-- Deliveries to worker `id` that went in a script's reply (i = 1, `dispatch`) and that it does not
-- claim (`claimed`: task id -> true): that reply was lost (a timeout, a connection cut) or is still
-- on its way. They go in this script's reply again, unexpired ones only; the worker ignores a
-- token it already has.
local function resend(Q, id, w, claimed)
  for _, p in ipairs(pending(Q, consumer(id), math.min(w.f + 1, 1000))) do
    local task = p[1]
    local r = not claimed[task] and read_delivery(task)
    if r and r.w == id and r.i == 1 and r.e > Q.now then
      local entry = call('XRANGE', K.tasks, task, task)[1]
      if entry then Q.handed[#Q.handed + 1] = delivery_element(task, r, entry_fields(entry)) end
    end
  end
end

local function announce(Q)
  if Q.changed then call('SPUBLISH', BASE .. 'events', '') end
end

-- The earliest moment `reap` has something to do (Redis ms; 0: nothing): a lease deadline (not
-- before a quarantine ends: none is reaped during one) or a delivery's expiry. Workers time a
-- renewal to it, so nothing waits for the next periodic one (DESIGN §11).
local function reap_at(Q)
  if Q.lease_at == nil then Q.lease_at = earliest(K.leases) end
  if Q.expiry_at == nil then Q.expiry_at = earliest(K.deadlines) end
  local at = 0
  if Q.lease_at then at = math.max(Q.lease_at, quarantined(Q) and Q.quarantine_until or 0) end
  if Q.expiry_at and (at == 0 or Q.expiry_at < at) then at = Q.expiry_at end
  return at
end

-- What a worker's script replies (the spec names its fields: test/script-specs.test.ts):
-- Reply: 1 status  2 serverNow (Redis ms)  3 quarantineUntil  4 quarantineReason (why the latest
--        quarantine began)  5 lost (tasks this worker no longer holds: { id, ... })  6 dead (dead
--        letters made: { id, deliveries, ... })  7 reapAt (`reap_at`, in a renewal's reply; -1:
--        not read, the worker keeps the moment it has)  8 next (deliveries to this worker, as
--        `dispatch` writes them: { element, ... })  9 serverMicros (the microseconds past serverNow:
--        Redis reads its clock in whole ms, rounded down, and the worker times its wake-ups to the
--        lease deadlines and expiries by it)
-- (Times as integers, which need no text in Lua nor in the reply.)
local function reply(Q, status, lost, at)
  return { status, Q.now, Q.quarantine_until, Q.quarantine_reason, lost or {}, Q.dead, at or -1, Q.handed, Q.micros }
end
