-- set_goal: the operator's change of a group's active goal. Members follow: a raised goal
-- activates the next ranked members, a lowered one demotes the lowest-ranked actives.
-- KEYS: 1 config  2 members  3 leases  4 rank  5 slots  6 log
-- ARGV: 1 channel  2 activeGoal
-- Reply: { version, previous (goal) }, or an error:
--   NO_GROUP ...   the group has no members (a group's parameters are set by its first member)
--@include lib.lua

local channel, goal = ARGV[1], tonumber(ARGV[2])
local G = load_group(read_now())
-- (An error without a space after its code gets Redis's 'ERR ' in front of it.)
if G.goal == 0 then return redis.error_reply('NO_GROUP the group has no members') end
local previous = G.goal
if goal ~= previous then
  for i = previous, goal - 1 do call('HSET', K.config, 'freed:' .. i, 'goal-raised') end
  G.goal = goal
  write_config('HSET', 'activeGoal', goal)
  log_event(G, 'goal', '', { 'goal', goal, 'previous', previous, 'reason', 'operator' })
  note(G, '', 'goal', 0, -1, tostring(goal))
  reconcile(G)
end
commit(G, channel)
return { G.version, previous }
