import type { Member } from '../member/join.js';
import type {
  ActivateInfo,
  Advisory,
  DeactivateInfo,
  MemberState,
  PrepareInfo,
  RenewalEvent,
} from '../member/types.js';
import { counter, type Defined, gauge, histogram, listen } from './define.js';

/** Seconds: a renewal is one round trip to Redis. */
const RENEWAL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A member's series go when it has left, so `left` never needs one. */
type ReportedState = Exclude<MemberState, 'left'>;
const MEMBER_STATES: readonly ReportedState[] = ['standby', 'preparing', 'active', 'leaving'];

/** What the members of this process report about themselves. */
export const MEMBER_METRICS = {
  state: gauge('member_state', 'A member of this process: 1 for its current state, 0 for the others', [
    'group',
    'member',
    'state',
  ]),
  leaseMargin: gauge(
    'member_lease_margin_seconds',
    'A member of this process: its lease deadline minus the time of its last renewal reply or failure',
    ['group', 'member'],
  ),
  actions: counter(
    'member_actions_total',
    'Actions delivered to members of this process (prepare, activate, deactivate), by reason',
    ['group', 'action', 'reason'],
  ),
  renewal: histogram(
    'renewal_duration_seconds',
    'Round trip of the successful renewals of members of this process',
    ['group'],
    RENEWAL_BUCKETS,
  ),
  renewalFailures: counter('renewal_failures_total', 'Renewals of members of this process that failed or timed out', [
    'group',
  ]),
  advisories: counter('advisories_total', 'Advisories raised by members of this process, by code', ['group', 'code']),
};

/** Records a member from now on; the function returned stops and removes its own series. */
export function recordMember(metrics: Defined<typeof MEMBER_METRICS>, member: Member): () => void {
  const group = member.group;
  const id = member.id;
  let removed = false;
  const setState = (current: ReportedState) => {
    for (const state of MEMBER_STATES) metrics.state.set({ group, member: id, state }, state === current ? 1 : 0);
  };
  const removeSeries = () => {
    if (removed) return;
    removed = true;
    for (const state of MEMBER_STATES) metrics.state.remove({ group, member: id, state });
    metrics.leaseMargin.remove({ group, member: id });
  };
  const onRenewal = (renewal: RenewalEvent) => {
    if (renewal.outcome === 'ok') metrics.renewal.observe({ group }, (renewal.receivedAt - renewal.sentAt) / 1000);
    else metrics.renewalFailures.inc({ group });
    if (!removed && Number.isFinite(renewal.leaseDeadline)) {
      metrics.leaseMargin.set({ group, member: id }, (renewal.leaseDeadline - renewal.receivedAt) / 1000);
    }
  };
  const onState = ({ to }: { to: MemberState }) => {
    if (to === 'left') removeSeries();
    else if (!removed) setState(to);
  };
  const stop = listen(member, {
    renewal: onRenewal,
    state: onState,
    prepare: ({ reason }: PrepareInfo) => metrics.actions.inc({ group, action: 'prepare', reason }),
    activate: ({ reason }: ActivateInfo) => metrics.actions.inc({ group, action: 'activate', reason }),
    deactivate: ({ reason }: DeactivateInfo) => metrics.actions.inc({ group, action: 'deactivate', reason }),
    advisory: ({ code }: Advisory) => metrics.advisories.inc({ group, code }),
  });
  if (member.state === 'left') removeSeries();
  else setState(member.state);
  return () => {
    stop();
    removeSeries();
  };
}
