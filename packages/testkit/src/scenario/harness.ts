import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory } from '../history/checker.js';
import { readHistory } from '../history/recorder.js';
import { startRedis } from '../redis/start.js';
import { ScenarioRun } from './faults.js';
import { watchRedisState } from './invariants.js';
import { convergenceAfterFaults } from './measures.js';
import { countAdvisories, describeResult, verifyCommon } from './report.js';
import { CHILD_START_MS, slackOf } from './run.js';
import { redisClockOffset } from './sink.js';
import { startTopology, stopTopology } from './topology.js';
import type { RunOptions, ScenarioOutcome, ScenarioResult, ScenarioSpec } from './types.js';

/** A fault scenario: its group, its members, the faults it injects, and how it passes. */
export interface Scenario extends ScenarioSpec {
  /**
   * Injects the faults. Before it, the harness has waited until the group converged and then
   * for a settling time; after it, it heals what is still open, waits for convergence and a
   * settling time again, and makes every member leave.
   */
  run(run: ScenarioRun): Promise<void>;
}

/**
 * Runs one scenario: a Redis for the group and one for the fenced sink, a chaos proxy per
 * member, the members, the faults; then stops everything, merges the histories and checks
 * them. Everything it started is stopped when it returns or throws, or when `signal` aborts.
 */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const resultsDir = options.resultsDir ?? join(tmpdir(), 'understudy-chaos');
  mkdirSync(resultsDir, { recursive: true });
  const dir = mkdtempSync(join(resultsDir, `${scenario.name}-${options.seed}-`));
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const servers: { stop(): Promise<void> }[] = [];
  let run: ScenarioRun | undefined;
  let passed = false;
  try {
    if (scenario.redis && !['single', 'replicated', 'quorum'].includes(scenario.topology ?? 'single')) {
      throw new Error(
        `${scenario.name}: redis options apply to a single Redis, a pair or a quorum's servers, not to ${scenario.topology}`,
      );
    }
    const kind = scenario.topology ?? 'single';
    if (scenario.sentinel && kind !== 'sentinel') {
      throw new Error(`${scenario.name}: sentinel options apply to a Sentinel set, not to ${kind}`);
    }
    if (scenario.quorum && kind !== 'quorum') {
      throw new Error(`${scenario.name}: quorum options apply to a quorum, not to ${kind}`);
    }
    const topology = await startTopology(kind, scenario.redis, scenario.sentinel, scenario.quorum?.servers);
    servers.push({ stop: () => stopTopology(topology) });
    const sink = await startRedis();
    servers.push(sink);
    const sinkOffset = await redisClockOffset(sink.url);
    run = new ScenarioRun(scenario, options, { topology, sink, sinkOffset }, dir, controller.signal);
    const r = run;
    const watch = watchRedisState(r);
    servers.push({ stop: () => watch.stop() });
    await Promise.all(scenario.members.map((spec) => r.spawn(spec)));
    await r.untilConverged(CHILD_START_MS);
    await r.sleep(r.settleMs);
    r.note('run');
    await scenario.run(r);
    r.note('end');

    await r.healAll();
    const unmet: string[] = [];
    await r.untilConverged(r.settleMs + 5 * r.A).catch(() => {
      unmet.push(`the group had not converged ${r.settleMs + 5 * r.A} ms after the last heal`);
    });
    await r.sleep(r.settleMs);
    await r.finish();
    await watch.stop();
    await r.shutdown();
    await Promise.allSettled(servers.map((s) => s.stop()));

    const history = readHistory(r.historyFiles());
    const params = scenario.params;
    const check = checkHistory(
      history,
      {
        activeGoal: params.activeGoal,
        activationIntervalMs: params.activationInterval,
        heartbeatIntervalMs: params.heartbeatInterval,
      },
      { slackMs: slackOf(scenario, options) },
    );
    const outcome: ScenarioOutcome = { history, notes: r.notes, members: r.processes, victims: r.victims, params };
    unmet.push(...r.findings, ...verifyCommon(outcome), ...(scenario.verify?.(outcome) ?? []));
    const convergence = convergenceAfterFaults(history, params.activeGoal);
    const measured = convergence.flatMap((c) => (c.ms === undefined ? [] : [c.ms]));
    passed = check.ok && unmet.length === 0;
    const result: ScenarioResult = {
      scenario: scenario.name,
      seed: options.seed,
      passed,
      faults: r.faultCount,
      violations: check.violations.filter((v) => v.outsideModel === undefined),
      outsideModel: check.violations.filter((v) => v.outsideModel !== undefined),
      unmet,
      measures: scenario.measure?.(outcome) ?? {},
      worstConvergenceMs: measured.length > 0 ? Math.max(...measured) : undefined,
      unconverged: convergence.length - measured.length,
      sinkAccepted: history.filter((e) => e.type === 'sink-accept').length,
      sinkRejected: history.filter((e) => e.type === 'sink-reject').length,
      advisories: countAdvisories([...r.processes, ...r.workers]),
      durationMs: performance.now() - started,
      dir: undefined,
    };
    writeFileSync(join(dir, 'report.txt'), describeResult(result));
    if (!passed || options.keep === 'always') result.dir = dir;
    return result;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await run?.shutdown();
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (passed && options.keep !== 'always') rmSync(dir, { recursive: true, force: true });
  }
}
