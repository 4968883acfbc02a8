// A small SVG writer for the report's plots: empirical CDFs and lines, on a log or linear x
// axis. No dependencies; the output is plain, readable SVG.

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logX?: boolean;
  logY?: boolean;
  /** Draw points as well as lines (for sparse data). */
  markers?: boolean;
  /** Dashed vertical lines, e.g. targets. */
  marks?: readonly { x: number; label: string }[];
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 34, top: 40, bottom: 90 };
const COLORS = ['#1b6ca8', '#d1495b', '#edae49', '#00798c', '#66a182', '#8e6c8a', '#30343f'];

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fixed = (n: number) => (Math.round(n * 10) / 10).toString();

/** Round numbers for a linear axis. */
function linearTicks(min: number, max: number, count = 6): number[] {
  const span = max - min || 1;
  const step0 = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= step0) ?? magnitude * 10;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step / 1e6; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** 1, 2, 5 per decade, or only the decades when they are many. */
function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  const decades = Math.log10(max) - Math.log10(min);
  const steps = decades > 4 ? [1] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of steps) {
      const t = m * 10 ** e;
      if (t >= min * 0.999 && t <= max * 1.001) ticks.push(Number(t.toPrecision(6)));
    }
  }
  return ticks;
}

function label(n: number): string {
  if (n >= 1000) return n.toLocaleString('en-US');
  return String(Number(n.toPrecision(3)));
}

interface Axis {
  scale(v: number): number;
  ticks: number[];
}

function axis(values: number[], log: boolean, from: number, to: number, padTo?: [number, number]): Axis {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (padTo) [min, max] = [Math.min(min, padTo[0]), Math.max(max, padTo[1])];
  if (log) {
    // Whole decades; values at or below zero are drawn at the lower edge.
    const positive = values.filter((v) => v > 0);
    min = 10 ** Math.floor(Math.log10(Math.min(...positive, max > 0 ? max : 1)));
    max = 10 ** Math.ceil(Math.log10(Math.max(...positive, min)));
    const [lo, hi] = [Math.log10(min), Math.log10(max)];
    return {
      scale: (v) => from + ((Math.log10(Math.max(v, min)) - lo) / (hi - lo || 1)) * (to - from),
      ticks: logTicks(min, max),
    };
  }
  const ticks = linearTicks(min, max);
  const lo = Math.min(min, ticks[0] ?? min);
  const hi = Math.max(max, ticks.at(-1) ?? max);
  return { scale: (v) => from + ((v - lo) / (hi - lo || 1)) * (to - from), ticks };
}

/** A plot of lines (and markers) with axes, grid, legend and title. */
export function plot(options: PlotOptions): string {
  const series = options.series.filter((s) => s.points.length > 0);
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).concat((options.marks ?? []).map((m) => m.x));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const x = axis(xs.length ? xs : [1], options.logX ?? false, left, right);
  const y = axis(ys.length ? ys : [0, 1], options.logY ?? false, bottom, top, options.logY ? undefined : [0, 0]);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  for (const t of x.ticks) {
    const px = fixed(x.scale(t));
    out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${px}" y="${bottom + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = fixed(y.scale(t));
    out.push(`<line x1="${left}" y1="${py}" x2="${right}" y2="${py}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  );
  for (const mark of options.marks ?? []) {
    const px = fixed(x.scale(mark.x));
    out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" stroke="#555" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${px}" y="${top - 4}" text-anchor="middle" font-size="10">${escapeXml(mark.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const path = s.points.map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${fixed(x.scale(px))} ${fixed(y.scale(py))}`);
    out.push(`<path d="${path.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`);
    if (options.markers) {
      for (const [px, py] of s.points) {
        out.push(`<circle cx="${fixed(x.scale(px))}" cy="${fixed(y.scale(py))}" r="3.5" fill="${color}"/>`);
      }
    }
  });
  // Legend below the plot, two entries a row.
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const lx = left + (i % 2) * ((right - left) / 2);
    const ly = bottom + 56 + Math.floor(i / 2) * 16;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The empirical CDF of a sample as a step line: (value, fraction ≤ value). */
export function cdfPoints(values: readonly number[]): [number, number][] {
  const sorted = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  const points: [number, number][] = [];
  sorted.forEach((v, i) => {
    points.push([v, i / sorted.length], [v, (i + 1) / sorted.length]);
  });
  return points;
}
