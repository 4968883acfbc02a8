import { isSafetyRule } from '../history/format.js';
import type { Violation } from '../history/types.js';
import type { MemberProcess, ProcessArgs } from './member-process.js';
import type { ScenarioOutcome, ScenarioResult } from './types.js';

/** A result in words: the verdict, the figures, every violation window and unmet criterion. */
export function describeResult(result: ScenarioResult): string {
  const lines = [
    `${result.scenario} (seed ${result.seed}): ${result.passed ? 'passed' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(1)} s`,
    `  faults ${result.faults}, violations ${result.violations.length}, worst convergence ${formatMs(result.worstConvergenceMs)}` +
      `${result.unconverged > 0 ? ` (${result.unconverged} episode(s) not converged before the next fault)` : ''}, ` +
      `sink accepted ${result.sinkAccepted} / rejected ${result.sinkRejected}`,
    ...(Object.keys(result.measures).length > 0
      ? [
          `  ${Object.entries(result.measures)
            .map(([name, value]) => `${name} ${name.endsWith('Ms') ? formatMs(value) : (value ?? '-')}`)
            .join(', ')}`,
        ]
      : []),
    `  advisories: ${Object.entries(result.advisories)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ')}`,
    ...result.unmet.map((u) => `  unmet: ${u}`),
    ...result.violations.map((v) => v.format()),
    ...(result.outsideModel.length > 0
      ? [
          `  ${result.outsideModel.length} violation(s) outside the model (expected, not failing the run):`,
          ...result.outsideModel.map((v) => v.format()),
        ]
      : []),
  ];
  if (result.dir) lines.push(`  histories: ${result.dir}`);
  return `${lines.join('\n')}\n`;
}

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}

/** Safety rules (1–3, 7–12) hold at all times; liveness rules (4–6) outside fault windows. */
export function isSafetyViolation(violation: Violation): boolean {
  return isSafetyRule(violation.rule);
}

/** Criteria every scenario shares. */
export function verifyCommon(outcome: ScenarioOutcome): string[] {
  const unmet: string[] = [];
  for (const member of outcome.members) {
    // Redis itself counting more slots than the goal must never happen.
    const tooMany = member.reported('advisory').filter((a) => a.code === 'TOO_MANY_ACTIVE');
    if (tooMany.length > 0) unmet.push(`${member.id} reported TOO_MANY_ACTIVE: ${tooMany[0]?.message}`);
  }
  return unmet;
}

/** How many advisories of each code the members (and queue workers) reported. */
export function countAdvisories(members: readonly MemberProcess<ProcessArgs>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const member of members) {
    for (const advisory of member.reported('advisory')) counts[advisory.code] = (counts[advisory.code] ?? 0) + 1;
  }
  return counts;
}
