import type { Timeline } from './timeline.js';
import type { AssumptionBreach, GroupParams, RuleNumber, Violation } from './types.js';

/** DESIGN S1: members allow for clocks that drift up to 1 % unless told otherwise. */
export const DEFAULT_CLOCK_DRIFT = 0.01;

/** Rounding of a rate written as 1 ± ρ (1 − 0.01 is 0.99 only up to ~1e-16). */
const RATE_EPSILON = 1e-9;

/**
 * The rules that compare members' beliefs with one another, and so rest on S1's assumption
 * (a): every clock drifts from Redis's by at most ρ. A member whose clock drifts further may
 * believe it holds its slot after Redis gave it to another (slow clock) or give it up early
 * and move the group (fast clock). Every other rule holds whatever the clocks do: epochs (2,
 * 18) and the sink (3) are what keeps data safe beyond the assumptions, and 7–10 judge one
 * member's own arithmetic on its own clock.
 */
const RESTING_ON_DRIFT: ReadonlySet<RuleNumber> = new Set([1, 4, 5, 12]);

/** Members whose clock (their `join`'s `clockRate`) drifts beyond ρ: |rate − 1| > ρ. */
export function findBreaches(timeline: Timeline, params: GroupParams): AssumptionBreach[] {
  const rho = params.clockDrift ?? DEFAULT_CLOCK_DRIFT;
  return timeline.memberships.flatMap(({ member, join }) => {
    const clockRate = join.clockRate ?? 1;
    const drift = Math.abs(clockRate - 1);
    return drift > rho + RATE_EPSILON ? [{ member, clockRate, drift, rho, join }] : [];
  });
}

/**
 * Marks the violations of rules 1, 4, 5 and 12 whose window holds an event of a member outside
 * the model as `outsideModel`: expected under that drift, reported, not failing the check.
 */
export function markOutsideModel(violations: readonly Violation[], breaches: readonly AssumptionBreach[]): Violation[] {
  if (breaches.length === 0) return [...violations];
  const byMember = new Map(breaches.map((b) => [b.member, b]));
  return violations.map((v) => {
    if (!RESTING_ON_DRIFT.has(v.rule)) return v;
    const involved = [...new Set(v.window.map((e) => e.member))].flatMap((m) => byMember.get(m) ?? []);
    if (involved.length === 0) return v;
    const outsideModel = involved
      .map((b) => `${b.member}'s clock runs at ${b.clockRate} (drift ${pct(b.drift)} beyond ρ = ${pct(b.rho)})`)
      .join('; ');
    return {
      ...v,
      outsideModel,
      format: () => `${v.format()}\n  outside the model, expected: ${outsideModel}`,
    };
  });
}

function pct(fraction: number): string {
  return `${Number((fraction * 100).toFixed(4))} %`;
}
