// Distributed queues (DESIGN §11): dispatch, capacity, no polling, fencing, dead letters, leave.
import { enqueue, joinQueue, type Task, type TaskSettled, type Worker } from '@understudy/core';
import { afterEach, describe, expect, it } from 'vitest';
import { fileServer, uniqueGroup, waitFor } from './helpers.js';

const { server, observer } = fileServer();
const FAST = Object.freeze({ heartbeatInterval: 50, activationInterval: 400 });
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.allSettled(workers.splice(0).map((w) => w.leave()));
});

async function worker(queue: string, options: Partial<Parameters<typeof joinQueue>[0]> = {}) {
  const w = await joinQueue({ redis: server().url, queue, handler: async () => 'ok', ...FAST, ...options });
  workers.push(w);
  return w;
}

describe('a queue', () => {
  it('delivers an enqueued task to a worker, with its data as enqueued', async () => {
    const queue = uniqueGroup('q-basic');
    const seen: Task[] = [];
    const settled: TaskSettled[] = [];
    const w = await worker(queue, { handler: async (task) => { seen.push(task); return 'done'; } });
    w.on('task', (s) => settled.push(s));
    const ids = [
      await enqueue({ redis: observer(), queue }, 'text'),
      await enqueue({ redis: observer(), queue }, Buffer.from([0, 10, 255])),
      await enqueue({ redis: observer(), queue }, { a: [1, 2] }),
    ];
    await waitFor(() => settled.length === 3, 'three tasks settled');
    expect(seen.map((t) => t.id)).toEqual(ids);
    expect(seen[0]?.data).toBe('text');
    expect(seen[1]?.data).toEqual(Buffer.from([0, 10, 255]));
    expect(seen[2]?.data).toEqual({ a: [1, 2] });
    expect(settled.map((s) => s.outcome)).toEqual(['completed', 'completed', 'completed']);
    expect(await observer().xlen(`understudy:{q:${queue}}:tasks`)).toBe(0);
  });
});
