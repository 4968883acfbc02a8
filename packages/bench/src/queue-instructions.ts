// `pnpm bench:queue-instructions [--system understudy|bullmq-tuned|bullmq-default] [--tasks 2000]
//   [--workers 4] [--task-ms 0]` (needs valgrind)
// Redis instructions per task, counted by callgrind: a redis-server of its own under
// `valgrind --tool=callgrind`, `workers` worker processes on a fresh queue, then `tasks` tasks
// enqueued as the throughput benchmark does (32 in flight) and drained; the counts are zeroed
// before the first enqueue and dumped after the last task settled. Instruction counts depend far
// less on the machine's load than the CPU time `pnpm bench` measures (they still move by some
// per cent from run to run: the backlog the workers leave changes what a dispatch reads). Prints
// the total, the command implementations' inclusive counts and the commands per task, and keeps
// the dump in /tmp for callgrind_annotate.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { hrNow, sleep } from './clock.js';
import { openProducer } from './queue/producers.js';
import { queueSystems } from './queue/systems.js';
import { commandStats } from './scenarios/cost.js';
import { plan, queueName, WorkerProcess } from './scenarios/queue-harness.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

const systemKey = option('system', 'understudy');
const tasks = Number(option('tasks', '2000'));
const workers = Number(option('workers', '4'));
const taskMs = Number(option('task-ms', '0'));
const system = queueSystems({ activationMs: 1000, heartbeatMs: 200 }).find((s) => s.key === systemKey);
if (!system) throw new Error(`no system ${systemKey}`);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const port = await freePort();
const out = `/tmp/callgrind-queue-${systemKey}-${process.pid}.out`;
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
await redis.ping();
const pool = Array.from({ length: workers }, () => new WorkerProcess(url));
try {
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
  execFileSync('callgrind_control', ['-d', String(valgrind.pid)], { stdio: 'ignore' });
  const stats = commandStats(await redis.info('commandstats'));
  await Promise.all(pool.map((p) => p.leave()));
  await producer.close();
  await sleep(500);
  const dumps = execFileSync('sh', ['-c', `ls -t ${out}* | head -1`])
    .toString()
    .trim();
  const annotated = execFileSync('callgrind_annotate', ['--inclusive=yes', dumps], {
    maxBuffer: 64 << 20,
  }).toString();
  const total = Number(/([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/.exec(annotated)?.[1]?.replaceAll(',', '') ?? 'NaN');
  process.stdout.write(
    `${system.label}: ${tasks} tasks, ${workers} workers, ${taskMs} ms tasks: ${(total / tasks / 1000).toFixed(1)}k instructions per task (${total} total, ${(ms / 1000).toFixed(1)} s) — ${dumps}\n`,
  );
  // Inclusive counts of the command implementations (nested ones included), per task.
  const commands = [...annotated.matchAll(/^\s*([\d,]+) \([ \d.]+%\)\s+\S*:(\w+Command)\b/gm)]
    .map((m) => `${m[2]} ${(Number(m[1]?.replaceAll(',', '')) / tasks / 1000).toFixed(1)}k`)
    .slice(0, 16);
  process.stdout.write(`instructions per task, inclusive: ${commands.join(', ')}\n`);
  const calls = [...stats.entries()]
    .filter(([name]) => !['info', 'config|resetstat', 'config'].includes(name))
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([name, c]) => `${name} ${(c.calls / tasks).toFixed(2)}`);
  process.stdout.write(`commands per task (nested included): ${calls.join(', ')}\n`);
} finally {
  await Promise.all(pool.map((p) => p.kill('SIGKILL')));
  redis.disconnect();
  valgrind.kill('SIGTERM');
}
process.exit(0);
