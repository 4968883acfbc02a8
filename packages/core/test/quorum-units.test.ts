import { describe, expect, it } from 'vitest';
import { combineSnapshots } from '../src/monitor/combine.js';
import type { Transition } from '../src/monitor/history.js';
import type { GroupSnapshot, MonitoredMember } from '../src/monitor/observe.js';
import { validateQuorumSources } from '../src/options.js';
import {
  chooseSlot,
  compareQuorumRank,
  joinStamp,
  proposeEpoch,
  quorumDeadline,
  quorumSize,
  releaseAsked,
  tallyGrants,
} from '../src/quorum.js';
import { DEDUP_WINDOW_MS, mergeTransitions } from '../src/quorum-admin.js';

// Quorum mode's rules (DESIGN §9) as pure functions, without Redis.

describe('quorum mode: choosing K', () => {
  it('a majority of K is ⌊K/2⌋ + 1', () => {
    expect([3, 5, 7].map(quorumSize)).toEqual([2, 3, 4]);
  });

  it.each([
    [0, /odd number .* fewer than 3/],
    [2, /even number/],
    [4, /even number/],
    [6, /even number/],
    [8, /even number/],
    [9, /more than 7/],
  ])('refuses an array of %i deployments with a ConfigError naming the count', (k, rule) => {
    const urls = Array.from({ length: k }, (_, i) => `redis://127.0.0.1:${7000 + i}`);
    expect(() => validateQuorumSources(urls)).toThrowError(
      expect.objectContaining({
        code: 'CONFIG',
        field: 'redis',
        value: `an array of ${k}`,
        message: expect.stringMatching(rule),
      }),
    );
  });

  it('refuses a single-element array: one deployment is passed alone', () => {
    expect(() => validateQuorumSources(['redis://127.0.0.1:7000'])).toThrowError(/one deployment is not quorum mode/);
  });

  it('accepts 3, 5 or 7 deployments given as URLs or options, and names the bad element otherwise', () => {
    expect(() => validateQuorumSources(['redis://a:1', { host: 'b', port: 2 }, 'rediss://c:3'])).not.toThrow();
    expect(() => validateQuorumSources(['redis://a:1', 'http://b:2', 'redis://c:3'])).toThrowError(
      expect.objectContaining({ field: 'redis[1]' }),
    );
  });
});

describe('quorum mode: the deadline is the Q-th latest per-server deadline', () => {
  it('takes the Q-th latest of the servers that granted a lease', () => {
    expect(quorumDeadline([100, 300, 200], 2)).toBe(200);
    expect(quorumDeadline([100, undefined, 200], 2)).toBe(100);
    expect(quorumDeadline([500, 100, 400, 300, 200], 3)).toBe(300);
  });

  it('is -Infinity when fewer than Q servers granted: the member may not act at all', () => {
    expect(quorumDeadline([100, undefined, undefined], 2)).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('quorum mode: a member holds a slot only when Q servers show the same slot and epoch', () => {
  it('Q servers agreeing hold it; a server showing anything else is a stray to release', () => {
    expect(
      tallyGrants(
        [
          { slot: 0, epoch: 7 },
          { slot: 0, epoch: 7 },
          { slot: 1, epoch: 7 },
        ],
        2,
      ),
    ).toEqual({
      held: { slot: 0, epoch: 7 },
      strays: [2],
    });
  });

  it('the same slot with different epochs, or the same epoch on different slots, holds nothing', () => {
    expect(tallyGrants([{ slot: 0, epoch: 7 }, { slot: 0, epoch: 8 }, undefined], 2)).toEqual({
      held: undefined,
      strays: [0, 1],
    });
    expect(tallyGrants([{ slot: 0, epoch: 7 }, { slot: 1, epoch: 7 }, undefined], 2).held).toBeUndefined();
  });

  it('a partial grant (fewer than Q acceptances) is released everywhere, never kept', () => {
    expect(tallyGrants([{ slot: 2, epoch: 9 }, undefined, undefined, undefined, { slot: 2, epoch: 9 }], 3)).toEqual({
      held: undefined,
      strays: [0, 4],
    });
  });
});

describe('quorum mode: epochs', () => {
  it('proposes above every floor seen and every server TIME in µs', () => {
    expect(proposeEpoch([10, 1_700_000_000_000_500, 3], [1_700_000_000_000_000, 1_700_000_000_000_200])).toBe(
      1_700_000_000_000_501,
    );
    expect(proposeEpoch([], [1_700_000_000_000_000])).toBe(1_700_000_000_000_001);
  });

  it('refuses to propose an epoch beyond 2^53 − 1', () => {
    expect(() => proposeEpoch([Number.MAX_SAFE_INTEGER], [])).toThrow(RangeError);
  });
});

describe('quorum mode: slots, release requests, join stamp, ranking', () => {
  it('proposes the lowest slot that Q servers report free', () => {
    expect(chooseSlot([[0, 1], [1], [0, 1]], 2)).toBe(0);
    expect(chooseSlot([[1], [0], [1]], 2)).toBe(1);
    expect(chooseSlot([[0], [1], undefined], 2)).toBeUndefined();
  });

  it('takes a release request into account only when Q servers ask for that very grant', () => {
    const held = { slot: 0, epoch: 7 };
    expect(releaseAsked([held, undefined, held], held, 2)).toBe(true);
    expect(releaseAsked([held, undefined, undefined], held, 2)).toBe(false);
    expect(releaseAsked([held, { slot: 0, epoch: 6 }, undefined], held, 2)).toBe(false);
  });

  it('the join stamp is the largest server TIME among the first Q replies', () => {
    expect(joinStamp([500, 300, 900], 2)).toBe(500);
    expect(joinStamp([500], 2)).toBeUndefined();
  });

  it('ranks by weight, then holding a slot, then the join stamp, then the id', () => {
    const ranked = [
      { id: 'd', weight: 5, holding: false, stamp: 1 },
      { id: 'c', weight: 10, holding: false, stamp: 2 },
      { id: 'b', weight: 10, holding: false, stamp: 2 },
      { id: 'a', weight: 10, holding: false, stamp: 3 },
      { id: 'e', weight: 10, holding: true, stamp: 9 },
    ].sort(compareQuorumRank);
    expect(ranked.map((m) => m.id)).toEqual(['e', 'b', 'c', 'a', 'd']);
  });
});

function member(id: string, fields: Partial<MonitoredMember> = {}): MonitoredMember {
  return {
    id,
    weight: 10,
    rank: 1,
    state: 'standby',
    epoch: undefined,
    leaseRemainingMs: 1000,
    slot: undefined,
    host: 'h',
    pid: 1,
    ...fields,
  };
}

function server(members: MonitoredMember[], fields: Partial<GroupSnapshot> = {}): GroupSnapshot {
  const ranked = members.map((m, i) => ({ ...m, rank: i + 1 }));
  return {
    group: 'g',
    activeCount: ranked.filter((m) => m.state === 'active' || m.state === 'releasing').length,
    activeGoal: 1,
    activationInterval: 1000,
    heartbeatInterval: 100,
    version: 1,
    epoch: 0,
    quarantineRemainingMs: 0,
    members: ranked,
    serverTime: 1,
    ...fields,
  };
}

const active = (epoch: number, slot = 0) => ({ state: 'active' as const, epoch, slot });

describe('quorum mode: the monitor counts a member active only when Q servers show the same slot and epoch', () => {
  it('each server granting its own epoch shows nobody active', () => {
    const combined = combineSnapshots(
      [server([member('a', active(1))]), server([member('a', active(2))]), server([member('a', active(3))])],
      2,
    );
    expect(combined?.activeCount).toBe(0);
    expect(combined?.members.map((m) => [m.id, m.state])).toEqual([['a', 'standby']]);
  });

  it('two of three servers agreeing show the member active with that slot and epoch', () => {
    const combined = combineSnapshots(
      [server([member('a', active(7))]), undefined, server([member('a', active(7))])],
      2,
    );
    expect(combined?.members).toEqual([
      expect.objectContaining({ id: 'a', state: 'active', epoch: 7, slot: 0, rank: 1 }),
    ]);
    expect(combined?.activeCount).toBe(1);
  });

  it('a minority asking for the slot back changes nothing; Q asking shows it releasing', () => {
    const releasing = { ...active(7), state: 'releasing' as const };
    const one = combineSnapshots(
      [server([member('a', releasing)]), server([member('a', active(7))]), server([member('a', active(7))])],
      2,
    );
    expect(one?.members[0]?.state).toBe('active');
    const two = combineSnapshots(
      [server([member('a', releasing)]), server([member('a', releasing)]), server([member('a', active(7))])],
      2,
    );
    expect(two?.members[0]?.state).toBe('releasing');
  });

  it('leaves out members only a minority lists, and reports nothing with fewer than Q servers', () => {
    const combined = combineSnapshots(
      [server([member('a'), member('lonely')]), server([member('a')]), server([member('a')])],
      2,
    );
    expect(combined?.members.map((m) => m.id)).toEqual(['a']);
    expect(combineSnapshots([server([member('a')]), undefined, undefined], 2)).toBeUndefined();
  });

  it('the figures are what a majority vouches for: the Q-th latest lease, the Q-th largest epoch, the common goal', () => {
    const combined = combineSnapshots(
      [
        server([member('a', { leaseRemainingMs: 900 })], { epoch: 30, activeGoal: 2, quarantineRemainingMs: 0 }),
        server([member('a', { leaseRemainingMs: 100 })], { epoch: 10, activeGoal: 2, quarantineRemainingMs: 500 }),
        server([member('a', { leaseRemainingMs: 500 })], { epoch: 20, activeGoal: 3, quarantineRemainingMs: 800 }),
      ],
      2,
    );
    expect(combined).toMatchObject({ epoch: 20, activeGoal: 2, quarantineRemainingMs: 500 });
    expect(combined?.members[0]?.leaseRemainingMs).toBe(500);
  });

  it('ranks the combined members by weight, then holding, then their rank on a majority', () => {
    const a = member('a', { weight: 10 });
    const b = member('b', { weight: 10, ...active(4) });
    const c = member('c', { weight: 20 });
    const combined = combineSnapshots([server([c, b, a]), server([c, b, a]), server([c, a, b])], 2);
    expect(combined?.members.map((m) => `${m.rank}:${m.id}`)).toEqual(['1:c', '2:b', '3:a']);
  });
});

describe("quorum mode: the servers' logs merged into one history", () => {
  const join = (time: number): Transition => ({ id: `${time}-0`, time, type: 'join', member: 'm1', weight: 5 });

  it('copies of one transition are one entry listing the servers by index, whichever logged first', () => {
    const merged = mergeTransitions([[join(1002)], [join(1001)], [join(1000)]]);
    expect(merged).toHaveLength(1);
    expect(merged[0]?.servers).toEqual([0, 1, 2]);
    expect(merged[0]?.time).toBe(1000);
  });

  it('copies further apart than the window, or from a server not read, are not merged with it', () => {
    const merged = mergeTransitions([[join(1000)], undefined, [join(1001 + DEDUP_WINDOW_MS)]]);
    expect(merged.map((t) => t.servers)).toEqual([[0], [2]]);
  });
});
