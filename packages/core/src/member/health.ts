import { Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { describe } from '../failures.js';
import type { MemberView } from '../scripts.js';
import type { Clock } from './clock.js';
import type { AdvisoryCode, AdvisoryDetails } from './types.js';

interface HealthSettings {
  heartbeatInterval: number;
  activationInterval: number;
  clock: Clock;
}

/** Raises an advisory: the details are those of its code. */
export type Advise = <C extends AdvisoryCode>(code: C, message: string, details: AdvisoryDetails[C]) => void;

/**
 * The member's advisories about the group as a whole, read off each reply: a quarantine, more
 * slots held than the goal, too few for longer than A, a heartbeat that differs from the group's.
 * They inform operators; nothing is decided from them.
 */
export class GroupHealth {
  #tooFewSince: number | undefined;
  #tooFewReported = false;
  #quarantineReported = 0;
  #heartbeatWarned = false;

  readonly #settings: HealthSettings;
  readonly #advise: Advise;
  readonly #log: Logger;

  constructor(settings: HealthSettings, advise: Advise, log: Logger) {
    this.#settings = settings;
    this.#advise = advise;
    this.#log = log;
  }

  check(view: MemberView, quarantined: boolean): void {
    const s = this.#settings;
    if (view.heartbeatInterval > 0 && view.heartbeatInterval !== s.heartbeatInterval && !this.#heartbeatWarned) {
      this.#heartbeatWarned = true;
      this.#log.warn(
        { group: view.heartbeatInterval, member: s.heartbeatInterval },
        'heartbeatInterval differs from the group; renewals keep this member’s own pace',
      );
    }
    if (quarantined && view.quarantineUntil !== this.#quarantineReported) {
      this.#quarantineReported = view.quarantineUntil;
      this.#advise(
        'QUARANTINE',
        'the group lost its state or changed server: no activation for one activation interval',
        { remainingMs: view.quarantineUntil - view.serverNow },
      );
    }
    if (view.slotsHeld > view.activeGoal && view.activeGoal > 0) {
      this.#advise('TOO_MANY_ACTIVE', `${view.slotsHeld} members are active, the goal is ${view.activeGoal}`, {
        active: view.slotsHeld,
        activeGoal: view.activeGoal,
      });
    }
    const expected = Math.min(view.activeGoal, view.liveMembers);
    const now = s.clock.now();
    if (view.slotsHeld < expected && !quarantined) {
      this.#tooFewSince ??= now;
      if (!this.#tooFewReported && now - this.#tooFewSince > s.activationInterval) {
        this.#tooFewReported = true;
        this.#advise('TOO_FEW_ACTIVE', `${view.slotsHeld} of ${expected} expected members are active`, {
          active: view.slotsHeld,
          expected,
        });
      }
    } else {
      this.#tooFewSince = undefined;
      this.#tooFewReported = false;
    }
  }
}

/**
 * Warnings about the deployment, once after joining: a Redis that may evict the group's keys,
 * an activation interval that one late renewal costs.
 */
export async function checkSetup(
  lease: Redis | Cluster | undefined,
  s: HealthSettings,
  advise: Advise,
  log: Logger,
): Promise<void> {
  const { heartbeatInterval: h, activationInterval: a } = s;
  if (a < 2 * h) {
    log.warn(
      { heartbeatInterval: h, activationInterval: a },
      'activationInterval is below twice heartbeatInterval: one late renewal will cost the lease',
    );
  }
  if (!lease) return;
  try {
    const policy = await evictingPolicy(lease);
    if (!policy) return;
    advise(
      'EVICTION_POLICY',
      `Redis may evict the group's keys (maxmemory-policy ${policy}); use noeviction or a volatile-* policy`,
      { policy },
    );
  } catch (error) {
    log.debug({ error: describe(error) }, 'could not read the eviction policy');
  }
}

/**
 * DESIGN §6: a Redis that may evict any key (an `allkeys-*` policy) can drop the group's state
 * at any moment; the scripts notice and quarantine (S6), but every eviction costs a failover.
 * Returns the policy when it is one of those.
 */
async function evictingPolicy(lease: Redis | Cluster): Promise<string | undefined> {
  for (const node of lease instanceof Cluster ? lease.nodes('master') : [lease]) {
    const policy = /maxmemory_policy:(\S+)/.exec(await node.info('memory'))?.[1];
    if (policy?.startsWith('allkeys-')) return policy;
  }
  return undefined;
}
