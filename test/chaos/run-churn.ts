// `pnpm run-churn --minutes M --seed S [--members K]`: `understudy run` members under churn
// (docs/RELIABILITY.md, "`understudy run` churn"). K wrappers run the timestamp writer (one
// shared file, a write every 10 ms); half of them reach Redis through a chaos proxy that runs
// in a process of its own. Random actions, one every 1–4 s: SIGTERM or SIGKILL of a wrapper,
// SIGSTOP of a proxy for 0.3–3 A. Every wrapper that ends is started again after a moment,
// with a new weight and a new program drawn from: a plain writer, one that forks, one that
// ignores SIGTERM, one that needs 0.1–1.5 s to stop, one that exits on its own, one that
// forks and exits leaving its child, and `sh -c 'writer & wait'`. At the end, the file tells
// whether two wrappers' programs ever wrote at once: any overlap fails the run (exit 1).
// Runs the built CLI (packages/cli/dist): `pnpm run-churn` builds it first.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { overlapMs, WRITER, writerRuns } from '../../packages/cli/test/helpers.js';
import { Random, runTypeScript, startRedis } from '../../packages/testkit/src/index.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    members: { type: 'string', default: '4' },
  },
  strict: true,
});
const minutes = Number(values.minutes);
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 32));
const memberCount = Number(values.members);
const random = new Random(seed);
const pick = <T>(items: readonly T[]): T => items[random.int(0, items.length - 1)] as T;

const H = 100;
const A = 1000;
const GROUP = `run-churn-${seed}`;
const BIN = fileURLToPath(new URL('../../packages/cli/bin/understudy.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'understudy-run-churn-'));
const file = join(dir, 'writes.log');

const PROGRAMS = {
  plain: (label: string) => writer(label),
  fork: (label: string) => writer(label, '--fork'),
  'ignore-term': (label: string) => writer(label, '--ignore-term'),
  'slow-stop': (label: string) => writer(label, '--term-delay', String(random.int(100, 1500))),
  exits: (label: string) => writer(label, '--exit-after', String(random.int(500, 5000))),
  'fork-exit': (label: string) => writer(label, '--fork', '--exit-after', String(random.int(500, 3000))),
  shell: (label: string) => ['/bin/sh', '-c', `${quoted(writer(label, '--term-delay', '800'))} & wait`],
} as const;
type ProgramKind = keyof typeof PROGRAMS;
function writer(label: string, ...flags: string[]): string[] {
  return [process.execPath, WRITER, file, label, ...flags];
}
function quoted(args: string[]): string {
  return args.map((a) => `'${a}'`).join(' ');
}

interface Slot {
  id: string;
  proxy: ChildProcess | undefined;
  redis: string;
  wrapper: ChildProcess | undefined;
  incarnation: number;
}

const counts: Record<string, number> = {};
const count = (what: string) => {
  counts[what] = (counts[what] ?? 0) + 1;
};
const exits: Record<string, number> = {};

async function startProxy(target: number): Promise<{ proxy: ChildProcess; port: number }> {
  const proxy = spawn(
    process.execPath,
    [...runTypeScript(), join(import.meta.dirname, 'proxy-process.ts'), '127.0.0.1', String(target)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proxy.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    proxy.once('exit', () => reject(new Error('the proxy process ended')));
  });
  return { proxy, port };
}

function startWrapper(slot: Slot): void {
  slot.incarnation += 1;
  const kind = pick(Object.keys(PROGRAMS) as ProgramKind[]);
  count(`program ${kind}`);
  const args = [
    BIN,
    'run',
    '--quiet',
    '--redis',
    slot.redis,
    '--group',
    GROUP,
    '--member-id',
    slot.id,
    '--weight',
    String(random.int(1, 99)),
    '--heartbeat',
    String(H),
    '--activation',
    String(A),
    '--',
    ...PROGRAMS[kind](`${slot.id}#${slot.incarnation}`),
  ];
  const wrapper = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  slot.wrapper = wrapper;
  wrapper.once('exit', (code, signal) => {
    const key = signal ?? `exit ${code}`;
    exits[key] = (exits[key] ?? 0) + 1;
    if (slot.wrapper === wrapper) slot.wrapper = undefined;
  });
}

/** Processes of the group still running: wrappers and their programs. */
function leftovers(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (cmdline.includes(GROUP) || environ.includes(`UNDERSTUDY_GROUP=${GROUP}\0`) || cmdline.includes(file)) {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const server = await startRedis();
const slots: Slot[] = [];
for (let i = 0; i < memberCount; i++) {
  const proxied = i % 2 === 0;
  const proxy = proxied ? await startProxy(server.port) : undefined;
  slots.push({
    id: `m${i}`,
    proxy: proxy?.proxy,
    redis: proxy ? `redis://127.0.0.1:${proxy.port}` : server.url,
    wrapper: undefined,
    incarnation: 0,
  });
}
console.info(
  `run churn: seed ${seed}, ${minutes} min, ${memberCount} members (H ${H} ms, A ${A} ms), writes in ${file}`,
);

const end = performance.now() + minutes * 60_000;
let stopping = false;
const supervisors = slots.map(async (slot) => {
  while (!stopping) {
    if (!slot.wrapper) {
      await sleep(random.int(200, 1500));
      if (!stopping) startWrapper(slot);
    }
    await sleep(50);
  }
});
const frozen = new Set<Slot>();
while (performance.now() < end) {
  await sleep(random.int(1000, 4000));
  const action = pick(['term', 'term', 'kill', 'kill', 'stop-proxy', 'stop-proxy'] as const);
  if (action === 'stop-proxy') {
    const slot = pick(slots.filter((s) => s.proxy && !frozen.has(s)));
    if (!slot?.proxy) continue;
    const ms = random.between(0.3, 3) * A;
    count('SIGSTOP proxy');
    frozen.add(slot);
    slot.proxy.kill('SIGSTOP');
    void sleep(ms).then(() => {
      slot.proxy?.kill('SIGCONT');
      frozen.delete(slot);
    });
  } else {
    const slot = pick(slots.filter((s) => s.wrapper));
    if (!slot?.wrapper) continue;
    count(action === 'term' ? 'SIGTERM wrapper' : 'SIGKILL wrapper');
    slot.wrapper.kill(action === 'term' ? 'SIGTERM' : 'SIGKILL');
  }
}

stopping = true;
for (const slot of slots) slot.proxy?.kill('SIGCONT');
await Promise.all(supervisors);
await Promise.all(
  slots.map(async (slot) => {
    const wrapper = slot.wrapper;
    if (!wrapper) return;
    const exited = new Promise((resolve) => wrapper.once('exit', resolve));
    wrapper.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
  }),
);
await sleep(500);
const left = leftovers();
for (const pid of left) process.kill(pid, 'SIGKILL');
for (const slot of slots) slot.proxy?.kill('SIGTERM');
await server.stop();

const runs = writerRuns(file);
const overlap = overlapMs(runs);
const labels = [...new Set(runs.map((r) => r.label))];
const timeline = [...runs].sort((a, b) => a.first - b.first);
let handovers = 0;
for (let i = 1; i < timeline.length; i++) if (timeline[i]?.label !== timeline[i - 1]?.label) handovers += 1;
const started = runs[0]?.first ?? 0;
const finished = Math.max(...runs.map((r) => r.last));
// Time some program wrote: the union of the writers' spans (a forking program has two).
let written = 0;
let reach = Number.NEGATIVE_INFINITY;
for (const run of timeline) {
  written += Math.max(0, run.last - Math.max(run.first, reach));
  reach = Math.max(reach, run.last);
}

console.info(
  `seed ${seed}: ${minutes} min, ${memberCount} members, ${slots.reduce((n, s) => n + s.incarnation, 0)} wrapper starts`,
);
console.info(
  `actions: ${Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
console.info(
  `wrapper exits: ${Object.entries(exits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
console.info(
  `programs: ${runs.length} writer processes of ${labels.length} wrappers, ${handovers} changes of writer, ` +
    `a program writing ${((100 * written) / Math.max(1, finished - started)).toFixed(1)} % of the time`,
);
console.info(`overlapping writes: ${overlap.toFixed(0)} ms; processes left over: ${left.length}`);
rmSync(dir, { recursive: true, force: true });
process.exit(overlap > 0 || left.length > 0 ? 1 : 0);
