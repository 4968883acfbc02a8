/** A target from issue 7, next to what the run measured. */
export interface TargetCheck {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

export function check(what: string, value: number, limit: number, unit: string): TargetCheck {
  const measured = Number.isFinite(value) ? `${format(value)}${unit}` : 'not measured';
  return {
    what,
    target: `≤ ${format(limit)}${unit}`,
    measured,
    met: Number.isFinite(value) ? value <= limit : undefined,
  };
}

export function format(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function verdict(met: boolean | undefined): string {
  if (met === undefined) return '– (not measured)';
  return met ? 'met' : '**MISSED**';
}
