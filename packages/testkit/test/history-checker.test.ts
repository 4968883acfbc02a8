import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type CheckResult,
  checkHistory,
  type GroupParams,
  type HistoryEvent,
  HistoryRecorder,
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
