import type { HistoryEvent, RuleNumber, Violation } from './types.js';

const RULE_TITLES: Record<RuleNumber, string> = {
  1: 'never more than the goal active',
  2: 'activation epochs strictly increase',
  3: 'the sink accepts no stale epoch',
  4: 'convergence after faults and changes',
  5: 'no flapping in steady periods',
  6: 'every live member learns every change',
  7: 'a lease ends by t0 + A(1−ρ) − δ',
  8: 'a member works only while it believes it holds the lease',
  9: 'a lapsed lease is never revived',
  10: 'no script request is sent twice',
  11: 'Redis never holds more slots than the goal',
  12: 'demote before promote',
  13: 'every feed message is acted on by a holder of each slot',
  14: 'a feed commit comes from a current holder only',
  15: 'a task is in flight at one worker at a time',
  16: 'no accepted completion from a stale token',
  17: 'every enqueued task completes or reaches the dead letters',
  18: 'every server accepts only epochs above its floor',
};

/**
 * Liveness rules: 4–6 judged outside fault windows, 13 and 17 at the end of the run (nothing
 * lost); every other rule is a safety rule, judged always.
 */
const LIVENESS_RULES: ReadonlySet<RuleNumber> = new Set([4, 5, 6, 13, 17]);

export function isSafetyRule(rule: RuleNumber): boolean {
  return !LIVENESS_RULES.has(rule);
}

/** Fields shown as times relative to the window rather than as raw hrtime values. */
const TIME_FIELDS = new Set(['deadline', 'requestSentAt', 'sentAt', 'claimedSentAt', 'repliedAt', 'firstSentAt']);

/** A duration in nanoseconds as milliseconds, e.g. `1500.0`. */
export function ms(ns: bigint): string {
  return (Number(ns) / 1e6).toFixed(1);
}

/** An offset in nanoseconds as signed milliseconds, e.g. `+1500.0 ms`. */
export function offset(ns: bigint): string {
  return ns < 0n ? `-${ms(-ns)} ms` : `+${ms(ns)} ms`;
}

/** A violation whose window holds `events` once each, in history order. */
export function violation(
  rule: RuleNumber,
  message: string,
  events: Iterable<HistoryEvent>,
  history: { start: bigint; events: readonly HistoryEvent[] },
): Violation {
  const window = [...new Set(events)].sort((a, b) =>
    a.t < b.t ? -1 : a.t > b.t ? 1 : history.events.indexOf(a) - history.events.indexOf(b),
  );
  return {
    rule,
    message,
    window,
    format: () => formatWindow(rule, message, window, history.start),
  };
}

function formatWindow(
  rule: RuleNumber,
  message: string,
  window: readonly HistoryEvent[],
  historyStart: bigint,
): string {
  const origin = window[0]?.t ?? historyStart;
  const rows = window.map((event) => {
    const time = offset(event.t - origin).padStart(14);
    return `${time}  ${event.member.padEnd(12)} ${event.type}${describeFields(event, origin)}`;
  });
  return [
    `rule ${rule} (${RULE_TITLES[rule]}): ${message}`,
    `  window starts ${ms(origin - historyStart)} ms into the history; times relative to it:`,
    ...rows.map((row) => `  ${row}`),
  ].join('\n');
}

function describeFields(event: HistoryEvent, origin: bigint): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(event)) {
    if (key === 't' || key === 'member' || key === 'type') continue;
    if (TIME_FIELDS.has(key) && typeof value === 'bigint') parts.push(`${key}=${offset(value - origin)}`);
    else parts.push(`${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}
