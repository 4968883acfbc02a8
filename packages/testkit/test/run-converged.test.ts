import { describe, expect, it } from 'vitest';
import { RunCore } from '../src/scenario/run.js';

// `untilConverged` on a stand-in run: no member processes (the wait polls every 50 ms), a group
// that reports itself converged from `convergesAfterMs` on, and H = 500 ms (2H in a row = 1 s).
function standIn(convergesAfterMs: number): RunCore {
  const start = performance.now();
  const run = {
    processes: [],
    signal: undefined,
    H: 500,
    converged: () => performance.now() - start >= convergesAfterMs,
  };
  return run as unknown as RunCore;
}

const untilConverged = (run: RunCore, timeoutMs: number) => RunCore.prototype.untilConverged.call(run, timeoutMs);

describe('a run waiting for its group to converge (F27)', () => {
  it('waits the 2H in a row on top of the timeout, which bounds the convergence itself', async () => {
    // Converged at 200 ms, within the 500 ms timeout; steady 1 s later, long after 500 ms.
    const took = await untilConverged(standIn(200), 500);
    expect(took).toBeGreaterThanOrEqual(1200);
  });

  it('still gives up on a group that converges after the timeout', async () => {
    // Converged at 2 s: past the 500 ms bound, and past it plus 2H (1.5 s) as well.
    await expect(untilConverged(standIn(2000), 500)).rejects.toThrow(
      /timed out after 1500 ms waiting for the group to converge/,
    );
  });
});
