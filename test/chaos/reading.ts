// Reading a scenario's outcome: its history, its notes, its victims. Shared by the scenario files.
import type { HistoryEvent, MemberProcess, ScenarioOutcome, ScenarioRun } from '../../packages/testkit/src/index.js';

export type Activation = Extract<HistoryEvent, { type: 'activate' }>;
export type Deactivation = Extract<HistoryEvent, { type: 'deactivate' }>;

export const activations = (h: readonly HistoryEvent[]) => h.filter((e): e is Activation => e.type === 'activate');
export const deactivations = (h: readonly HistoryEvent[]) =>
  h.filter((e): e is Deactivation => e.type === 'deactivate');
export const between = (t: bigint, from: bigint | undefined, to: bigint | undefined) =>
  (from === undefined || t >= from) && (to === undefined || t <= to);

export function noteOf(outcome: ScenarioOutcome, label: string): bigint {
  const t = outcome.notes.get(label);
  if (t === undefined) throw new Error(`the scenario never noted '${label}'`);
  return t;
}

/** "Some member other than `victim` activated between `from` and `to`." */
export function someoneElseActivated(outcome: ScenarioOutcome, victim: string, from: string, to?: string): string[] {
  const start = noteOf(outcome, from);
  const end = to === undefined ? undefined : noteOf(outcome, to);
  const found = activations(outcome.history).some((e) => e.member !== victim && between(e.t, start, end));
  return found ? [] : [`no member other than ${victim} activated between '${from}' and '${to ?? 'the end'}'`];
}

/** "`victim` deactivated itself (lease-lost) between `from` and `to`." */
export function demotedItself(outcome: ScenarioOutcome, victim: string, from: string, to?: string): string[] {
  const start = noteOf(outcome, from);
  const end = to === undefined ? undefined : noteOf(outcome, to);
  const found = deactivations(outcome.history).some(
    (e) => e.member === victim && e.reason === 'lease-lost' && between(e.t, start, end),
  );
  return found ? [] : [`${victim} did not deactivate itself (lease-lost) between '${from}' and '${to ?? 'the end'}'`];
}

/** The victim of a scenario: the member active when the fault starts. */
export function theActive(run: ScenarioRun): MemberProcess {
  const [active] = run.actives();
  if (!active) throw new Error('no member is active');
  return run.victim(active);
}

export function victimOf(outcome: ScenarioOutcome): string {
  const [victim] = outcome.victims;
  if (victim === undefined) throw new Error('the scenario never chose a victim');
  return victim;
}
