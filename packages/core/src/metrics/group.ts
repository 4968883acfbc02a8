import type { Monitor } from '../monitor/group.js';
import type { Transition } from '../monitor/history.js';
import type { GroupSnapshot } from '../monitor/observe.js';
import { counter, type Defined, gauge, histogram, listen } from './define.js';

/**
 * Seconds. A failover takes the activation interval A plus a round trip, so the buckets are
 * dense around the usual A (1–5 s) and show a failover that took longer than its A.
 */
const FAILOVER_BUCKETS = [0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120, 300];
/** Seconds: a handover takes the outgoing deactivate handler plus a few round trips. */
const HANDOVER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What monitors report: the group as a whole, as Redis holds it. */
export const GROUP_METRICS = {
  activeMembers: gauge(
    'group_active_members',
    'Live members holding a slot (active, or releasing it for a handover), as the monitor last read',
    ['group'],
  ),
  activeGoal: gauge('group_active_goal', "The group's active goal N (0 while the group has no members)", ['group']),
  liveMembers: gauge('group_live_members', 'Live members of the group, active or not', ['group']),
  transitions: counter('group_transitions_total', "Entries of the group's transition log, by type and reason", [
    'group',
    'type',
    'reason',
  ]),
  failover: histogram(
    'failover_duration_seconds',
    "Redis time from a lost holder's last renewal to the activation that refilled its slot",
    ['group'],
    FAILOVER_BUCKETS,
  ),
  handover: histogram(
    'handover_duration_seconds',
    'Redis time from the group asking for a slot back (or its holder leaving) to its next activation',
    ['group'],
    HANDOVER_BUCKETS,
  ),
  readFailures: counter('monitor_read_failures_total', 'Reads of the group by the monitor that failed (it retries)', [
    'group',
  ]),
};

/** Records a group as the monitor sees it; the function returned stops and removes its gauges. */
export function recordGroup(metrics: Defined<typeof GROUP_METRICS>, monitor: Monitor): () => void {
  const group = monitor.group;
  const first = monitor.snapshot();
  /** Transitions before the monitor's first read are history it may replay, not news. */
  const since = first.serverTime;
  /** Slot → Redis time since which it has had no working holder. */
  const vacated = new Map<number, number>();
  const onChange = (snapshot: GroupSnapshot) => {
    metrics.activeMembers.set({ group }, snapshot.activeCount);
    metrics.activeGoal.set({ group }, snapshot.activeGoal);
    metrics.liveMembers.set({ group }, snapshot.members.length);
  };
  const onTransition = (transition: Transition) => {
    if (transition.time < since) return;
    metrics.transitions.inc({ group, type: transition.type, reason: transition.reason ?? '' });
    const slot = transition.slot;
    if (slot === undefined) return;
    if (transition.type === 'deactivate') {
      vacated.set(slot, transition.requestedAt ?? transition.lastRenewal ?? transition.time);
    } else if (transition.type === 'activate') {
      const from = vacated.get(slot);
      vacated.delete(slot);
      if (from === undefined) return;
      const seconds = Math.max(0, transition.time - from) / 1000;
      if (transition.reason === 'failover') metrics.failover.observe({ group }, seconds);
      else if (transition.reason === 'handover') metrics.handover.observe({ group }, seconds);
    }
  };
  onChange(first);
  const stop = listen(monitor, {
    change: onChange,
    transition: onTransition,
    error: () => metrics.readFailures.inc({ group }),
  });
  return () => {
    stop();
    for (const series of [metrics.activeMembers, metrics.activeGoal, metrics.liveMembers]) series.remove({ group });
  };
}
