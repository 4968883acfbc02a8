-- leave: removes a worker from its queue. What it still holds (tasks in its inbox it never
-- started, or whose handlers it gave up on) goes back for re-delivery, not counted as a delivery.
-- KEYS: 1-8 as in queue/lib.lua
-- ARGV: 1 worker id  2 nonce (another object that holds the id now is left alone)
-- Reply: see `reply` in queue/lib.lua; status 'left'
--@include queue/lib.lua

local Q = load_queue()
local w = read_worker(ARGV[1])
if w and w.n == ARGV[2] then remove_worker(Q, ARGV[1], 'leave') end
reap(Q)
dispatch(Q)
announce(Q)
return reply(Q, 'left')
