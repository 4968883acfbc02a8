import { Counter, Gauge, Histogram, type Registry, register } from 'prom-client';
import { ConfigError } from '../errors.js';
import type { Member } from '../member/member.js';
import type {
  ActivateInfo,
  Advisory,
  DeactivateInfo,
  MemberState,
  PrepareInfo,
  RenewalEvent,
} from '../member/types.js';
import type { Transition } from '../monitor/history.js';
import type { Monitor } from '../monitor/monitor.js';
import type { GroupSnapshot } from '../monitor/observe.js';

/**
 * Prometheus metrics for members and monitors, through prom-client (an optional peer
 * dependency: only this module imports it, and `@understudy/core` never imports this module).
 * docs/METRICS.md lists every metric.
 */
export interface MetricsOptions {
  /** Where the metrics are registered (default: prom-client's global registry). */
  registry?: Registry;
  /** Prepended to every metric name (default `understudy_`). */
  prefix?: string;
}

export interface UnderstudyMetrics {
  readonly registry: Registry;
  /**
   * Records a member's renewals, actions, state and advisories from now on. Returns a function
   * that stops recording and removes the member's own series (they go when it leaves, too).
   */
  instrumentMember(member: Member): () => void;
  /**
   * Records a group as a monitor sees it: active members against the goal, transitions,
   * failover and handover durations, from the monitor's first read on. Returns a function
   * that stops recording and removes the group's gauges.
   */
  instrumentMonitor(monitor: Monitor): () => void;
}

export const METRICS_DEFAULTS = Object.freeze({ prefix: 'understudy_' });

/** Seconds. A renewal is one round trip; failovers take about the activation interval. */
const BUCKETS = Object.freeze({
  renewal: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  failover: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
  handover: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});

const MEMBER_STATES: readonly MemberState[] = ['standby', 'preparing', 'active', 'leaving', 'left'];

/** The same registry and prefix get the same metrics: prom-client refuses a name twice. */
const created = new WeakMap<Registry, Map<string, UnderstudyMetrics>>();

/** The metrics of a registry (created once per registry and prefix). */
export function createMetrics(options: MetricsOptions = {}): UnderstudyMetrics {
  const registry = options.registry ?? register;
  const prefix = options.prefix ?? METRICS_DEFAULTS.prefix;
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new ConfigError('prefix', prefix, 'must be letters, digits, _ or : and not start with a digit');
  }
  let byPrefix = created.get(registry);
  if (!byPrefix) {
    byPrefix = new Map();
    created.set(registry, byPrefix);
  }
  let metrics = byPrefix.get(prefix);
  if (!metrics) {
    metrics = new Metrics(registry, prefix);
    byPrefix.set(prefix, metrics);
  }
  return metrics;
}

class Metrics implements UnderstudyMetrics {
  readonly #activeMembers: Gauge<'group'>;
  readonly #activeGoal: Gauge<'group'>;
  readonly #liveMembers: Gauge<'group'>;
  readonly #transitions: Counter<'group' | 'type' | 'reason'>;
  readonly #failover: Histogram<'group'>;
  readonly #handover: Histogram<'group'>;
  readonly #readFailures: Counter<'group'>;
  readonly #memberState: Gauge<'group' | 'member' | 'state'>;
  readonly #leaseMargin: Gauge<'group' | 'member'>;
  readonly #actions: Counter<'group' | 'action' | 'reason'>;
  readonly #renewal: Histogram<'group'>;
  readonly #renewalFailures: Counter<'group'>;
  readonly #advisories: Counter<'group' | 'code'>;

  constructor(
    readonly registry: Registry,
    prefix: string,
  ) {
    const registers = [registry];
    this.#activeMembers = new Gauge({
      name: `${prefix}group_active_members`,
      help: 'Live members holding a slot (active, or releasing it for a handover), as the monitor last read',
      labelNames: ['group'],
      registers,
    });
    this.#activeGoal = new Gauge({
      name: `${prefix}group_active_goal`,
      help: 'The group’s active goal N (0 while the group has no members)',
      labelNames: ['group'],
      registers,
    });
    this.#liveMembers = new Gauge({
      name: `${prefix}group_live_members`,
      help: 'Live members of the group, active or not',
      labelNames: ['group'],
      registers,
    });
    this.#transitions = new Counter({
      name: `${prefix}group_transitions_total`,
      help: 'Entries of the group’s transition log, by type and reason',
      labelNames: ['group', 'type', 'reason'],
      registers,
    });
    this.#failover = new Histogram({
      name: `${prefix}failover_duration_seconds`,
      help: 'Redis time from a lost holder’s last renewal to the activation that refilled its slot',
      labelNames: ['group'],
      buckets: BUCKETS.failover,
      registers,
    });
    this.#handover = new Histogram({
      name: `${prefix}handover_duration_seconds`,
      help: 'Redis time from the group asking for a slot back (or the holder leaving) to its next activation',
      labelNames: ['group'],
      buckets: BUCKETS.handover,
      registers,
    });
    this.#readFailures = new Counter({
      name: `${prefix}monitor_read_failures_total`,
      help: 'Reads of the group by the monitor that failed (it retries)',
      labelNames: ['group'],
      registers,
    });
    this.#memberState = new Gauge({
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
      buckets: BUCKETS.renewal,
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

  instrumentMember(member: Member): () => void {
    const group = member.group;
    const id = member.id;
    let removed = false;
    const setState = (current: MemberState) => {
      for (const state of MEMBER_STATES) {
        this.#memberState.set({ group, member: id, state }, state === current ? 1 : 0);
      }
    };
    const removeSeries = () => {
      if (removed) return;
      removed = true;
      for (const state of MEMBER_STATES) this.#memberState.remove({ group, member: id, state });
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

  instrumentMonitor(monitor: Monitor): () => void {
    const group = monitor.group;
    const first = monitor.snapshot();
    /** Transitions before the monitor's first read are history it may replay, not news. */
    const since = first.serverTime;
    /** Slot → Redis time since which it has had no working holder. */
    const vacated = new Map<number, number>();
    const onChange = (snapshot: GroupSnapshot) => {
      this.#activeMembers.set({ group }, snapshot.activeCount);
      this.#activeGoal.set({ group }, snapshot.activeGoal);
      this.#liveMembers.set({ group }, snapshot.members.length);
    };
    const onTransition = (transition: Transition) => {
      if (transition.time < since) return;
      this.#transitions.inc({ group, type: transition.type, reason: transition.reason ?? '' });
      const slot = transition.slot;
      if (slot === undefined) return;
      if (transition.type === 'deactivate') {
        vacated.set(slot, transition.requestedAt ?? transition.lastRenewal ?? transition.time);
      } else if (transition.type === 'activate') {
        const from = vacated.get(slot);
        vacated.delete(slot);
        if (from === undefined) return;
        const seconds = Math.max(0, transition.time - from) / 1000;
        if (transition.reason === 'failover') this.#failover.observe({ group }, seconds);
        else if (transition.reason === 'handover') this.#handover.observe({ group }, seconds);
      }
    };
    const onError = () => this.#readFailures.inc({ group });
    onChange(first);
    monitor.on('change', onChange);
    monitor.on('transition', onTransition);
    monitor.on('error', onError);
    return () => {
      monitor.off('change', onChange);
      monitor.off('transition', onTransition);
      monitor.off('error', onError);
      for (const gauge of [this.#activeMembers, this.#activeGoal, this.#liveMembers]) gauge.remove({ group });
    };
  }
}
