-- renew: adds a worker to its queue (a join, or a rejoin after its lease lapsed) or extends its
-- lease by its activation interval, then dispatches. The worker says which tasks it holds; the
-- ones the queue no longer gives it are listed in the reply, and a claim the server knows less
-- about than the worker (no record, or an older token: lost state, S6) is taken back into the
-- record, with a quarantine, so that nothing it still runs goes to another worker.
-- A delivery that went to the worker in a completion's reply and that it does not claim (that reply
-- was lost) goes in this reply again (`resend` in queue/lib.lua).
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)  9 inbox (the worker's)
-- ARGV: 1 workerId  2 weight  3 capacity (0 while leaving)  4 completeTime (ms)  5 maxDeliveries
--       6 activationInterval (ms)  7 nonce (random per worker object)  8 host  9 pid
--       10 tokenFloor (the highest token the worker was given; 0: none)  11 joining ('1' for the join)
--       12 claims (the rest of ARGV, three each: task id, token, when its delivery expires in Redis ms)
-- Reply: { status, serverNow, quarantineUntil, quarantineReason, lost, dead, reapAt, next, serverMicros }
-- (`reply` in queue/lib.lua); status 'ok', 'joined' or 'rejoined' (the queue had dropped
-- the worker: what it held went back), or an error:
--   WORKER_EXISTS <id>        another worker object holds the id
--   CORRUPT <key> <problem>
--@include queue/lib.lua

local id, nonce = ARGV[1], ARGV[7]
local activation, floor = tonumber(ARGV[6]), tonumber(ARGV[10])
local Q = load_queue()
Q.renewal = true
if activation > Q.activation then
  Q.activation = activation
  call('HSET', K.config, 'activationInterval', activation)
end
check_floor(Q, floor)
-- Renewals notice a change of server within H, also while no task waits to be dispatched.
server_changed(Q)
-- Lapsed workers go first: an id whose worker crashed is free again once its lease ran out.
reap(Q)
local w = read_worker(id)
if w and w.n ~= nonce then
  announce(Q)
  return redis.error_reply('WORKER_EXISTS ' .. id)
end

local status = 'ok'
if not w then
  status = ARGV[11] == '1' and 'joined' or 'rejoined'
  w = { f = 0, q = 0, n = nonce, h = ARGV[8], p = tonumber(ARGV[9]) }
  -- Whatever waits in the inbox was handed back with the worker.
  call('DEL', KEYS[9])
  Q.changed = true
end
w.w, w.c, w.t, w.d, w.a = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), activation
-- GT: a lease is never shortened. The record keeps its end too (`reap_lapsed`).
local ends = Q.now + activation
local added = call('ZADD', K.leases, 'GT', fmt(ends), id) == 1
w.l = math.max(w.l or 0, ends)
-- The earliest lease deadline `reap` read (nil: reaping changed the leases; `reap_at` reads it
-- again) moves only where it was this lease's, to the next one or this one's new end, or where
-- this lease is new.
if Q.lease_at ~= nil then
  if Q.lease_first == id then
    local moved = math.max(Q.lease_at, ends)
    Q.lease_at = Q.lease_next and math.min(Q.lease_next, moved) or moved
  elseif added then
    Q.lease_at = Q.lease_at and math.min(Q.lease_at, ends) or ends
  end
end

-- A task pending in the consumer group: delivered and neither completed nor buried (both
-- acknowledge it; an acknowledged task stays in the stream until a trim, so XRANGE cannot tell).
-- A stream or group that is gone holds no task (lost state: the next dispatch quarantines).
local function pending_task(task)
  local found = redis.pcall('XPENDING', K.tasks, GROUP, task, task, '1')
  return type(found) == 'table' and found[1] ~= nil
end

local lost = {}
local claimed = {}
local taken = false
for i = 12, #ARGV, 3 do
  local task, token, expires = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  claimed[task] = true
  local r = read_delivery(task)
  if r and r.w == id and r.k == token then
    -- still this worker's
  elseif (r == nil or r.k < token) and pending_task(task) then
    if not quarantined(Q) then start_quarantine(Q, 'lost-state:deliveries') end
    write_delivery(task, { w = id, k = token, n = r and r.n or 1, d = w.d, e = expires })
    call('ZADD', K.deadlines, fmt(expires), task)
    Q.expiry_at = nil
    call('XCLAIM', K.tasks, GROUP, consumer(id), '0', task, 'JUSTID')
    taken = true
  else
    lost[#lost + 1] = task
  end
end
-- The counts agreed with the records, which did not agree with the group: counted again.
if taken then
  for _, other in ipairs(recount(Q, id, w)) do write_worker(other, WORKERS[other]) end
end
write_worker(id, w, true)
saving(function()
  -- (More in flight than claimed: some are in the inbox, or went in a reply that was lost.)
  if w.f > (#ARGV - 11) / 3 then resend(Q, id, w, claimed) end
  dispatch(Q)
end)
announce(Q)
return reply(Q, status, lost, reap_at(Q))
