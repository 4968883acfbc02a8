import type { EventEmitter } from 'node:events';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Member } from '../member/member.js';
import type {
  ActivateInfo,
  Advisory,
  DeactivateInfo,
  MemberEvents,
  MemberState,
  PrepareInfo,
  RenewalEvent,
} from '../member/types.js';
import { MetricDefinitions } from './define.js';

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
    const define = new MetricDefinitions(registry, prefix);
    this.#state = define.gauge('member_state', 'A member of this process: 1 for its current state, 0 for the others', [
      'group',
      'member',
      'state',
    ]);
    this.#leaseMargin = define.gauge(
      'member_lease_margin_seconds',
      'A member of this process: its lease deadline minus the time of its last renewal reply or failure',
      ['group', 'member'],
    );
    this.#actions = define.counter(
      'member_actions_total',
      'Actions delivered to members of this process (prepare, activate, deactivate), by reason',
      ['group', 'action', 'reason'],
    );
    this.#renewal = define.histogram(
      'renewal_duration_seconds',
      'Round trip of the successful renewals of members of this process',
      ['group'],
      RENEWAL_BUCKETS,
    );
    this.#renewalFailures = define.counter(
      'renewal_failures_total',
      'Renewals of members of this process that failed or timed out',
      ['group'],
    );
    this.#advisories = define.counter('advisories_total', 'Advisories raised by members of this process, by code', [
      'group',
      'code',
    ]);
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
    const listeners: { [E in keyof MemberEvents]?: (...args: MemberEvents[E]) => void } = {
      renewal: onRenewal,
      state: onState,
      prepare: ({ reason }: PrepareInfo) => this.#actions.inc({ group, action: 'prepare', reason }),
      activate: ({ reason }: ActivateInfo) => this.#actions.inc({ group, action: 'activate', reason }),
      deactivate: ({ reason }: DeactivateInfo) => this.#actions.inc({ group, action: 'deactivate', reason }),
      advisory: ({ code }: Advisory) => this.#advisories.inc({ group, code }),
    };
    // The map above is typed per event; Node's untyped view of the emitter adds and removes them alike.
    const emitter = member as unknown as EventEmitter;
    const entries = Object.entries(listeners) as [string, (...args: unknown[]) => void][];
    for (const [event, listener] of entries) emitter.on(event, listener);
    if (member.state === 'left') removeSeries();
    else setState(member.state);
    return () => {
      for (const [event, listener] of entries) emitter.off(event, listener);
      removeSeries();
    };
  }
}
