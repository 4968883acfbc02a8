import {
  functionName,
  isSteady,
  libraryOf,
  type MemberView,
  parseReply,
  type ScriptInvocation,
  scriptInvocation,
  scriptSource,
} from '@understudy/core/internal';
import { groupKeys } from '@understudy/core/testing';
import { sleep } from '../clock.js';
import { type BenchContext, uniqueKey } from '../context.js';
import { type CommandCost, commandStats, redisCpuSeconds } from './cost.js';

/**
 * Redis cost of a renewal against group size, without n member objects: the benchmark joins
 * n members with core's own join script and renews them with core's renew script (the
 * arguments a member sends, laid out by core's script specs, with what each member's last reply
 * told it: a member whose view is current gets the steady reply), one command at a time, round
 * robin. In the same run, in windows that take turns with the renewal's, the floor script: what
 * any renewal must do (TIME, HGET of the member, ZADD of its lease, ZRANGE of the first lease),
 * sent the same way (FCALL of a function, or EVALSHA), on a copy of the group's leases.
 * Driven rather than real members: the rate and the group size are the benchmark's alone.
 */
export interface DriverPlan {
  size: number;
  /**
   * How the scripts are sent: FCALL of core's function library (what members send where the
   * server has functions), or EVALSHA of the scripts (their fallback). Default FCALL.
   */
  transport?: ScriptTransport;
  /** Renewals per second sent; every member is renewed well within A. */
  rate: number;
  heartbeatMs: number;
  activationMs: number;
  windows: number;
  windowMs: number;
}

/** The floor script's cost, measured like the renewal's: paced windows and back-to-back batches. */
export interface FloorCost {
  scriptUsBest: number;
  scriptUsMean: number;
  hotUs: number;
}

/**
 * lib.lua's rebuild per renewal under EVALSHA (`rebuildUs`: EVALSHA of lib.lua + `return 0` minus
 * `return 0`): only a renewal that runs the full script builds lib.lua's definitions (the steady
 * reply returns before them), and a function library builds them once, not per call. Results
 * without a steady share paid it on every renewal.
 */
export function libShare(cost: Pick<DriverCost, 'steadyShare' | 'plan'>, rebuildUs: number): number {
  if (sentWith(cost) === 'fcall') return 0;
  return rebuildUs * (1 - (cost.steadyShare ?? 0));
}

/** Most of the measured renewals got the steady reply: their Lua time is the steady path's, before lib.lua's code. */
export function mostlySteady(cost: Pick<DriverCost, 'steadyShare'>): boolean {
  return (cost.steadyShare ?? 0) >= 0.5;
}

/**
 * How a measured group's scripts were sent: as its plan says; a plan that says nothing is FCALL
 * (the default), except in results recorded before the function library and the steady reply
 * (no steady share), whose scripts all went as EVALSHA.
 */
export function sentWith(cost: Pick<DriverCost, 'steadyShare' | 'plan'>): ScriptTransport {
  return cost.plan.transport ?? (cost.steadyShare === undefined ? 'evalsha' : 'fcall');
}

export interface DriverCost {
  plan: DriverPlan;
  /**
   * Share of the paced renewals answered with the steady reply (the server's time alone), and
   * the floor script; both absent in results written before the steady reply (issue 15).
   */
  steadyShare?: number;
  floor?: FloorCost;
  /**
   * The same renewals sent back to back (pipelines of 1,000): Redis runs them with warm caches.
   * Members renew one at a time, spread over H, so the paced figures are the ones that count.
   */
  hot: { scriptUs: number; nested: Record<string, { perRenewal: number; usPerRenewal: number }> };
  renewalsPerSecond: number;
  scriptUsBest: number;
  scriptUsMean: number;
  redisCpuUsPerRenewal: number;
  nested: Record<string, { perRenewal: number; usPerRenewal: number }>;
}

export type ScriptTransport = 'fcall' | 'evalsha';

/**
 * The least a renewal can do: read Redis's clock, the member's record, extend its lease, look at
 * the earliest lease. KEYS: 1 members  2 leases; ARGV: 1 memberId  2 activationInterval (ms).
 */
const FLOOR_BODY = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HGET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return now`;
export const FLOOR_SCRIPT = FLOOR_BODY;
const FLOOR_FUNCTION = 'understudy_bench_floor';
const FLOOR_LIBRARY = `#!lua name=${FLOOR_FUNCTION}
redis.register_function('${FLOOR_FUNCTION}', function(KEYS, ARGV)
${FLOOR_BODY}
end)`;

const HOT_BATCH = 1000;
const HOT_BATCHES = 5;

function perRenewal(
  stats: Map<string, CommandCost>,
  calls: number,
): Record<string, { perRenewal: number; usPerRenewal: number }> {
  const nested: Record<string, { perRenewal: number; usPerRenewal: number }> = {};
  for (const [name, cost] of stats) {
    nested[name] = { perRenewal: cost.calls / Math.max(1, calls), usPerRenewal: cost.usec / Math.max(1, calls) };
  }
  return nested;
}

/** One ARGV entry of a script call, as core lays it out. */
type Argument = ScriptInvocation['argv'][number];

/**
 * Runs batches of script commands back to back; the least mean time of a batch, and its commands.
 * A batch is sent as pipelines of `chunk()` commands each (all at once by default); `replied`
 * gets each reply before the next pipeline is built.
 */
async function backToBack(
  context: BenchContext,
  transport: ScriptTransport,
  batch: (size: number) => [string, ...Argument[]][],
  chunk = HOT_BATCH,
  replied: (k: number, reply: unknown) => void = () => undefined,
): Promise<DriverCost['hot']> {
  let best: DriverCost['hot'] = { scriptUs: Number.POSITIVE_INFINITY, nested: {} };
  for (let b = 0; b < HOT_BATCHES; b++) {
    await context.redis.config('RESETSTAT');
    for (let sent = 0; sent < HOT_BATCH; sent += chunk) {
      const pipeline = context.redis.pipeline();
      for (const command of batch(Math.min(chunk, HOT_BATCH - sent))) pipeline.call(...command);
      for (const [k, [error, reply]] of ((await pipeline.exec()) ?? []).entries()) {
        if (error) throw new Error(`a back-to-back call failed: ${error.message}`, { cause: error });
        replied(k, reply);
      }
    }
    const stats = commandStats(await context.redis.info('commandstats'));
    const script = stats.get(transport) ?? { calls: 0, usec: 0 };
    for (const name of [transport, 'info', 'config|resetstat', 'config']) stats.delete(name);
    const us = script.usec / Math.max(1, script.calls);
    if (us < best.scriptUs) best = { scriptUs: us, nested: perRenewal(stats, script.calls) };
  }
  return best;
}
const TICK_MS = 5;

const shas = new Map<string, string>();

/** The command that runs core's `script` on a call's keys and arguments: FCALL or EVALSHA. */
function scriptCommand(
  transport: ScriptTransport,
  script: 'join' | 'renew',
  call: ScriptInvocation,
): [string, ...Argument[]] {
  const target = transport === 'fcall' ? functionName(libraryOf(script), script) : (shas.get(script) as string);
  return [transport, target, call.keys.length, ...call.keys, ...call.argv];
}

/** Makes the scripts callable: the library loaded (a new version beside the old), the scripts cached. */
async function prepare(context: BenchContext, transport: ScriptTransport): Promise<void> {
  if (transport === 'fcall') {
    const library = libraryOf('renew');
    await context.redis.call('FUNCTION', 'LOAD', 'REPLACE', library.source);
    await context.redis.call('FUNCTION', 'LOAD', 'REPLACE', FLOOR_LIBRARY);
    return;
  }
  for (const script of ['join', 'renew'] as const) {
    shas.set(script, (await context.redis.script('LOAD', scriptSource(`${script}.lua`))) as string);
  }
  shas.set('floor', (await context.redis.script('LOAD', FLOOR_SCRIPT)) as string);
}

/** The command that runs the floor script for member `id`: FCALL or EVALSHA, like the renewal. */
function floorCommand(
  transport: ScriptTransport,
  keys: { members: string; leases: string },
  id: string,
  activationMs: number,
): [string, ...Argument[]] {
  const target = transport === 'fcall' ? FLOOR_FUNCTION : (shas.get('floor') as string);
  return [transport, target, 2, keys.members, keys.leases, id, activationMs];
}

export async function measureDriven(context: BenchContext, plan: DriverPlan): Promise<DriverCost> {
  const { redis } = context;
  const transport = plan.transport ?? 'fcall';
  const group = uniqueKey(`driven${plan.size}`);
  const keys = groupKeys(group);
  await prepare(context, transport);
  const ids = Array.from({ length: plan.size }, (_, i) => `d${i}`);
  // What a member sends on joining and renewing.
  const member = (i: number) => ({
    channel: keys.events,
    memberId: ids[i] as string,
    weight: 1 + (i % 100),
    activeGoal: 1,
    activationInterval: plan.activationMs,
    heartbeatInterval: plan.heartbeatMs,
    preparationInterval: 0,
    host: 'bench',
    pid: process.pid,
    nonce: `bench-${i}`,
  });
  const joinCall = (i: number) => scriptInvocation('join', keys, member(i));
  // What each member's latest join or renewal reply told it (a steady reply keeps the view).
  const views: (MemberView | undefined)[] = ids.map(() => undefined);
  let steady = 0;
  let full = 0;
  // What a member sends: what it holds (it delivers at once here), and what its view says (S6).
  const renewCall = (i: number) => {
    const v = views[i];
    const holds = v !== undefined && (v.role === 'active' || v.role === 'releasing');
    return scriptInvocation('renew', keys, {
      ...member(i),
      claimedEpoch: holds ? v.epoch : 0,
      claimedSlot: holds ? v.slot : -1,
      knownIncarnation: v?.incarnation ?? 0,
      knownVersion: v?.version ?? -1,
      epochFloor: holds ? v.epoch : 0,
      leaseEnd: v && v.role !== 'gone' ? v.serverNow + v.activationInterval : 0,
    });
  };
  const renewed = (i: number, raw: unknown) => {
    const reply = parseReply('renew', raw);
    const v = views[i];
    if (!isSteady(reply)) {
      full += 1;
      views[i] = reply;
    } else if (v) {
      steady += 1;
      views[i] = { ...v, serverNow: reply.serverNow, watchDeadline: reply.watchDeadline, rejoined: false };
    } else {
      throw new Error(`member ${ids[i]} got a steady reply without a view`);
    }
  };
  // The floor extends leases in a copy of the group's leases (same members, same size), taken
  // once the members joined: in the group's own key its ZADD GT would move a member's lease past
  // what its last reply told it, and the member's next renewal would find a lease it was never
  // told of (and put it right with a second ZADD), which a real member never meets. It has a
  // round robin of its own, so that it never holds up a member's renewal.
  const floorKeys = { members: keys.members, leases: `${keys.leases}:bench-floor` };
  let floorNext = 0;
  const nextFloorCall = () => {
    const id = ids[floorNext] as string;
    floorNext = (floorNext + 1) % ids.length;
    return floorCommand(transport, floorKeys, id, plan.activationMs);
  };
  for (let i = 0; i < ids.length; i += 500) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(ids.length, i + 500); j++) {
      pipeline.call(...scriptCommand(transport, 'join', joinCall(j)));
    }
    for (const [k, [error, reply]] of ((await pipeline.exec()) ?? []).entries()) {
      if (error) throw new Error(`core's join script failed: ${error.message}`, { cause: error });
      views[i + k] = parseReply('join', reply);
    }
  }
  await redis.call('COPY', keys.leases, floorKeys.leases);
  let next = 0;
  let sent = 0;
  let failures = 0;
  /** What the paced sender sends: renewals, or (in the floor's windows) the floor script. */
  let sending: 'renew' | 'floor' = 'renew';
  const renewOne = () => {
    sent += 1;
    const fail = () => {
      failures += 1;
    };
    if (sending === 'floor') {
      redis.call(...nextFloorCall()).catch(fail);
      return;
    }
    const i = next;
    next = (next + 1) % ids.length;
    redis
      .call(...scriptCommand(transport, 'renew', renewCall(i)))
      .then((reply) => renewed(i, reply))
      .catch(fail);
  };
  let running = true;
  const pace = (async () => {
    const start = performance.now();
    while (running) {
      const due = Math.floor(((performance.now() - start) / 1000) * plan.rate);
      while (sent < due) renewOne();
      await sleep(TICK_MS);
    }
  })();
  try {
    // The start-up quarantine (A) and the first activation, then one renewal of every member
    // (each learns the grant's version with it): from then on, steady renewals.
    await sleep(plan.activationMs + 2 * plan.heartbeatMs + (plan.size / plan.rate) * 1000);
    let steadyCount = 0;
    let fullCount = 0;
    const windows: { calls: number; usec: number; cpu: number; wall: number; nested: Map<string, CommandCost> }[] = [];
    const floorWindows: { calls: number; usec: number }[] = [];
    // The renewal's windows and the floor's take turns, so that both meet the same machine.
    for (let w = 0; w < plan.windows; w++) {
      sending = 'floor';
      await sleep(20); // what is in flight drains before the statistics start afresh
      await redis.config('RESETSTAT');
      await sleep(plan.windowMs);
      floorWindows.push(commandStats(await redis.info('commandstats')).get(transport) ?? { calls: 0, usec: 0 });
      sending = 'renew';
      await sleep(20);
      steady = 0;
      full = 0;
      await redis.config('RESETSTAT');
      const cpuBefore = await redisCpuSeconds(context);
      const start = performance.now();
      await sleep(plan.windowMs);
      const stats = commandStats(await redis.info('commandstats'));
      const wall = performance.now() - start;
      const cpu = (await redisCpuSeconds(context)) - cpuBefore;
      const script = stats.get(transport) ?? { calls: 0, usec: 0 };
      for (const name of [transport, 'info', 'config|resetstat', 'config']) stats.delete(name);
      windows.push({ calls: script.calls, usec: script.usec, cpu, wall, nested: stats });
      steadyCount += steady;
      fullCount += full;
    }
    running = false;
    await pace;
    // Each member once per pipeline, its view taken from the reply before its next renewal: a
    // member sends what its last reply told it (a renewal sent on an older view finds its lease
    // longer than it was told, and puts it right with a second ZADD).
    const order: number[] = [];
    const hot = await backToBack(
      context,
      transport,
      (size) => {
        order.length = 0;
        const commands: [string, ...Argument[]][] = [];
        for (let k = 0; k < size; k++) {
          order.push(next);
          commands.push(scriptCommand(transport, 'renew', renewCall(next)));
          next = (next + 1) % ids.length;
        }
        return commands;
      },
      Math.min(HOT_BATCH, ids.length),
      (k, reply) => renewed(order[k] as number, reply),
    );
    const floorHot = await backToBack(context, transport, (size) => {
      const commands: [string, ...Argument[]][] = [];
      for (let k = 0; k < size; k++) commands.push(nextFloorCall());
      return commands;
    });
    if (failures > 0) throw new Error(`${failures} driven renewals failed or answered unexpectedly`);
    const floorCalls = floorWindows.reduce((s, w) => s + w.calls, 0);
    const calls = windows.reduce((s, w) => s + w.calls, 0);
    const nested: DriverCost['nested'] = {};
    for (const w of windows) {
      for (const [name, cost] of w.nested) {
        const entry = nested[name] ?? { perRenewal: 0, usPerRenewal: 0 };
        entry.perRenewal += cost.calls / Math.max(1, calls);
        entry.usPerRenewal += cost.usec / Math.max(1, calls);
        nested[name] = entry;
      }
    }
    return {
      plan,
      steadyShare: steadyCount / Math.max(1, steadyCount + fullCount),
      floor: {
        scriptUsBest: Math.min(...floorWindows.filter((w) => w.calls > 0).map((w) => w.usec / w.calls)),
        scriptUsMean: floorWindows.reduce((s, w) => s + w.usec, 0) / Math.max(1, floorCalls),
        hotUs: floorHot.scriptUs,
      },
      hot,
      renewalsPerSecond: (calls / windows.reduce((s, w) => s + w.wall, 0)) * 1000,
      scriptUsBest: Math.min(...windows.filter((w) => w.calls > 0).map((w) => w.usec / w.calls)),
      scriptUsMean: windows.reduce((s, w) => s + w.usec, 0) / Math.max(1, calls),
      redisCpuUsPerRenewal: (windows.reduce((s, w) => s + w.cpu, 0) * 1e6) / Math.max(1, calls),
      nested,
    };
  } finally {
    running = false;
    await pace;
    await sleep(100); // renewals still in flight would recreate the group after the flush
    await redis.flushall();
  }
}
