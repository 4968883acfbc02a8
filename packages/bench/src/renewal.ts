// `pnpm bench:renewal [sizes…]`: the renewal beside the floor script (TIME, HGET, ZADD, ZRANGE
// of the first lease) in one run, on groups driven by the benchmark (n = 10 and 1,000 unless
// given), each sent as FCALL (what members send) and as EVALSHA (their fallback), paced like
// members (windows of the two taking turns) and back to back; then what EVALSHA of lib.lua costs
// before a script's first line. Prints the figures and puts them into docs/bench/results.json
// (`steady`), where the report's "The steady state against the floor" reads them (`pnpm bench
// --report-only` writes docs/BENCHMARKS.md again).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { mapClocks } from './clock.js';
import type { BenchContext } from './context.js';
import { describeRevision, readLoadAverage } from './machine.js';
import { runEntry } from './processes.js';
import type { SteadyScale } from './report.js';
import { measureScriptOverhead } from './scenarios/cost.js';
import { type DriverCost, libShare, measureDriven, type ScriptTransport } from './scenarios/driver.js';
import { DRIVEN_LEASE, FULL } from './settings.js';
import { table } from './table.js';

const argv = process.argv.slice(2);
const bad = argv.find((arg) => !/^[1-9]\d*$/.test(arg));
if (bad !== undefined) {
  process.stderr.write(`pnpm bench:renewal [sizes…]: the sizes are whole numbers, not ${JSON.stringify(bad)}\n`);
  process.exit(2);
}
const sizes = argv.length ? argv.map(Number) : [10, 1000];
const TRANSPORTS: ScriptTransport[] = ['fcall', 'evalsha'];
const started = performance.now();
const results = new URL('../../../docs/bench/results.json', import.meta.url);
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

let server: RedisServer | undefined;
let redis: Redis | undefined;
await runEntry(progress, measure, async () => {
  redis?.disconnect();
  await server?.stop();
});

async function measure(): Promise<void> {
  const loadStart = readLoadAverage();
  progress(`load ${loadStart}`);
  server = await startRedis();
  redis = new Redis(server.url, { connectionName: 'bench' });
  const context: BenchContext = {
    server,
    redis,
    clocks: await mapClocks(redis),
    lease: { heartbeatMs: DRIVEN_LEASE.heartbeatMs, activationMs: DRIVEN_LEASE.activationMs },
    etcdHosts: undefined,
    progress,
  };
  const costs: DriverCost[] = [];
  for (const size of sizes) {
    for (const transport of TRANSPORTS) {
      progress(`driven group of ${size}, ${transport}`);
      costs.push(
        await measureDriven(context, {
          size,
          transport,
          ...DRIVEN_LEASE,
          windows: FULL.costWindows,
          windowMs: FULL.costWindowMs,
        }),
      );
    }
  }
  progress('what a script pays before its first line');
  const overhead = await measureScriptOverhead(context, FULL.overheadCalls);
  const rebuild = overhead.libUs - overhead.emptyUs;
  const f = (n: number) => n.toFixed(2);
  const rows = costs.flatMap((c) => {
    const floor = c.floor;
    if (!floor) return [];
    return [
      [
        `${c.plan.size}, ${c.plan.transport ?? 'fcall'}`,
        f(c.scriptUsMean),
        f(floor.scriptUsMean),
        f(c.scriptUsMean / floor.scriptUsMean),
        f(c.hot.scriptUs),
        f(floor.hotUs),
        f(c.hot.scriptUs / floor.hotUs),
        f(libShare(c, rebuild)),
        `${((c.steadyShare ?? 0) * 100).toFixed(1)} %`,
      ],
    ];
  });
  const last = costs.find((c) => c.plan.size === sizes.at(-1) && (c.plan.transport ?? 'fcall') === 'fcall');
  const commands = Object.entries(last?.hot.nested ?? {})
    .filter(([, n]) => n.perRenewal >= 0.01)
    .sort(([, a], [, b]) => b.usPerRenewal - a.usPerRenewal)
    .map(([name, n]) => [name.toUpperCase(), n.perRenewal.toFixed(2), n.usPerRenewal.toFixed(2)]);
  const loadEnd = readLoadAverage();
  process.stdout.write(
    `${table(
      [
        'driven group, transport',
        'renewal µs paced',
        'floor µs paced',
        'ratio paced',
        'renewal µs back to back',
        'floor µs back to back',
        'ratio back to back',
        "lib.lua's rebuild in it",
        'steady',
      ],
      rows,
    )}\n\n` +
      `${table([`commands per renewal, group of ${last?.plan.size ?? 0}, FCALL, back to back`, 'calls', 'µs'], commands)}\n\n` +
      `EVALSHA of return 0: ${f(overhead.emptyUs)} µs; of lib.lua + return 0: ${f(overhead.libUs)} µs (lib.lua's rebuild: ${f(rebuild)} µs under EVALSHA, paid only by the renewals that run the full script)\n` +
      `load average: ${loadStart} at the start, ${loadEnd} at the end\n`,
  );
  const steady: SteadyScale = {
    command: ['pnpm bench:renewal', ...argv].join(' '),
    revision: describeRevision(),
    at: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    load: { start: loadStart, end: loadEnd },
    costs,
    overhead,
  };
  if (existsSync(results)) {
    const all = JSON.parse(readFileSync(results, 'utf8')) as Record<string, unknown>;
    writeFileSync(results, `${JSON.stringify({ ...all, steady }, null, 2)}\n`);
    progress('wrote the steady-state figures into docs/bench/results.json');
  }
}
