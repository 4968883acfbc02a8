/** The most of `[start, end)` intervals that overlap at one instant (touching ones do not). */
export function maxOverlap(intervals: readonly (readonly [number, number])[]): number {
  const points = intervals.flatMap(([start, end]) => [
    [start, 1],
    [end, -1],
  ]) as [number, number][];
  // Ends sort before starts at the same instant.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let max = 0;
  for (const [, delta] of points) {
    current += delta;
    max = Math.max(max, current);
  }
  return max;
}
