-- leave: removes a worker from its queue. What it still holds (tasks in its inbox it never
-- started) goes back for re-delivery, not counted as a delivery; a delivery that expired before
-- (a handler that outlived its deadline) counts.
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)
-- ARGV: 1 workerId  2 nonce (another object that holds the id now is left alone)
-- Reply: { status, serverNow, quarantineUntil, quarantineReason, lost, dead, reapAt, next, serverMicros }
-- (`reply` in queue/lib.lua); status 'left'
--@include queue/lib.lua

local Q = load_queue()
-- First what expired (a handler the worker gave up on counts as a delivery), then the hand-back.
reap(Q)
local w = read_worker(ARGV[1])
if w and w.n == ARGV[2] then remove_worker(Q, ARGV[1], 'leave') end
dispatch(Q)
announce(Q)
return reply(Q, 'left')
