import { haConsoleReport } from './ha-report.js';
import { cpuLabel, type Machine } from './machine.js';
import { queueConsoleReport } from './queue-report.js';
import type { ContestResult } from './scenarios/contest.js';
import type { CrowdCost, ScriptOverhead } from './scenarios/cost.js';
import { type DriverCost, mostlySteady, sentWith } from './scenarios/driver.js';
import type { HaResults } from './scenarios/ha-suite.js';
import type { JoinScale } from './scenarios/joining.js';
import type { PreemptionResult } from './scenarios/preemption.js';
import type { QueueResults } from './scenarios/queue.js';
import type { QuorumResults } from './scenarios/quorum.js';
import { type Summary, summarize } from './stats.js';
import { table } from './table.js';
import { format, type TargetCheck, verdict } from './targets.js';

export interface BenchResults {
  quick: boolean;
  command: string;
  startedAt: Date;
  durationS: number;
  machine: Machine;
  load: { start: string; measured: string; end: string; waitedS: number; quiet: boolean };
  lease: { activationMs: number; heartbeatMs: number };
  etcdNote: string;
  contests: ContestResult[];
  preemption: PreemptionResult | undefined;
  sizes: CrowdCost[];
  driven: DriverCost[];
  fleet: CrowdCost | undefined;
  idle: CrowdCost | undefined;
  overhead: ScriptOverhead | undefined;
  /** Failover of a group on Sentinel and Cluster, and the durability trade (possibly from a run of its own). */
  ha?: HaResults;
  /** understudy's queue beside BullMQ (possibly from a run of its own). */
  queue?: QueueResults;
  /** Quorum mode over WAN links beside Sentinel and redlock (possibly from a run of its own). */
  quorum?: QuorumResults;
  /** Members of one group joined in one process, from runs of their own (`pnpm bench:join`), one per H. */
  joins?: JoinScale[];
  /** The steady-state renewal beside the floor script, from a run of its own (`pnpm bench:renewal`). */
  steady?: SteadyScale;
  targets: TargetCheck[];
  plots: { file: string; title: string }[];
  /** Scenarios that failed and were left out. */
  failures: string[];
}

/** What `pnpm bench:renewal` measured. */
export interface SteadyScale {
  command: string;
  revision: string;
  at: string;
  load: { start: string; end: string };
  costs: DriverCost[];
  overhead: ScriptOverhead;
}

const ms = (v: number) => format(v);
const stat = (s: Summary, key: 'p50' | 'p99' | 'max') => (s.n ? ms(s[key]) : '–');

export function failoverTable(results: BenchResults): string {
  return table(
    ['system', 'n', 'total p50', 'total p99', 'overshoot p50', 'overshoot p99', 'overshoot max', 'standby wakes by'],
    results.contests.map((c) => {
      const total = summarize(c.failover.map((f) => f.total));
      const over = summarize(c.failover.map((f) => f.overshoot));
      return [
        c.system.label,
        String(total.n),
        stat(total, 'p50'),
        stat(total, 'p99'),
        stat(over, 'p50'),
        stat(over, 'p99'),
        stat(over, 'max'),
        c.system.wakeup,
      ];
    }),
  );
}

export function understudyFailoverDetail(results: BenchResults): string {
  const c = results.contests.find((x) => x.system.kind === 'understudy');
  if (!c) return '';
  const redisOver = summarize(c.failover.flatMap((f) => (f.overshootRedis === undefined ? [] : [f.overshootRedis])));
  const callbackOver = summarize(c.failover.map((f) => f.overshoot));
  return table(
    ['understudy failover overshoot, ms', 'n', 'p50', 'p99', 'max'],
    [
      [
        'Redis time: activation (log stream) − lease deadline (leases zset), 1 ms resolution',
        String(redisOver.n),
        stat(redisOver, 'p50'),
        stat(redisOver, 'p99'),
        stat(redisOver, 'max'),
      ],
      [
        "the standby's activate callback − lease deadline (hrtime)",
        String(callbackOver.n),
        stat(callbackOver, 'p50'),
        stat(callbackOver, 'p99'),
        stat(callbackOver, 'max'),
      ],
    ],
  );
}

export function handoverTable(results: BenchResults): string {
  return table(
    ['system', 'n', 'p50', 'p99', 'max', 'max holders at once (allowed)', 'overlap, ms'],
    results.contests.map((c) => {
      const s = summarize(c.handover.map((h) => h.total));
      return [
        c.system.label,
        String(s.n),
        stat(s, 'p50'),
        stat(s, 'p99'),
        stat(s, 'max'),
        `${c.maxConcurrency} (${c.system.slots})`,
        format(c.overlapMs),
      ];
    }),
  );
}

function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  const r = a / b;
  return r < 0.01 ? r.toExponential(1) : r.toFixed(r < 1 ? 3 : 2);
}

export function ratioTable(results: BenchResults): string {
  const us = results.contests.find((c) => c.system.kind === 'understudy');
  if (!us) return '';
  const mine = {
    over: summarize(us.failover.map((f) => f.overshoot)),
    total: summarize(us.failover.map((f) => f.total)),
    hand: summarize(us.handover.map((h) => h.total)),
  };
  return table(
    [
      'understudy / peer',
      'failover overshoot p50',
      'failover overshoot p99',
      'failover total p50',
      'handover p50',
      'handover p99',
    ],
    results.contests
      .filter((c) => c !== us)
      .map((c) => {
        const over = summarize(c.failover.map((f) => f.overshoot));
        const total = summarize(c.failover.map((f) => f.total));
        const hand = summarize(c.handover.map((h) => h.total));
        return [
          c.system.label,
          ratio(mine.over.p50, over.p50),
          ratio(mine.over.p99, over.p99),
          ratio(mine.total.p50, total.p50),
          ratio(mine.hand.p50, hand.p50),
          ratio(mine.hand.p99, hand.p99),
        ];
      }),
  );
}

export function preemptionTable(results: BenchResults): string {
  const p = results.preemption;
  if (!p) return '';
  const total = summarize(p.samples.map((s) => s.total));
  const fromJoin = summarize(p.samples.map((s) => s.fromJoin));
  const gap = summarize(p.samples.map((s) => s.gap));
  return table(
    ['understudy preemption (handlers return at once), ms', 'n', 'p50', 'p99', 'max'],
    [
      ['joinGroup() called → activate callback (includes connecting)', total],
      ['join script (Redis time, log stream) → activate callback', fromJoin],
      ["old active's deactivate callback → new active's activate callback", gap],
    ].map(([label, s]) => {
      const summary = s as Summary;
      return [label as string, String(summary.n), stat(summary, 'p50'), stat(summary, 'p99'), stat(summary, 'max')];
    }),
  ).concat(
    `\n\nMax members active at once: ${p.maxConcurrency} (goal 1); rounds where the newcomer activated before the ` +
      `old active's deactivate callback: ${p.promotedFirst} of ${p.samples.length}.`,
  );
}

export function monitorTable(results: BenchResults): string {
  const us = results.contests.find((c) => c.system.kind === 'understudy');
  if (!us) return '';
  const graceful = summarize(us.handover.flatMap((h) => (h.monitor === undefined ? [] : [h.monitor])));
  const lapse = summarize(us.failover.flatMap((f) => (f.monitorLapse === undefined ? [] : [f.monitorLapse])));
  return table(
    ['monitor notice, ms', 'n', 'p50', 'p99', 'max'],
    [
      ['graceful: leave script (Redis time) → change event', graceful],
      ['crash: lease deadline → change event', lapse],
    ].map(([label, s]) => {
      const summary = s as Summary;
      return [label as string, String(summary.n), stat(summary, 'p50'), stat(summary, 'p99'), stat(summary, 'max')];
    }),
  );
}

export function costTable(results: BenchResults): string {
  const rows = results.sizes.map((c) => [
    c.plan.groups === 1 ? `1 group of ${c.members.toLocaleString('en-US')}` : c.plan.label,
    format(c.renewalsPerSecond),
    format(c.scriptUsBest),
    format(c.scriptUsMean),
    format(c.redisCpuUsPerRenewal),
    format(c.redisCorePercent),
    `${format(c.joinMs / 1000)} s${c.joinErrors ? ` (${c.joinErrors} attempts timed out and were retried)` : ''}`,
  ]);
  if (results.fleet) {
    const c = results.fleet;
    rows.push([
      `${c.plan.groups.toLocaleString('en-US')} groups × ${c.plan.perGroup} (${c.members.toLocaleString('en-US')} members)`,
      format(c.renewalsPerSecond),
      format(c.scriptUsBest),
      format(c.scriptUsMean),
      format(c.redisCpuUsPerRenewal),
      format(c.redisCorePercent),
      `${format(c.joinMs / 1000)} s${c.joinErrors ? ` (${c.joinErrors} attempts timed out and were retried)` : ''}`,
    ]);
  }
  return table(
    [
      'members',
      'renewals/s',
      'script µs/renewal (best window)',
      'script µs/renewal (mean)',
      'Redis CPU µs/renewal',
      'Redis CPU, % of a core',
      'join time',
    ],
    rows,
  );
}

export function drivenTable(results: BenchResults): string {
  return table(
    [
      'members in the group',
      'renewals/s',
      'script µs/renewal (best window)',
      'script µs/renewal (mean)',
      'Redis CPU µs/renewal',
      'commands per renewal',
      'steady replies',
    ],
    results.driven.map((c) => [
      c.plan.size.toLocaleString('en-US'),
      format(c.renewalsPerSecond),
      format(c.scriptUsBest),
      format(c.scriptUsMean),
      format(c.redisCpuUsPerRenewal),
      Object.values(c.nested)
        .reduce((s, n) => s + n.perRenewal, 0)
        .toFixed(1),
      // Results written before the steady reply have no share.
      c.steadyShare === undefined ? '–' : `${(c.steadyShare * 100).toFixed(1)} %`,
    ]),
  );
}

export function anatomyTable(results: BenchResults): string {
  const base = results.driven.at(-1);
  if (!base) return '';
  const names = [...new Set([...Object.keys(base.nested), ...Object.keys(base.hot.nested)])]
    .filter((name) => (base.nested[name]?.perRenewal ?? 0) >= 0.01 || (base.hot.nested[name]?.perRenewal ?? 0) >= 0.01)
    .sort((a, b) => (base.nested[b]?.usPerRenewal ?? 0) - (base.nested[a]?.usPerRenewal ?? 0));
  const total = (nested: DriverCost['nested']) => Object.values(nested).reduce((s, n) => s + n.usPerRenewal, 0);
  const rows = names.map((name) => [
    name.toUpperCase(),
    (base.nested[name]?.perRenewal ?? 0).toFixed(2),
    (base.nested[name]?.usPerRenewal ?? 0).toFixed(2),
    (base.hot.nested[name]?.usPerRenewal ?? 0).toFixed(2),
  ]);
  const command = sentWith(base).toUpperCase();
  const calls = Object.values(base.nested).reduce((s, n) => s + n.perRenewal, 0);
  rows.push([
    '**all commands inside the script**',
    calls.toFixed(2),
    total(base.nested).toFixed(2),
    total(base.hot.nested).toFixed(2),
  ]);
  const lua = mostlySteady(base)
    ? "the steady path's checks, KEYS and ARGV"
    : `${command === 'FCALL' ? 'the per-call part of lib.lua' : "lib.lua's definitions"}, cjson, tables`;
  rows.push([
    `**the rest: Lua (${lua}), ${command} itself**`,
    '–',
    (base.scriptUsMean - total(base.nested)).toFixed(2),
    (base.hot.scriptUs - total(base.hot.nested)).toFixed(2),
  ]);
  rows.push([`**whole renewal script (${command})**`, '1', base.scriptUsMean.toFixed(2), base.hot.scriptUs.toFixed(2)]);
  if (base.floor) {
    rows.push([
      'floor script: TIME, HGET, ZADD, ZRANGE of the first lease (same run)',
      '1',
      base.floor.scriptUsMean.toFixed(2),
      base.floor.hotUs.toFixed(2),
    ]);
    rows.push([
      '**renewal ÷ floor**',
      '–',
      (base.scriptUsMean / base.floor.scriptUsMean).toFixed(2),
      (base.hot.scriptUs / base.floor.hotUs).toFixed(2),
    ]);
  }
  const o = results.overhead;
  if (o) {
    rows.push([`EVALSHA of \`return 0\``, '–', '–', o.emptyUs.toFixed(2)]);
    rows.push([
      `EVALSHA of lib.lua + \`return 0\` (what the EVALSHA fallback pays on top)`,
      '–',
      '–',
      o.libUs.toFixed(2),
    ]);
  }
  return table(
    [
      `per renewal, group of ${base.plan.size.toLocaleString('en-US')} (driven)`,
      'calls',
      `µs, paced (${base.plan.rate.toLocaleString('en-US')}/s, one at a time)`,
      'µs, back to back (pipelines of 1,000)',
    ],
    rows,
  );
}

export function memberTable(results: BenchResults): string {
  const c = results.idle;
  if (!c) return '';
  return table(
    ['idle members in one process', 'CPU per member, % of a core', 'RSS per member', 'heap per member'],
    [
      [
        `${c.members.toLocaleString('en-US')} (H = ${c.plan.heartbeatMs} ms, A = ${c.plan.activationMs} ms)`,
        format(c.memberCpuPercentPerMember),
        `${format(c.rssKiBPerMember)} KiB`,
        `${format(c.heapKiBPerMember)} KiB`,
      ],
    ],
  );
}

export function targetTable(results: BenchResults): string {
  return table(
    ['target', 'goal', 'measured', 'verdict'],
    results.targets.map((t) => [t.what, t.target, t.measured, verdict(t.met)]),
  );
}

export function machineTable(results: BenchResults): string {
  const m = results.machine;
  return table(
    ['machine', ''],
    [
      ['CPU', cpuLabel(m)],
      ['memory', `${m.memoryGiB.toFixed(1)} GiB`],
      ['kernel', m.kernel],
      ['Node.js', m.node],
      ['redis-server', m.redis],
      ['etcd', m.etcd ?? 'not installed'],
      ['understudy measured', m.revision],
      [
        'load average (1, 5, 15 min)',
        `start ${results.load.start}; when measuring began ${results.load.measured}` +
          `${results.load.waitedS > 0 ? ` (after waiting ${Math.round(results.load.waitedS)} s${results.load.quiet ? '' : ', gave up waiting for < 0.8'})` : ''}; end ${results.load.end}`,
      ],
    ],
  );
}

/** The tables printed at the end of every run. */
export function consoleReport(results: BenchResults): string {
  return [
    `understudy benchmarks (${results.quick ? 'quick' : 'full'} run, ${Math.round(results.durationS)} s)`,
    machineTable(results),
    results.etcdNote,
    '## Crash failover (SIGKILL of the holder), ms',
    failoverTable(results),
    understudyFailoverDetail(results),
    '## Graceful handover (holder leaves), ms, and overlap',
    handoverTable(results),
    '## Ratios, understudy / peer (< 1: understudy is faster)',
    ratioTable(results),
    '## Preemption',
    preemptionTable(results),
    '## Monitor',
    monitorTable(results),
    '## Cost',
    costTable(results),
    drivenTable(results),
    anatomyTable(results),
    memberTable(results),
    results.ha ? haConsoleReport(results.ha) : '',
    results.queue ? queueConsoleReport(results.queue) : '',
    '## Targets',
    targetTable(results),
    ...(results.failures.length ? ['## Failed scenarios', results.failures.join('\n')] : []),
  ]
    .filter(Boolean)
    .join('\n\n');
}
