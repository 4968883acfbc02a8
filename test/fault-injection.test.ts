// The CI profile of the reliability suite (docs/RELIABILITY.md): every fixed fault scenario
// once, some of the fault kinds of issue 13, three of the Sentinel and Cluster ones, four of
// the group feed and queues, then churn for a short while. Each scenario runs once and is
// judged twice: safety (rules 1–3, 7–12 and 14–16 of the history checker, and Redis never
// counting more actives than the goal), then liveness (rules 4–6 outside fault windows, 13
// and 17 over the run) and the scenario's own criteria. A failure
// prints the checker's windows, the seed and the folder that keeps the histories;
// `pnpm chaos --only <scenario> --seed-of-run <seed> --minutes 1` replays the same plan.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  describeResult,
  isSafetyViolation,
  runScenario,
  type Scenario,
  type ScenarioResult,
} from '../packages/testkit/src/index.js';
import { CI_SEED, SCENARIOS } from './chaos/scenarios.js';

const memberScript = fileURLToPath(new URL('./fixtures/history-member.ts', import.meta.url));
const workerScript = fileURLToPath(new URL('./fixtures/queue-worker.ts', import.meta.url));
/** How long churn runs in CI. */
const CHURN_MS = 20_000;
const RUN_TIMEOUT_MS = 180_000;

/** Runs the scenario once, on first use, for the tests that judge it. */
function once(scenario: Scenario): () => Promise<ScenarioResult> {
  let result: Promise<ScenarioResult> | undefined;
  return () => {
    result ??= runScenario(scenario, { seed: CI_SEED, memberScript, workerScript, durationMs: CHURN_MS }).then((r) => {
      console.info(describeResult(r));
      return r;
    });
    return result;
  };
}

describe(`fault injection (seed ${CI_SEED})`, () => {
  for (const scenario of SCENARIOS) {
    describe(scenario.title, () => {
      const result = once(scenario);

      it('never has more members believing they are active than the goal, epochs only increase, the sink accepts nothing stale, and no stale commit or completion counts', {
        timeout: RUN_TIMEOUT_MS,
      }, async () => {
        const r = await result();
        const report = describeResult(r);
        expect(
          r.violations.filter(isSafetyViolation).map((v) => v.format()),
          report,
        ).toEqual([]);
        expect(
          r.unmet.filter((u) => u.includes('TOO_MANY_ACTIVE')),
          report,
        ).toEqual([]);
      });

      it(`converges after every fault within A + H + 0.5 s, does not flap, and ${scenario.criteria}`, {
        timeout: RUN_TIMEOUT_MS,
      }, async () => {
        const r = await result();
        const report = describeResult(r);
        expect(
          r.violations.filter((v) => !isSafetyViolation(v)).map((v) => v.format()),
          report,
        ).toEqual([]);
        expect(r.unmet, report).toEqual([]);
      });
    });
  }
});
