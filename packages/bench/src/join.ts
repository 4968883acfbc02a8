// `pnpm bench:join [--heartbeat-ms H] [sizes…]`: n members of one group joined in one process
// (n = 100, 1,000, 10,000 unless given; H = 1 s, A = 3 H), then that process's CPU at steady
// state. Prints the figures and puts them into docs/bench/results.json (`joins`), where the
// report's "Joining a large group" reads them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { mapClocks } from './clock.js';
import type { BenchContext } from './context.js';
import { readLoadAverage } from './machine.js';
import { runEntry } from './processes.js';
import { type JoinScale, measureJoining } from './scenarios/joining.js';
import { COST_LEASE } from './settings.js';

const argv = process.argv.slice(2);
const flag = argv.indexOf('--heartbeat-ms');
const heartbeat = flag === -1 ? String(COST_LEASE.heartbeatMs) : argv[flag + 1];
const counts = flag === -1 ? argv : argv.filter((_, i) => i !== flag && i !== flag + 1);
const bad = [heartbeat, ...counts].find((arg) => !/^[1-9]\d*$/.test(arg ?? ''));
if (bad !== undefined) {
  process.stderr.write(
    `pnpm bench:join [--heartbeat-ms H] [sizes…]: H and the sizes are whole numbers, not ${JSON.stringify(bad ?? '')}\n`,
  );
  process.exit(2);
}
const heartbeatMs = Number(heartbeat);
const sizes = counts.length ? counts.map(Number) : [100, 1000, 10_000];
const started = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
const results = new URL('../../../docs/bench/results.json', import.meta.url);

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
    lease: { heartbeatMs, activationMs: 3 * heartbeatMs },
    etcdHosts: undefined,
    progress,
  };
  const runs = await measureJoining(context, sizes, heartbeatMs);
  const scale: JoinScale = {
    command: ['pnpm bench:join', ...argv].join(' '),
    heartbeatMs,
    at: new Date(),
    load: { start: loadStart, end: readLoadAverage() },
    runs,
  };
  if (existsSync(results)) {
    const all = JSON.parse(readFileSync(results, 'utf8')) as Record<string, unknown>;
    // One entry per heartbeat interval: this run replaces the last one with the same H.
    const kept = ((all.joins ?? []) as JoinScale[]).filter((j) => j.heartbeatMs !== heartbeatMs);
    const joins = [...kept, scale].sort((a, b) => a.heartbeatMs - b.heartbeatMs);
    writeFileSync(results, `${JSON.stringify({ ...all, joins }, null, 2)}\n`);
    progress('wrote the join figures into docs/bench/results.json');
  }
}
