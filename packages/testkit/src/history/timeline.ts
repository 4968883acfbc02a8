import { byTime } from './recorder.js';
import type { ActivateEvent, FaultEvent, History, HistoryEvent, JoinEvent, RenewalEvent } from './types.js';

/** Events after which the group may legitimately move: it gets the settling time to converge again. */
export function isMembershipChange(event: HistoryEvent): boolean {
  return event.type === 'join' || event.type === 'leave' || event.type === 'killed' || event.type === 'weight';
}

export type OkRenewal = Extract<RenewalEvent, { outcome: 'ok' }>;

/**
 * A stretch [start, end) during which one member believed it was active: from its `activate`
 * until the earliest of its `deactivate`, `leave`, `killed`, or its lease deadline passing.
 */
export interface Belief {
  member: string;
  activate: ActivateEvent;
  start: bigint;
  /** Exclusive. Undefined: believing until the history ends, with no lease deadline known. */
  end: bigint | undefined;
  /** The deactivate, leave or killed event that ended it; undefined when the lease ran out. */
  endedBy: HistoryEvent | undefined;
}

/** One stay of a member in the group: from `join` to `leave` or `killed` (a member may rejoin). */
export interface Membership {
  member: string;
  join: JoinEvent;
  end: HistoryEvent | undefined;
  /** Weight from each time on: the join's, then every `weight` event's. */
  weights: { t: bigint; weight: number }[];
}

/** From a fault starting while none was open until the heal that closes the last open one. */
export interface FaultEpisode {
  start: bigint;
  /** Undefined: still open when the history ends. */
  end: bigint | undefined;
  events: HistoryEvent[];
}

/** What the rules need to know at any instant, derived once from a history. */
export class Timeline {
  readonly events: readonly HistoryEvent[];
  readonly start: bigint;
  readonly end: bigint;
  readonly beliefs: Belief[] = [];
  readonly memberships: Membership[] = [];
  readonly faults: FaultEpisode[] = [];
  readonly #okRenewals = new Map<string, OkRenewal[]>();
  readonly #byMember = new Map<string, HistoryEvent[]>();

  constructor(history: History) {
    this.events = [...history].sort(byTime);
    this.start = this.events[0]?.t ?? 0n;
    this.end = this.events.at(-1)?.t ?? 0n;
    for (const event of this.events) {
      const own = this.#byMember.get(event.member) ?? [];
      own.push(event);
      this.#byMember.set(event.member, own);
    }
    for (const [member, events] of this.#byMember) {
      this.#followMember(
        member,
        [...events].sort((a, b) => compare(handledAt(a), handledAt(b))),
      );
    }
    this.#followFaults();
  }

  /** Members believing they are active at instant t (events at t included). */
  believersAt(t: bigint): Belief[] {
    return this.beliefs.filter((b) => b.start <= t && (b.end === undefined || t < b.end));
  }

  /** Memberships live at instant t: joined, not left, not killed (events at t included). */
  liveAt(t: bigint): Membership[] {
    return this.memberships.filter((m) => m.join.t <= t && (m.end === undefined || t < m.end.t));
  }

  weightAt(membership: Membership, t: bigint): number {
    let weight = membership.join.weight;
    for (const change of membership.weights) if (change.t <= t) weight = change.weight;
    return weight;
  }

  /** The member's latest ok renewal at or before t: the one whose deadline governs its belief at t. */
  leaseAt(member: string, t: bigint): OkRenewal | undefined {
    return this.#okRenewals.get(member)?.findLast((r) => r.t <= t);
  }

  /** The member's events, in history order. */
  eventsOf(member: string): readonly HistoryEvent[] {
    return this.#byMember.get(member) ?? [];
  }

  /** The member's stay in the group at instant t, if it was in it. */
  membershipAt(member: string, t: bigint): Membership | undefined {
    return this.memberships.findLast((m) => m.member === member && m.join.t <= t);
  }

  /** Whether a fault is open just after the events at t. */
  faultOpenAt(t: bigint): boolean {
    return this.faults.some((f) => f.start <= t && (f.end === undefined || t < f.end));
  }

  /** Whether any fault episode overlaps [from, to]. */
  faultDuring(from: bigint, to: bigint): boolean {
    return this.faults.some((f) => f.start <= to && (f.end === undefined || f.end >= from));
  }

  #followMember(member: string, events: readonly HistoryEvent[]): void {
    const renewals: OkRenewal[] = [];
    this.#okRenewals.set(member, renewals);
    let deadline: bigint | undefined;
    let believing: ActivateEvent | undefined;
    let membership: Membership | undefined;
    const stopBelieving = (end: bigint | undefined, endedBy: HistoryEvent | undefined) => {
      if (believing) this.beliefs.push({ member, activate: believing, start: believing.t, end, endedBy });
      believing = undefined;
    };
    for (const event of events) {
      // A deadline that passed before this event ended the belief then; nothing later revives it.
      if (believing && deadline !== undefined && deadline <= handledAt(event)) stopBelieving(deadline, undefined);
      switch (event.type) {
        case 'join':
          deadline = undefined;
          membership = { member, join: event, end: undefined, weights: [] };
          this.memberships.push(membership);
          break;
        case 'weight':
          membership?.weights.push({ t: event.t, weight: event.weight });
          break;
        case 'renewal':
          if (event.outcome === 'ok') {
            renewals.push(event);
            deadline = event.deadline;
          }
          break;
        case 'activate':
          // Activating on a lease that already ran out starts no belief; a repeated activate continues one.
          if (!believing && (deadline === undefined || event.t < deadline)) believing = event;
          break;
        case 'deactivate':
          stopBelieving(event.t, event);
          break;
        case 'leave':
        case 'killed':
          stopBelieving(event.t, event);
          deadline = undefined;
          if (membership && !membership.end) membership.end = event;
          break;
      }
    }
    stopBelieving(deadline, undefined);
  }

  #followFaults(): void {
    let open: FaultEvent[] = [];
    let episode: FaultEpisode | undefined;
    for (const event of this.events) {
      if (event.type === 'fault') {
        if (!episode) {
          episode = { start: event.t, end: undefined, events: [] };
          this.faults.push(episode);
        }
        open.push(event);
        episode.events.push(event);
      } else if (event.type === 'heal' && episode) {
        const index = open.findIndex((f) => f.fault === event.fault);
        open = index === -1 ? [] : open.filter((_, i) => i !== index);
        episode.events.push(event);
        if (open.length === 0) {
          episode.end = event.t;
          episode = undefined;
        }
      }
    }
  }
}

/**
 * When the member acted on an event: an ok renewal's reply reached it at `repliedAt` (when
 * known), a moment before the event was recorded; every other event when it was recorded.
 * A reply that arrived before the deadline extends the belief even if its event was stamped
 * a moment after it.
 */
export function handledAt(event: HistoryEvent): bigint {
  return event.type === 'renewal' && event.outcome === 'ok' && event.repliedAt !== undefined
    ? event.repliedAt
    : event.t;
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
