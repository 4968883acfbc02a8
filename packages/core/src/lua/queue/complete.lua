-- complete: ends a delivery, fenced by its token: only the worker that holds the task's latest
-- delivery, naming that delivery's token, may complete it. The only script that acknowledges
-- a completed task (XACK names no consumer and cannot fence on its own), and the one that trims
-- the acknowledged tasks from the stream (`trim` in queue/lib.lua).
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)
-- ARGV: 1 workerId  2 taskId  3 token  4 outcome ('done': the handler resolved; 'failed': it threw)
--       5 tokenFloor (see renew.lua)  6 inline ('1': a delivery to this worker goes in the reply, not
--       through its inbox; see `dispatch` in queue/lib.lua)
-- Reply: { status, serverNow, quarantineUntil, quarantineReason, lost, dead, reapAt, next, serverMicros }
-- (`reply` in queue/lib.lua); status 'done', 'retry' (failed, waits for re-delivery),
-- 'dead' (failed for the last time: moved to the dead letters) or 'stale' (refused: the task was
-- delivered again, or is gone), or an error: CORRUPT <key> <problem>
-- A worker sends a completion again when it could not tell whether the first attempt ran (a
-- reply lost or late). So that the repeat of an accepted completion is answered 'done', not
-- 'stale', the worker's receipts list (queue/lib.lua) keeps the tokens of at least its latest
-- RECEIPTS accepted completions: a list of its own, not a field of the worker's record, which every
-- dispatch decodes and encodes again.
--@include queue/lib.lua

local RECEIPTS = 32
local TRIM_EVERY = 16

local id, task, token, floor = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local Q = load_queue()
check_floor(Q, floor)
-- Lapsed workers and expired deliveries are found by the renewals timed to them (reapAt), and
-- `dispatch` gives nothing to a lapsed worker; this delivery is checked here: expired, it is not
-- completed but withdrawn.

local status = 'stale'
local r = read_delivery(task)
local named = r and r.w == id and r.k == token
-- Who the consumer group says holds the task: the record alone is not enough, since one
-- restored from an older copy (S6) names a worker the task was since taken from, with that
-- worker's token (nil: the group was lost and made again here; false: pending nowhere).
local holder = (named or not r) and pending_holder(Q, task)
if not r and holder == consumer(id) then
  -- Lost state (S6): no record, and the task is still pending at this worker, so no other worker
  -- was given it since; the claim is taken as the record, as a renewal's would be (a completion
  -- refused here would leave it pending at a worker that no longer runs it). `done` deletes the
  -- record and `failed` writes it (withdraw): neither needs it stored first.
  local w = read_worker(id)
  if not quarantined(Q) then start_quarantine(Q, 'lost-state:deliveries') end
  r = { w = id, k = token, n = 1, d = w and w.d or 1, e = Q.now + 1, l = '', i = 0 }
elseif named and holder ~= nil and holder ~= consumer(id) then
  -- Lost state (S6): the record is older than the group, which gave the task to another worker
  -- since, or no longer holds it (acknowledged: it is gone). Not acted on: the holder's next
  -- renewal claims the task with a newer token and takes the record back (renew.lua).
  if not quarantined(Q) then start_quarantine(Q, 'lost-state:deliveries') end
  r = nil
end
if r and r.w == id and r.k == token and r.e <= Q.now then
  withdraw(Q, task, r, 'complete-time', true)
elseif r and r.w == id and r.k == token then
  if ARGV[4] == 'done' then
    -- (0: the group no longer holds it, made again after lost state; nothing to trim by it.)
    local acked = call('XACK', K.tasks, GROUP, task) == 1
    -- While the count of deliveries made is a multiple of TRIM_EVERY (under load: one completion
    -- in TRIM_EVERY, each followed by a delivery): the trim's two commands amortised.
    if Q.seq % TRIM_EVERY == 0 then trim(acked and task) end
    call('HDEL', K.deliveries, task)
    call('ZREM', K.deadlines, task)
    local w = read_worker(id)
    if w then
      -- Trimmed once it holds twice the receipts kept: one command per completion, not two.
      if call('LPUSH', receipts(id), fmt(token)) >= 2 * RECEIPTS then call('LTRIM', receipts(id), 0, RECEIPTS - 1) end
      -- Full until now, it has no place: dispatch weighs it beside the places (SPARE in
      -- queue/lib.lua) and, under load, fills it again at once.
      if w.f >= w.c and w.f - 1 < w.c then SPARE = id end
      w.f = math.max(0, w.f - 1)
      -- Stored after dispatch, which may give the worker its next task (`saving`).
      write_worker(id, w, true)
    end
    status = 'done'
  else
    local dead = #Q.dead
    withdraw(Q, task, r, 'failed', true)
    status = #Q.dead > dead and 'dead' or 'retry'
  end
  Q.changed = true
elseif ARGV[4] == 'done' and not r then
  -- Gone: completed, by this very completion's first attempt if the worker has its receipt.
  if call('LPOS', receipts(id), fmt(token)) then status = 'done' end
end
if ARGV[6] == '1' then Q.inline = id end
saving(dispatch, Q)
announce(Q)
return reply(Q, status)
