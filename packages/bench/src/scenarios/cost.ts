import { luaSource } from '@understudy/core/internal';
import { sleep } from '../clock.js';
import { type BenchContext, uniqueKey } from '../context.js';
import type { CrowdConfig } from '../crowd.js';
import { Child } from '../processes.js';

interface CrowdEvent {
  t: number;
  event: string;
  cpuMicros?: number;
  rss?: number;
  heapUsed?: number;
  renewals?: number;
  failed?: number;
  members?: number;
  of?: number;
  joinErrors?: number;
  lastJoinError?: string;
  warnings?: number;
  joinMs?: number;
}

export interface CrowdPlan {
  label: string;
  groups: number;
  perGroup: number;
  /** Processes the members are spread over. */
  processes: number;
  heartbeatMs: number;
  activationMs: number;
  windows: number;
  windowMs: number;
}

export interface CommandCost {
  calls: number;
  usec: number;
}

export interface CrowdCost {
  plan: CrowdPlan;
  members: number;
  joinMs: number;
  joinErrors: number;
  /** Renewals (script calls) per second that Redis served. */
  renewalsPerSecond: number;
  /** Redis time of one renewal script (INFO commandstats, FCALL + EVALSHA + EVAL usec / calls), µs: least window mean. */
  scriptUsBest: number;
  scriptUsMean: number;
  /** Redis process CPU (INFO cpu, user + sys) per renewal, µs. */
  redisCpuUsPerRenewal: number;
  /** Redis process CPU, % of one core. */
  redisCorePercent: number;
  /** Commands the scripts ran, per renewal (commandstats counts commands inside scripts too). */
  nested: Record<string, { perRenewal: number; usPerRenewal: number }>;
  /** The member processes' CPU, % of one core, per member. */
  memberCpuPercentPerMember: number;
  /** Resident memory and heap added by joining, per member, KiB. */
  rssKiBPerMember: number;
  heapKiBPerMember: number;
  /** Client-side renewals that failed during the windows. */
  failedRenewals: number;
  /** Process warnings the member processes raised (a MaxListenersExceededWarning among them). */
  warnings: number;
}

const CROWD = new URL('../crowd.ts', import.meta.url).pathname;
const SCRIPT_COMMANDS = ['fcall', 'evalsha', 'eval'];
const IGNORED = new Set([
  ...SCRIPT_COMMANDS,
  'function|load',
  'info',
  'config|resetstat',
  'config',
  'client|setname',
  'ping',
]);

function parseInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

export function commandStats(info: string): Map<string, CommandCost> {
  const stats = new Map<string, CommandCost>();
  for (const [key, value] of parseInfo(info)) {
    if (!key.startsWith('cmdstat_')) continue;
    const calls = /calls=(\d+)/.exec(value);
    const usec = /usec=(\d+)/.exec(value);
    stats.set(key.slice('cmdstat_'.length), { calls: Number(calls?.[1] ?? 0), usec: Number(usec?.[1] ?? 0) });
  }
  return stats;
}

export async function redisCpuSeconds(context: BenchContext): Promise<number> {
  const cpu = parseInfo(await context.redis.info('cpu'));
  return Number(cpu.get('used_cpu_user') ?? 0) + Number(cpu.get('used_cpu_sys') ?? 0);
}

async function crowdStats(crowds: Child<CrowdEvent>[]): Promise<CrowdEvent[]> {
  return Promise.all(
    crowds.map((c) => {
      const from = c.events.length;
      c.send('stats');
      return c.waitFor((e) => e.event === 'stats', 'crowd stats', 30_000, from);
    }),
  );
}

const sum = (events: CrowdEvent[], field: keyof CrowdEvent) => events.reduce((s, e) => s + Number(e[field] ?? 0), 0);

/**
 * Joins the planned members (in child processes), waits until every group settled, then
 * measures a few windows of plain renewals on fresh statistics. The processes are killed at
 * the end (leaving 10,000 members one by one would cost more than the run), and the
 * benchmark's Redis is flushed for the next plan.
 */
export async function measureCrowd(context: BenchContext, plan: CrowdPlan): Promise<CrowdCost> {
  const groups = Array.from({ length: plan.groups }, () => uniqueKey(plan.label));
  const crowds: Child<CrowdEvent>[] = [];
  try {
    for (let p = 0; p < plan.processes; p++) {
      const config: CrowdConfig = {
        url: context.server.url,
        // One group split over processes, or many groups dealt out to them.
        groups: plan.groups === 1 ? groups : groups.filter((_, g) => g % plan.processes === p),
        perGroup: plan.groups === 1 ? Math.ceil(plan.perGroup / plan.processes) : plan.perGroup,
        heartbeatMs: plan.heartbeatMs,
        activationMs: plan.activationMs,
        concurrency: 20,
        idPrefix: `p${p}-`,
      };
      const crowd = new Child<CrowdEvent>(CROWD, config);
      crowd.on('event', (e) => {
        if (e.event === 'progress')
          context.progress(`cost ${plan.label}: process ${p + 1}: ${e.members} of ${e.of} joined`);
      });
      crowds.push(crowd);
    }
    const ready = await Promise.all(crowds.map((c) => c.waitFor((e) => e.event === 'ready', 'crowd start', 60_000)));
    const joinTimeout = 20 * 60_000;
    const joined = await Promise.all(
      crowds.map((c) => c.waitFor((e) => e.event === 'joined', 'crowd join', joinTimeout)),
    );
    const members = sum(joined, 'members');
    const joinMs = Math.max(...joined.map((e) => e.joinMs ?? 0));
    context.progress(`cost ${plan.label}: ${members} members joined in ${(joinMs / 1000).toFixed(1)} s`);
    // The start-up quarantine (A), the first activations, and the renewals that followed them.
    await sleep(plan.activationMs + 2 * plan.heartbeatMs);

    const windows: {
      calls: number;
      usec: number;
      cpu: number;
      wall: number;
      nested: Map<string, CommandCost>;
      crowdCpu: number;
      failed: number;
    }[] = [];
    for (let w = 0; w < plan.windows; w++) {
      const before = await crowdStats(crowds);
      await context.redis.config('RESETSTAT');
      const cpuBefore = await redisCpuSeconds(context);
      const start = performance.now();
      await sleep(plan.windowMs);
      const stats = commandStats(await context.redis.info('commandstats'));
      const wall = performance.now() - start;
      const cpu = (await redisCpuSeconds(context)) - cpuBefore;
      const after = await crowdStats(crowds);
      const scripts = SCRIPT_COMMANDS.map((name) => stats.get(name) ?? { calls: 0, usec: 0 });
      for (const name of IGNORED) stats.delete(name);
      windows.push({
        calls: scripts.reduce((s, c) => s + c.calls, 0),
        usec: scripts.reduce((s, c) => s + c.usec, 0),
        cpu,
        wall,
        nested: stats,
        crowdCpu: sum(after, 'cpuMicros') - sum(before, 'cpuMicros'),
        failed: sum(after, 'failed') - sum(before, 'failed'),
      });
    }
    const calls = windows.reduce((s, w) => s + w.calls, 0);
    const usec = windows.reduce((s, w) => s + w.usec, 0);
    const cpu = windows.reduce((s, w) => s + w.cpu, 0);
    const wall = windows.reduce((s, w) => s + w.wall, 0);
    const crowdCpu = windows.reduce((s, w) => s + w.crowdCpu, 0);
    const nested: CrowdCost['nested'] = {};
    for (const w of windows) {
      for (const [name, cost] of w.nested) {
        const entry = nested[name] ?? { perRenewal: 0, usPerRenewal: 0 };
        nested[name] = entry;
        entry.perRenewal += cost.calls / Math.max(1, calls);
        entry.usPerRenewal += cost.usec / Math.max(1, calls);
      }
    }
    const full = windows.filter((w) => w.calls > 0);
    const last = await crowdStats(crowds);
    return {
      plan,
      members,
      joinMs,
      joinErrors: sum(joined, 'joinErrors'),
      renewalsPerSecond: (calls / wall) * 1000,
      scriptUsBest: Math.min(...full.map((w) => w.usec / w.calls)),
      scriptUsMean: usec / Math.max(1, calls),
      redisCpuUsPerRenewal: (cpu * 1e6) / Math.max(1, calls),
      redisCorePercent: ((cpu * 1000) / wall) * 100,
      nested,
      memberCpuPercentPerMember: (crowdCpu / 1000 / wall) * (100 / Math.max(1, members)),
      rssKiBPerMember: (sum(last, 'rss') - sum(ready, 'rss')) / 1024 / Math.max(1, members),
      heapKiBPerMember: (sum(last, 'heapUsed') - sum(ready, 'heapUsed')) / 1024 / Math.max(1, members),
      failedRenewals: windows.reduce((s, w) => s + w.failed, 0),
      warnings: sum(last, 'warnings'),
    };
  } finally {
    await Promise.all(crowds.map((c) => c.kill('SIGKILL')));
    await context.redis.flushall();
  }
}

export interface ScriptOverhead {
  /** EVALSHA of `return 0`, µs per call. */
  emptyUs: number;
  /** EVALSHA of lib.lua (every member script includes it) followed by `return 0`, µs per call. */
  libUs: number;
  calls: number;
}

/**
 * What a member script pays before its first line of work: Redis runs a script's whole body on
 * every call, so the ~30 function definitions of the shared lib.lua are built again each time.
 */
export async function measureScriptOverhead(context: BenchContext, calls: number): Promise<ScriptOverhead> {
  const lib = luaSource('lib.lua');
  const timeOf = async (body: string) => {
    const sha = (await context.redis.script('LOAD', body)) as string;
    const keys = Array.from({ length: 6 }, (_, i) => `bench-overhead:{x}:${i}`);
    await context.redis.config('RESETSTAT');
    for (let done = 0; done < calls; done += 500) {
      const pipeline = context.redis.pipeline();
      for (let i = 0; i < Math.min(500, calls - done); i++) pipeline.evalsha(sha, keys.length, ...keys);
      await pipeline.exec();
    }
    const stats = commandStats(await context.redis.info('commandstats')).get('evalsha');
    return (stats?.usec ?? 0) / Math.max(1, stats?.calls ?? 1);
  };
  const emptyUs = await timeOf('return 0');
  const libUs = await timeOf(`${lib}\nreturn 0`);
  return { emptyUs, libUs, calls };
}
