// The quorum-mode scenarios of the CI profile (docs/RELIABILITY.md §7): one group over three
// independent servers, each scenario run once with the CI seed and judged as in
// fault-injection.test.ts — safety (rules 1–3, 7–12, 18, and no server counting more actives
// than the goal), then liveness and the scenario's own criteria. The drift beyond ρ must also
// show what the checker marks outside the model. `pnpm chaos --only <scenario> --seed-of-run
// <seed> --minutes 1` replays one.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  describeResult,
  isSafetyViolation,
  runScenario,
  type Scenario,
  type ScenarioResult,
} from '../packages/testkit/src/index.js';
import { OUTSIDE_MODEL_SCENARIOS } from './chaos/quorum.js';
import { CI_QUORUM_SCENARIOS, CI_SEED } from './chaos/scenarios.js';

const memberScript = fileURLToPath(new URL('./fixtures/history-member.ts', import.meta.url));
const RUN_TIMEOUT_MS = 120_000;

function once(scenario: Scenario): () => Promise<ScenarioResult> {
  let result: Promise<ScenarioResult> | undefined;
  return () => {
    result ??= runScenario(scenario, { seed: CI_SEED, memberScript }).then((r) => {
      console.info(describeResult(r));
      return r;
    });
    return result;
  };
}

describe(`quorum fault injection (seed ${CI_SEED})`, () => {
  for (const scenario of CI_QUORUM_SCENARIOS) {
    describe(scenario.title, () => {
      const result = once(scenario);

      it('never has more members believing they are active than the goal, epochs only increase, the sink accepts nothing stale, and every server accepts only epochs above its floor', {
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
        if (OUTSIDE_MODEL_SCENARIOS.has(scenario.name)) expect(r.outsideModel.length, report).toBeGreaterThan(0);
      });
    });
  }
});
