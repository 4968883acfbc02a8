import { writeFileSync } from 'node:fs';
import { haMarkdown } from './ha-report.js';
import { queueMarkdown } from './queue-report.js';
import { quorumMarkdown } from './quorum-report.js';
import {
  anatomyTable,
  type BenchResults,
  costTable,
  drivenTable,
  failoverTable,
  handoverTable,
  machineTable,
  memberTable,
  monitorTable,
  preemptionTable,
  ratioTable,
  targetTable,
  understudyFailoverDetail,
} from './report.js';
import { libShare, mostlySteady, sentWith } from './scenarios/driver.js';
import { DRIVEN_LEASE } from './settings.js';
import { cdfPoints, plot } from './svg.js';
import { table } from './table.js';

/** Floor for log axes: overshoots at or below it (timers can fire a hair early) are drawn on it. */
const LOG_FLOOR_MS = 0.1;

/** Writes the plots into `dir`; returns their file names and titles. */
export function writePlots(results: BenchResults, dir: URL): { file: string; title: string }[] {
  const plots: { file: string; title: string; svg: string }[] = [];
  const A = results.lease.activationMs;
  plots.push({
    file: 'failover-total-cdf.svg',
    title: 'Crash failover: SIGKILL → standby holds',
    svg: plot({
      title: `Crash failover: SIGKILL of the holder → the standby holds (A = TTL = ${A} ms)`,
      xLabel: 'ms after the kill',
      yLabel: 'fraction of failovers',
      series: results.contests.map((c) => ({
        name: c.system.label,
        points: cdfPoints(c.failover.map((f) => f.total)),
      })),
      marks: [{ x: A, label: `A = ${A} ms` }],
    }),
  });
  plots.push({
    file: 'failover-overshoot-cdf.svg',
    title: 'Crash failover: overshoot past the lease deadline',
    svg: plot({
      title: 'Crash failover: time past the dead holder’s lease deadline',
      xLabel: `ms past the deadline (log scale; ≤ ${LOG_FLOOR_MS} ms drawn at ${LOG_FLOOR_MS})`,
      yLabel: 'fraction of failovers',
      logX: true,
      series: results.contests.map((c) => ({
        name: c.system.label,
        points: cdfPoints(c.failover.map((f) => Math.max(LOG_FLOOR_MS, f.overshoot))),
      })),
      marks: [{ x: 5, label: 'target 5 ms' }],
    }),
  });
  plots.push({
    file: 'handover-cdf.svg',
    title: 'Graceful handover: leave → standby holds',
    svg: plot({
      title: 'Graceful handover: the holder leaves → the standby holds',
      xLabel: 'ms (log scale)',
      yLabel: 'fraction of handovers',
      logX: true,
      series: results.contests.map((c) => ({
        name: c.system.label,
        points: cdfPoints(c.handover.map((h) => Math.max(LOG_FLOOR_MS, h.total))),
      })),
      marks: [
        { x: 2, label: 'p50 target' },
        { x: 10, label: 'p99 target' },
      ],
    }),
  });
  const us = results.contests.find((c) => c.system.kind === 'understudy');
  if (us || results.preemption) {
    plots.push({
      file: 'understudy-cdf.svg',
      title: 'understudy: preemption and monitor notice',
      svg: plot({
        title: 'understudy: preemption and monitor notice',
        xLabel: 'ms (log scale)',
        yLabel: 'fraction of rounds',
        logX: true,
        series: [
          {
            name: 'preemption: joinGroup() → active',
            points: cdfPoints((results.preemption?.samples ?? []).map((s) => Math.max(LOG_FLOOR_MS, s.total))),
          },
          {
            name: 'monitor: graceful change → event',
            points: cdfPoints((us?.handover ?? []).flatMap((h) => (h.monitor === undefined ? [] : [h.monitor]))),
          },
          {
            name: 'monitor: lease deadline → event',
            points: cdfPoints(
              (us?.failover ?? []).flatMap((f) => (f.monitorLapse === undefined ? [] : [f.monitorLapse])),
            ),
          },
        ],
      }),
    });
  }
  const sizes = results.sizes;
  const driven = results.driven;
  plots.push({
    file: 'cost-vs-group-size.svg',
    title: 'Redis cost of a renewal against group size',
    svg: plot({
      title: 'Redis cost of one renewal against group size',
      xLabel: 'members in the group (log scale)',
      yLabel: 'µs per renewal',
      logX: true,
      markers: true,
      series: [
        { name: 'driven: script time, best window', points: driven.map((c) => [c.plan.size, c.scriptUsBest]) },
        { name: 'driven: script time, mean', points: driven.map((c) => [c.plan.size, c.scriptUsMean]) },
        { name: 'driven: Redis process CPU', points: driven.map((c) => [c.plan.size, c.redisCpuUsPerRenewal]) },
        { name: 'real members: script time, mean', points: sizes.map((c) => [c.members, c.scriptUsMean]) },
        { name: 'real members: Redis process CPU', points: sizes.map((c) => [c.members, c.redisCpuUsPerRenewal]) },
      ],
    }),
  });
  for (const p of plots) writeFileSync(new URL(p.file, dir), p.svg);
  return plots.map(({ file, title }) => ({ file, title }));
}

export function markdownReport(r: BenchResults): string {
  const A = r.lease.activationMs;
  const H = r.lease.heartbeatMs;
  const plot = (file: string) => {
    const p = r.plots.find((x) => x.file === file);
    return p ? `![${p.title}](bench/${p.file})` : '';
  };
  const etcd = r.contests.find((c) => c.system.kind === 'etcd');
  const problems = [
    ...r.contests.flatMap((c) => c.problems.map((p) => `- ${c.system.label}: ${p}`)),
    ...r.failures.map((f) => `- ${f}`),
  ];
  return `${[
    '# Benchmarks: understudy and its peers',
    `Generated by \`${r.command}\` on ${r.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC ` +
      `(${Math.round(r.durationS / 60)} min). Every figure below comes from that one run${separateRuns(r)}; nothing is typed in by hand. ` +
      'To reproduce (Debian / Ubuntu, as root):',
    '```sh\napt-get update && apt-get install -y redis-server etcd-server   # etcd is optional: skipped with a note if missing\n' +
      'pnpm install --frozen-lockfile\npnpm bench --wait-quiet   # the full run: writes this file and docs/bench/*.svg\n' +
      'pnpm bench --quick        # small counts, under 5 minutes; prints the tables only (without Sentinel and Cluster, and without the queues)\n' +
      'pnpm bench --only ha      # only the failovers on Sentinel and Cluster and the durability trade; writes them into this file\n' +
      'pnpm bench --quick --only ha   # the same with one failover per case, about 3 minutes; prints only\n' +
      "pnpm bench --only queue   # only understudy's queue beside BullMQ, the group feed and Redis instructions per task; writes them into this file\n" +
      'pnpm bench --quick --only queue   # the same with smaller counts, about 6 minutes; prints only\n' +
      'pnpm bench --only quorum  # only quorum mode over 30 / 100 ms links, beside Sentinel and redlock; writes it into this file\n' +
      'pnpm bench --quick --only quorum  # the same with small counts; prints only\n' +
      'pnpm bench:join          # members of one group joined in one process, into docs/bench/results.json; then pnpm bench --report-only\n' +
      'pnpm bench:renewal       # the steady-state renewal beside the floor script, into docs/bench/results.json; then pnpm bench --report-only\n' +
      'pnpm bench:queue-instructions --system understudy   # one count of Redis instructions per queue task (redis-server under callgrind; also bullmq-tuned, --task-ms 5); prints only\n```',
    'Benchmarks are not tests: nothing here fails a build. The run prints each target next to the measured figure and flags misses.',
    '## Machine',
    machineTable(r),
    '## The peers',
    [
      '- **redlock**: `@sesamecare-oss/redlock` 1.4.0 rather than `redlock` 4.2.0. Both run the same algorithm (a key set with NX PX; validity = start + TTL − drift). ' +
        "4.2.0 is the original's last stable release (2020): callbacks and Bluebird, no types of its own; the rewrite that followed (5.0) never left beta. " +
        'The fork is that rewrite, maintained: TypeScript, promises, and it takes the ioredis 6 client the rest of the workspace uses. ' +
        '(Its package.json says "UNLICENSED" while its LICENSE.md is the original MIT licence.) ' +
        "redlock has no leader election, so the loop is the usual one: `acquire` (no retries inside), retry after redlock's default 200 ± 100 ms, `extend` every H, stop believing when an extension fails or `lock.expiration` passes.",
      "- **redis-semaphore** 5.8.0: `Mutex`, and `Semaphore` with 2 permits (N = 2; understudy's own figures come from groups with goal 1). `acquire()` polls every 10 ms (its default `retryInterval`), the library refreshes every `refreshInterval` and calls `onLockLost` when a refresh finds the lock gone. " +
        "The semaphore's zset scores are the holders' own `Date.now()`: its expiry depends on the clients' clocks agreeing.",
      "- **etcd**: the `etcd3` 1.1.2 client's `Election` / `Campaign` against `etcd-server` from Debian, started by the benchmark. A candidate watches the key ahead of it; its lease TTL is whole seconds.",
    ].join('\n'),
    '## How it was measured',
    [
      `- **One Redis** (\`startRedis()\` from the test kit: a private \`redis-server\` on a free loopback port, no persistence) serves every system in the run. ` +
        `Every holder and standby is a **process of its own** (Node, started before anything is timed), printing events with \`process.hrtime\` stamps (CLOCK_MONOTONIC, comparable across processes).`,
      `- **Same lease for all**: understudy A = ${A} ms, H = ${H} ms; redlock lock TTL ${A} ms, extended every ${H} ms; redis-semaphore \`lockTimeout\` ${A} ms, \`refreshInterval\` ${H} ms; etcd lease TTL ${A / 1000} s (the client sends keepalives every TTL / 3, not configurable).`,
      `- ${r.etcdNote}`,
      "- **Crash failover**: SIGKILL one holder (at a random phase of its renewals); time from the signal to the standby's acquire / `onActivate` callback. " +
        "The dead holder's lease deadline is read right after the kill: understudy's `leases` zset score, the lock key's `PTTL` (redlock, Mutex), " +
        "the semaphore zset score + TTL (redis-semaphore scores with the holder's `Date.now()`), and for etcd the last acknowledged keepalive + TTL. " +
        'Overshoot = callback − deadline (Redis and wall clocks are mapped onto hrtime through a `TIME` round trip before every round). ' +
        "For understudy the overshoot is also computed on Redis's clock alone: the activation's entry in the group's log stream minus the zset deadline (both whole ms).",
      "- **Graceful handover**: the holder is told to leave (understudy `leave()`, redlock `release()`, redis-semaphore `release()`, etcd `resign()`); time to the standby's acquire callback. The holder then joins again as the standby.",
      '- **Overlap**: every process records when it believed it held (acquired → released / lost / its death); the intervals of all rounds are merged and the most simultaneous holders counted.',
      "- **Standbys**: understudy arms a timer at the known deadline and is told of releases by pub/sub; redlock and redis-semaphore standbys poll at their libraries' default retry intervals; etcd candidates watch the key ahead of them.",
      '- **p99** is the nearest-rank 99th percentile: with fewer than 100 samples it is the largest one or close to it.',
    ].join('\n'),
    '## Targets',
    targetTable(r),
    '## Crash failover',
    `Milliseconds. A = TTL = ${A} ms; a holder killed right after renewing takes about A, one killed just before renewing about A − H.`,
    failoverTable(r),
    understudyFailoverDetail(r),
    plot('failover-total-cdf.svg'),
    plot('failover-overshoot-cdf.svg'),
    '## Graceful handover and overlap',
    'Milliseconds, over all handovers; the overlap columns cover every failover and handover of the run.',
    handoverTable(r),
    plot('handover-cdf.svg'),
    '## Ratios, understudy / peer',
    'Below 1: understudy is faster. Overshoot ratios use the callback overshoot (hrtime) for every system.',
    ratioTable(r),
    '## Preemption (understudy)',
    'A member of weight 20 joins a group whose active member has weight 10; the heavy member leaves again between rounds. The peers have no weights.',
    preemptionTable(r),
    '## Monitor notice (understudy)',
    "The monitor (`monitorGroup`) runs in the benchmark process. The peers have no passive observer comparable to it (etcd's `ElectionObserver` was not measured).",
    monitorTable(r),
    plot('understudy-cdf.svg'),
    r.ha ? haMarkdown(r.ha) : '',
    r.queue ? queueMarkdown(r.queue) : '',
    r.quorum ? quorumMarkdown(r.quorum) : '',
    '## Cost',
    `Redis's share is read from \`INFO commandstats\` (the script's own time, ${r.driven[0] && sentWith(r.driven[0]) === 'evalsha' ? '`EVALSHA` usec / calls: this run predates the function library' : "`FCALL` usec / calls: members call core's function library"}) and \`INFO cpu\` (the Redis process's user + system CPU, network included), ` +
      `over ${r.driven[0]?.plan.windows ?? 0} windows of ${(r.driven[0]?.plan.windowMs ?? 0) / 1000} s on fresh statistics (\`CONFIG RESETSTAT\`) after the groups settled. The run flushes Redis between groups.`,
    '### Against group size (driven by the benchmark)',
    "The benchmark joins n members with core's own `join` script and renews them round robin with core's `renew` script — the same commands and arguments a member sends — " +
      `at the same ${DRIVEN_LEASE.rate.toLocaleString('en-US')} renewals/s for every size, so only the group size differs (A = ${DRIVEN_LEASE.activationMs / 1000} s: every member of the largest group renews in time). ` +
      'For 10,000 real members of one group in one process, see "Joining a large group" below.',
    drivenTable(r),
    plot('cost-vs-group-size.svg'),
    '### Real members',
    "Members in child processes (H = 1 s, A = 3 s, understudy's defaults) sharing one lease connection per process. " +
      'The last row is many small groups; the target is stated for 10,000 members in 1,000 groups, so the targets table computes Redis CPU at 10,000 renewals/s from the CPU per renewal measured here ' +
      '(the member processes, not Redis, set the rate that row reached: see "renewals/s"). ' +
      "At a few renewals a second, Redis's own background work (its 10 Hz server cron, key expiry) dominates `INFO cpu`, which is why small groups show a high CPU per renewal here; the driven table compares sizes at one rate.",
    costTable(r),
    joiningText(r),
    '### Where a renewal spends its time',
    anatomyTable(r),
    anatomyText(r),
    '### A member process',
    memberTable(r),
    ...(problems.length ? ['## Problems seen during the run', problems.join('\n')] : []),
    ...(etcd?.grantedTtlMs ? [`etcd granted a lease TTL of ${etcd.grantedTtlMs / 1000} s (keepalive replies).`] : []),
  ]
    .filter(Boolean)
    .join('\n\n')}\n`;
}

/** Which figures name a run of their own (measured by `--only ha`, `--only queue` or `pnpm bench:join`). */
function separateRuns(r: BenchResults): string {
  const own = [
    ...(r.ha && r.ha.run.command !== r.command ? ['Sentinel and Cluster'] : []),
    ...(r.queue && r.queue.run.command !== r.command ? ['distributed queues'] : []),
    ...(r.quorum && r.quorum.run.command !== r.command ? ['quorum mode'] : []),
  ];
  const others = own.length ? [`the sections on ${own.join(' and on ')}, which name the run that measured them`] : [];
  if (r.joins?.length) others.push('the `pnpm bench:join` figures of "Joining a large group"');
  if (r.steady) others.push('the `pnpm bench:renewal` figures of "The steady state against the floor"');
  return others.length ? `, except ${others.join(', and ')}` : '';
}

/** The paragraph under the renewal's anatomy, with the figures of this run. */
function anatomyText(r: BenchResults): string {
  const base = r.driven.at(-1);
  const o = r.overhead;
  if (!base || !o) return '';
  const sum = (
    nested: Record<string, { perRenewal: number; usPerRenewal: number }>,
    key: 'perRenewal' | 'usPerRenewal',
  ) => Object.values(nested).reduce((s, n) => s + n[key], 0);
  const lib = o.libUs - o.emptyUs;
  const nestedHot = sum(base.hot.nested, 'usPerRenewal');
  const rest = base.hot.scriptUs - nestedHot - o.emptyUs;
  const f = (n: number) => n.toFixed(1);
  const floor = base.floor;
  // A run before the steady reply (issue 15): every renewal ran the full script.
  const measuredSteady = base.steadyShare !== undefined;
  const steady = measuredSteady
    ? ` (${((base.steadyShare ?? 0) * 100).toFixed(1)} % of them answered with the steady reply)`
    : '';
  return [
    `Paced like real members (one renewal at a time), a renewal took ${f(base.scriptUsMean)} µs of script time${steady}; back to back the same script takes ${f(base.hot.scriptUs)} µs. ` +
      'The difference is the machine, not the script: a lone call finds its caches cooled by everything else that ran since the last one, so the paced figure is what a deployment pays.',
    ...(floor
      ? [
          `**Against the floor.** The floor script does what any renewal must (TIME, HGET of the member's record, ZADD of its lease, ZRANGE of the first lease), sent the same way, measured in the same run on the same group, in paced windows that take turns with the renewal's: ${f(floor.scriptUsMean)} µs paced, ${f(floor.hotUs)} µs back to back. ` +
            `**Renewal ÷ floor: ${(base.scriptUsMean / floor.scriptUsMean).toFixed(2)} paced, ${(base.hot.scriptUs / floor.hotUs).toFixed(2)} back to back.**`,
        ]
      : []),
    sentWith(base) === 'evalsha'
      ? `Of the back-to-back time (this run sent the scripts with EVALSHA, before the function library): **${f(lib)} µs** rebuild lib.lua's ~30 \`local function\`s on every call (\`lib.lua + return 0\` minus \`return 0\`); **${f(nestedHot)} µs** are the ${sum(base.hot.nested, 'perRenewal').toFixed(0)} commands the script runs (\`commandstats\` counts commands inside scripts); ` +
        `**${f(o.emptyUs)} µs** is the bare EVALSHA; the remaining **${f(rest - lib)} µs** is the Lua work in between (cjson decoding of the member and slot records, building the 15-field reply, \`string.format\`, and the garbage all of it leaves for Lua's collector).`
      : `Of the back-to-back time: **${f(nestedHot)} µs** are the ${sum(base.hot.nested, 'perRenewal').toFixed(0)} commands the script runs (\`commandstats\` counts commands inside scripts); ` +
        `**${f(o.emptyUs)} µs** is a bare call; the remaining **${f(rest)} µs** is the Lua work in between (${
          mostlySteady(base)
            ? "in the steady path: the seal's comparison (a holder's and the next in line's checks of the config values), the checks of the record's and the slot's tokens, the 23 KEYS and ARGV strings a renewal carries, the pcall around it, and the garbage all of it leaves for Lua's collector"
            : "lib.lua's per-call values, cjson decoding of the member and slot records, building the 15-field reply, `string.format`, and the garbage all of it leaves for Lua's collector"
        }). ` +
        `The members call the scripts as functions of one library loaded once per server, so lib.lua's ~30 \`local function\`s are not rebuilt per call; where they run the scripts instead (EVALSHA: no functions, or not permitted), each call also pays **${f(lib)} µs** to rebuild them (\`lib.lua + return 0\` minus \`return 0\`). ` +
        '`pnpm bench:transports` measures the renewal both ways side by side.',
    measuredSteady
      ? "**The steady state.** A renewal where nothing changed (the group's version and incarnation are the ones the member sent back, no quarantine, no lapsed lease, nothing to reconcile; the next in line only while every slot is held and P = 0) takes the fast path at the top of `lua/renew.lua`, before lib.lua's code: a standby reads the config's seal (one field that the scripts write once they have finished a change; a holder and the next in line read the config's fields and check each), it checks that every key exists (one EXISTS), the member's record, its slot and its own lease by the exact tokens cjson wrote, decodes no JSON, and answers with the server's time alone (the next in line also with the holders' earliest lease deadline); the member keeps the rest of its view. " +
        'Every other renewal runs the full script and gets the full view. What is left: the checks S6 needs (7 commands for a standby, 8 for a holder, 10 for the next in line, where the floor runs 4), and the visible heartbeat key, which operators rely on.'
      : 'This run predates the steady reply: every renewal ran the full script and got the full 15-field view.',
    steadyText(r),
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** The steady-state renewal beside the floor script, from `pnpm bench:renewal` (a run of its own). */
function steadyText(r: BenchResults): string {
  const run = r.steady;
  if (!run) return '';
  const rebuild = run.overhead.libUs - run.overhead.emptyUs;
  const f = (n: number) => n.toFixed(2);
  const rows = run.costs.flatMap((c) => {
    const floor = c.floor;
    if (!floor) return [];
    return [
      [
        `${c.plan.size.toLocaleString('en-US')}, ${(c.plan.transport ?? 'fcall').toUpperCase()}`,
        f(c.scriptUsMean),
        f(floor.scriptUsMean),
        (c.scriptUsMean / floor.scriptUsMean).toFixed(2),
        f(c.hot.scriptUs),
        f(floor.hotUs),
        (c.hot.scriptUs / floor.hotUs).toFixed(2),
        f(libShare(c, rebuild)),
        `${((c.steadyShare ?? 0) * 100).toFixed(1)} %`,
      ],
    ];
  });
  const last = run.costs.filter((c) => (c.plan.transport ?? 'fcall') === 'fcall').at(-1) ?? run.costs.at(-1);
  const commands = Object.entries(last?.hot.nested ?? {})
    .filter(([, n]) => n.perRenewal >= 0.01)
    .sort(([, a], [, b]) => b.usPerRenewal - a.usPerRenewal)
    .map(
      ([name, n]) =>
        `${name.toUpperCase()}${n.perRenewal >= 1.5 ? ` ×${n.perRenewal.toFixed(0)}` : ''} ${f(n.usPerRenewal)}`,
    );
  return [
    `**The steady state against the floor, \`${run.command}\`** (a run of its own: driven groups at ${DRIVEN_LEASE.rate.toLocaleString('en-US')} renewals/s, windows of the renewal and of the floor script taking turns, then 1,000 renewals back to back (in pipelines of up to 1,000, each member once per pipeline and told by its last reply, as a member is); at ${run.revision}, ${run.at}; load average ${run.load.start} at the start, ${run.load.end} at the end). ` +
      `Under EVALSHA, lib.lua's rebuild (${f(rebuild)} µs here) is paid only by the renewals that run the full script (the steady reply returns before lib.lua's code); the last but one column is their share, already in the renewal's time.`,
    table(
      [
        'driven group, transport',
        'renewal µs, paced',
        'floor µs, paced',
        'renewal ÷ floor, paced',
        'renewal µs, back to back',
        'floor µs, back to back',
        'renewal ÷ floor, back to back',
        "lib.lua's rebuild in it, µs",
        'steady replies',
      ],
      rows,
    ),
    `The steady renewal's commands (${last ? `group of ${last.plan.size.toLocaleString('en-US')}, ${(last.plan.transport ?? 'fcall').toUpperCase()}, ` : ''}back to back), µs: ${commands.join(', ')}. The rest of a call is what Redis spends around each \`redis.call\` from Lua and the bare call.`,
  ].join('\n\n');
}

/** How long members of one group take to join one process, with this run's (or `pnpm bench:join`'s) figures. */
function joiningText(r: BenchResults): string {
  const parts = [
    "**Joining a large group.** A process subscribes once to a group's announcements, however many of the group's members it runs; the shared subscriber parses each announcement once, indexes its changes by member id, and hands it to every member of the process, whose own check (does it name me, is there a gap) is O(1). " +
      'A join announces once, so the k-th member to join a group still makes every member already in that process look at a message: constant work each, where each used to parse it.',
  ];
  for (const j of r.joins ?? []) {
    const runs = j.runs.map(
      (c) =>
        `${c.members.toLocaleString('en-US')} in ${(c.joinMs / 1000).toFixed(2)} s (then ${c.memberCpuPercentPerMember.toFixed(4)} % of a core per member, ${Math.round(c.renewalsPerSecond).toLocaleString('en-US')} renewals/s` +
        `${c.failedRenewals ? `, ${c.failedRenewals.toLocaleString('en-US')} renewals failed` : ''}${c.joinErrors ? `, ${c.joinErrors} join attempts timed out and were retried` : ''})`,
    );
    parts.push(
      `\`${j.command}\` (one group, one process, 20 joins in flight, H = ${j.heartbeatMs / 1000} s, A = 3 H; load average ${j.load.start} before, ${j.load.end} after): ` +
        `${runs.join(', ')}; ${j.runs.reduce((s, c) => s + c.warnings, 0)} process warnings.`,
    );
  }
  const one = r.sizes.filter((c) => c.plan.groups === 1 && c.joinMs > 0);
  const small = one.find((c) => c.members === 100);
  const large = one.find((c) => c.members === 1000);
  if (small && large) {
    parts.push(
      `In the header's run, 100 members of one group joined in ${(small.joinMs / 1000).toFixed(2)} s and 1,000 in ${(large.joinMs / 1000).toFixed(2)} s` +
        (r.fleet
          ? `, and ${r.fleet.members.toLocaleString('en-US')} members in ${r.fleet.plan.groups.toLocaleString('en-US')} groups of ${r.fleet.plan.perGroup} in ${(r.fleet.joinMs / 1000).toFixed(1)} s.`
          : '.'),
    );
  }
  return parts.join(' ');
}
