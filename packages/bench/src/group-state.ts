// What a group's active set is, on a given server and in its members' beliefs, sampled while a
// failover runs: the HA scenarios' definition of "a correct active set again".
import type { Redis } from 'ioredis';
import { hrNow, sleep } from './clock.js';
import type { Contender } from './processes.js';

/** One read of a group's slots and leases on one server, with that server's clock. */
export interface GroupSample {
  /** hrNow() midway through the read. */
  t: number;
  /** The server's TIME, ms; undefined when the read failed. */
  redisNow?: number;
  /** Members holding an `active` slot (a `releasing` slot is not active). */
  active: string[];
  /** The epoch of every slot holder's grant (decimal, as stored), by member. */
  epochs: Map<string, string>;
  /** Lease deadlines (Redis ms) by member. */
  leases: Map<string, number>;
}

export async function sampleGroup(redis: Redis, group: string): Promise<GroupSample> {
  const before = hrNow();
  try {
    const reply = await redis
      .multi()
      .time()
      .hgetall(`understudy:{${group}}:slots`)
      .zrange(`understudy:{${group}}:leases`, '0', '-1', 'WITHSCORES')
      .exec();
    const t = (before + hrNow()) / 2;
    if (!reply || reply.some(([error]) => error)) return { t, active: [], epochs: new Map(), leases: new Map() };
    const [[, time], [, slots], [, leases]] = reply as [
      [null, [string, string]],
      [null, Record<string, string>],
      [null, string[]],
    ];
    const held = Object.values(slots).map((s) => JSON.parse(s) as { m: string; s: string; e: string });
    const active = held.filter((s) => s.s === 'active').map((s) => s.m);
    const epochs = new Map(held.map((s) => [s.m, s.e]));
    const deadlines = new Map<string, number>();
    for (let i = 0; i + 1 < leases.length; i += 2) deadlines.set(leases[i] as string, Number(leases[i + 1]));
    return { t, redisNow: Number(time[0]) * 1000 + Number(time[1]) / 1000, active, epochs, leases: deadlines };
  } catch {
    return { t: (before + hrNow()) / 2, active: [], epochs: new Map(), leases: new Map() };
  }
}

/** Whether a contender believed it held a slot at `t` (its last acquired / released / lost at or before t). */
export function believesAt(contender: Contender, t: number): boolean {
  let holding = false;
  for (const e of contender.events) {
    if (e.t > t) break;
    if (e.event === 'acquired') holding = true;
    else if (e.event === 'released' || e.event === 'lost') holding = false;
  }
  return holding;
}

export interface CorrectSet {
  /** Member ids that must be active: the top `goal` by weight. */
  expected: readonly string[];
  contenders: readonly Contender[];
  /**
   * Each expected active's lease must end at or after this Redis time: a lease renewed on this
   * server after the master was lost (loss time + A). 0 = any valid lease.
   */
  renewedAfter: number;
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

/** The server's slots hold exactly the expected members, renewed since the loss, and exactly they believe. */
export function isCorrect(sample: GroupSample, want: CorrectSet): boolean {
  if (sample.redisNow === undefined) return false;
  if (!sameSet(sample.active, want.expected)) return false;
  for (const id of want.expected) {
    const lease = sample.leases.get(id) ?? 0;
    if (lease <= sample.redisNow || lease < want.renewedAfter) return false;
  }
  const believers = want.contenders.filter((c) => believesAt(c, sample.t)).map((c) => c.member);
  return sameSet(believers, want.expected);
}

/** Pipe delay of a contender's events: a belief is judged only once its events surely arrived. */
const EVENT_GRACE_MS = 50;

/**
 * Samples the group every `everyMs` until it has been correct for `stableMs`; returns the time
 * of the first sample of that last correct stretch (judged again once every event arrived).
 */
export async function waitForCorrectSet(
  redis: Redis,
  group: string,
  want: CorrectSet,
  options: { stableMs: number; timeoutMs: number; everyMs?: number; what: string },
): Promise<{ correctAt: number; samples: GroupSample[] }> {
  const samples: GroupSample[] = [];
  const deadline = hrNow() + options.timeoutMs;
  const firstOfLastRun = () => {
    let start: number | undefined;
    for (const s of samples) start = isCorrect(s, want) ? (start ?? s.t) : undefined;
    return start;
  };
  for (;;) {
    samples.push(await sampleGroup(redis, group));
    const start = firstOfLastRun();
    const last = samples.at(-1) as GroupSample;
    if (start !== undefined && last.t - start >= options.stableMs) {
      // Judge again once the events of that stretch surely arrived.
      await sleep(EVENT_GRACE_MS);
      const correctAt = firstOfLastRun();
      if (correctAt !== undefined) return { correctAt, samples };
    }
    if (hrNow() > deadline) {
      const seen = last.redisNow === undefined ? 'no answer' : `active [${last.active.join(', ')}]`;
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what} (expected [${want.expected.join(', ')}]; last read: ${seen})`,
      );
    }
    await sleep(options.everyMs ?? 10);
  }
}
