import { describe, expect, it } from 'vitest';
import { SingleFlight } from '../src/single-flight.js';

/** A task whose runs the test ends one at a time. */
function gatedTask() {
  const gates: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  let runs = 0;
  const task = async () => {
    runs += 1;
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => gates.push(resolve));
    inFlight -= 1;
  };
  const finishRun = async () => {
    gates.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { task, finishRun, stats: () => ({ runs, most, waiting: gates.length }) };
}

describe('SingleFlight', () => {
  it('starts a run at once, synchronously', () => {
    const t = gatedTask();
    void new SingleFlight(t.task).run();
    expect(t.stats()).toEqual({ runs: 1, most: 1, waiting: 1 });
  });

  it('runs once more after the run in flight for any number of requests meanwhile, never two at once', async () => {
    const t = gatedTask();
    const flight = new SingleFlight(t.task);
    let firstDone = false;
    let queuedDone = false;
    void flight.run().then(() => {
      firstDone = true;
    });
    void flight.run().then(() => {
      queuedDone = true;
    });
    void flight.run();
    expect(t.stats()).toEqual({ runs: 1, most: 1, waiting: 1 });
    await t.finishRun();
    expect(t.stats()).toEqual({ runs: 2, most: 1, waiting: 1 });
    expect(queuedDone).toBe(false); // its run has not finished yet
    await t.finishRun();
    expect(t.stats()).toEqual({ runs: 2, most: 1, waiting: 0 });
    expect(firstDone && queuedDone).toBe(true);
    void flight.run(); // idle again: a new run starts at once
    expect(t.stats().runs).toBe(3);
    await t.finishRun();
  });

  it('starts nothing once stopped, and does not repeat a run in flight after the stop', async () => {
    const t = gatedTask();
    let stopped = false;
    const flight = new SingleFlight(t.task, () => stopped);
    void flight.run();
    void flight.run();
    stopped = true;
    await t.finishRun();
    await flight.run();
    expect(t.stats()).toEqual({ runs: 1, most: 1, waiting: 0 });
  });

  it("rejects the starter's promise with the task's error and runs again on the next request", async () => {
    let calls = 0;
    const flight = new SingleFlight(async () => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
    });
    await expect(flight.run()).rejects.toThrow('boom');
    await flight.run();
    expect(calls).toBe(2);
  });
});
