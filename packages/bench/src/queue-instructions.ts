// `pnpm bench:queue-instructions [--system understudy|bullmq-tuned|bullmq-default] [--tasks 2000]
//   [--workers 4] [--task-ms 0]` (needs valgrind)
// Redis instructions per task, counted by callgrind (scenarios/queue-instructions.ts says how).
// Prints the count per task, the background per second and the count per task without it, the
// command implementations' inclusive counts and the commands per task, and keeps the dump in /tmp
// for callgrind_annotate. `pnpm bench --only queue` runs the same count
// side by side for every system and reports it.
import { queueSystems } from './queue/systems.js';
import { countQueueInstructions } from './scenarios/queue-instructions.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

const systemKey = option('system', 'understudy');
const system = queueSystems({ activationMs: 1000, heartbeatMs: 200 }).find((s) => s.key === systemKey);
if (!system) throw new Error(`no system ${systemKey}`);
const count = await countQueueInstructions(system, {
  tasks: Number(option('tasks', '2000')),
  workers: Number(option('workers', '4')),
  taskMs: Number(option('task-ms', '0')),
  keep: true,
});
const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
process.stdout.write(
  `${system.label}: ${count.tasks} tasks, ${count.workers} workers, ${count.taskMs} ms tasks: ${k(count.perTask)} instructions per task (${(count.ms / 1000).toFixed(1)} s) — ${count.dump}\n` +
    `background (the workers idle): ${k(count.backgroundPerSecond)} per second; per task without it: ${k(count.taskWork)}\n`,
);
process.stdout.write(
  `instructions per task, inclusive: ${count.byCommand
    .slice(0, 16)
    .map((c) => `${c.name} ${k(c.perTask)}`)
    .join(', ')}\n`,
);
process.stdout.write(
  `commands per task (nested included): ${count.commandsPerTask.map((c) => `${c.name} ${c.perTask.toFixed(2)}`).join(', ')}\n`,
);
process.exit(0);
