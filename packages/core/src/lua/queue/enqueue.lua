-- enqueue: adds a task to the queue and dispatches what waits to workers with free capacity.
-- KEYS: 1 config  2 workers  3 leases  4 order  5 deliveries  6 tasks  7 deadlines  8 dead (as in
--       queue/lib.lua)
-- ARGV: 1 dataType ('s' string, 'b' bytes, 'j' JSON)  2 data
-- Reply: the task's id (its stream id), or an error:
--   CORRUPT <key> <problem>   a key of the queue holds what understudy never writes there

-- While no worker has room (the order set is empty) a task only waits: the XADD and the
-- announcement are all an enqueue does, before (and without) the code of queue/lib.lua. Lapsed
-- workers, expired deliveries and lost state are found by the next worker script, which checks
-- them before it dispatches anything. No stream (NOMKSTREAM: the XADD adds nothing and replies
-- nil) or an error reply (a key of the wrong type) takes the full path below, which makes the
-- stream with its consumer group, or names the key.
if redis.pcall('ZCARD', KEYS[4]) == 0 then
  local task = redis.pcall('XADD', KEYS[6], 'NOMKSTREAM', '*', 't', ARGV[1], 'd', ARGV[2])
  if type(task) == 'string' then
    redis.call('SPUBLISH', string.sub(KEYS[1], 1, -7) .. 'events', '')
    return task
  end
end
--@include queue/lib.lua

local Q = load_queue()
ensure_stream()
local id = call('XADD', K.tasks, '*', 't', ARGV[1], 'd', ARGV[2])
Q.changed = true
reap(Q)
dispatch(Q)
announce(Q)
return id
