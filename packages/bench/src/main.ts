// `pnpm bench [--quick] [--wait-quiet] [--only ha|queue|quorum]`: understudy and its peers, in one
// run, on one Redis, with the same lease settings, then the failover of a group on Sentinel and
// Cluster, then understudy's queue beside BullMQ and the group feed, then quorum mode over WAN links.
// Prints the tables; a full run also writes docs/BENCHMARKS.md and the plots in docs/bench/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type RedisServer, redisServerBinary, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { mapClocks, sleep } from './clock.js';
import type { BenchContext } from './context.js';
import { ETCD_INSTALL_HINT, ETCD_TIMING, type EtcdServer, etcdBinary, killEtcdNow, startEtcd } from './etcd-server.js';
import { haConsoleReport } from './ha-report.js';
import { describeMachine, readLoadAverage } from './machine.js';
import { markdownReport, writePlots } from './markdown.js';
import { killAllChildren, runEntry } from './processes.js';
import { queueConsoleReport, queueTargets } from './queue-report.js';
import { quorumConsoleReport, quorumTargets } from './quorum-report.js';
import { type BenchResults, consoleReport } from './report.js';
import { type ContestResult, runContest } from './scenarios/contest.js';
import { type CrowdCost, measureCrowd, measureScriptOverhead } from './scenarios/cost.js';
import { type DriverCost, measureDriven } from './scenarios/driver.js';
import { HA_GOAL } from './scenarios/ha.js';
import { type HaResults, runHaSuite } from './scenarios/ha-suite.js';
import { runPreemption } from './scenarios/preemption.js';
import type { QueueResults } from './scenarios/queue.js';
import { QUORUM_FULL, QUORUM_QUICK, type QuorumResults, runQuorumSuite } from './scenarios/quorum.js';
import { COST_LEASE, DRIVEN_LEASE, FULL, QUEUE_FULL, QUEUE_QUICK, QUICK } from './settings.js';
import { summarize } from './stats.js';
import { SYSTEMS } from './systems.js';
import { check, format, type TargetCheck } from './targets.js';

const argv = process.argv.slice(2);
const args = new Set(argv);
if (args.has('--help')) {
  process.stdout.write(
    'pnpm bench [--quick] [--wait-quiet] [--only ha|queue|quorum] [--report-only]\n' +
      '  --quick        small counts, under 5 minutes; prints the tables, writes nothing; leaves out the\n' +
      '                 failovers on Sentinel and Cluster, the queues and quorum mode unless given --only\n' +
      '  --wait-quiet   first wait (up to 45 min) until the 1-minute load average is below 0.8\n' +
      '  --only ha      only the failovers on Sentinel and Cluster and the durability trade; without --quick\n' +
      '                 they replace the HA figures in docs/bench/results.json and the report is written again\n' +
      "  --only queue   only understudy's queue beside BullMQ (default and tuned locks): throughput with 1, 4\n" +
      '                 and 16 workers, enqueue → start, re-delivery after SIGKILL, a stalled handler, Redis\n' +
      '                 CPU per task; then the group feed: publish → onMessage, failover resume; then Redis\n' +
      '                 instructions per task under callgrind, where valgrind is installed (quick: about 6\n' +
      '                 minutes; full: about 15); without --quick it replaces the queue and feed figures in\n' +
      '                 docs/bench/results.json and the report is written again\n' +
      '  --only quorum  only quorum mode (K = 3 servers behind 30 ms and 100 ms links): crash failover,\n' +
      '                 handover and the loss of one region, beside a Sentinel set and a redlock loop (full: about\n' +
      '                 6 minutes); without --quick it replaces the quorum figures in docs/bench/results.json\n' +
      '  --report-only  measure nothing: write docs/BENCHMARKS.md and the plots again from docs/bench/results.json\n',
  );
  process.exit(0);
}
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
if (argv.includes('--only') && only !== 'ha' && only !== 'queue' && only !== 'quorum') {
  process.stderr.write(
    `pnpm bench: --only takes "ha", "queue" or "quorum" (the families that can run alone), not ${JSON.stringify(only)}\n`,
  );
  process.exit(2);
}
const quick = args.has('--quick');
const settings = quick ? QUICK : FULL;
const docs = new URL('../../../docs/', import.meta.url);
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const progress = (line: string) => process.stderr.write(`[${elapsed()}] ${line}\n`);

// Everything started here stops on the way out: on success, failure, SIGINT or SIGTERM.
let server: RedisServer | undefined;
let etcd: EtcdServer | undefined;
let redis: Redis | undefined;
const onSignal = (signal: NodeJS.Signals) => {
  progress(`${signal}: stopping every process the benchmark started`);
  killAllChildren();
  killEtcdNow();
  // The test kit's exit guard SIGKILLs its redis-server on process exit.
  process.exit(signal === 'SIGINT' ? 130 : 143);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

/** Scenarios that failed: the run goes on without them, and the report lists them. */
const failures: string[] = [];

async function attempt<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    const message = `${what} failed: ${error instanceof Error ? error.message : String(error)}`;
    failures.push(message);
    progress(message);
    return undefined;
  }
}

async function waitForQuiet(): Promise<{ waitedS: number; quiet: boolean }> {
  const begin = performance.now();
  for (;;) {
    const one = Number(readLoadAverage().split(' ')[0]);
    if (one < 0.8) return { waitedS: (performance.now() - begin) / 1000, quiet: true };
    if (performance.now() - begin > 45 * 60_000) return { waitedS: (performance.now() - begin) / 1000, quiet: false };
    progress(`load average ${readLoadAverage()}: waiting for the 1-minute load to drop below 0.8`);
    await sleep(30_000);
  }
}

async function main(): Promise<void> {
  const loadStart = readLoadAverage();
  const wait = args.has('--wait-quiet') ? await waitForQuiet() : { waitedS: 0, quiet: true };
  const loadMeasured = readLoadAverage();
  const etcdBin = etcdBinary();
  const machine = describeMachine(redisServerBinary(), etcdBin);
  progress(`machine: ${machine.cpuModel}, ${machine.nproc} cores; load ${loadMeasured}`);

  server = await startRedis();
  redis = new Redis(server.url, { connectionName: 'bench' });
  let etcdNote: string;
  if (etcdBin) {
    etcd = await startEtcd(etcdBin);
    etcdNote =
      `etcd ${etcd.version}, one node on loopback, data in ${etcd.dataDir.startsWith('/dev/shm') ? 'tmpfs' : 'a temporary directory'}, ` +
      `--heartbeat-interval ${ETCD_TIMING.heartbeatMs} --election-timeout ${ETCD_TIMING.electionTimeoutMs}: ` +
      `its minimum lease TTL is then ${ETCD_TIMING.minTtlSeconds} s (2 s at etcd's defaults).`;
    progress(etcdNote);
  } else {
    etcdNote = `etcd SKIPPED: ${ETCD_INSTALL_HINT}`;
    progress(`NOTE: ${etcdNote}`);
  }
  const context: BenchContext = {
    server,
    redis,
    clocks: await mapClocks(redis),
    lease: settings.lease,
    etcdHosts: etcd ? [etcd.clientUrl] : undefined,
    progress,
  };

  const contests: ContestResult[] = [];
  for (const system of SYSTEMS) {
    if (system.kind === 'etcd' && !etcd) continue;
    progress(`── ${system.label}: ${settings.failoverRounds} crash failovers, ${settings.handoverRounds} handovers`);
    contests.push(
      await runContest(context, system, { failover: settings.failoverRounds, handover: settings.handoverRounds }),
    );
  }
  progress(`── understudy: ${settings.preemptionRounds} preemptions`);
  const preemption = await attempt('preemption', () => runPreemption(context, settings.preemptionRounds));

  // The cost runs come last, on a Redis nothing else uses any more.
  progress('── cost: renewals of groups of growing size');
  const sizes: CrowdCost[] = [];
  for (const size of settings.groupSizes) {
    const cost = await attempt(`cost of a group of ${size}`, () =>
      measureCrowd(context, {
        label: `group${size}`,
        groups: 1,
        perGroup: size,
        processes: 1,
        ...COST_LEASE,
        windows: settings.costWindows,
        windowMs: settings.costWindowMs,
      }),
    );
    if (!cost) continue;
    sizes.push(cost);
    progress(
      `cost: group of ${size}: ${cost.scriptUsMean.toFixed(1)} µs of script time per renewal, ${cost.renewalsPerSecond.toFixed(0)} renewals/s`,
    );
  }
  progress('── cost: renewal scripts driven by the benchmark, groups up to 10,000');
  const driven: DriverCost[] = [];
  for (const size of settings.drivenSizes) {
    const { heartbeatMs, activationMs, rate } = DRIVEN_LEASE;
    const cost = await attempt(`driven group of ${size}`, () =>
      measureDriven(context, {
        size,
        rate,
        heartbeatMs,
        activationMs,
        windows: settings.costWindows,
        windowMs: settings.costWindowMs,
      }),
    );
    if (!cost) continue;
    driven.push(cost);
    progress(
      `cost: driven group of ${size}: ${cost.scriptUsMean.toFixed(1)} µs of script time per renewal at ${cost.renewalsPerSecond.toFixed(0)} renewals/s`,
    );
  }
  const f = settings.fleet;
  progress(`── cost: ${f.groups} groups × ${f.perGroup} members`);
  const fleet = await attempt('the fleet of small groups', () =>
    measureCrowd(context, {
      label: 'fleet',
      groups: f.groups,
      perGroup: f.perGroup,
      processes: f.processes,
      heartbeatMs: f.heartbeatMs,
      activationMs: f.activationMs,
      windows: settings.costWindows,
      windowMs: settings.costWindowMs,
    }),
  );
  if (fleet) progress(`cost: ${fleet.members} members: Redis at ${fleet.redisCorePercent.toFixed(1)} % of a core`);
  progress('── cost: what a script pays before its first line of work');
  const overhead = await attempt('script overhead', () => measureScriptOverhead(context, settings.overheadCalls));
  // The HA family runs on topologies of its own, after everything that shares the one Redis;
  // a quick run leaves it out (`--quick --only ha` runs it alone) to stay within 5 minutes.
  const ha = quick ? undefined : await runHa(machine.revision);
  const queue = quick ? undefined : await runQueues(machine.revision);
  const quorum = quick ? undefined : await runQuorum(machine.revision);

  const results: BenchResults = {
    quick,
    command: command(),
    startedAt: new Date(Date.now() - (performance.now() - started)),
    durationS: (performance.now() - started) / 1000,
    machine,
    load: { start: loadStart, measured: loadMeasured, end: readLoadAverage(), ...wait },
    lease: settings.lease,
    etcdNote,
    contests,
    preemption,
    sizes,
    driven,
    fleet,
    idle: sizes.find((c) => c.members === 1000),
    overhead,
    ...(ha ? { ha } : {}),
    ...(queue ? { queue } : {}),
    ...(quorum ? { quorum } : {}),
    targets: [],
    plots: [],
    failures,
  };
  // The figures of `pnpm bench:join` and `pnpm bench:renewal` come from their own runs, which
  // name themselves in the report: a full run keeps them.
  if (!quick && existsSync(new URL('bench/results.json', docs))) {
    const { joins, steady } = loadResults();
    if (joins) results.joins = joins;
    if (steady) results.steady = steady;
  }
  results.targets = targets(results);
  process.stdout.write(`\n${consoleReport(results)}\n`);
  if (!quick) {
    mkdirSync(new URL('bench/', docs), { recursive: true });
    // The raw figures, so the report can be written again without measuring again.
    writeFileSync(new URL('bench/results.json', docs), `${JSON.stringify(results, null, 2)}\n`);
    progress('wrote docs/bench/results.json');
    writeReport(results);
  }
}

function command(): string {
  return ['pnpm bench', ...argv].join(' ');
}

function runHa(revision: string): Promise<HaResults> {
  progress(
    `── HA: ${settings.ha.rounds} master losses per case, ${settings.ha.handovers} handovers and ${settings.ha.rollbacks} lost grants per durability mode`,
  );
  return runHaSuite(settings.ha, { command: command(), revision }, progress);
}

async function runQueues(revision: string): Promise<QueueResults> {
  // Loaded here: BullMQ and the queue's workers only when the family runs.
  const { runQueueSuite } = await import('./scenarios/queue.js');
  const q = quick ? QUEUE_QUICK : QUEUE_FULL;
  progress(
    `── queues: ${q.throughputRuns} runs of ${q.noOpTasks} (no-op) or ${q.throughputTasks} tasks per throughput cell, ${q.latencyTasks} latency samples, ${q.faultRounds} kill and stall rounds (BullMQ defaults: ${q.slowRounds})`,
  );
  return runQueueSuite(q, settings.lease, { command: command(), revision }, progress);
}

function runQuorum(revision: string): Promise<QuorumResults> {
  const q = quick ? QUORUM_QUICK : QUORUM_FULL;
  progress(`── quorum: K = 3, links of ${q.rttsMs.join(' and ')} ms round trip`);
  return runQuorumSuite(q, { command: command(), revision }, progress);
}

/**
 * `--only ha` / `--only queue` / `--only quorum`: one family alone; a full-count run merges it into the last full
 * run's figures.
 */
async function mainOnly(family: 'ha' | 'queue' | 'quorum'): Promise<void> {
  if (args.has('--wait-quiet')) await waitForQuiet();
  const revision = describeMachine(redisServerBinary(), undefined).revision;
  const figures: Pick<BenchResults, 'ha' | 'queue' | 'quorum'> =
    family === 'ha'
      ? { ha: await runHa(revision) }
      : family === 'queue'
        ? { queue: await runQueues(revision) }
        : { quorum: await runQuorum(revision) };
  const printed = figures.ha
    ? haConsoleReport(figures.ha)
    : figures.queue
      ? queueConsoleReport(figures.queue)
      : figures.quorum
        ? quorumConsoleReport(figures.quorum)
        : '';
  process.stdout.write(`\n${printed}\n`);
  if (quick) return;
  const file = new URL('bench/results.json', docs);
  if (!existsSync(file)) {
    throw new Error(
      `--only ${family} merges into docs/bench/results.json, which a full run (pnpm bench) writes: there is none`,
    );
  }
  const results = { ...loadResults(), ...figures };
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  progress(`wrote the ${family === 'ha' ? 'HA' : family} figures into docs/bench/results.json`);
  results.targets = targets(results);
  writeReport(results);
}

function writeReport(results: BenchResults): void {
  results.plots = writePlots(results, new URL('bench/', docs));
  writeFileSync(new URL('BENCHMARKS.md', docs), markdownReport(results));
  progress('wrote docs/BENCHMARKS.md and docs/bench/*.svg');
}

/** The raw figures of the last full run (and of the last HA run). */
function loadResults(): BenchResults {
  const raw = JSON.parse(readFileSync(new URL('bench/results.json', docs), 'utf8')) as BenchResults;
  return {
    ...raw,
    startedAt: new Date(raw.startedAt),
    contests: raw.contests.map((c) => ({ ...c, system: SYSTEMS.find((s) => s.kind === c.system.kind) ?? c.system })),
  };
}

/** Rebuilds the report from the raw figures of the last full run. */
function reportOnly(): void {
  const results = loadResults();
  results.targets = targets(results);
  process.stdout.write(`${consoleReport(results)}\n`);
  writeReport(results);
}

function targets(results: BenchResults): TargetCheck[] {
  const A = results.lease.activationMs;
  const us = results.contests.find((c) => c.system.kind === 'understudy');
  const checks: TargetCheck[] = [];
  if (us) {
    const redisOver = summarize(us.failover.flatMap((f) => (f.overshootRedis === undefined ? [] : [f.overshootRedis])));
    const total = summarize(us.failover.map((f) => f.total));
    const hand = summarize(us.handover.map((h) => h.total));
    const monGraceful = summarize(us.handover.flatMap((h) => (h.monitor === undefined ? [] : [h.monitor])));
    const monLapse = summarize(us.failover.flatMap((f) => (f.monitorLapse === undefined ? [] : [f.monitorLapse])));
    const callbackOver = summarize(us.failover.map((f) => f.overshoot));
    checks.push(
      check('crash failover: activate callback past the lease deadline, p99 (hrtime)', callbackOver.p99, 5, ' ms'),
      check('crash failover: overshoot past the lease deadline, p99 (Redis time)', redisOver.p99, 5, ' ms'),
      check('crash failover: kill → activate callback, p99', total.p99, A + 5, ' ms'),
      check('graceful handover, p50', hand.p50, 2, ' ms'),
      check('graceful handover, p99', hand.p99, 10, ' ms'),
    );
    const p = results.preemption;
    if (p) {
      checks.push(
        check(
          'preemption: joinGroup() → active, p99 (handlers take 0 ms)',
          summarize(p.samples.map((s) => s.total)).p99,
          20,
          ' ms',
        ),
        check(
          'preemption: join script → activate callback, p99',
          summarize(p.samples.map((s) => s.fromJoin)).p99,
          10,
          ' ms',
        ),
        check('preemption: members active at once', p.maxConcurrency, 1, ''),
        check('preemption: newcomer activated before the old active deactivated', p.promotedFirst, 0, ' rounds'),
      );
    }
    checks.push(
      check('monitor notice after a graceful change, p99', monGraceful.p99, 10, ' ms'),
      check('monitor notice after a lease lapse, p99', monLapse.p99, 10, ' ms'),
    );
  }
  for (const c of results.contests) {
    checks.push(
      check(
        `${c.system.label}: holders at once (never more than ${c.system.slots})`,
        c.maxConcurrency,
        c.system.slots,
        '',
      ),
    );
  }
  const ha = results.ha;
  if (ha) {
    const cases = ha.cases.filter((c) => c.rounds.length > 0);
    checks.push(
      check(
        `Sentinel / Cluster failovers: members active at once (never more than the goal, ${HA_GOAL}), ${cases.length} cases`,
        Math.max(...cases.map((c) => c.maxConcurrency)),
        HA_GOAL,
        '',
      ),
      check(
        'Sentinel / Cluster failovers: activations whose epoch went back',
        cases.reduce((s, c) => s + c.epochsBack, 0),
        0,
        '',
      ),
    );
    const replicated = ha.durability.find((d) => d.durability === 'replicated');
    const forced = replicated?.rollbacks.filter((r) => r.grantLost) ?? [];
    if (forced.length) {
      checks.push(
        check(
          `durability 'replicated': activations delivered while no surviving server held the grant (${forced.length} forced rounds)`,
          forced.reduce((s, r) => s + r.beforeReplication + r.withoutGrant, 0),
          0,
          '',
        ),
      );
    }
  }
  const small = results.driven.find((c) => c.plan.size === 10);
  const large = results.driven.at(-1);
  if (small && large && large !== small) {
    checks.push(
      check(
        `renewal cost flat: group of ${large.plan.size.toLocaleString('en-US')} / group of 10 (script time, best window)`,
        large.scriptUsBest / small.scriptUsBest,
        1.3,
        '×',
      ),
    );
  }
  const floor = large?.floor;
  if (large && floor) {
    checks.push(
      check(
        `renewal script time ÷ the floor script's, paced, group of ${large.plan.size.toLocaleString('en-US')} (same run)`,
        large.scriptUsMean / floor.scriptUsMean,
        1.5,
        '×',
      ),
    );
  }
  if (results.queue) checks.push(...queueTargets(results.queue));
  if (results.quorum) checks.push(...quorumTargets(results.quorum));
  const fleet = results.fleet;
  if (fleet) {
    // Redis CPU at the nominal rate (every member renews once per H): the member processes may
    // not keep up on a small machine, and the quick run has a tenth of the members.
    const nominal = 10_000 / (fleet.plan.heartbeatMs / 1000);
    const percent = ((fleet.redisCpuUsPerRenewal * nominal) / 1e6) * 100;
    checks.push(
      check(
        `10,000 members in 1,000 groups at H = 1 s: Redis CPU (CPU per renewal × ${nominal.toLocaleString('en-US')} renewals/s; ` +
          `measured ${format(fleet.redisCorePercent)} % at ${format(fleet.renewalsPerSecond)} renewals/s with ${fleet.members.toLocaleString('en-US')} members)`,
        percent,
        20,
        ' % of a core',
      ),
    );
  }
  return checks;
}

if (args.has('--report-only')) {
  reportOnly();
  process.exit(0);
}
await runEntry(
  progress,
  () => (only === 'ha' || only === 'queue' || only === 'quorum' ? mainOnly(only) : main()),
  async () => {
    redis?.disconnect();
    await etcd?.stop();
    await server?.stop();
    progress('stopped every process the benchmark started');
  },
);
