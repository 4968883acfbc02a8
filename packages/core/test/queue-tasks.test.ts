// The task runner's reading of the queue's answers, without Redis: a completion refused as stale
// is a StaleTaskError only when no earlier attempt may have been accepted.
import { RedisUnavailableError, StaleTaskError, type TaskSettled } from '@understudy/core';
import { monotonicClock } from '@understudy/core/testing';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TaskRunner } from '../src/queue/tasks.js';
import type { WorkerReply } from '../src/scripts.js';

const reply = (status: WorkerReply['status']): WorkerReply => ({
  status,
  serverNow: 0,
  quarantineUntil: 0,
  quarantineReason: '',
  lost: [],
  dead: [],
  next: [],
  reapAt: 0,
  serverMicros: 0,
});

/** Runs one task whose completion attempts answer as given (an Error is thrown), and what the runner said. */
async function runWith(answers: (WorkerReply | Error)[]) {
  const errors: Error[] = [];
  let settled: TaskSettled | undefined;
  const runner = new TaskRunner({
    queue: 'q',
    handler: async () => 'result',
    clock: monotonicClock,
    log: pino({ enabled: false }),
    retryDelay: 1,
    complete: async () => {
      const answer = answers.shift();
      if (!answer) throw new Error('no more answers');
      if (answer instanceof Error) throw answer;
      return answer;
    },
    mayRetry: () => true,
    settled: (s) => {
      settled = s;
    },
    error: (e) => errors.push(e),
  });
  runner.start({ id: '1-0', token: 7, deliveries: 1, expires: 0, data: 'x' }, monotonicClock.now() + 10_000);
  await runner.drained(1000);
  return { settled, errors };
}

const timedOut = () => new RedisUnavailableError('complete timed out', { timedOut: true });

describe('completing a task', () => {
  it('completed when the queue accepts it, also after a retry', async () => {
    const { settled, errors } = await runWith([timedOut(), reply('done')]);
    expect(settled).toMatchObject({ outcome: 'completed', result: 'result', token: 7 });
    expect(errors).toEqual([]);
  });

  it('stale, with a StaleTaskError, when the queue refuses the only attempt', async () => {
    const { settled, errors } = await runWith([reply('stale')]);
    expect(settled?.outcome).toBe('stale');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StaleTaskError);
  });

  it('unconfirmed, not stale, when a retry is refused after an attempt that may have been accepted', async () => {
    const { settled, errors } = await runWith([timedOut(), reply('stale')]);
    expect(settled?.outcome).toBe('unconfirmed');
    expect(errors).toEqual([]);
  });
});
