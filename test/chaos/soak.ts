// `pnpm chaos --minutes M --seed S [--only a,b] [--churn-seconds N] [--seed-of-run R] [--verbose] [--keep]`:
// the reliability soak. Runs the fault scenarios in rotation, each fixed scenario once per
// round and churn for the rest of the round, until M minutes have passed; prints a line per
// run and, at the end (or on Ctrl-C), a table per scenario. Run i of the soak uses seed
// deriveSeed(S, i), printed with it, so any run can be replayed alone with --only and --seed-of-run.
// Everything it starts (Redis servers, proxies, member processes) is stopped on Ctrl-C and at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  deriveSeed,
  describeResult,
  formatMs,
  isSafetyViolation,
  runScenario,
  type Scenario,
  type ScenarioResult,
  stopAllRedis,
  sweepLeftovers,
} from '../../packages/testkit/src/index.js';
import { SOAK_SCENARIOS as SCENARIOS } from './scenarios.js';

const USAGE = `pnpm chaos --minutes M --seed S [--only a,b] [--churn-seconds N] [--seed-of-run R] [--verbose] [--keep]
  --minutes M        how long the soak runs (default 10)
  --seed S           the soak's seed (default: a random one, printed); run i uses deriveSeed(S, i)
  --only a,b         only these scenarios (comma-separated names; default: all)
  --churn-seconds N  the churn scenario's length per round (default 120)
  --seed-of-run R    run every scenario with the seed R a run printed (replay it with --only)
  --verbose          print every line the runs log (faults, transitions) as it happens
  --keep             keep every run's files (history, logs), not only a failed run's
Scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        minutes: { type: 'string', default: '10' },
        seed: { type: 'string' },
        only: { type: 'string' },
        'churn-seconds': { type: 'string', default: '120' },
        'seed-of-run': { type: 'string' },
        verbose: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exit(2);
  }
}
const values = parseOptions();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const minutes = Number(values.minutes);
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 32));
const churnMs = Number(values['churn-seconds']) * 1000;
if (!(minutes > 0) || !Number.isInteger(seed) || !(churnMs > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const only = values.only?.split(',').map((s) => s.trim());
const scenarios = only ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS;
if (scenarios.length === 0) {
  console.error(`no scenario named ${values.only}; there are ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const memberScript = fileURLToPath(new URL('../fixtures/history-member.ts', import.meta.url));
const workerScript = fileURLToPath(new URL('../fixtures/queue-worker.ts', import.meta.url));

// The servers and members of this soak live under one folder, swept at the end like a test suite's.
const root = mkdtempSync(join(tmpdir(), 'understudy-soak-'));
process.env.UNDERSTUDY_TESTKIT_ROOT = root;
const resultsDir = join(tmpdir(), 'understudy-chaos');

const interrupt = new AbortController();
// SIGTERM (a CI timeout, `kill`) stops it as Ctrl-C does: by default Node would exit at once,
// without the exit guard, and leave the servers and members of the run behind.
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupt.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143); // a second signal: the exit guard kills what is left
  console.log(`\n${signal}: stopping everything the soak started…`);
  interrupt.abort(new Error('interrupted'));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const started = performance.now();
const deadline = started + minutes * 60_000;
const results: ScenarioResult[] = [];
const elapsed = () => {
  const s = Math.round((performance.now() - started) / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};
const totalFaults = () => results.reduce((n, r) => n + r.faults, 0);

console.log(
  `chaos soak: ${minutes} min, seed ${seed}, scenarios ${scenarios.map((s) => s.name).join(', ')}; histories of failed runs go to ${resultsDir}`,
);

/** Runs that could not be judged (a member that never joined, a group that never formed). */
const broken: { scenario: string; seed: number; error: string }[] = [];

async function runOne(scenario: Scenario, index: number, durationMs: number): Promise<void> {
  const runSeed = values['seed-of-run'] === undefined ? deriveSeed(seed, index) : Number(values['seed-of-run']);
  try {
    await judge(scenario, index, runSeed, durationMs);
  } catch (error) {
    if (interrupt.signal.aborted) throw error;
    const message = error instanceof Error ? error.message : String(error);
    broken.push({ scenario: scenario.name, seed: runSeed, error: message });
    console.log(`[${elapsed()}] run ${index} ${scenario.name} seed ${runSeed}: could not run: ${message}`);
  }
}

async function judge(scenario: Scenario, index: number, runSeed: number, durationMs: number): Promise<void> {
  let faults = 0;
  // Long runs (churn) report how far they are every 30 s.
  const progress = setInterval(() => {
    console.log(
      `[${elapsed()}] run ${index} ${scenario.name}: ${faults} faults so far; total ${totalFaults() + faults}`,
    );
  }, 30_000);
  progress.unref();
  const log = (line: string) => {
    if (line.trimStart().startsWith('fault:')) faults += 1;
    if (values.verbose) console.log(`    ${line}`);
  };
  const result = await runScenario(scenario, {
    seed: runSeed,
    memberScript,
    workerScript,
    durationMs,
    signal: interrupt.signal,
    resultsDir,
    keep: values.keep ? 'always' : 'on-failure',
    log,
  }).finally(() => clearInterval(progress));
  results.push(result);
  const safety = result.violations.filter(isSafetyViolation).length;
  console.log(
    `[${elapsed()}] run ${index} ${scenario.name} seed ${runSeed}: ${result.passed ? 'ok' : 'FAILED'}, ` +
      `${result.faults} faults, ${result.violations.length} violations (${safety} safety), ` +
      `convergence ${formatMs(result.worstConvergenceMs)}, sink ${result.sinkAccepted}/${result.sinkRejected} ` +
      `accepted/refused, ${(result.durationMs / 1000).toFixed(1)} s; total ${totalFaults()} faults` +
      describeMeasures(result),
  );
  if (!result.passed) console.log(describeResult(result).replace(/^/gm, '    '));
}

/** The scenario's own figures, for the run's line. */
function describeMeasures(result: ScenarioResult): string {
  const entries = Object.entries(result.measures);
  if (entries.length === 0) return '';
  return `; ${entries.map(([name, value]) => `${name} ${name.endsWith('Ms') ? formatMs(value) : (value ?? '-')}`).join(', ')}`;
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

let index = 0;
// How long each scenario's last run took: do not start one that cannot finish before the deadline.
const lastDuration = new Map<string, number>();
try {
  const fixed = scenarios.filter((s) => s.name !== 'churn');
  const churn = scenarios.find((s) => s.name === 'churn');
  for (let ran = true; ran && !interrupt.signal.aborted; ) {
    ran = false;
    for (const scenario of fixed) {
      // A fixed scenario takes 10–20 s on a single Redis, 15–45 s on Sentinel or Cluster.
      const expectedMs = lastDuration.get(scenario.name) ?? 20_000;
      if (deadline - performance.now() < expectedMs || interrupt.signal.aborted) break;
      const startedAt = performance.now();
      await runOne(scenario, index++, 0);
      lastDuration.set(scenario.name, performance.now() - startedAt);
      ran = true;
    }
    const left = deadline - performance.now() - 10_000;
    if (churn && left > 5_000 && !interrupt.signal.aborted) {
      await runOne(churn, index++, Math.min(churnMs, left));
      ran = true;
    }
  }
} catch (error) {
  if (!interrupt.signal.aborted) {
    console.error(`the soak stopped on an error: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    process.exitCode = 1;
  }
} finally {
  await stopAllRedis();
  const leftovers = sweepLeftovers(root);
  rmSync(root, { recursive: true, force: true });
  if (leftovers.length > 0) console.error(`killed leftover processes ${leftovers.join(', ')}`);
}

printTable();
if (results.some((r) => !r.passed) || broken.length > 0) process.exitCode = 1;
if (interrupt.signal.aborted) process.exitCode = 130;
// Member processes and servers are gone; nothing else should hold the loop open.
process.exit();

function printTable(): void {
  const rows = scenarios
    .map((scenario) => {
      const runs = results.filter((r) => r.scenario === scenario.name);
      const violations = runs.flatMap((r) => r.violations);
      const safety = violations.filter(isSafetyViolation).length;
      const convergence = runs.flatMap((r) => (r.worstConvergenceMs === undefined ? [] : [r.worstConvergenceMs]));
      return [
        scenario.name,
        String(runs.length),
        String(runs.reduce((n, r) => n + r.faults, 0)),
        `${violations.length} (${safety} safety)`,
        String(runs.filter((r) => r.unmet.length > 0).length),
        formatMs(median(convergence)),
        formatMs(convergence.length > 0 ? Math.max(...convergence) : undefined),
        String(runs.reduce((n, r) => n + r.sinkRejected, 0)),
      ];
    })
    .filter((row) => row[1] !== '0');
  const header = [
    'scenario',
    'runs',
    'faults',
    'violations',
    'unmet',
    'median convergence',
    'worst convergence',
    'stale writes refused',
  ];
  const total = [
    'total',
    String(results.length),
    String(totalFaults()),
    `${results.reduce((n, r) => n + r.violations.length, 0)} (${results.reduce((n, r) => n + r.violations.filter(isSafetyViolation).length, 0)} safety)`,
    String(results.filter((r) => r.unmet.length > 0).length),
    '',
    '',
    String(results.reduce((n, r) => n + r.sinkRejected, 0)),
  ];
  console.log(`\nchaos soak, seed ${seed}: ${results.length} runs in ${elapsed()}`);
  printRows(header, [...rows, total]);
  // The scenarios' own figures (Sentinel and Cluster failover times, redirections): median and worst.
  const measured = scenarios.flatMap((scenario) => {
    const runs = results.filter((r) => r.scenario === scenario.name);
    const names = [...new Set(runs.flatMap((r) => Object.keys(r.measures)))];
    return names.map((name) => {
      const values = runs.flatMap((r) => (r.measures[name] === undefined ? [] : [r.measures[name] as number]));
      const show = (v: number | undefined) => (name.endsWith('Ms') ? formatMs(v) : v === undefined ? '-' : String(v));
      return [
        scenario.name,
        name,
        String(values.length),
        show(median(values)),
        show(values.length > 0 ? Math.max(...values) : undefined),
      ];
    });
  });
  if (measured.length > 0) {
    console.log('');
    printRows(['scenario', 'figure', 'runs', 'median', 'worst'], measured);
  }
  for (const b of broken) console.log(`\ncould not run ${b.scenario} seed ${b.seed}: ${b.error}`);
  const failed = results.filter((r) => !r.passed);
  if (failed.length > 0) {
    console.log(`\nfailed runs (replay: pnpm chaos --only <scenario> --seed-of-run <seed> --minutes 1):`);
    for (const r of failed) console.log(`  ${r.scenario} seed ${r.seed}: ${r.dir ?? ''}`);
  }
}

function printRows(header: string[], rows: string[][]): void {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
