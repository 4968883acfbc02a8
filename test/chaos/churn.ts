// The churn scenario of the reliability suite (docs/RELIABILITY.md): random faults of every
// kind, one after another and sometimes two at once, with member kills and restarts, weight
// changes, and quiet periods in which the liveness rules get to judge. Every choice comes from
// the run's seeded random source.
import type {
  GroupIntervals,
  MemberProcess,
  MemberSpec,
  Scenario,
  ScenarioRun,
} from '../../packages/testkit/src/index.js';
import { forgedAnnouncement, GROUP_KEYS, incarnationOf } from './faults.js';

type ChurnAction =
  | 'kill'
  | 'weight'
  | 'delay'
  | 'blackhole'
  | 'reset'
  | 'refuse'
  | 'stop-member'
  | 'stall'
  | 'pubsub'
  | 'client-pause'
  | 'stop-redis'
  | 'restart-redis'
  | 'restart-redis-empty'
  | 'del-key'
  | 'forge'
  | 'restart-same-id';

/** How often each action is drawn, relative to the others. */
type ChurnMix = Readonly<Record<ChurnAction, number>>;

const MIX: ChurnMix = {
  kill: 4,
  weight: 3,
  delay: 3,
  blackhole: 2,
  reset: 2,
  refuse: 1,
  'stop-member': 2,
  stall: 2,
  pubsub: 2,
  'client-pause': 1,
  'stop-redis': 1,
  'restart-redis': 0.5,
  'restart-redis-empty': 0.5,
  'del-key': 0,
  forge: 0,
  'restart-same-id': 0,
};

/** The soak's mix: the fault kinds of issue 13 among the others (CI's churn keeps to MIX). */
const SOAK_MIX: ChurnMix = { ...MIX, 'del-key': 1, forge: 1, 'restart-same-id': 2 };

/**
 * Random faults, one after another and sometimes two at once, with member kills and
 * restarts, weight changes and quiet periods in which the liveness rules are checked.
 */
async function churn(run: ScenarioRun, mix: ChurnMix): Promise<void> {
  const { A, random } = run;
  const end = performance.now() + (run.durationMs ?? 20_000);
  const background = new Set<Promise<void>>();
  const busy = new Set<string>(); // members with a fault or restart under way
  let incarnation = 0;

  const freshWeight = () => {
    const taken = new Set(run.processes.map((m) => run.weightOf(m)));
    for (;;) {
      const w = random.int(1, 99);
      if (!taken.has(w)) return w;
    }
  };
  const idle = () => run.live().filter((m) => !busy.has(m.id));
  const inBackground = (work: Promise<void>) => {
    const tracked = work.finally(() => background.delete(tracked));
    background.add(tracked);
  };
  const onMember = async (member: MemberProcess, work: () => Promise<void>) => {
    busy.add(member.id);
    try {
      await work();
    } finally {
      busy.delete(member.id);
    }
  };
  const length = () => random.between(0.3, 2.5) * A;

  while (performance.now() < end) {
    await run.sleep(random.between(0.05, 0.6) * A);
    const action = random.weighted(mix);
    const candidates = idle();
    const member = candidates.length > 0 ? random.pick(candidates) : undefined;
    // Faults on one member may run alongside the next fault.
    const concurrently = random.chance(0.35);
    let work: Promise<void> | undefined;
    switch (action) {
      case 'kill': {
        if (!member || run.live().length <= 2) break;
        const next = `m${++incarnation}`;
        busy.add(next);
        inBackground(
          onMember(member, async () => {
            await run.kill(member);
            await run.sleep(random.between(0.2, 3) * A);
            await run.spawn({ id: next, weight: freshWeight() }).finally(() => busy.delete(next));
          }),
        );
        break;
      }
      case 'weight':
        if (member) work = onMember(member, () => run.setWeight(member, freshWeight()));
        break;
      case 'delay': {
        if (!member) break;
        const link = run.link(member);
        const delay = Math.round(random.between(0.05, 0.6) * A);
        const jitter = Math.round(random.between(0, 0.1) * A);
        work = onMember(member, () =>
          run.during(
            `delay ${member.id} ${delay}±${jitter} ms`,
            length(),
            () => link.setDelay(delay, jitter),
            async () => {
              link.heal();
              await run.sleep(delay + jitter); // what is already on the link keeps its schedule
            },
          ),
        );
        break;
      }
      case 'blackhole': {
        if (!member) break;
        const link = run.link(member);
        work = onMember(member, () =>
          run.during(
            `blackhole ${member.id}`,
            length(),
            () => link.blackhole(true),
            () => link.blackhole(false),
          ),
        );
        break;
      }
      case 'reset':
        if (member) {
          const link = run.link(member);
          await run.fault(`reset ${member.id}`, () => link.reset());
          await run.heal(`reset ${member.id}`);
        }
        break;
      case 'refuse': {
        if (!member) break;
        const link = run.link(member);
        work = onMember(member, () =>
          run.during(
            `reset + refuse ${member.id}`,
            length(),
            () => {
              link.refuse(true);
              link.reset();
            },
            () => link.refuse(false),
          ),
        );
        break;
      }
      case 'stop-member':
        if (member) work = onMember(member, () => run.pause(member, length()));
        break;
      case 'stall':
        if (member) work = onMember(member, () => run.stall(member, length()));
        break;
      case 'pubsub':
        await run.fault('CLIENT KILL TYPE pubsub', () => run.admin('CLIENT', 'KILL', 'TYPE', 'pubsub'));
        await run.heal('CLIENT KILL TYPE pubsub');
        break;
      case 'client-pause': {
        const ms = Math.round(random.between(0.3, 1.5) * A);
        await run.during(
          `CLIENT PAUSE ${ms}`,
          ms,
          () => run.admin('CLIENT', 'PAUSE', String(ms), 'ALL'),
          () => undefined,
        );
        break;
      }
      case 'stop-redis':
        await Promise.all(background);
        await run.during(
          'SIGSTOP redis-server',
          length(),
          () => run.redis.pause(),
          () => run.redis.resume(),
        );
        break;
      case 'restart-redis':
        await Promise.all(background);
        await run.fault('restart redis-server (data kept)');
        await run.heal('restart redis-server (data kept)', () => run.redis.restart({ keepData: true }));
        break;
      case 'del-key': {
        const kind = random.pick(GROUP_KEYS);
        await run.fault(`DEL ${kind}`, () => run.admin('DEL', run.key(kind)));
        await run.heal(`DEL ${kind}`);
        break;
      }
      case 'forge': {
        const created = await incarnationOf(run);
        await run.fault('forged announcement', () => run.announce(forgedAnnouncement(run, created)));
        await run.heal('forged announcement');
        break;
      }
      case 'restart-same-id': {
        if (!member || run.live().length <= 2) break;
        const spec = { id: member.id, weight: run.weightOf(member) };
        inBackground(
          onMember(member, async () => {
            await run.kill(member);
            await run.sleep(random.between(0, 2) * A);
            busy.add(spec.id);
            await run.spawn(spec).finally(() => busy.delete(spec.id));
          }),
        );
        break;
      }
      case 'restart-redis-empty':
        await Promise.all(background);
        await run.fault('SIGKILL redis-server, restart empty', () => run.redis.kill('SIGKILL'));
        await run.sleep(random.between(0, 2) * A);
        await run.heal('SIGKILL redis-server, restart empty', () => run.redis.restart({ keepData: false }));
        break;
    }
    if (work) {
      if (concurrently && action !== 'weight') inBackground(work);
      else await work;
    }
    // Now and then a quiet period, in which convergence and steadiness are checked.
    if (random.chance(0.15)) {
      await Promise.all(background);
      await run.untilConverged(run.settleMs + 5 * A).catch(() => run.unmet('no convergence in a quiet period'));
      await run.sleep(run.settleMs);
    }
  }
  await Promise.all(background);
}

const CHURN_MEMBERS: readonly MemberSpec[] = [
  { id: 'a', weight: 40 },
  { id: 'b', weight: 30 },
  { id: 'c', weight: 20 },
  { id: 'd', weight: 10 },
];

/**
 * Churn in a group with these parameters: with every kind of fault (`soak`), or without the
 * fault kinds of issue 13 (CI, whose churn is short: those have scenarios of their own there).
 */
export function churnScenario(params: GroupIntervals, mix: 'ci' | 'soak'): Scenario {
  return {
    name: 'churn',
    title:
      mix === 'soak'
        ? 'churn: random kills and restarts (also with the same id), weight changes, delays, blackholes, stalls, stops, Redis faults, deleted keys and forged announcements'
        : 'churn: random kills and restarts, weight changes, delays, blackholes, stalls, stops and Redis faults',
    criteria:
      'the checker’s rules only (and no TOO_MANY_ACTIVE); the group converges in every quiet period; no member process exits on its own',
    params,
    members: CHURN_MEMBERS,
    run: (run) => churn(run, mix === 'soak' ? SOAK_MIX : MIX),
  };
}
