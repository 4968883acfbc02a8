import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type CheckResult,
  checkHistory,
  type GroupParams,
  type HistoryEvent,
  HistoryRecorder,
  isSafetyViolation,
  readHistory,
  testkitRoot,
} from '../src/index.js';

// Hand-made histories on the hrtime clock, written in ms from an arbitrary origin.
const A = 3000;
const H = 1000;
const LEASE = 2900; // A·(1−ρ) − δ: the member's safe deadline after an ok renewal
const params: GroupParams = { activeGoal: 1, activationIntervalMs: A, heartbeatIntervalMs: H };
const ORIGIN = 5_000_000_000_000n;
const at = (ms: number) => ORIGIN + BigInt(Math.round(ms * 1e6));

// Epochs straddle 2^53, where Number would make them equal.
const E1 = '9007199254740992';
const E2 = '9007199254740993';
const E3 = '9007199254740994';

const join_ = (ms: number, member: string, weight = 100): HistoryEvent => ({ t: at(ms), member, type: 'join', weight });
const renew = (ms: number, member: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'renewal',
  outcome: 'ok',
  deadline: at(ms + LEASE),
});
const renewLost = (ms: number, member: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'renewal',
  outcome: 'unknown',
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
const fault = (ms: number, description: string): HistoryEvent => ({
  t: at(ms),
  member: 'harness',
  type: 'fault',
  fault: description,
});
const heal = (ms: number, description: string): HistoryEvent => ({
  t: at(ms),
  member: 'harness',
  type: 'heal',
  fault: description,
});
const observe = (ms: number, member: string, version: number): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'observe',
  version,
});
const sinkAccept = (ms: number, member: string, epoch: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'sink-accept',
  epoch,
});

/** a (weight 100) and b (weight 50) join; a activates once the start-up interval has passed. */
function aActiveBStandby(untilMs: number): HistoryEvent[] {
  return [
    join_(0, 'a', 100),
    observe(0, 'a', 1),
    join_(10, 'b', 50),
    observe(10, 'b', 2),
    observe(15, 'a', 2),
    ...renewEvery('b', 10, untilMs),
    activate(3000, 'a', E1),
    observe(3000, 'a', 3),
    observe(3005, 'b', 3),
  ];
}

/** a is SIGKILLed at 5000; its last renewal (4000) ran out at 6900; Redis frees its slot at 7000. */
function failover({ bActivatesAt = 7005, bEpoch = E2, until = 12_010 } = {}): HistoryEvent[] {
  return [
    ...aActiveBStandby(until),
    ...renewEvery('a', 0, 4000),
    killed(5000, 'a'),
    activate(bActivatesAt, 'b', bEpoch),
    observe(bActivatesAt, 'b', 4),
  ];
}

/**
 * a, active, loses Redis (a blackhole) at 4500; its last ok renewal (4000) ran out at 6900;
 * Redis frees its slot at 7000 and b activates at 7010; a's deactivate is recorded late, at 7200.
 * After the heal, a renews again as a standby. Equal weights: b keeps its place (no failback).
 */
function selfDemotion(): HistoryEvent[] {
  return [
    join_(0, 'a', 100),
    join_(10, 'b', 100),
    ...renewEvery('a', 0, 4000), // last deadline: 6900
    ...renewEvery('b', 10, 14_010),
    activate(3000, 'a', E1),
    observe(3000, 'a', 3),
    observe(3005, 'b', 3),
    fault(4500, 'blackhole a'),
    renewLost(5000, 'a'),
    renewLost(6000, 'a'),
    activate(7010, 'b', E2), // Redis freed a's slot at 7000
    observe(7010, 'b', 4),
    deactivate(7200, 'a', E1, 'lease-lost'), // late, but a's belief ended at 6900
    heal(8000, 'blackhole a'),
    ...renewEvery('a', 8100, 14_100), // ok again, as a standby: this must not revive a's belief
    observe(8100, 'a', 5),
    observe(8105, 'b', 5),
  ];
}

function rulesOf(result: CheckResult): number[] {
  return result.violations.map((v) => v.rule).sort();
}

/** The violation of `rule`. */
function violationOf(result: CheckResult, rule: number) {
  return result.violations.find((v) => v.rule === rule);
}

/** The safety rules broken: histories that stop early leave the liveness rules unsettled. */
function safetyRulesOf(result: CheckResult): number[] {
  return result.violations
    .filter(isSafetyViolation)
    .map((v) => v.rule)
    .sort();
}

function explain(result: CheckResult): string {
  return result.violations.map((v) => v.format()).join('\n\n');
}

describe('checkHistory accepts', () => {
  it('a clean failover: the standby activates after the killed active’s deadline', () => {
    const result = checkHistory([...failover(), sinkAccept(3500, 'a', E1), sinkAccept(7500, 'b', E2)], params);
    expect(result.ok, explain(result)).toBe(true);
  });

  it('a self-demotion whose deactivate comes late, when the lease had run out before the new activation', () => {
    const result = checkHistory(selfDemotion(), params);
    expect(result.ok, explain(result)).toBe(true);
  });

  it('an old active that renews again after its deadline passed, with no new activate, as not active', () => {
    const result = checkHistory(
      selfDemotion().filter((e) => e.type !== 'deactivate'),
      params,
    );
    expect(result.ok, explain(result)).toBe(true);
  });

  it('two concurrent activations recorded out of epoch order when their requests overlapped', () => {
    const history = [
      join_(0, 'a'),
      join_(10, 'b'),
      ...renewEvery('a', 0, 9000),
      ...renewEvery('b', 10, 9010),
      { ...activate(3000, 'b', E2), requestSentAt: at(2990) },
      { ...activate(3004, 'a', E1), requestSentAt: at(2995) }, // sent before b's activation was recorded
    ];
    const result = checkHistory(history, { ...params, activeGoal: 2 });
    expect(result.ok, explain(result)).toBe(true);
  });
});

describe('checkHistory reports', () => {
  it('two members active at once with activeGoal 1 (rule 1)', () => {
    const history = [
      ...aActiveBStandby(9000),
      ...renewEvery('a', 0, 9000),
      activate(3500, 'b', E2),
      deactivate(3600, 'b', E2, 'preempted'),
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([1]);
    expect(result.violations[0]?.message).toMatch(/2 members .* \(a, b\) with activeGoal 1, .* for 100\.0 ms/);
  });

  it('the double active in a window of the two activations and the renewals that kept them valid', () => {
    const history = [
      ...aActiveBStandby(9000),
      ...renewEvery('a', 0, 9000),
      activate(3500, 'b', E2),
      deactivate(3600, 'b', E2, 'preempted'),
    ];
    const [doubleActive] = checkHistory(history, params).violations;
    expect(doubleActive?.window).toEqual([
      activate(3000, 'a', E1),
      renew(3000, 'a'),
      renew(3010, 'b'),
      activate(3500, 'b', E2),
    ]);
    const text = doubleActive?.format() ?? '';
    expect(text).toMatch(/^rule 1 /);
    expect(text).toMatch(/\+0\.0 ms\s+a\s+activate epoch=9007199254740992/);
    expect(text).toMatch(/\+500\.0 ms\s+b\s+activate epoch=9007199254740993/);
    expect(text).toContain('deadline=+2900.0 ms');
    expect(text).not.toContain('join');
    expect(text).not.toContain('observe');
    expect(text.split('\n')).toHaveLength(2 + 4);
  });

  it('the same handover when the old active’s lease still ran at the new activation (rule 1)', () => {
    const history = [
      join_(0, 'a', 100),
      join_(10, 'b', 100),
      ...renewEvery('a', 0, 4000),
      renew(6500, 'a'), // its deadline, 9400, outlives b's activation at 7010
      ...renewEvery('b', 10, 14_010),
      activate(3000, 'a', E1),
      fault(4500, 'delay a'),
      activate(7010, 'b', E2),
      deactivate(7200, 'a', E1, 'lease-lost'),
      heal(8000, 'delay a'),
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([1]);
  });

  it('an activation with a smaller epoch than an earlier one (rule 2)', () => {
    const result = checkHistory(failover({ bEpoch: '9007199254740991' }), params);
    expect(rulesOf(result), explain(result)).toEqual([2]);
    expect(result.violations[0]?.message).toContain('greater epoch 9007199254740992');
    expect(result.violations[0]?.window).toEqual([activate(3000, 'a', E1), activate(7005, 'b', '9007199254740991')]);
  });

  it('two concurrent activations out of epoch order when one request left after the other was recorded (rule 2)', () => {
    const history = [
      join_(0, 'a'),
      join_(10, 'b'),
      ...renewEvery('a', 0, 9000),
      ...renewEvery('b', 10, 9010),
      { ...activate(3000, 'b', E2), requestSentAt: at(2990) },
      { ...activate(3004, 'a', E1), requestSentAt: at(3002) },
    ];
    const result = checkHistory(history, { ...params, activeGoal: 2 });
    expect(rulesOf(result), explain(result)).toEqual([2]);
  });

  it('a sink accepting work stamped with an older epoch than work it accepted before (rule 3)', () => {
    const history = [...failover(), sinkAccept(3500, 'a', E1), sinkAccept(7500, 'b', E2), sinkAccept(7600, 'a', E1)];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([3]);
    expect(result.violations[0]?.window).toEqual([sinkAccept(7500, 'b', E2), sinkAccept(7600, 'a', E1)]);
  });

  it('a late convergence, with the time it took (rule 4; the late activation is also unsettled: rule 5)', () => {
    const result = checkHistory(failover({ bActivatesAt: 10_000 }), params);
    expect(rulesOf(result), explain(result)).toEqual([4, 5]);
    const late = result.violations.find((v) => v.rule === 4);
    expect(late?.message).toMatch(/after kill of a .* converged only after 5000\.0 ms/);
    expect(late?.window).toEqual([killed(5000, 'a'), activate(10_000, 'b', E2)]);
  });

  it('nothing late when the slack covers the delay', () => {
    const result = checkHistory(failover({ bActivatesAt: 10_000 }), params, { slackMs: 1100 });
    expect(result.ok, explain(result)).toBe(true);
  });

  it('flapping in a steady period (rule 5; the gap it leaves also breaks convergence: rule 4)', () => {
    const history = [
      ...failover({ until: 20_010 }),
      deactivate(15_000, 'b', E2, 'lease-lost'),
      activate(15_400, 'b', E3),
    ];
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([4, 5]);
    const flapping = result.violations.find((v) => v.rule === 5);
    expect(flapping?.window).toEqual([deactivate(15_000, 'b', E2, 'lease-lost'), activate(15_400, 'b', E3)]);
    expect(result.violations.find((v) => v.rule === 4)?.message).toMatch(
      /lost convergence .* regained 400\.0 ms later/,
    );
  });

  it('a member that missed a change (rule 6)', () => {
    const history = failover().filter((e) => !(e.type === 'observe' && e.member === 'b' && e.version === 3));
    const result = checkHistory(history, params);
    expect(rulesOf(result), explain(result)).toEqual([6]);
    expect(result.violations[0]?.message).toMatch(
      /b missed version 3: a observed it .*learned it only 4005\.0 ms later/,
    );
    expect(result.violations[0]?.window).toEqual([observe(10, 'b', 2), observe(3000, 'a', 3), observe(7005, 'b', 4)]);
  });
});

/** An ok renewal as the fixture records it: with the tap's send and reply instants. */
const renewTapped = (
  ms: number,
  member: string,
  { sentMs = ms - 1, deadlineMs, repliedMs = ms }: { sentMs?: number; deadlineMs?: number; repliedMs?: number } = {},
): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'renewal',
  outcome: 'ok',
  deadline: at(deadlineMs ?? sentMs + LEASE),
  sentAt: at(sentMs),
  claimedSentAt: at(sentMs - 0.01),
  repliedAt: at(repliedMs),
});
const renewTappedEvery = (member: string, fromMs: number, toMs: number): HistoryEvent[] =>
  Array.from({ length: Math.floor((toMs - fromMs) / H) + 1 }, (_, i) => renewTapped(fromMs + i * H, member));
const work = (ms: number, member: string, epoch: string): HistoryEvent => ({ t: at(ms), member, type: 'work', epoch });
const settled = (ms: number, member: string, epoch: string): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'deactivate-settled',
  epoch,
});
const weight = (ms: number, member: string, w: number): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'weight',
  weight: w,
});
const redisState = (ms: number, goal: number, slots: [string, string, string, boolean?][]): HistoryEvent => ({
  t: at(ms),
  member: 'redis',
  type: 'redis-state',
  goal,
  slots: slots.map(([member, epoch, state, recorded = true], index) => ({ index, member, epoch, state, recorded })),
});

/**
 * a (weight 100) is active and renews through the tap; b (weight 50) stands by. At 5000 b's
 * weight rises to 200: a is asked to release, deactivates at 5010 and its handler settles at
 * `settledMs`; b activates at `bActivatesMs`.
 */
function preemption({ settledMs = 6000, bActivatesMs = 6010 } = {}): HistoryEvent[] {
  return [
    join_(0, 'a', 100),
    join_(10, 'b', 50),
    ...renewTappedEvery('a', 0, 9000),
    ...renewTappedEvery('b', 10, 9010),
    activate(3000, 'a', E1),
    weight(5000, 'b', 200),
    deactivate(5010, 'a', E1, 'preempted'),
    settled(settledMs, 'a', E1),
    activate(bActivatesMs, 'b', E2),
  ];
}

describe('checkHistory, on what the member and Redis reported besides its actions', () => {
  it('accepts tapped renewals whose deadlines keep to t0 + A(1−ρ), and work inside the belief', () => {
    const history = [
      join_(0, 'a'),
      ...renewTappedEvery('a', 0, 6000),
      activate(3000, 'a', E1),
      work(3001, 'a', E1),
      work(5500, 'a', E1),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([]);
  });

  it('reports a deadline beyond the request’s send instant + A(1−ρ) (rule 7)', () => {
    const history = [join_(0, 'a'), renewTapped(1000, 'a', { sentMs: 999, deadlineMs: 999 + 2975 })];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([7]);
    expect(violationOf(result, 7)?.message).toMatch(/deadline 2975\.0 ms after .* beyond A\(1−ρ\)\/r = 2970\.0 ms/);
  });

  it('scales the bound by the member’s clock rate: a slow clock’s lease lasts longer in real time', () => {
    const slow = { ...join_(0, 'a'), clockRate: 0.991 } as HistoryEvent;
    const within = checkHistory([slow, renewTapped(1000, 'a', { sentMs: 999, deadlineMs: 999 + 2995 })], params);
    expect(safetyRulesOf(within), explain(within)).toEqual([]);
    const beyond = checkHistory([slow, renewTapped(1000, 'a', { sentMs: 999, deadlineMs: 999 + 3000 })], params);
    expect(safetyRulesOf(beyond), explain(beyond)).toEqual([7]);
  });

  it('reports a member that takes its t0 after its request left (rule 7)', () => {
    const late = { ...renewTapped(1000, 'a', { sentMs: 999 }), claimedSentAt: at(999.8) } as HistoryEvent;
    const result = checkHistory([join_(0, 'a'), late], params);
    expect(safetyRulesOf(result), explain(result)).toEqual([7]);
    expect(violationOf(result, 7)?.message).toMatch(/took its t0 0\.8 ms after its request was sent/);
  });

  it('reports work after the lease deadline, though no other member was active (rule 8)', () => {
    // a's last renewal (sent 3999) runs out at 6899; it works at 6950.
    const history = [join_(0, 'a'), ...renewTappedEvery('a', 0, 4000), activate(3000, 'a', E1), work(6950, 'a', E1)];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([8]);
    expect(violationOf(result, 8)?.message).toMatch(/a worked with epoch 9007199254740992 at .* outside any belief/);
  });

  it('reports work stamped with an epoch other than the one the member activated with (rule 8)', () => {
    const history = [join_(0, 'a'), ...renewTappedEvery('a', 0, 6000), activate(3000, 'a', E2), work(3500, 'a', E1)];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([8]);
  });

  it('keeps a belief whose renewal reply arrived before the deadline though it was recorded after it', () => {
    // The lease runs out at 6899; the reply to a request sent at 4500 arrives at 6898.99, 10 µs
    // before, and is recorded at 6899.05; the member works on its new lease.
    const history = [
      join_(0, 'a'),
      ...renewTappedEvery('a', 0, 4000),
      activate(3000, 'a', E1),
      renewTapped(6899.05, 'a', { sentMs: 4500, repliedMs: 6898.99 }),
      work(6900, 'a', E1),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([]);
  });

  it('reports a renewal reply that arrives after the deadline and finds the slot still held (rule 9)', () => {
    // a's lease (sent 3999) runs out at 6899; a reply arrives at 7100 with no deactivate before.
    const history = [
      join_(0, 'a'),
      ...renewTappedEvery('a', 0, 4000),
      activate(3000, 'a', E1),
      renewTapped(7100, 'a', { sentMs: 6000 }),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([9]);
    expect(violationOf(result, 9)?.message).toMatch(
      /ran out at .* a renewal reply 201\.0 ms later found it still holding/,
    );
  });

  it('accepts the same late reply when the member deactivated on it first', () => {
    const history = [
      join_(0, 'a'),
      ...renewTappedEvery('a', 0, 4000),
      activate(3000, 'a', E1),
      deactivate(7100.02, 'a', E1, 'lease-lost'),
      renewTapped(7100.05, 'a', { sentMs: 6000, repliedMs: 7100 }),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([]);
  });

  it('reports a script request sent twice (rule 10)', () => {
    const resend: HistoryEvent = { t: at(4200), member: 'a', type: 'resend', firstSentAt: at(3000) };
    const result = checkHistory([join_(0, 'a'), ...renewTappedEvery('a', 0, 6000), resend], params);
    expect(safetyRulesOf(result), explain(result)).toEqual([10]);
    expect(violationOf(result, 10)?.message).toMatch(/a sent a script request again .* 1200\.0 ms after/);
  });

  it('reports Redis holding a releasing slot and a second one with goal 1, once for the episode (rule 11)', () => {
    const history = [
      ...preemption(),
      redisState(3000, 1, [['a', E1, 'active']]),
      redisState(5005, 1, [['a', E1, 'releasing']]),
      redisState(5006, 1, [
        ['a', E1, 'releasing'],
        ['b', E2, 'active'],
      ]),
      redisState(5500, 1, [
        ['a', E1, 'releasing'],
        ['b', E2, 'active'],
      ]),
      redisState(6005, 1, [['b', E2, 'active']]),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([11]);
    expect(violationOf(result, 11)?.message).toMatch(
      /Redis held 2 slots \(1 active, 1 releasing\) with goal 1; slot 1 \(b, .*\) is not below the goal 1 \(for 494\.0 ms\)/,
    );
  });

  it('reports a slot holder without a member record outside faults only (rule 11)', () => {
    const base = [join_(0, 'a'), ...renewTappedEvery('a', 0, 12_000), activate(3000, 'a', E1)];
    const during = checkHistory(
      [
        ...base,
        fault(5000, 'DEL members'),
        heal(5001, 'DEL members'),
        redisState(5002, 1, [['a', E1, 'active', false]]),
      ],
      params,
    );
    expect(safetyRulesOf(during), explain(during)).toEqual([]);
    const steady = checkHistory([...base, redisState(6000, 1, [['a', E1, 'active', false]])], params);
    expect(safetyRulesOf(steady), explain(steady)).toEqual([11]);
    expect(violationOf(steady, 11)?.message).toMatch(/slot 0 names a, which has no member record/);
  });

  it('accepts a preemption whose new active activates after the old one’s deactivate handler settled', () => {
    const result = checkHistory(preemption(), params);
    expect(safetyRulesOf(result), explain(result)).toEqual([]);
  });

  it('reports an activation while the old holder’s deactivate handler runs on a live lease (rule 12)', () => {
    const result = checkHistory(preemption({ bActivatesMs: 5500 }), params);
    expect(safetyRulesOf(result), explain(result)).toEqual([12]);
    expect(violationOf(result, 12)?.message).toMatch(
      /b activated at .* while the deactivate handler of a \(deactivating epoch 9007199254740992 since 490\.0 ms, holding its slot 500\.0 ms longer\) still ran/,
    );
  });

  it('accepts an activation while a cut-off member’s handler runs, once its lease may have lapsed', () => {
    // a's last ok renewal left at 3999: Redis may lapse it from 6999 on; a deactivates at its
    // deadline (6899) and its handler runs until 8000; b activates at 7010.
    const history = [
      join_(0, 'a', 100),
      join_(10, 'b', 100),
      ...renewTappedEvery('a', 0, 4000),
      ...renewTappedEvery('b', 10, 14_010),
      activate(3000, 'a', E1),
      fault(4500, 'blackhole a'),
      deactivate(6899, 'a', E1, 'lease-lost'),
      activate(7010, 'b', E2),
      settled(8000, 'a', E1),
      heal(8000, 'blackhole a'),
    ];
    const result = checkHistory(history, params);
    expect(safetyRulesOf(result), explain(result)).toEqual([]);
    const early = history.map((e) => (e.type === 'activate' && e.member === 'b' ? activate(6950, 'b', E2) : e));
    expect(safetyRulesOf(checkHistory(early, params))).toEqual([12]);
  });
});

describe('history recorder', () => {
  const folder = () => mkdtempSync(join(testkitRoot(), 'history-'));

  it('appends one JSON line per event and reads several files back as one history ordered by time', () => {
    const dir = folder();
    const clock = (times: number[]) => () => at(times.shift() ?? Number.NaN);
    const a = new HistoryRecorder(join(dir, 'a.jsonl'), 'a', clock([0, 3000]));
    const harness = new HistoryRecorder(join(dir, 'harness.jsonl'), 'harness', clock([10, 5000]));
    a.record({ type: 'renewal', outcome: 'ok', deadline: at(LEASE) });
    harness.record({ type: 'fault', fault: 'blackhole a' });
    a.record({ type: 'activate', epoch: E2 });
    harness.record({ type: 'killed', member: 'a' });
    a.close();
    harness.close();
    expect(readFileSync(join(dir, 'a.jsonl'), 'utf8').split('\n')[0]).toBe(
      `{"type":"renewal","outcome":"ok","deadline":"${at(LEASE)}","t":"${at(0)}","member":"a"}`,
    );
    expect(readHistory([join(dir, 'a.jsonl'), join(dir, 'harness.jsonl')])).toEqual([
      renew(0, 'a'),
      fault(10, 'blackhole a'),
      activate(3000, 'a', E2),
      killed(5000, 'a'),
    ]);
  });

  it('stamps events with the monotonic hrtime clock by default', () => {
    const recorder = new HistoryRecorder(join(folder(), 'm.jsonl'), 'm');
    const before = process.hrtime.bigint();
    const event = recorder.record({ type: 'leave' });
    recorder.close();
    expect(event.t).toBeGreaterThanOrEqual(before);
    expect(event.t).toBeLessThanOrEqual(process.hrtime.bigint());
    expect(() => recorder.record({ type: 'leave' })).toThrow(/closed/);
  });

  it('skips a last line torn by SIGKILL but rejects a malformed line elsewhere, naming file and line', () => {
    const dir = folder();
    const torn = join(dir, 'torn.jsonl');
    const recorder = new HistoryRecorder(torn, 'a', () => at(0));
    recorder.record({ type: 'join', weight: 100 });
    recorder.close();
    appendFileSync(torn, '{"type":"renewal","outc');
    expect(readHistory([torn])).toEqual([join_(0, 'a', 100)]);

    const broken = join(dir, 'broken.jsonl');
    writeFileSync(
      broken,
      `{"type":"leave","t":"1","member":"a"}\n{"type":"activate","t":"2","member":"a","epoch":7}\n`,
    );
    expect(() => readHistory([broken])).toThrow(`${broken}:2: epoch must be a decimal string`);
  });
});
