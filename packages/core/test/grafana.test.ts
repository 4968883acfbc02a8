import { readFileSync } from 'node:fs';
import { monitorGroup, monitorQueue } from '@understudy/core';
import { createMetrics } from '@understudy/core/metrics';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { fileServer, memberFactory, uniqueGroup, workerFactory } from './helpers.js';

/** The dashboard operators import into Grafana (docs/grafana/README.md). */
const DASHBOARD = new URL('../../../docs/grafana/understudy.json', import.meta.url);

const { server } = fileServer();
const join = memberFactory(server);
const work = workerFactory(server);

interface Target {
  refId: string;
  expr: string;
  datasource?: { uid?: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}

interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid?: string } }[] };
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DATASOURCE = '${datasource}';

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

/** Every PromQL query in the dashboard, with where it is. */
function queries(): { where: string; expr: string }[] {
  const found = queryPanels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr })),
  );
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    // Grafana's label_values(SELECTOR, LABEL): the selector is PromQL, the label a label name.
    const { query } = variable.query as { query: string };
    const selector = /^label_values\((.+),\s*\w+\)$/.exec(query)?.[1];
    expect(selector, `variable $${variable.name}: ${query}`).toBeDefined();
    found.push({ where: `variable $${variable.name}`, expr: selector as string });
  }
  return found;
}

/** PromQL words that are not series names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
]);

/**
 * The series names a PromQL expression selects: what is left once strings, label matchers,
 * ranges, grouping clauses, numbers, functions (a name before `(`) and keywords are taken out.
 */
function seriesNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names: string[] = [];
  for (const match of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = bare.slice((match.index ?? 0) + match[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(match[0])) continue;
    names.push(match[0]);
  }
  return names;
}

/**
 * The series names the library exports, from a registry a member, a worker and both kinds of
 * monitor recorded into (the member leaves before the worker joins: a process is one or the other).
 */
async function exportedSeries(): Promise<{ families: string[]; series: Set<string> }> {
  const metrics = createMetrics({ registry: new Registry() });
  const group = uniqueGroup('grafana');
  const queue = uniqueGroup('grafana-q');
  const member = await join({ group, memberId: 'm', weight: 1 });
  const monitor = await monitorGroup({ redis: server().url, group });
  const queueMonitor = await monitorQueue({ redis: server().url, queue });
  const stops = [
    metrics.instrumentMember(member),
    metrics.instrumentMonitor(monitor),
    metrics.instrumentQueueMonitor(queueMonitor),
  ];
  try {
    await member.leave();
    const worker = await work({ queue, workerId: 'w' });
    stops.push(metrics.instrumentWorker(worker));
    const families = await metrics.registry.getMetricsAsJSON();
    const series = new Set<string>();
    for (const { name, type } of families) {
      if (String(type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
      else series.add(name);
    }
    return { families: families.map((f) => f.name), series };
  } finally {
    for (const stop of stops) stop();
    await Promise.all([monitor.close(), queueMonitor.close(), member.leave()]);
  }
}

describe('the Grafana dashboard (docs/grafana/understudy.json)', () => {
  it('names, in its queries, only series the metrics module exports, and shows every metric', async () => {
    const { families, series } = await exportedSeries();
    expect(families.length).toBeGreaterThan(0);
    const used = new Set<string>();
    for (const { where, expr } of queries()) {
      const names = seriesNames(expr);
      expect(names.length, `${where} selects no series: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(series.has(name), `${where} names ${name}, which the library does not export`).toBe(true);
        used.add(name);
      }
    }
    const unused = families.filter((f) => ![...used].some((name) => name === f || name.startsWith(`${f}_`)));
    expect(unused, 'metrics without a panel').toEqual([]);
  });

  it('is a dashboard Grafana imports: ids, layout, queries and the datasource variable in place', () => {
    expect(dashboard.title).toBe('understudy');
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variables = dashboard.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.find((v) => v.name === 'group')?.datasource?.uid).toBe(DATASOURCE);
    expect(variables.find((v) => v.name === 'queue')?.datasource?.uid).toBe(DATASOURCE);

    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(Number.isInteger(x) && Number.isInteger(y) && w > 0 && h > 0 && x + w <= 24, panel.title).toBe(true);
    }
    for (const [i, a] of dashboard.panels.entries()) {
      for (const b of dashboard.panels.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h;
        expect(overlap, `"${a.title}" and "${b.title}" overlap`).toBe(false);
      }
    }
    for (const panel of queryPanels) {
      expect(['timeseries', 'stat', 'heatmap'], panel.title).toContain(panel.type);
      expect(panel.datasource?.uid, panel.title).toBe(DATASOURCE);
      const targets = panel.targets ?? [];
      expect(targets.length, `${panel.title} has queries`).toBeGreaterThan(0);
      expect(new Set(targets.map((t) => t.refId)).size, `${panel.title}: refIds are unique`).toBe(targets.length);
      for (const target of targets) {
        expect(target.expr.trim(), `${panel.title} ${target.refId}`).not.toBe('');
        // Balanced brackets: a query Prometheus would parse that far.
        for (const [open, close] of ['()', '{}', '[]']) {
          expect(target.expr.split(open as string).length, `${panel.title} ${target.refId} ${open}${close}`).toBe(
            target.expr.split(close as string).length,
          );
        }
      }
    }
  });
});
