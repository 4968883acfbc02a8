import { hrNow, mapClocks, sleep } from '../clock.js';
import type { ContenderConfig } from '../contenders/types.js';
import { type BenchContext, uniqueKey } from '../context.js';
import { beliefIntervals, readGroupLog } from '../history.js';
import { Contender } from '../processes.js';
import { maxConcurrency } from '../stats.js';

export interface PreemptionSample {
  /** joinGroup() called by the heavier member → its activate callback, ms (includes connecting). */
  total: number;
  /** The join script's Redis time (log stream) → the newcomer's activate callback, ms. */
  fromJoin: number;
  /** The old active's deactivate callback → the newcomer's activate callback, ms (> 0: demote before promote). */
  gap: number;
}

export interface PreemptionResult {
  samples: PreemptionSample[];
  maxConcurrency: number;
  /** Rounds where the newcomer activated before the old active's deactivate callback. */
  promotedFirst: number;
}

const LIGHT = 10;
const HEAVY = 20;

/**
 * understudy only (the peers have no weights): a member of weight 20 joins a group whose
 * active has weight 10. It must be active soon, and only after the old one deactivated.
 * Between rounds the heavy member leaves and the light one takes over again.
 */
export async function runPreemption(context: BenchContext, rounds: number): Promise<PreemptionResult> {
  const config: ContenderConfig = {
    kind: 'understudy',
    key: uniqueKey('preempt'),
    redisUrl: context.server.url,
    etcdHosts: [],
    activationMs: context.lease.activationMs,
    heartbeatMs: context.lease.heartbeatMs,
    slots: 1,
  };
  const light = new Contender(config, 'light');
  const heavy = new Contender(config, 'heavy');
  const result: PreemptionResult = { samples: [], maxConcurrency: 0, promotedFirst: 0 };
  try {
    await Promise.all([light.ready(), heavy.ready()]);
    let from = light.mark;
    await light.join(LIGHT);
    await light.waitFor((e) => e.event === 'acquired', 'the light member to activate', 3 * config.activationMs, from);
    for (let round = 1; round <= rounds; round++) {
      await sleep(context.lease.heartbeatMs * (0.5 + Math.random()));
      context.clocks = await mapClocks(context.redis);
      const lightFrom = light.mark;
      from = heavy.mark;
      await heavy.join(HEAVY);
      const joining = await heavy.waitFor((e) => e.event === 'joining', 'joining', 5000, from);
      const activated = await heavy.waitFor((e) => e.event === 'acquired', 'the heavy member to activate', 5000, from);
      const demoted = await light.waitFor(
        (e) => e.event === 'released',
        'the light member to deactivate',
        5000,
        lightFrom,
      );
      const since = joining.t - context.clocks.fromRedis(0) - 5;
      const joinedAt = (await readGroupLog(context.redis, config.key, since)).find(
        (e) => e.type === 'join' && e.member === heavy.member,
      )?.time;
      result.samples.push({
        total: activated.t - joining.t,
        fromJoin: joinedAt === undefined ? Number.NaN : activated.t - context.clocks.fromRedis(joinedAt),
        gap: activated.t - demoted.t,
      });
      if (activated.t < demoted.t) result.promotedFirst += 1;
      const back = light.mark;
      heavy.send('leave');
      await heavy.waitFor((e) => e.event === 'left', 'the heavy member to leave', 5000, from);
      await light.waitFor((e) => e.event === 'acquired', 'the light member to take over', 5000, back);
      if (round % 10 === 0 || round === rounds) {
        const last = result.samples.at(-1);
        context.progress(`preemption ${round}/${rounds}: ${last?.total.toFixed(2)} ms from joinGroup()`);
      }
    }
  } finally {
    const end = hrNow();
    await Promise.all([light.kill(), heavy.kill()]);
    result.maxConcurrency = maxConcurrency([...beliefIntervals(light, end), ...beliefIntervals(heavy, end)]);
  }
  return result;
}
