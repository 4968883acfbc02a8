// The group feed (DESIGN §10): publish → every member's onMessage, and how the new active
// resumes after the old one is killed mid-stream. Every member is a process of its own.
import { publish } from '@understudy/core';
import type { Redis } from 'ioredis';
import { hrNow, sleep } from '../clock.js';
import type { BenchContext } from '../context.js';
import { Child } from '../processes.js';
import type { FeedMemberConfig, FeedMemberEvent } from '../queue/feed-member.js';

const MEMBER = new URL('../queue/feed-member.ts', import.meta.url).pathname;

export interface FeedSettings {
  members: number;
  messages: number;
  /** Mean gap between two publishes of the latency run, ms (uniform, ± half). */
  gapMs: number;
  failovers: number;
  /** Gap between two publishes while the active is killed, ms. */
  streamGapMs: number;
}

export interface FeedFailover {
  /** SIGKILL of the active → the new active's onActivate, ms. */
  activateMs: number | undefined;
  /** SIGKILL → the new active's first onMessage with `active: true` (a replayed message), ms. */
  firstActedMs: number | undefined;
  /** SIGKILL → the new active acts on the first message published after the kill, ms. */
  resumedMs: number | undefined;
  /** Messages published in the round that both the killed and the new active acted on. */
  actedTwice: number;
  /** Messages published in the round that no member acted on. */
  neverActed: number;
  published: number;
}

export interface FeedResults {
  settings: FeedSettings;
  /** publish() called → onMessage at one member, ms, every (message, member). */
  deliveries: number[];
  /** publish() called → onMessage at the last member to get it, ms, per message. */
  toEvery: number[];
  /** (message, member) pairs that never arrived. */
  missing: number;
  failovers: FeedFailover[];
  problems: string[];
}

class FeedMember extends Child<FeedMemberEvent> {
  constructor(readonly config: FeedMemberConfig) {
    super(MEMBER, config);
  }

  joined(): Promise<FeedMemberEvent> {
    return this.waitFor((e) => e.event === 'joined' || e.event === 'error', `${this.config.memberId} to join`, 60_000);
  }

  /** Whether it believes it is active (its last activation was not followed by a deactivation). */
  get active(): boolean {
    const last = this.events.findLast((e) => e.event === 'acquired' || e.event === 'released');
    return last?.event === 'acquired' && this.running;
  }

  acted(): FeedMemberEvent[] {
    return this.events.filter((e) => e.event === 'message' && e.active);
  }
}

let groups = 0;

async function startMember(
  context: BenchContext,
  group: string,
  memberId: string,
  weight: number,
): Promise<FeedMember> {
  const member = new FeedMember({
    redisUrl: context.server.url,
    group,
    memberId,
    weight,
    activationMs: context.lease.activationMs,
    heartbeatMs: context.lease.heartbeatMs,
  });
  const joined = await member.joined();
  if (joined.event === 'error') throw new Error(`${memberId} could not join ${group}: ${joined.message}`);
  return member;
}

/** Waits until exactly one member believes it is active; returns it. */
async function activeMember(members: FeedMember[], timeoutMs: number): Promise<FeedMember> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const active = members.filter((m) => m.active);
    if (active.length === 1 && active[0]) return active[0];
    if (performance.now() > deadline) throw new Error(`${active.length} members active after ${timeoutMs} ms`);
    await sleep(10);
  }
}

async function latencyRun(
  context: BenchContext,
  publisher: Redis,
  group: string,
  members: FeedMember[],
  settings: FeedSettings,
  results: FeedResults,
): Promise<void> {
  const marks = members.map((m) => m.events.length);
  const sent = new Map<string, number>();
  for (let i = 0; i < settings.messages; i++) {
    const t = hrNow();
    sent.set(await publish({ redis: publisher, group }, { t }), t);
    await sleep(settings.gapMs * (0.5 + Math.random()));
  }
  const arrived = () =>
    members.map(
      (m, i) => new Map(m.events.slice(marks[i]).flatMap((e) => (e.event === 'message' && e.id ? [[e.id, e.t]] : []))),
    );
  const deadline = performance.now() + 10_000;
  let got = arrived();
  while (got.some((g) => [...sent.keys()].some((id) => !g.has(id))) && performance.now() < deadline) {
    await sleep(20);
    got = arrived();
  }
  for (const [id, t] of sent) {
    const times = got.map((g) => g.get(id));
    for (const at of times) {
      if (at === undefined) results.missing += 1;
      else results.deliveries.push(at - t);
    }
    if (times.every((at) => at !== undefined)) results.toEvery.push(Math.max(...(times as number[])) - t);
  }
  context.progress(`feed: ${settings.messages} messages to ${members.length} members`);
}

/** Publishes every `gapMs` until stopped; the ids and stamps of what it published. */
function stream(publisher: Redis, group: string, gapMs: number) {
  const sent = new Map<string, number>();
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const t = hrNow();
      sent.set(await publish({ redis: publisher, group }, { t }), t);
      await sleep(gapMs);
    }
  })();
  return {
    sent,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

async function failoverRound(
  context: BenchContext,
  publisher: Redis,
  group: string,
  members: FeedMember[],
  settings: FeedSettings,
): Promise<{ round: FeedFailover; killed: FeedMember }> {
  const A = context.lease.activationMs;
  const old = await activeMember(members, A + 5000);
  const marks = new Map(members.map((m) => [m, m.events.length]));
  const publishing = stream(publisher, group, settings.streamGapMs);
  try {
    // A random phase of the active's renewals.
    await sleep(300 + Math.random() * 700);
    const killed = await old.kill('SIGKILL');
    const others = members.filter((m) => m !== old);
    const acquired = await Promise.any(
      others.map((m) =>
        m
          .waitFor((e) => e.event === 'acquired', 'a standby to take over', A + 5000, marks.get(m))
          .then((e) => ({ member: m, at: e.t })),
      ),
    ).catch(() => undefined);
    const next = acquired?.member;
    const resumed = next
      ? await next
          .waitFor(
            (e) => e.event === 'message' && e.active === true && (e.sent ?? 0) > killed,
            'the new active to act on a message published after the kill',
            A + 10_000,
            marks.get(next),
          )
          .catch(() => undefined)
      : undefined;
    await sleep(300);
    await publishing.stop();
    // What was published last reaches the new active.
    await sleep(500);
    const actedBy = (m: FeedMember) =>
      new Set(
        m.events
          .slice(marks.get(m))
          .filter((e) => e.event === 'message' && e.active)
          .map((e) => e.id),
      );
    const before = actedBy(old);
    const after = next ? actedBy(next) : new Set<string | undefined>();
    const first = next?.events.slice(marks.get(next)).find((e) => e.event === 'message' && e.active && e.t > killed);
    const ids = [...publishing.sent.keys()];
    return {
      killed: old,
      round: {
        activateMs: acquired ? acquired.at - killed : undefined,
        firstActedMs: first ? first.t - killed : undefined,
        resumedMs: resumed ? resumed.t - killed : undefined,
        actedTwice: ids.filter((id) => before.has(id) && after.has(id)).length,
        neverActed: ids.filter((id) => !before.has(id) && !after.has(id)).length,
        published: ids.length,
      },
    };
  } finally {
    await publishing.stop();
  }
}

export async function runFeed(context: BenchContext, publisher: Redis, settings: FeedSettings): Promise<FeedResults> {
  const results: FeedResults = { settings, deliveries: [], toEvery: [], missing: 0, failovers: [], problems: [] };
  groups += 1;
  const group = `bench-feed-${process.pid}-${groups}`;
  const members: FeedMember[] = [];
  try {
    for (let i = 0; i < settings.members; i++) members.push(await startMember(context, group, `m${i}`, 100 - i));
    await activeMember(members, context.lease.activationMs + 5000);
    await latencyRun(context, publisher, group, members, settings, results);
    for (let r = 0; r < settings.failovers; r++) {
      const { round, killed } = await failoverRound(context, publisher, group, members, settings);
      results.failovers.push(round);
      context.progress(
        `feed failover ${r + 1}/${settings.failovers}: acts on new messages ${round.resumedMs === undefined ? 'never' : `${round.resumedMs.toFixed(0)} ms`} after the kill; ` +
          `${round.actedTwice} acted on twice, ${round.neverActed} never`,
      );
      // The replacement ranks last, so that it does not preempt the new active.
      members.splice(members.indexOf(killed), 1);
      members.push(await startMember(context, group, `m${settings.members + r}`, 10 - r));
    }
  } catch (error) {
    results.problems.push(error instanceof Error ? error.message : String(error));
    context.progress(`feed: ${results.problems.at(-1)}`);
  } finally {
    await Promise.all(members.map((m) => m.kill('SIGKILL')));
  }
  return results;
}
