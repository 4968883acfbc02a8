// `pnpm bench:transports [--size n] [--rounds r]`: the renewal script's Redis time sent as FCALL
// of core's function library (what members send where functions are available) and as EVALSHA
// of the script (their fallback), side by side in one run on one Redis: the benchmark's driven
// renewals (core's join and renew, the arguments a member sends) of one group of n members,
// paced at DRIVEN_LEASE's rate and back to back, the two transports taking turns for r rounds.
// Prints the figures and the load average around each; writes nothing.
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { mapClocks } from './clock.js';
import type { BenchContext } from './context.js';
import { readLoadAverage } from './machine.js';
import { runEntry } from './processes.js';
import { type DriverCost, measureDriven, type ScriptTransport } from './scenarios/driver.js';
import { COST_LEASE, DRIVEN_LEASE } from './settings.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const at = argv.indexOf(name);
  if (at === -1) return fallback;
  const value = argv[at + 1] ?? '';
  if (!/^[1-9]\d*$/.test(value)) {
    process.stderr.write(
      `pnpm bench:transports [--size n] [--rounds r]: ${name} takes a whole number, not ${JSON.stringify(value)}\n`,
    );
    process.exit(2);
  }
  return Number(value);
};
const size = option('--size', 1000);
const rounds = option('--rounds', 3);
const WINDOWS = 3;
const WINDOW_MS = 2000;
const started = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

let server: RedisServer | undefined;
let redis: Redis | undefined;
await runEntry(progress, measure, async () => {
  redis?.disconnect();
  await server?.stop();
});

async function measure(): Promise<void> {
  server = await startRedis();
  redis = new Redis(server.url, { connectionName: 'bench' });
  const context: BenchContext = {
    server,
    redis,
    clocks: await mapClocks(redis),
    lease: COST_LEASE,
    etcdHosts: undefined,
    progress,
  };
  const results: { transport: ScriptTransport; cost: DriverCost; load: [string, string] }[] = [];
  for (let round = 0; round < rounds; round++) {
    // Taking turns, starting with the other one each round, so a drift in the machine's load hits both.
    const order: ScriptTransport[] = round % 2 === 0 ? ['evalsha', 'fcall'] : ['fcall', 'evalsha'];
    for (const transport of order) {
      const before = readLoadAverage();
      const cost = await measureDriven(context, {
        size,
        transport,
        rate: DRIVEN_LEASE.rate,
        heartbeatMs: DRIVEN_LEASE.heartbeatMs,
        activationMs: DRIVEN_LEASE.activationMs,
        windows: WINDOWS,
        windowMs: WINDOW_MS,
      });
      const after = readLoadAverage();
      results.push({ transport, cost, load: [before, after] });
      progress(
        `round ${round + 1} ${transport.padEnd(7)} paced ${cost.scriptUsMean.toFixed(1)} µs (best window ${cost.scriptUsBest.toFixed(1)}), ` +
          `back to back ${cost.hot.scriptUs.toFixed(1)} µs, Redis CPU ${cost.redisCpuUsPerRenewal.toFixed(1)} µs/renewal; load ${before} → ${after}`,
      );
    }
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] as number;
  };
  const lines = [
    `renewal script time, one group of ${size} members, ${DRIVEN_LEASE.rate} renewals/s paced (${WINDOWS} windows of ${WINDOW_MS / 1000} s) and back to back (pipelines of 1,000), ${rounds} rounds:`,
    '| transport | paced µs (median of rounds) | paced best window µs | back to back µs (best round) | back to back µs (median) | Redis CPU µs / renewal (median) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const transport of ['evalsha', 'fcall'] as const) {
    const mine = results.filter((r) => r.transport === transport).map((r) => r.cost);
    lines.push(
      `| ${transport.toUpperCase()} | ${median(mine.map((c) => c.scriptUsMean)).toFixed(1)} | ${Math.min(...mine.map((c) => c.scriptUsBest)).toFixed(1)} | ` +
        `${Math.min(...mine.map((c) => c.hot.scriptUs)).toFixed(1)} | ${median(mine.map((c) => c.hot.scriptUs)).toFixed(1)} | ` +
        `${median(mine.map((c) => c.redisCpuUsPerRenewal)).toFixed(1)} |`,
    );
  }
  lines.push(`load average ${results[0]?.load[0]} at the start, ${results.at(-1)?.load[1]} at the end`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
