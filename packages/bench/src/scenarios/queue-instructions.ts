// Redis instructions per queue task, counted by callgrind: a redis-server of its own under
// `valgrind --tool=callgrind`, `workers` worker processes on a fresh queue, then `tasks` tasks
// enqueued as the throughput benchmark does (32 in flight) and drained; the counts are zeroed
// before the first enqueue and dumped after the last task settled. Instruction counts depend far
// less on the machine's load than the CPU time of the throughput runs (they still move by a per
// cent or two from run to run: the backlog the workers leave changes what a dispatch reads).
// What Redis does by the clock rather than per task (understudy's renewals every H, BullMQ's
// stalled-job checks and lock extensions, Redis's own cron) runs all through the drain, which
// valgrind makes many times longer than without it: at 4 workers that background was a tenth of
// understudy's count per task. So the same workers are then left idle on the same server for
// BACKGROUND_MS, and the count per task without the background subtracts that rate over the
// drain's length.
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { freePort } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { hrNow, sleep } from '../clock.js';
import { openProducer } from '../queue/producers.js';
import type { QueueSystem } from '../queue/types.js';
import { commandStats } from './cost.js';
import { plan, queueName, WorkerProcess } from './queue-harness.js';

export interface InstructionCount {
  tasks: number;
  workers: number;
  taskMs: number;
  /** Every instruction of the redis-server process while the tasks ran, per task. */
  perTask: number;
  /** Instructions per second of the same server with the same workers idle (renewals, checks, cron). */
  backgroundPerSecond: number;
  /** perTask without the background: (all − backgroundPerSecond × the drain's length) / tasks. */
  taskWork: number;
  /** The command implementations' inclusive counts per task (nested ones included), largest first. */
  byCommand: { name: string; perTask: number }[];
  /** Commands per task from INFO commandstats (commands inside scripts included). */
  commandsPerTask: { name: string; perTask: number }[];
  /** Wall time of the counted part, ms (valgrind slows Redis down many times). */
  ms: number;
  /** The callgrind dump, when asked to keep it (for callgrind_annotate). */
  dump: string | undefined;
}

/** Wall time the idle workers' background is counted for. */
const BACKGROUND_MS = 3000;

/** Every instruction a callgrind dump counted, and the annotated text. */
function annotate(dump: string): { total: number; text: string } {
  const text = execFileSync('callgrind_annotate', ['--inclusive=yes', dump], { maxBuffer: 64 << 20 }).toString();
  const total = Number(/([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/.exec(text)?.[1]?.replaceAll(',', ''));
  if (!Number.isFinite(total)) throw new Error(`callgrind_annotate printed no total for ${dump}`);
  return { total, text };
}

/** Whether valgrind's callgrind, callgrind_control and callgrind_annotate can run here. */
export function callgrindAvailable(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--version'], { stdio: 'ignore' });
    // (callgrind_annotate --version exits with 255.)
    execFileSync('sh', ['-c', 'command -v callgrind_annotate'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Counts one run; the server and the workers are gone when it returns, the dump too unless `keep`. */
export async function countQueueInstructions(
  system: QueueSystem,
  options: { tasks: number; workers: number; taskMs: number; keep?: boolean },
): Promise<InstructionCount> {
  const { tasks, workers, taskMs } = options;
  let kept: string | undefined;
  const port = await freePort();
  const out = `/tmp/callgrind-queue-${system.key}-${process.pid}-${port}.out`;
  const valgrind = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      'redis-server',
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const url = `redis://127.0.0.1:${port}`;
  // Commands wait until the server under valgrind (slow to start) accepts connections.
  const redis = new Redis(url, { retryStrategy: () => 200, maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  const pool: WorkerProcess[] = [];
  try {
    await redis.ping();
    pool.push(...Array.from({ length: workers }, () => new WorkerProcess(url)));
    await Promise.all(pool.map((p) => p.ready()));
    const queue = queueName(`cg-${system.key}`);
    const marks = pool.map((p) => p.events.length);
    const producer = await openProducer(system, url, queue);
    const mode = { kind: 'work', taskMs } as const;
    await Promise.all(pool.map((p, i) => p.join(plan(system, queue, `w${i}`, mode, 'progress'))));
    // Past the start-up quarantine (A) of a fresh understudy queue.
    await sleep(1500);
    const settled = () =>
      pool
        .map((p, i) => p.events.slice(marks[i]).findLast((e) => e.event === 'progress'))
        .reduce((s, e) => s + (e?.completed ?? 0) + Object.values(e?.outcomes ?? {}).reduce((a, b) => a + b, 0), 0);
    const drain = async (count: number) => {
      const target = settled() + count;
      let next = 0;
      const lane = async () => {
        while (next < count) {
          next += 1;
          await producer.enqueue({ t: hrNow() });
        }
      };
      await Promise.all(Array.from({ length: Math.min(32, count) }, lane));
      while (settled() < target) await sleep(20);
    };
    await drain(100); // warm-up: connections, scripts, consumers
    await redis.config('RESETSTAT');
    execFileSync('callgrind_control', ['-z', String(valgrind.pid)], { stdio: 'ignore' });
    const start = performance.now();
    await drain(tasks);
    const ms = performance.now() - start;
    const latestDump = () =>
      execFileSync('sh', ['-c', `ls -t ${out}.* | head -1`])
        .toString()
        .trim();
    execFileSync('callgrind_control', ['-d', String(valgrind.pid)], { stdio: 'ignore' });
    const stats = commandStats(await redis.info('commandstats'));
    const dump = latestDump();
    // The background: the same workers idle, counted from zero again.
    execFileSync('callgrind_control', ['-z', String(valgrind.pid)], { stdio: 'ignore' });
    const idleStart = performance.now();
    await sleep(BACKGROUND_MS);
    execFileSync('callgrind_control', ['-d', String(valgrind.pid)], { stdio: 'ignore' });
    const backgroundPerSecond = annotate(latestDump()).total / ((performance.now() - idleStart) / 1000);
    await Promise.all(pool.map((p) => p.leave()));
    await producer.close();
    const { total, text: annotated } = annotate(dump);
    const byCommand = [...annotated.matchAll(/^\s*([\d,]+) \([ \d.]+%\)\s+\S*:(\w+Command)\b/gm)].map((m) => ({
      name: m[2] as string,
      perTask: Number(m[1]?.replaceAll(',', '')) / tasks,
    }));
    const commandsPerTask = [...stats.entries()]
      .filter(([name]) => !['info', 'config|resetstat', 'config'].includes(name))
      .map(([name, c]) => ({ name, perTask: c.calls / tasks }))
      .sort((a, b) => b.perTask - a.perTask);
    if (options.keep) kept = dump;
    return {
      tasks,
      workers,
      taskMs,
      perTask: total / tasks,
      backgroundPerSecond,
      taskWork: (total - (backgroundPerSecond * ms) / 1000) / tasks,
      byCommand,
      commandsPerTask,
      ms,
      dump: kept,
    };
  } finally {
    await Promise.all(pool.map((p) => p.kill('SIGKILL')));
    redis.disconnect();
    valgrind.kill('SIGTERM');
    await new Promise((resolve) => (valgrind.exitCode === null ? valgrind.once('exit', resolve) : resolve(undefined)));
    for (const file of execFileSync('sh', ['-c', `ls ${out}* 2>/dev/null || true`])
      .toString()
      .split('\n')) {
      if (file && file !== kept) rmSync(file, { force: true });
    }
  }
}
