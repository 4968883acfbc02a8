import { maxOverlap } from '@understudy/testkit';
/** Nearest-rank quantile of an ascending list (q in [0, 1]). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** A holder's belief interval on the hrNow() clock: it thought it held a slot from `start` to `end`. */
export interface Interval {
  holder: string;
  start: number;
  end: number;
}

/** The most holders that believed they held a slot at one instant (touching intervals do not overlap). */
export function maxConcurrency(intervals: readonly Interval[]): number {
  return maxOverlap(intervals.map((i) => [i.start, i.end] as const));
}

/** The longest time two or more holders overlapped beyond `allowed` concurrent holders, in ms. */
export function overlapMs(intervals: readonly Interval[], allowed: number): number {
  const points: [number, number][] = intervals.flatMap((i): [number, number][] => [
    [i.start, 1],
    [i.end, -1],
  ]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let since = 0;
  let total = 0;
  for (const [t, delta] of points) {
    if (current > allowed) total += t - since;
    current += delta;
    since = t;
  }
  return total;
}
