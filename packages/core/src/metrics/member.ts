import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Member } from '../member/member.js';
import type {
  ActivateInfo,
  Advisory,
  DeactivateInfo,
  MemberState,
  PrepareInfo,
  RenewalEvent,
} from '../member/types.js';

/** Seconds: a renewal is one round trip to Redis. */
const RENEWAL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A member's series go when it has left, so `left` never needs one. */
type ReportedState = Exclude<MemberState, 'left'>;
const MEMBER_STATES: readonly ReportedState[] = ['standby', 'preparing', 'active', 'leaving'];

/** What the members of this process report about themselves. */
export class MemberMetrics {
  readonly #state: Gauge<'group' | 'member' | 'state'>;
  readonly #leaseMargin: Gauge<'group' | 'member'>;
  readonly #actions: Counter<'group' | 'action' | 'reason'>;
  readonly #renewal: Histogram<'group'>;
  readonly #renewalFailures: Counter<'group'>;
  readonly #advisories: Counter<'group' | 'code'>;

  constructor(registry: Registry, prefix: string) {
    const registers = [registry];
    this.#state = new Gauge({
      name: `${prefix}member_state`,
      help: 'A member of this process: 1 for its current state, 0 for the others',
      labelNames: ['group', 'member', 'state'],
      registers,
    });
    this.#leaseMargin = new Gauge({
      name: `${prefix}member_lease_margin_seconds`,
      help: 'A member of this process: its lease deadline minus the time of its last renewal reply or failure',
      labelNames: ['group', 'member'],
      registers,
    });
    this.#actions = new Counter({
      name: `${prefix}member_actions_total`,
      help: 'Actions delivered to members of this process (prepare, activate, deactivate), by reason',
      labelNames: ['group', 'action', 'reason'],
      registers,
    });
    this.#renewal = new Histogram({
      name: `${prefix}renewal_duration_seconds`,
      help: 'Round trip of the successful renewals of members of this process',
      labelNames: ['group'],
      buckets: RENEWAL_BUCKETS,
      registers,
    });
    this.#renewalFailures = new Counter({
      name: `${prefix}renewal_failures_total`,
      help: 'Renewals of members of this process that failed or timed out',
      labelNames: ['group'],
      registers,
    });
    this.#advisories = new Counter({
      name: `${prefix}advisories_total`,
      help: 'Advisories raised by members of this process, by code',
      labelNames: ['group', 'code'],
      registers,
    });
  }

  instrument(member: Member): () => void {
    const group = member.group;
    const id = member.id;
    let removed = false;
    const setState = (current: ReportedState) => {
      for (const state of MEMBER_STATES) this.#state.set({ group, member: id, state }, state === current ? 1 : 0);
    };
    const removeSeries = () => {
      if (removed) return;
      removed = true;
      for (const state of MEMBER_STATES) this.#state.remove({ group, member: id, state });
      this.#leaseMargin.remove({ group, member: id });
    };
    const onRenewal = (renewal: RenewalEvent) => {
      if (renewal.outcome === 'ok') this.#renewal.observe({ group }, (renewal.receivedAt - renewal.sentAt) / 1000);
      else this.#renewalFailures.inc({ group });
      if (!removed && Number.isFinite(renewal.leaseDeadline)) {
        this.#leaseMargin.set({ group, member: id }, (renewal.leaseDeadline - renewal.receivedAt) / 1000);
      }
    };
    const onState = ({ to }: { to: MemberState }) => {
      if (to === 'left') removeSeries();
      else if (!removed) setState(to);
    };
    const onPrepare = ({ reason }: PrepareInfo) => this.#actions.inc({ group, action: 'prepare', reason });
    const onActivate = ({ reason }: ActivateInfo) => this.#actions.inc({ group, action: 'activate', reason });
    const onDeactivate = ({ reason }: DeactivateInfo) => this.#actions.inc({ group, action: 'deactivate', reason });
    const onAdvisory = ({ code }: Advisory) => this.#advisories.inc({ group, code });
    member.on('renewal', onRenewal);
    member.on('state', onState);
    member.on('prepare', onPrepare);
    member.on('activate', onActivate);
    member.on('deactivate', onDeactivate);
    member.on('advisory', onAdvisory);
    if (member.state === 'left') removeSeries();
    else setState(member.state);
    return () => {
      member.off('renewal', onRenewal);
      member.off('state', onState);
      member.off('prepare', onPrepare);
      member.off('activate', onActivate);
      member.off('deactivate', onDeactivate);
      member.off('advisory', onAdvisory);
      removeSeries();
    };
  }
}
