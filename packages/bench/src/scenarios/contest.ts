import { type GroupSnapshot, type Monitor, monitorGroup } from '@understudy/core';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { ContenderConfig, ContenderEvent } from '../contenders/types.js';
import type { BenchContext } from '../context.js';
import { uniqueKey } from '../context.js';
import { beliefIntervals, readGroupLog } from '../history.js';
import { Contender } from '../processes.js';
import { type Interval, maxConcurrency, overlapMs } from '../stats.js';
import type { System } from '../systems.js';

export interface FailoverSample {
  /** SIGKILL of the holder → the standby's acquire / activate callback, ms. */
  total: number;
  /** The callback's time past the dead holder's lease deadline, ms (hrtime clocks). */
  overshoot: number;
  /** understudy: Redis time of the activation (log stream) past the lease deadline (leases zset), ms. */
  overshootRedis?: number;
  /** understudy: the monitor's first change event past the lease deadline, ms. */
  monitorLapse?: number;
}

export interface HandoverSample {
  /** The holder is told to leave → the standby's acquire / activate callback, ms. */
  total: number;
  /** understudy: the leave's Redis time (log stream) → the monitor's change event, ms. */
  monitor?: number;
}

export interface ContestResult {
  system: System;
  failover: FailoverSample[];
  handover: HandoverSample[];
  /** Every holder's belief interval, from every round. */
  intervals: Interval[];
  maxConcurrency: number;
  /** Time (ms) during which more than `slots` holders believed they held. */
  overlapMs: number;
  /** Lease TTL the system really granted (etcd rounds up to whole seconds and its minimum). */
  grantedTtlMs?: number;
  problems: string[];
}

const SPAWN_BATCH = 4;

interface MonitorLog {
  monitor: Monitor;
  changes: { t: number; snapshot: GroupSnapshot }[];
}

/** Crash failovers, then graceful handovers, on one system; every process it starts is stopped. */
export async function runContest(
  context: BenchContext,
  system: System,
  rounds: { failover: number; handover: number },
): Promise<ContestResult> {
  const { lease, redis } = context;
  const config: ContenderConfig = {
    kind: system.kind,
    key: uniqueKey(system.kind),
    redisUrl: context.server.url,
    etcdHosts: context.etcdHosts ?? [],
    activationMs: lease.activationMs,
    heartbeatMs: lease.heartbeatMs,
    slots: system.slots,
  };
  const all: Contender[] = [];
  const killedAt = new Map<Contender, number>();
  const result: ContestResult = {
    system,
    failover: [],
    handover: [],
    intervals: [],
    maxConcurrency: 0,
    overlapMs: 0,
    problems: [],
  };
  let monitor: MonitorLog | undefined;
  const say = (line: string) => context.progress(`${system.label}: ${line}`);
  try {
    // Every process the run needs, started (modules loaded) before anything is timed.
    const needed = system.processes + rounds.failover;
    say(`starting ${needed} processes`);
    for (let i = 0; i < needed; i += SPAWN_BATCH) {
      const batch = Array.from(
        { length: Math.min(SPAWN_BATCH, needed - i) },
        (_, j) => new Contender(config, `${system.kind}${i + j}`),
      );
      all.push(...batch);
      await Promise.all(batch.map((c) => c.ready()));
    }
    const spares = all.slice(system.processes);
    const members = all.slice(0, system.processes);
    if (system.kind === 'understudy') {
      const m = await monitorGroup({ redis: context.server.url, group: config.key });
      monitor = { monitor: m, changes: [] };
      const log = monitor;
      m.on('change', (snapshot) => log.changes.push({ t: hrNow(), snapshot }));
    }
    for (const member of members) await member.join();
    await waitForHolders(members, system.slots, 3 * lease.activationMs + 5000);
    try {
      for (let round = 1; round <= rounds.failover; round++) {
        await sleep(lease.heartbeatMs * (1 + Math.random()));
        const holders = members.filter(isHolding);
        const victim = holders[Math.floor(Math.random() * holders.length)];
        if (!victim) throw new Error('no holder to kill');
        const standbys = members.filter((m) => m !== victim && !isHolding(m));
        const marks = new Map(standbys.map((s) => [s, s.mark]));
        context.clocks = await mapClocks(redis);
        const killed = await victim.kill('SIGKILL');
        killedAt.set(victim, killed);
        const deadline = await system.deadline({
          redis,
          clocks: context.clocks,
          config,
          member: victim.member,
          events: victim.events,
        });
        const { contender: successor, event } = await firstAcquire(
          standbys,
          marks,
          2 * lease.activationMs + 5000,
          'a standby to take over',
        );
        const sample: FailoverSample = {
          total: event.t - killed,
          overshoot: deadline === undefined ? Number.NaN : event.t - deadline,
        };
        if (deadline === undefined) result.problems.push(`round ${round}: no lease deadline found after the kill`);
        if (system.kind === 'understudy' && deadline !== undefined) {
          // `deadline` is the leases zset score mapped to hrtime: map it back to compare Redis times.
          const activation = await loggedAt(context, config.key, 'activate', successor.member, killed);
          if (activation !== undefined) sample.overshootRedis = activation - toRedis(context, deadline);
          if (monitor) {
            // Wait for it: the monitor may report after the standby's callback.
            const gone = (s: GroupSnapshot) => !s.members.some((m) => m.id === victim.member);
            const notice = await waitForChange(monitor, killed, gone);
            if (notice !== undefined) sample.monitorLapse = notice - deadline;
            else result.problems.push(`failover ${round}: the monitor reported no change within 2 s`);
          }
        }
        result.failover.push(sample);
        members.splice(members.indexOf(victim), 1);
        const spare = spares.shift();
        if (!spare) throw new Error('ran out of spare processes');
        await spare.join();
        members.push(spare);
        say(
          `failover ${round}/${rounds.failover}: ${sample.total.toFixed(1)} ms after the kill, ` +
            `${sample.overshoot.toFixed(1)} ms past the lease deadline`,
        );
      }

      for (let round = 1; round <= rounds.handover; round++) {
        await sleep(lease.heartbeatMs * (0.5 + Math.random()));
        const holders = members.filter(isHolding);
        const leaver = holders[Math.floor(Math.random() * holders.length)];
        if (!leaver) throw new Error('no holder to leave');
        const standbys = members.filter((m) => m !== leaver && !isHolding(m));
        const marks = new Map(standbys.map((s) => [s, s.mark]));
        const from = leaver.mark;
        context.clocks = await mapClocks(redis);
        const leftMember = leaver.member;
        leaver.send('leave');
        const leaving = await leaver.waitFor((e) => e.event === 'leaving', 'leaving', 5000, from);
        const { event } = await firstAcquire(standbys, marks, 2 * lease.activationMs + 5000, 'a standby to take over');
        await leaver.waitFor((e) => e.event === 'left', `${leftMember} to leave`, 10_000, from);
        const sample: HandoverSample = { total: event.t - leaving.t };
        if (monitor) {
          const leftAt = await loggedAt(context, config.key, 'leave', leftMember, leaving.t);
          const notice = await waitForChange(monitor, leaving.t, (s) => !s.members.some((m) => m.id === leftMember));
          if (leftAt !== undefined && notice !== undefined) sample.monitor = notice - context.clocks.fromRedis(leftAt);
          else result.problems.push(`handover ${round}: no monitor change (or no leave in the log) within 2 s`);
        }
        result.handover.push(sample);
        await leaver.join();
        if (round % 10 === 0 || round === rounds.handover) {
          say(`handover ${round}/${rounds.handover}: ${sample.total.toFixed(2)} ms`);
        }
      }
    } catch (error) {
      // A round that went wrong ends this system's run; what was measured so far is kept.
      const message = error instanceof Error ? error.message : String(error);
      result.problems.push(`stopped early: ${message}`);
      say(`stopped early: ${message}`);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.problems.push(`could not start: ${message}`);
    say(`could not start: ${message}`);
  } finally {
    const end = hrNow();
    await monitor?.monitor.close();
    await Promise.all(all.map((c) => c.kill('SIGKILL')));
    for (const contender of all) result.intervals.push(...beliefIntervals(contender, killedAt.get(contender) ?? end));
    result.maxConcurrency = maxConcurrency(result.intervals);
    result.overlapMs = overlapMs(result.intervals, system.slots);
    const ttl = all.flatMap((c) => c.events).find((e) => e.event === 'lease' && typeof e.ttl === 'number')?.ttl;
    if (typeof ttl === 'number') result.grantedTtlMs = ttl * 1000;
    for (const c of all) {
      for (const e of c.events) if (e.event === 'error') result.problems.push(`${c.label}: ${e.message}`);
    }
  }
  return result;
}

function isHolding(contender: Contender): boolean {
  const last = contender.events.findLast((e) => ['acquired', 'released', 'lost', 'joining'].includes(e.event));
  return last?.event === 'acquired';
}

async function waitForHolders(members: Contender[], slots: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (members.filter(isHolding).length < Math.min(slots, members.length)) {
    if (performance.now() > deadline) throw new Error(`fewer than ${slots} holders after ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** The first `acquired` event of any of the standbys after their marks. */
function firstAcquire(
  standbys: Contender[],
  marks: Map<Contender, number>,
  timeoutMs: number,
  what: string,
): Promise<{ contender: Contender; event: ContenderEvent }> {
  return Promise.any(
    standbys.map((s) =>
      s
        .waitFor((e) => e.event === 'acquired', what, timeoutMs, marks.get(s) ?? 0)
        .then((event) => ({ contender: s, event })),
    ),
  ).catch(() => {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  });
}

/** Redis ms of an hrNow() instant. */
function toRedis(context: BenchContext, hr: number): number {
  return hr - context.clocks.fromRedis(0);
}

/** Redis time (ms) of the first log entry of this type for this member, written after `sinceHr`. */
async function loggedAt(
  context: BenchContext,
  group: string,
  type: string,
  member: string,
  sinceHr: number,
): Promise<number | undefined> {
  const entries = await readGroupLog(context.redis, group, toRedis(context, sinceHr) - 5);
  return entries.find((e) => e.type === type && e.member === member)?.time;
}

async function waitForChange(
  log: MonitorLog,
  after: number,
  match: (s: GroupSnapshot) => boolean,
  timeoutMs = 2000,
): Promise<number | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = log.changes.find((c) => c.t > after && match(c.snapshot));
    if (found) return found.t;
    if (performance.now() > deadline) return undefined;
    await sleep(5);
  }
}
