// The quorum family: one group over K = 3 independent servers (DESIGN §9), each behind a chaos
// proxy that makes its link a WAN link, beside the same group on a Sentinel set behind the same
// links and a redlock loop over the same three servers. Crash failover, graceful handover, and
// the loss of one region (a server SIGKILLed) while the group runs.
import { type ChaosProxy, type RedisQuorum, startChaosProxy, startRedisQuorum } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { ContenderConfig, ContenderEvent, ContenderKind } from '../contenders/types.js';
import { uniqueKey } from '../context.js';
import { beginRun, type FamilyRun } from '../family.js';
import { beliefIntervals } from '../history.js';
import { Contender } from '../processes.js';
import { type Interval, maxConcurrency } from '../stats.js';
import { type HaTopology, startSentinelTopology } from '../topology.js';
import { epochsGoingBack, waitForPromotion } from './ha.js';

/** K, and Q = ⌊K/2⌋ + 1. */
export const QUORUM_K = 3;
export const QUORUM_Q = 2;

/**
 * A and H of every quorum setup: A = 2000 ms is about 67 round trips at 30 ms (and 20 at
 * 100 ms), well above the 10 × RTT the docs ask of a single primary; H = A / 5 as elsewhere.
 */
export const QUORUM_LEASE = Object.freeze({ activationMs: 2000, heartbeatMs: 400 });

/** Counts of the quorum family. */
export interface QuorumSettings {
  /** Round trips of the links (ms); the first is the main one, the others run understudy alone. */
  rttsMs: number[];
  crashRounds: number;
  leaveRounds: number;
  regionLossRounds: number;
  /** Counts of the other round trips and of the peers (Sentinel, redlock). */
  sideCrashRounds: number;
  sideLeaveRounds: number;
  sideRegionLossRounds: number;
}

export const QUORUM_QUICK: QuorumSettings = Object.freeze({
  rttsMs: [30, 100],
  crashRounds: 3,
  leaveRounds: 5,
  regionLossRounds: 1,
  sideCrashRounds: 2,
  sideLeaveRounds: 3,
  sideRegionLossRounds: 1,
});

export const QUORUM_FULL: QuorumSettings = Object.freeze({
  rttsMs: [30, 100],
  crashRounds: 12,
  leaveRounds: 20,
  regionLossRounds: 3,
  sideCrashRounds: 6,
  sideLeaveRounds: 10,
  sideRegionLossRounds: 2,
});

export type QuorumSetupKind = 'quorum' | 'sentinel' | 'redlock';

export interface QuorumCrash {
  /** SIGKILL of the holder's process → the standby's activate / acquire callback, ms. */
  total: number;
  /** The callback past the Q-th latest of the dead holder's per-server lease deadlines (Sentinel: the master's), ms. */
  pastDeadline?: number;
}

export interface RegionLoss {
  /** The holder when the server died kept believing, without a break, to the end of the window. */
  kept: boolean;
  /** Deactivate / lost callbacks of every member in the window. */
  deactivations: number;
  /** Time within the window when no member believed it was active, ms. */
  withoutActiveMs: number;
  /** SIGKILL of the server → the next activation of any member, if the holder lost its belief, ms. */
  activeAgainMs?: number;
  /** The window: from the SIGKILL to an active for 2·H after at least 3·A, ms. */
  windowMs: number;
}

export interface QuorumSetupResult {
  kind: QuorumSetupKind;
  label: string;
  rttMs: number;
  crash: QuorumCrash[];
  /** `leave` sent to the holder → the standby's activate / acquire callback, ms. */
  leave: number[];
  regionLoss: RegionLoss[];
  /** Most members believing at once over the whole setup (the goal is 1). */
  maxConcurrency: number;
  /** understudy: activations whose epoch was not above an activation that had ended before. */
  epochsBack?: number;
  problems: string[];
}

export interface QuorumResults {
  run: FamilyRun;
  lease: typeof QUORUM_LEASE;
  settings: QuorumSettings;
  /** Jitter of each direction of a link, as a fraction of its one-way delay. */
  jitter: number;
  setups: QuorumSetupResult[];
  failures: string[];
}

/** Each direction of a link: RTT / 2 ± a sixth of that (a 30 ms link is 15 ± 2.5 ms each way). */
const JITTER = 1 / 6;

/** Where a setup's group lives, and how a region is lost and healed. */
interface Backend {
  config: Omit<ContenderConfig, 'kind'>;
  /** The holder's lease deadlines (hrNow ms) on every server that answers, and which latest counts. */
  deadlines(kind: ContenderKind, key: string, member: string): Promise<number[]>;
  q: number;
  /** SIGKILL of one region's server (Sentinel: the master); returns hrNow() before the signal. */
  loseRegion(round: number): Promise<number>;
  heal(): Promise<void>;
  stop(): Promise<void>;
}

function probe(host: string, port: number): Redis {
  const client = new Redis({
    host,
    port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 250,
    connectTimeout: 250,
    retryStrategy: () => 50,
    connectionName: 'bench-probe',
  });
  client.on('error', () => undefined);
  return client;
}

/** A lease deadline on one server, mapped onto hrNow(): understudy's leases zset, or redlock's key PTTL. */
async function deadlineOn(
  client: Redis,
  kind: ContenderKind,
  key: string,
  member: string,
): Promise<number | undefined> {
  try {
    const clocks = await mapClocks(client, 3);
    if (kind === 'redlock') {
      const pttl = await client.pttl(key);
      if (pttl < 0) return undefined;
      return hrNow() + pttl;
    }
    const score = await client.zscore(`understudy:{${key}}:leases`, member);
    return score === null ? undefined : clocks.fromRedis(Number(score));
  } catch {
    return undefined;
  }
}

function setLinks(links: readonly ChaosProxy[], rttMs: number): void {
  for (const link of links) link.setDelay(rttMs / 2, (rttMs / 2) * JITTER);
}

async function quorumBackend(rttMs: number): Promise<Backend> {
  const quorum: RedisQuorum = await startRedisQuorum({ count: QUORUM_K, proxied: true });
  setLinks(quorum.links, rttMs);
  const probes = quorum.servers.map((s) => probe(s.host, s.port));
  let lost: number | undefined;
  return {
    config: { key: '', redisUrl: '', redisUrls: quorum.urls, etcdHosts: [], ...QUORUM_LEASE, slots: 1 },
    q: QUORUM_Q,
    async deadlines(kind, key, member) {
      const all = await Promise.all(
        probes.map((p, i) => (quorum.server(i).running ? deadlineOn(p, kind, key, member) : undefined)),
      );
      return all.filter((d): d is number => d !== undefined);
    },
    async loseRegion(round) {
      lost = round % QUORUM_K;
      const t = hrNow();
      await quorum.kill(lost);
      return t;
    },
    async heal() {
      // The region comes back empty; the members write their state to it again.
      if (lost !== undefined) await quorum.restartEmpty(lost);
      lost = undefined;
    },
    async stop() {
      for (const p of probes) p.disconnect();
      await quorum.stop();
    },
  };
}

async function sentinelBackend(rttMs: number): Promise<Backend> {
  const topology: HaTopology = await startSentinelTopology();
  const links: ChaosProxy[] = [];
  try {
    const first = await topology.master('');
    const servers = [first, ...(await topology.successors(first))];
    const natMap: Record<string, { host: string; port: number }> = {};
    for (const server of servers) {
      const link = await startChaosProxy({ target: server });
      links.push(link);
      natMap[`${server.host}:${server.port}`] = { host: link.host, port: link.port };
    }
    setLinks(links, rttMs);
    const base = topology.contender;
    if (base.kind !== 'sentinel') throw new Error('a Sentinel topology without Sentinels');
    let lost: { old: (typeof servers)[number]; successors: typeof servers } | undefined;
    return {
      config: {
        key: '',
        redisUrl: '',
        topology: { ...base, natMap },
        etcdHosts: [],
        ...QUORUM_LEASE,
        slots: 1,
      },
      q: 1,
      async deadlines(kind, key, member) {
        const master = await topology.master(key);
        const d = await deadlineOn(topology.probe(master).client, kind, key, member);
        return d === undefined ? [] : [d];
      },
      async loseRegion() {
        const old = await topology.master('');
        const successors = await topology.successors(old);
        lost = { old, successors };
        const t = hrNow();
        await old.kill('SIGKILL');
        return t;
      },
      async heal() {
        if (!lost) return;
        const promoted = await waitForPromotion(topology, lost.successors);
        await topology.heal(lost.old, promoted.server);
        lost = undefined;
      },
      async stop() {
        await Promise.all(links.map((l) => l.close()));
        await topology.stop();
      },
    };
  } catch (error) {
    await Promise.all(links.map((l) => l.close()));
    await topology.stop();
    throw error;
  }
}

function isHolding(contender: Contender): boolean {
  const last = contender.events.findLast((e) => ['acquired', 'released', 'lost', 'joining'].includes(e.event));
  return last?.event === 'acquired';
}

async function waitForHolder(members: readonly Contender[], timeoutMs: number): Promise<Contender> {
  const deadline = hrNow() + timeoutMs;
  for (;;) {
    const holder = members.find(isHolding);
    if (holder) return holder;
    if (hrNow() > deadline) throw new Error(`no member active after ${timeoutMs} ms`);
    await sleep(10);
  }
}

function firstAcquire(
  standbys: readonly Contender[],
  marks: Map<Contender, number>,
  timeoutMs: number,
): Promise<ContenderEvent> {
  return Promise.any(
    standbys.map((s) => s.waitFor((e) => e.event === 'acquired', 'a takeover', timeoutMs, marks.get(s) ?? 0)),
  ).catch(() => {
    throw new Error(`no standby took over within ${timeoutMs} ms`);
  });
}

/** Time in [from, to] covered by no interval. */
function uncovered(intervals: readonly Interval[], from: number, to: number): number {
  const clipped = intervals
    .map((i) => ({ start: Math.max(i.start, from), end: Math.min(i.end, to) }))
    .filter((i) => i.end > i.start)
    .sort((a, b) => a.start - b.start);
  let covered = 0;
  let reach = from;
  for (const i of clipped) {
    if (i.end <= reach) continue;
    covered += i.end - Math.max(i.start, reach);
    reach = i.end;
  }
  return to - from - covered;
}

const LABELS: Record<QuorumSetupKind, string> = {
  quorum: 'understudy, quorum mode (K = 3)',
  sentinel: 'understudy on Sentinel (master in the lost region)',
  redlock: 'redlock loop over the 3 servers',
};

/** Crash failovers, handovers and region losses of one setup; every process it starts is stopped. */
async function runSetup(
  kind: QuorumSetupKind,
  rttMs: number,
  counts: { crash: number; leave: number; regionLoss: number },
  progress: (line: string) => void,
): Promise<QuorumSetupResult> {
  const { activationMs: A, heartbeatMs: H } = QUORUM_LEASE;
  const label = LABELS[kind];
  const say = (line: string) => progress(`quorum: ${label}, RTT ${rttMs} ms: ${line}`);
  const result: QuorumSetupResult = {
    kind,
    label,
    rttMs,
    crash: [],
    leave: [],
    regionLoss: [],
    maxConcurrency: 0,
    problems: [],
  };
  const backend = kind === 'sentinel' ? await sentinelBackend(rttMs) : await quorumBackend(rttMs);
  const contenderKind: ContenderKind = kind === 'redlock' ? 'redlock' : 'understudy';
  const config: ContenderConfig = { ...backend.config, kind: contenderKind, key: uniqueKey(`quorum-${kind}`) };
  const all: Contender[] = [];
  const killedAt = new Map<Contender, number>();
  const takeoverMs = 3 * A + 20_000;
  try {
    const needed = 2 + counts.crash;
    say(`starting ${needed} processes`);
    for (let i = 0; i < needed; i += 4) {
      const batch = Array.from({ length: Math.min(4, needed - i) }, (_, j) => new Contender(config, `${kind}${i + j}`));
      all.push(...batch);
      await Promise.all(batch.map((c) => c.ready()));
    }
    const spares = all.slice(2);
    const members = all.slice(0, 2);
    for (const m of members) await m.join();
    await waitForHolder(members, takeoverMs);

    for (let round = 1; round <= counts.crash; round++) {
      await sleep(H * (1 + Math.random()));
      const victim = await waitForHolder(members, takeoverMs);
      const standbys = members.filter((m) => m !== victim);
      const marks = new Map(standbys.map((s) => [s, s.mark]));
      const killed = await victim.kill('SIGKILL');
      killedAt.set(victim, killed);
      const deadlines = (await backend.deadlines(contenderKind, config.key, victim.member)).sort((a, b) => b - a);
      const event = await firstAcquire(standbys, marks, takeoverMs);
      const qth = deadlines[backend.q - 1];
      const sample: QuorumCrash = { total: event.t - killed };
      if (qth !== undefined) sample.pastDeadline = event.t - qth;
      else result.problems.push(`crash ${round}: fewer than ${backend.q} lease deadlines read after the kill`);
      result.crash.push(sample);
      members.splice(members.indexOf(victim), 1);
      const spare = spares.shift();
      if (!spare) throw new Error('ran out of spare processes');
      await spare.join();
      members.push(spare);
      say(
        `crash ${round}/${counts.crash}: ${sample.total.toFixed(0)} ms after the kill` +
          (sample.pastDeadline === undefined ? '' : `, ${sample.pastDeadline.toFixed(0)} ms past the Q-th deadline`),
      );
    }

    for (let round = 1; round <= counts.leave; round++) {
      await sleep(H * (0.5 + Math.random()));
      const leaver = await waitForHolder(members, takeoverMs);
      const standbys = members.filter((m) => m !== leaver);
      const marks = new Map(standbys.map((s) => [s, s.mark]));
      const from = leaver.mark;
      leaver.send('leave');
      const leaving = await leaver.waitFor((e) => e.event === 'leaving', 'leaving', 5000, from);
      const event = await firstAcquire(standbys, marks, takeoverMs);
      await leaver.waitFor((e) => e.event === 'left', `${leaver.member} to leave`, 10_000, from);
      result.leave.push(event.t - leaving.t);
      await leaver.join();
    }
    if (counts.leave) say(`${counts.leave} handovers`);

    for (let round = 1; round <= counts.regionLoss; round++) {
      const holder = await waitForHolder(members, takeoverMs);
      await sleep(A + H * Math.random());
      const marks = members.map((m) => m.mark);
      const lostAt = await backend.loseRegion(round);
      await sleep(3 * A);
      // Sentinel: the lease lapses before the Sentinels agree; wait for the group on the new master.
      await waitForHolder(members, 30_000);
      await sleep(2 * H);
      const end = hrNow();
      const after = members.flatMap((m, i) => m.events.slice(marks[i]).filter((e) => e.t <= end));
      const drops = after.filter((e) => e.event === 'released' || e.event === 'lost');
      const kept = !holder.events
        .slice(marks[members.indexOf(holder)])
        .some((e) => e.event === 'released' || e.event === 'lost');
      const acquired = after.filter((e) => e.event === 'acquired');
      const intervals = members.flatMap((m) => beliefIntervals(m, end));
      const loss: RegionLoss = {
        kept,
        deactivations: drops.length,
        withoutActiveMs: uncovered(intervals, lostAt, end),
        windowMs: end - lostAt,
      };
      if (!kept && acquired.length) loss.activeAgainMs = Math.min(...acquired.map((e) => e.t)) - lostAt;
      result.regionLoss.push(loss);
      say(
        `region loss ${round}/${counts.regionLoss}: ${kept ? 'active kept' : 'active LOST'}, ${drops.length} deactivations, ` +
          `${loss.withoutActiveMs.toFixed(0)} ms without an active` +
          (loss.activeAgainMs === undefined ? '' : `, active again ${loss.activeAgainMs.toFixed(0)} ms after the kill`),
      );
      await backend.heal();
      // The region back (empty): let the members write their state to it before the next round.
      await sleep(2 * A);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.problems.push(`stopped early: ${message}`);
    say(`stopped early: ${message}`);
  } finally {
    const end = hrNow();
    await Promise.all(all.map((c) => c.kill('SIGKILL')));
    const intervals = all.flatMap((c) => beliefIntervals(c, killedAt.get(c) ?? end));
    result.maxConcurrency = maxConcurrency(intervals);
    if (contenderKind === 'understudy') result.epochsBack = epochsGoingBack(all);
    for (const c of all) {
      for (const e of c.events) if (e.event === 'error') result.problems.push(`${c.label}: ${e.message}`);
    }
    await backend.stop();
  }
  return result;
}

export async function runQuorumSuite(
  settings: QuorumSettings,
  run: { command: string; revision: string },
  progress: (line: string) => void,
): Promise<QuorumResults> {
  const record = beginRun(run);
  const results: QuorumResults = {
    run: record.run,
    lease: QUORUM_LEASE,
    settings,
    jitter: JITTER,
    setups: [],
    failures: [],
  };
  const [main, ...others] = settings.rttsMs;
  const side = {
    crash: settings.sideCrashRounds,
    leave: settings.sideLeaveRounds,
    regionLoss: settings.sideRegionLossRounds,
  };
  const plan: { kind: QuorumSetupKind; rtt: number; counts: typeof side }[] = [
    {
      kind: 'quorum',
      rtt: main ?? 30,
      counts: { crash: settings.crashRounds, leave: settings.leaveRounds, regionLoss: settings.regionLossRounds },
    },
    ...others.map((rtt) => ({ kind: 'quorum' as const, rtt, counts: side })),
    { kind: 'sentinel', rtt: main ?? 30, counts: side },
    { kind: 'redlock', rtt: main ?? 30, counts: side },
  ];
  for (const p of plan) {
    progress(
      `── quorum: ${LABELS[p.kind]}, RTT ${p.rtt} ms: ${p.counts.crash} crashes, ${p.counts.leave} handovers, ${p.counts.regionLoss} region losses`,
    );
    try {
      results.setups.push(await runSetup(p.kind, p.rtt, p.counts, progress));
    } catch (error) {
      const message = `${LABELS[p.kind]} at RTT ${p.rtt} ms failed: ${error instanceof Error ? error.message : String(error)}`;
      results.failures.push(message);
      progress(message);
    }
  }
  record.finish();
  return results;
}
