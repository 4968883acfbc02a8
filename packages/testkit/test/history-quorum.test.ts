import { describe, expect, it } from 'vitest';
import { type CheckResult, checkHistory, type GroupParams, type HistoryEvent } from '../src/index.js';

// Hand-made histories for what quorum mode (DESIGN §9) asks of the checker: the model's clock
// assumption (S1 (a)), each server's epoch floor (rule 18), rule 11 per server, and rules 1
// and 2 whatever servers granted the epochs. Times in ms from an arbitrary origin.
const A = 3000;
const H = 1000;
const LEASE = 2900;
const params: GroupParams = { activeGoal: 1, activationIntervalMs: A, heartbeatIntervalMs: H };
const ORIGIN = 5_000_000_000_000n;
const at = (ms: number) => ORIGIN + BigInt(Math.round(ms * 1e6));

const E1 = '9007199254740992';
const E2 = '9007199254740993';
const E3 = '9007199254740994';

const join_ = (ms: number, member: string, weight: number, clockRate?: number): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'join',
  weight,
  ...(clockRate === undefined ? {} : { clockRate }),
});
const renew = (ms: number, member: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'renewal',
  outcome: 'ok',
  deadline: at(ms + LEASE),
});
const renewEvery = (member: string, fromMs: number, toMs: number): HistoryEvent[] =>
  Array.from({ length: Math.floor((toMs - fromMs) / H) + 1 }, (_, i) => renew(fromMs + i * H, member));
const activate = (ms: number, member: string, epoch: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'activate',
  epoch,
});
const deactivate = (ms: number, member: string, epoch: string, reason: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'deactivate',
  epoch,
  reason,
});
const killed = (ms: number, member: string): HistoryEvent => ({ t: at(ms), member, type: 'killed' });
/** What server `server` of the quorum holds: slots by index. */
const serverState = (ms: number, server: string, slots: [number, string, string][], goal = 1): HistoryEvent => ({
  t: at(ms),
  member: 'redis',
  type: 'redis-state',
  server,
  goal,
  slots: slots.map(([index, member, epoch]) => ({ index, member, epoch, state: 'active', recorded: true })),
});

function explain(result: CheckResult): string {
  return result.violations.map((v) => v.format()).join('\n\n');
}
const rulesOf = (result: CheckResult) => [...new Set(result.violations.map((v) => v.rule))].sort((x, y) => x - y);

/** a is active with E1 and never stops believing until 9900; b activates E2 at 3500 and stops at 3600. */
function twoBelievers(aRate?: number, bRate?: number): HistoryEvent[] {
  return [
    join_(0, 'a', 100, aRate),
    join_(10, 'b', 50, bRate),
    ...renewEvery('a', 0, 7000),
    ...renewEvery('b', 10, 7010),
    activate(3000, 'a', E1),
    activate(3500, 'b', E2),
    deactivate(3600, 'b', E2, 'preempted'),
  ];
}

/** a, active, is SIGKILLed at 5000 (its last deadline 6900); b activates after it, at 7005. */
function cleanFailover(aRate?: number, bRate?: number): HistoryEvent[] {
  return [
    join_(0, 'a', 100, aRate),
    join_(10, 'b', 50, bRate),
    ...renewEvery('a', 0, 4000),
    ...renewEvery('b', 10, 12_010),
    activate(3000, 'a', E1),
    killed(5000, 'a'),
    activate(7005, 'b', E2),
  ];
}

describe('member clock drift against ρ (DESIGN S1 (a))', () => {
  it('marks two believers as outside the model when a member’s clock drifts beyond ρ, and passes', () => {
    const result = checkHistory(twoBelievers(0.97), params);
    expect(rulesOf(result)).toContain(1);
    const rule1 = result.violations.find((v) => v.rule === 1);
    expect(rule1?.outsideModel).toMatch(/a's clock runs at 0\.97 \(drift 3 % beyond ρ = 1 %\)/);
    expect(rule1?.format()).toContain('outside the model, expected');
    expect(result.breaches.map((b) => [b.member, b.clockRate])).toEqual([['a', 0.97]]);
    expect(result.ok, explain(result)).toBe(true);
  });

  it('keeps the same two believers a violation when every clock drifts within ρ', () => {
    for (const [aRate, bRate] of [
      [0.991, 1.009],
      [0.99, 1.01], // exactly at the bound: still inside the model
      [undefined, undefined],
    ]) {
      const result = checkHistory(twoBelievers(aRate, bRate), params);
      expect(result.breaches).toEqual([]);
      expect(rulesOf(result)).toContain(1);
      expect(result.violations.every((v) => v.outsideModel === undefined)).toBe(true);
      expect(result.ok).toBe(false);
    }
  });

  it('shows no violation for a clean failover with clocks drifting within ρ either way', () => {
    const result = checkHistory(cleanFailover(0.991, 1.009), params);
    expect(result.violations, explain(result)).toEqual([]);
    expect(result.breaches).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('honours the group’s ρ: 2 % drift is inside a model of ρ = 0.05 and outside one of 0.01', () => {
    expect(checkHistory(twoBelievers(0.98), { ...params, clockDrift: 0.05 }).ok).toBe(false);
    expect(checkHistory(twoBelievers(0.98), { ...params, clockDrift: 0.01 }).ok).toBe(true);
  });

  it('never excuses a reused epoch or a stale sink write: fencing holds beyond the assumptions', () => {
    const reused = checkHistory(
      [
        ...cleanFailover(0.9),
        activate(7005, 'b', E1), // replaces b's E2 activation below
      ].filter((e) => !(e.type === 'activate' && e.member === 'b' && e.epoch === E2)),
      params,
    );
    expect(rulesOf(reused)).toEqual([2]);
    expect(reused.violations[0]?.outsideModel).toBeUndefined();
    expect(reused.ok).toBe(false);
    const stale = checkHistory(
      [
        ...twoBelievers(0.9),
        { t: at(3550), member: 'b', type: 'sink-accept', epoch: E2 },
        { t: at(3700), member: 'a', type: 'sink-accept', epoch: E1 },
      ],
      params,
    );
    expect(rulesOf(stale)).toContain(3);
    expect(stale.ok).toBe(false);
  });
});

describe('epochs whatever the server (rules 2 and 18)', () => {
  it('accepts grants above each server’s floor, a partial grant below another server’s floor, and a re-claim after a restart', () => {
    const history = [
      ...cleanFailover(),
      // a's E1 on servers 0 and 1; server 2 unreachable (a minority).
      serverState(2990, '0', [[0, 'a', E1]]),
      serverState(2991, '1', [[0, 'a', E1]]),
      // server 1 restarts empty, a re-claims its slot and epoch there.
      serverState(4000, '1', []),
      serverState(4100, '1', [[0, 'a', E1]]),
      // server 2, which never saw E1, accepts c's lower proposal: a partial grant, released at once.
      serverState(4200, '2', [[0, 'c', '9007199254740900']]),
      serverState(4300, '2', []),
      // b's E2 on all three.
      serverState(7000, '0', [[0, 'b', E2]]),
      serverState(7001, '1', [[0, 'b', E2]]),
      serverState(7002, '2', [[0, 'b', E2]]),
    ];
    const result = checkHistory(history, params);
    expect(result.violations, explain(result)).toEqual([]);
  });

  it('reports a server granting an epoch not above its floor to another member (rule 18)', () => {
    const history = [
      ...cleanFailover(),
      serverState(2990, '0', [[0, 'a', E1]]),
      serverState(2991, '1', [[0, 'a', E1]]),
      serverState(5100, '1', []),
      // Server 1 forgot nothing (no restart) yet grants c an epoch below a's.
      serverState(5200, '1', [[0, 'c', '9007199254740900']]),
      serverState(5300, '1', []),
      serverState(5400, '1', [[0, 'c', '9007199254740900']]),
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([18]);
    expect(result.violations).toHaveLength(1);
    expect(result.violations[0]?.message).toMatch(
      /server 1 granted slot 0 to c with epoch 9007199254740900, not above its floor 9007199254740992 \(shown at \+2991\.0 ms\)/,
    );
  });

  it('reports a server that grants the epoch it holds to a second member, even one another server floored higher', () => {
    const history = [
      ...cleanFailover(),
      serverState(2990, '0', [[0, 'a', E1]]),
      serverState(7000, '0', [[0, 'b', E2]]),
      serverState(7100, '2', [[0, 'b', E3]]), // server 2's own floor: nothing before; fine
      serverState(8000, '0', [[0, 'c', E2]]), // the same epoch again, to c: not above server 0's floor
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([18]);
    expect(result.violations[0]?.message).toMatch(/server 0 granted slot 0 to c with epoch 9007199254740993/);
  });

  it('reports activations whose epochs go down though each came from a different majority (rule 2)', () => {
    const history = [
      join_(0, 'a', 100),
      join_(10, 'b', 50),
      ...renewEvery('a', 0, 4000),
      ...renewEvery('b', 10, 12_010),
      activate(3000, 'a', E2), // granted by servers 0 and 1
      killed(5000, 'a'),
      activate(7005, 'b', E1), // by servers 1 and 2: server 1 must have refused E1
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([2]);
  });
});

describe('never more than N believers, and rule 11 per server', () => {
  it('reports the triangle: three members with N = 2, each on a different pair of servers, all believing (rule 1)', () => {
    const history = [
      join_(0, 'a', 30),
      join_(1, 'b', 20),
      join_(2, 'c', 10),
      ...renewEvery('a', 0, 8000),
      ...renewEvery('b', 1, 8001),
      ...renewEvery('c', 2, 8002),
      activate(3000, 'a', E1),
      activate(3001, 'b', E2),
      activate(3002, 'c', E3),
      killed(8500, 'a'),
      killed(8500, 'b'),
      killed(8500, 'c'),
    ];
    const result = checkHistory(history, { ...params, activeGoal: 2 });
    const rule1 = result.violations.find((v) => v.rule === 1);
    expect(rule1?.message, explain(result)).toMatch(
      /3 members believed they were active at once \(a, b, c\) with activeGoal 2/,
    );
    expect(result.ok).toBe(false);
  });

  it('judges each server’s snapshots on their own: one episode per server, named, however they interleave (rule 11)', () => {
    const history = [
      ...cleanFailover(),
      serverState(3000, '0', [
        [0, 'a', E1],
        [1, 'x', E2],
      ]),
      serverState(3010, '1', [[0, 'a', E1]]),
      serverState(3020, '0', [
        [0, 'a', E1],
        [1, 'x', E2],
      ]),
      serverState(3030, '1', [[0, 'a', E1]]),
      serverState(3040, '0', [[0, 'a', E1]]),
    ];
    const result = checkHistory(history, params);
    const rule11 = result.violations.filter((v) => v.rule === 11);
    expect(rule11, explain(result)).toHaveLength(1);
    expect(rule11[0]?.message).toMatch(/^server 0: Redis held 2 slots .* with goal 1.* \(for 20\.0 ms\)$/);
  });
});
