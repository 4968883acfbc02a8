import {
  functionName,
  libraryOf,
  luaSource,
  parseReply,
  type ScriptInvocation,
  scriptInvocation,
} from '@understudy/core/internal';
import { groupKeys } from '@understudy/core/testing';
import { sleep } from '../clock.js';
import { type BenchContext, uniqueKey } from '../context.js';
import { type CommandCost, commandStats, redisCpuSeconds } from './cost.js';

/**
 * Redis cost of a renewal against group size, without n member objects: the benchmark joins
 * n members with core's own join script and renews them with core's renew script (the
 * arguments a member sends, laid out by core's script specs), one command at a time, round robin.
 * Real members cannot be used for 10,000 in one group: every member of a process parses
 * every announcement of its group, so joining them is quadratic (see the report).
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

export interface DriverCost {
  plan: DriverPlan;
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

/** Runs batches of renewals back to back; the least mean time of a batch, and its commands. */
async function backToBack(
  context: BenchContext,
  transport: ScriptTransport,
  batch: () => ScriptInvocation[],
): Promise<DriverCost['hot']> {
  let best: DriverCost['hot'] = { scriptUs: Number.POSITIVE_INFINITY, nested: {} };
  for (let b = 0; b < HOT_BATCHES; b++) {
    const pipeline = context.redis.pipeline();
    for (const call of batch()) pipeline.call(...scriptCommand(transport, 'renew', call));
    await context.redis.config('RESETSTAT');
    await pipeline.exec();
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
    return;
  }
  for (const script of ['join', 'renew'] as const) {
    shas.set(script, (await context.redis.script('LOAD', luaSource(`${script}.lua`))) as string);
  }
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
  // A member that knows nothing yet: no version or epoch to hold the server to (S6).
  const renewCall = (i: number) =>
    scriptInvocation('renew', keys, {
      ...member(i),
      claimedEpoch: 0,
      claimedSlot: -1,
      knownIncarnation: 0,
      knownVersion: -1,
      epochFloor: 0,
      leaseEnd: 0,
    });
  for (let i = 0; i < ids.length; i += 500) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(ids.length, i + 500); j++) {
      pipeline.call(...scriptCommand(transport, 'join', joinCall(j)));
    }
    for (const [error, reply] of (await pipeline.exec()) ?? []) {
      if (error) throw new Error(`core's join script failed: ${error.message}`, { cause: error });
      parseReply('join', reply);
    }
  }
  let next = 0;
  let sent = 0;
  let failures = 0;
  const renewOne = () => {
    const i = next;
    next = (next + 1) % ids.length;
    sent += 1;
    redis
      .call(...scriptCommand(transport, 'renew', renewCall(i)))
      .then((reply) => parseReply('renew', reply))
      .catch(() => {
        failures += 1;
      });
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
    // The start-up quarantine (A), the first activation, then steady renewals.
    await sleep(plan.activationMs + 2 * plan.heartbeatMs);
    const windows: { calls: number; usec: number; cpu: number; wall: number; nested: Map<string, CommandCost> }[] = [];
    for (let w = 0; w < plan.windows; w++) {
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
    }
    running = false;
    await pace;
    const hot = await backToBack(context, transport, () => {
      const calls: ScriptInvocation[] = [];
      for (let k = 0; k < HOT_BATCH; k++) {
        const i = next;
        next = (next + 1) % ids.length;
        calls.push(renewCall(i));
      }
      return calls;
    });
    if (failures > 0) throw new Error(`${failures} driven renewals failed or answered unexpectedly`);
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
