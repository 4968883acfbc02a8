// The feed and queue rules of the history checker (13–17), each shown passing a good history
// and catching a violating one. Hand-made histories on the hrtime clock, in ms from an origin.
import { describe, expect, it } from 'vitest';
import { checkHistory, type GroupParams, type HistoryEvent, type RuleNumber } from '../src/index.js';

const ORIGIN = 5_000_000_000_000n;
const at = (ms: number) => ORIGIN + BigInt(Math.round(ms * 1e6));
const params = (activeGoal = 1): GroupParams => ({ activeGoal, activationIntervalMs: 3000, heartbeatIntervalMs: 1000 });
const rules = (history: HistoryEvent[], goal = 1): RuleNumber[] =>
  checkHistory(
    [...history].sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0)),
    params(goal),
  ).violations.map((v) => v.rule);

const E1 = '9007199254740992';
const E2 = '9007199254740993';

const publish = (ms: number, id: string): HistoryEvent => ({ t: at(ms), member: 'publisher', type: 'publish', id });
const message = (
  ms: number,
  member: string,
  id: string,
  phase: 'start' | 'done',
  held?: [string, number],
): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'message',
  id,
  phase,
  active: held !== undefined,
  ...(held ? { epoch: held[0], slot: held[1] } : {}),
});
const commit = (ms: number, member: string, id: string, epoch: string, slot = 0): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'commit',
  id,
  slot,
  epoch,
});
const activate = (ms: number, member: string, epoch: string, slot = 0): HistoryEvent => ({
  t: at(ms),
  member,
  type: 'activate',
  epoch,
  slot,
});

describe('rule 13: every feed message is acted on by a holder of each slot', () => {
  it('passes when a holder of each slot acted on every message, a standby delivery not counting', () => {
    const history = [
      publish(0, '1-0'),
      message(1, 'a', '1-0', 'start', [E1, 0]),
      message(2, 'a', '1-0', 'done', [E1, 0]),
      message(1, 'b', '1-0', 'start', [E2, 1]),
      message(2, 'b', '1-0', 'done', [E2, 1]),
    ];
    expect(rules(history, 2)).toEqual([]);
  });

  it('catches a message one slot never acted on, or acted on only as a standby or without resolving', () => {
    const history = [
      publish(0, '1-0'),
      message(1, 'a', '1-0', 'done', [E1, 0]),
      message(1, 'b', '1-0', 'start', [E2, 1]), // killed mid-message: never resolved
      message(1, 'c', '1-0', 'done'), // a standby
    ];
    const checked = checkHistory(history, params(2));
    expect(checked.violations.map((v) => v.rule)).toEqual([13]);
    expect(checked.violations[0]?.message).toContain('slot 1');
  });
});

describe('rule 14: a feed commit comes from a current holder only', () => {
  it('passes a commit whose handler resolved before anyone else held the slot', () => {
    const history = [
      activate(0, 'a', E1),
      message(10, 'a', '1-0', 'start', [E1, 0]),
      message(20, 'a', '1-0', 'done', [E1, 0]),
      activate(25, 'b', E2),
      commit(30, 'a', '1-0', E1),
    ];
    expect(rules(history).filter((r) => r === 14)).toEqual([]);
  });

  it('catches a commit accepted after another member took the slot with a higher epoch', () => {
    const history = [
      activate(0, 'a', E1),
      message(10, 'a', '1-0', 'start', [E1, 0]),
      activate(15, 'b', E2),
      message(20, 'a', '1-0', 'done', [E1, 0]),
      commit(30, 'a', '1-0', E1),
    ];
    expect(rules(history).filter((r) => r === 14)).toEqual([14]);
  });

  it('catches a commit of a message its member never acted on with that epoch', () => {
    expect(rules([activate(0, 'a', E1), commit(30, 'a', '1-0', E1)]).filter((r) => r === 14)).toEqual([14]);
  });
});

const task = (
  ms: number,
  worker: string,
  type: 'task-start' | 'task-step' | 'task-abort' | 'task-done',
  token: string,
  id = 't1',
): HistoryEvent => ({ t: at(ms), member: worker, type, task: id, token });
const end = (
  ms: number,
  worker: string,
  token: string,
  outcome: 'completed' | 'failed' | 'stale' | 'unconfirmed',
  id = 't1',
): HistoryEvent => ({ t: at(ms), member: worker, type: 'task-end', task: id, token, outcome });
const enqueue = (ms: number, id = 't1'): HistoryEvent => ({ t: at(ms), member: 'harness', type: 'enqueue', task: id });
const queueState = (ms: number, waiting: string[] = [], dead: string[] = []): HistoryEvent => ({
  t: at(ms),
  member: 'harness',
  type: 'queue-state',
  waiting,
  dead,
});
const killed = (ms: number, member: string): HistoryEvent => ({ t: at(ms), member, type: 'killed' });
const stop = (ms: number, worker: string, type: 'fault' | 'heal'): HistoryEvent => ({
  t: at(ms),
  member: 'harness',
  type,
  fault: `SIGSTOP ${worker} 3000 ms`,
});

describe('rule 15: a task is in flight at one worker at a time', () => {
  it('passes a re-delivery after the first handler saw its signal abort, its late completion refused', () => {
    const history = [
      enqueue(0),
      task(1, 'w1', 'task-start', '10'),
      task(2, 'w1', 'task-step', '10'),
      task(1000, 'w1', 'task-abort', '10'),
      task(1100, 'w2', 'task-start', '20'),
      task(1200, 'w2', 'task-done', '20'),
      end(1201, 'w2', '20', 'completed'),
      end(1300, 'w1', '10', 'stale'),
      queueState(2000),
    ];
    expect(rules(history)).toEqual([]);
  });

  it('passes a re-delivery after the first worker was killed', () => {
    const history = [
      enqueue(0),
      task(1, 'w1', 'task-start', '10'),
      killed(10, 'w1'),
      task(3000, 'w2', 'task-start', '20'),
      task(3010, 'w2', 'task-done', '20'),
      end(3011, 'w2', '20', 'completed'),
      queueState(4000),
    ];
    expect(rules(history)).toEqual([]);
  });

  it('catches a re-delivery while the first delivery was still in flight', () => {
    const history = [
      task(1, 'w1', 'task-start', '10'),
      task(1100, 'w2', 'task-start', '20'),
      task(1150, 'w1', 'task-abort', '10'),
      end(1160, 'w1', '10', 'failed'),
    ];
    expect(rules(history)).toEqual([15]);
  });

  it('catches a step the first handler took after the re-delivery started', () => {
    const history = [
      task(1, 'w1', 'task-start', '10'),
      task(1000, 'w1', 'task-abort', '10'),
      task(1100, 'w2', 'task-start', '20'),
      task(1150, 'w1', 'task-step', '10'),
    ];
    expect(rules(history)).toEqual([15]);
  });

  it('excuses a frozen worker (outside S1(b)) but still refuses its completion (rule 16)', () => {
    const frozenOnly = [
      task(1, 'w1', 'task-start', '10'),
      stop(5, 'w1', 'fault'),
      task(3000, 'w2', 'task-start', '20'),
      stop(3005, 'w1', 'heal'),
      task(3006, 'w1', 'task-step', '10'),
      task(3007, 'w1', 'task-abort', '10'),
      end(3020, 'w1', '10', 'stale'),
    ];
    expect(rules(frozenOnly)).toEqual([]);
    const accepted = [
      ...frozenOnly.slice(0, -1),
      task(3010, 'w1', 'task-done', '10'),
      end(3020, 'w1', '10', 'completed'),
    ];
    expect(rules(accepted)).toEqual([16]);
  });
});

describe('rule 16: no accepted completion from a stale token', () => {
  it('catches a completion accepted after a newer delivery started', () => {
    const history = [
      task(1, 'w1', 'task-start', '10'),
      task(900, 'w1', 'task-abort', '10'),
      task(1000, 'w2', 'task-start', '20'),
      task(1010, 'w1', 'task-done', '10'),
      end(1020, 'w1', '10', 'completed'),
    ];
    expect(rules(history)).toEqual([16]);
  });

  it('catches two accepted completions of one task', () => {
    const history = [
      task(1, 'w1', 'task-start', '10'),
      task(10, 'w1', 'task-done', '10'),
      end(11, 'w1', '10', 'completed'),
      task(20, 'w2', 'task-start', '20'),
      task(30, 'w2', 'task-done', '20'),
      end(31, 'w2', '20', 'completed'),
    ];
    expect(rules(history)).toEqual([16]);
  });
});

describe('rule 17: every enqueued task completes or reaches the dead letters', () => {
  it('passes tasks that completed or went to the dead letters', () => {
    const history = [
      enqueue(0, 'a'),
      enqueue(0, 'b'),
      task(1, 'w1', 'task-start', '10', 'a'),
      task(2, 'w1', 'task-done', '10', 'a'),
      end(3, 'w1', '10', 'completed', 'a'),
      queueState(100, [], ['b']),
    ];
    expect(rules(history)).toEqual([]);
  });

  it('passes a task whose worker was killed between its handler and its outcome, gone from the stream', () => {
    const history = [
      enqueue(0),
      task(1, 'w1', 'task-start', '10'),
      task(2, 'w1', 'task-done', '10'),
      killed(3, 'w1'),
      queueState(100),
    ];
    expect(rules(history)).toEqual([]);
  });

  it('passes a task whose completion went unconfirmed (the worker frozen as it sent it), gone from the stream', () => {
    // Found by the CI profile's queue-worker-faults: SIGSTOP half a millisecond after the handler
    // resolved; the completion was accepted, its reply came after the command timeout.
    const history = [
      enqueue(0),
      task(1, 'w1', 'task-start', '10'),
      task(2, 'w1', 'task-done', '10'),
      end(2400, 'w1', '10', 'unconfirmed'),
      queueState(2500),
    ];
    expect(rules(history)).toEqual([]);
    // Still pending in the stream: it was not.
    expect(rules([...history.slice(0, -1), queueState(2500, ['t1'], [])])).toEqual([17]);
  });

  it('catches a task left in the queue, one lost without a trace, and a run never read at the end', () => {
    const history = [
      enqueue(0, 'a'),
      enqueue(0, 'b'),
      task(1, 'w1', 'task-start', '10', 'a'),
      task(2, 'w1', 'task-abort', '10', 'a'),
      end(3, 'w1', '10', 'failed', 'a'),
      queueState(100, ['a'], []),
    ];
    expect(rules(history)).toEqual([17, 17]);
    expect(rules([enqueue(0)])).toEqual([17]);
  });
});
