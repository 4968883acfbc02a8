// Tables, targets and text of the queue family: understudy's queue beside BullMQ, and the group feed.
import { runLine } from './family.js';
import type { QueueResults, QueueSystemResult } from './scenarios/queue.js';
import type { StallRound } from './scenarios/queue-faults.js';
import type { InstructionCount } from './scenarios/queue-instructions.js';
import type { ThroughputCell } from './scenarios/queue-load.js';
import { TARGET_WORKERS } from './settings.js';
import { type Summary, summarize } from './stats.js';
import { table } from './table.js';
import { check, format, type TargetCheck, verdict } from './targets.js';

const stat = (s: Summary, key: keyof Summary) => (s.n ? format(s[key]) : '–');
const handler = (taskMs: number) => (taskMs === 0 ? 'no-op' : `${taskMs} ms`);

function cell(r: QueueSystemResult, workers: number, taskMs: number): ThroughputCell | undefined {
  return r.throughput.find((c) => c.workers === workers && c.taskMs === taskMs);
}

/** Tasks per second, first enqueue → last completion: the median of the runs, and their range. */
export function queueThroughputTable(q: QueueResults): string {
  const counts = q.settings.workerCounts;
  return table(
    ['system', 'handler', ...counts.map((n) => `${n} worker${n === 1 ? '' : 's'}, tasks/s (range)`)],
    q.systems.flatMap((r) =>
      q.settings.taskMs.map((taskMs) => [
        r.system.label,
        handler(taskMs),
        ...counts.map((n) => {
          const c = cell(r, n, taskMs);
          if (!c) return '–';
          const all = summarize(c.runs.map((x) => x.perSecond));
          const twice = c.completed - c.tasks * c.runs.length;
          const otherwise = Object.entries(c.notCompleted).map(([outcome, k]) => `${k} ${outcome}`);
          return (
            `${format(c.perSecond)} (${format(all.min)}–${format(all.max)})` +
            (twice > 0 ? `, ${twice} completed twice` : '') +
            (otherwise.length ? `; deliveries not completed: ${otherwise.join(', ')}` : '')
          );
        }),
      ]),
    ),
  );
}

/** Redis's side of each throughput cell. */
export function queueCostTable(q: QueueResults): string {
  return table(
    [
      'system',
      'workers',
      'handler',
      'Redis CPU per task, µs',
      'commands per task',
      'most Redis time per task (calls, µs)',
      'enqueued per s',
    ],
    q.systems.flatMap((r) =>
      r.throughput.map((c) => [
        r.system.label,
        String(c.workers),
        handler(c.taskMs),
        format(c.redisCpuUsPerTask),
        format(c.commandsPerTask),
        c.topCommands
          .slice(0, 3)
          .map((t) => `${t.name} ${format(t.perTask)}, ${format(t.usPerTask)}`)
          .join('; '),
        format(c.enqueuedPerSecond),
      ]),
    ),
  );
}

/** A system's Redis instructions per task without the background, median of its runs (callgrind). */
function instructionsOf(q: QueueResults, key: string): number {
  return summarize(q.instructions?.find((c) => c.key === key)?.runs.map((r) => r.taskWork) ?? []).p50;
}

/** Redis's instructions per task under callgrind, 4 workers, no-op tasks; with and without the background. */
export function queueInstructionTable(q: QueueResults): string {
  if (!q.instructions) return 'Not counted in this run (it needs valgrind).';
  const k = (n: number) => `${format(n / 1000)}k`;
  const mine = instructionsOf(q, 'understudy');
  return table(
    [
      'system (4 workers, no-op)',
      'runs',
      'per task, all, median',
      'background per second (the workers idle), median',
      'per task without the background, median',
      'range',
      '÷ understudy',
      'most instructions per task (inclusive, median run)',
    ],
    q.instructions.map((c) => {
      const median = (pick: (r: InstructionCount) => number) => summarize(c.runs.map(pick)).p50;
      const s = summarize(c.runs.map((r) => r.taskWork));
      const middle = c.runs.find((r) => r.taskWork === s.p50) ?? c.runs[0];
      return [
        c.label,
        String(s.n),
        k(median((r) => r.perTask)),
        k(median((r) => r.backgroundPerSecond)),
        k(s.p50),
        `${k(s.min)}–${k(s.max)}`,
        `${format(s.p50 / mine)}×`,
        (middle?.byCommand ?? [])
          .filter(
            (b) => !['processCommand', 'call', 'fcallCommand', 'evalShaCommand', 'evalGenericCommand'].includes(b.name),
          )
          .slice(0, 3)
          .map((b) => `${b.name} ${k(b.perTask)}`)
          .join(', '),
      ];
    }),
  );
}

export function queueLatencyTable(q: QueueResults): string {
  return table(
    ['enqueue() called → handler starts, ms', 'idle workers', 'n', 'p50', 'p99', 'max'],
    q.systems.map((r) => {
      const s = summarize(r.latency?.samples ?? []);
      return [
        r.system.label,
        String(r.latency?.workers ?? '–'),
        String(s.n),
        stat(s, 'p50'),
        stat(s, 'p99'),
        stat(s, 'max'),
      ];
    }),
  );
}

export function queueKillTable(q: QueueResults): string {
  return table(
    [
      'SIGKILL of the worker → the task starts at another, ms',
      'settings',
      'n',
      'p50',
      'p99',
      'max',
      'past the lease / lock deadline p50',
      'p99',
      'max',
      'never again',
    ],
    q.systems.map((r) => {
      const s = summarize(r.kills.flatMap((k) => (k.redeliveryMs === undefined ? [] : [k.redeliveryMs])));
      const o = summarize(r.kills.flatMap((k) => (k.overshootMs === undefined ? [] : [k.overshootMs])));
      return [
        r.system.label,
        r.system.settingsText,
        String(r.kills.length),
        stat(s, 'p50'),
        stat(s, 'p99'),
        stat(s, 'max'),
        stat(o, 'p50'),
        stat(o, 'p99'),
        stat(o, 'max'),
        String(r.kills.length - s.n),
      ];
    }),
  );
}

/** How often each outcome occurred, most frequent first. */
function tally(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([v, n]) => `${v} (${n}×)`)
    .join('; ');
}

export function queueStallTable(q: QueueResults): string {
  const rows: string[][] = [];
  for (const r of q.systems) {
    for (const checkSignal of [false, true]) {
      const rounds: StallRound[] = r.stalls.filter((s) => s.checkSignal === checkSignal);
      if (!rounds.length) continue;
      const again = rounds.flatMap((s) => (s.redeliveryMs === undefined ? [] : [s.redeliveryMs]));
      rows.push([
        r.system.label,
        checkSignal ? 'checks its signal after the stall' : 'ignores its signal',
        String(rounds.length),
        format(rounds[0]?.stallMs ?? Number.NaN),
        `${again.length} of ${rounds.length}` +
          (again.length ? `, after ${format(summarize(again).p50)} ms (p50)` : ''),
        String(rounds.reduce((s, x) => s + x.effects, 0)),
        String(rounds.filter((x) => x.effects > 1).length),
        tally(rounds.map((x) => x.staleOutcome)),
      ]);
    }
  }
  return table(
    [
      'stalled handler',
      'handler',
      'tasks',
      'event loop blocked, ms',
      'delivered again (after the handler started)',
      'side effects ran (ledger)',
      'tasks whose side effect ran twice',
      "the queue's answer to the blocked worker's completion",
    ],
    rows,
  );
}

/** publish() → onMessage: at each member, and at the last of them. */
export function feedLatencyTable(q: QueueResults): string {
  const f = q.feed;
  if (!f) return '';
  const row = (what: string, values: number[]) => {
    const v = summarize(values);
    return [what, String(v.n), stat(v, 'p50'), stat(v, 'p99'), stat(v, 'max')];
  };
  return table(
    ['publish() called → onMessage, ms', 'n', 'p50', 'p99', 'max'],
    [
      row(`at each member (${f.settings.members} members, every delivery)`, f.deliveries),
      row('at every member (the last of them, per message)', f.toEvery),
    ],
  );
}

/** SIGKILL of the active while messages stream in → the new active acts on them. */
export function feedFailoverTable(q: QueueResults): string {
  const f = q.feed;
  if (!f) return '';
  const row = (what: string, values: (number | undefined)[]) => {
    const present = values.filter((v): v is number => v !== undefined);
    const v = summarize(present);
    return [what, `${present.length} of ${values.length}`, stat(v, 'p50'), stat(v, 'p99'), stat(v, 'max')];
  };
  return table(
    ['SIGKILL of the active → …, ms', 'rounds', 'p50', 'p99', 'max'],
    [
      row(
        "the new active's onActivate",
        f.failovers.map((x) => x.activateMs),
      ),
      row(
        'its first onMessage with `active: true`',
        f.failovers.map((x) => x.firstActedMs),
      ),
      row(
        'it acts on the first message published after the kill',
        f.failovers.map((x) => x.resumedMs),
      ),
    ],
  );
}

function feedFailoverLine(q: QueueResults): string {
  const f = q.feed;
  if (!f?.failovers.length) return '';
  const sum = (k: 'actedTwice' | 'neverActed' | 'published') => f.failovers.reduce((s, x) => s + x[k], 0);
  return (
    `Over the ${f.failovers.length} failovers, ${sum('published').toLocaleString('en-US')} messages were published while the active was killed and replaced: ` +
    `${sum('actedTwice')} were acted on (\`active: true\`) by both the killed active and its successor, ${sum('neverActed')} by neither; ` +
    `${f.missing} of the latency run's ${(f.settings.messages * f.settings.members).toLocaleString('en-US')} deliveries never arrived.`
  );
}

const us = (q: QueueResults) => q.systems.find((r) => r.system.key === 'understudy');
const bulls = (q: QueueResults) => q.systems.filter((r) => r.system.kind === 'bullmq');

/** The issue's targets for queues, next to what this run measured. */
export function queueTargets(q: QueueResults): TargetCheck[] {
  const mine = us(q);
  if (!mine) return [];
  const A = q.lease.activationMs;
  const kills = summarize(mine.kills.flatMap((k) => (k.redeliveryMs === undefined ? [] : [k.redeliveryMs])));
  const over = summarize(mine.kills.flatMap((k) => (k.overshootMs === undefined ? [] : [k.overshootMs])));
  const lost = mine.kills.some((k) => k.redeliveryMs === undefined);
  const checks: TargetCheck[] = [
    check(
      'queue: SIGKILL of a worker → its task starts at another worker, p99 (A + a few round trips)',
      lost ? Number.POSITIVE_INFINITY : kills.p99,
      A + 5,
      ' ms',
    ),
    check(
      "queue: the task starts at another worker after the dead worker's lease deadline, p99 (a few round trips)",
      lost ? Number.POSITIVE_INFINITY : over.p99,
      5,
      ' ms',
    ),
  ];
  const workers = TARGET_WORKERS;
  for (const peer of bulls(q)) {
    for (const taskMs of q.settings.taskMs) {
      const a = cell(mine, workers, taskMs);
      const b = cell(peer, workers, taskMs);
      checks.push(
        check(
          `queue throughput, ${workers} workers, ${handler(taskMs)} handler: ${peer.system.label} ÷ understudy (understudy at least BullMQ's)`,
          a && b ? b.perSecond / a.perSecond : Number.NaN,
          1,
          '×',
        ),
        check(
          `queue Redis CPU per task, ${workers} workers, ${handler(taskMs)} handler: understudy ÷ ${peer.system.label} (below BullMQ's)`,
          a && b ? a.redisCpuUsPerTask / b.redisCpuUsPerTask : Number.NaN,
          1,
          '×',
        ),
      );
    }
  }
  for (const peer of q.instructions?.filter((c) => c.key !== 'understudy') ?? []) {
    checks.push(
      check(
        `queue Redis instructions per task without the background (callgrind), 4 workers, no-op handler: understudy ÷ ${peer.label} (below BullMQ's)`,
        instructionsOf(q, 'understudy') / instructionsOf(q, peer.key),
        1,
        '×',
      ),
    );
  }
  return checks;
}

export function queueProblems(q: QueueResults): string[] {
  return [
    ...q.systems.flatMap((r) => r.problems.map((p) => `${r.system.label}: ${p}`)),
    ...(q.feed?.problems ?? []).map((p) => `feed: ${p}`),
    ...q.failures,
  ];
}

/** How many of the issue's queue targets this run met (the table at the top lists them). */
function targetsLine(q: QueueResults): string {
  const checks = queueTargets(q);
  const met = checks.filter((c) => c.met === true).length;
  const missed = checks.filter((c) => c.met === false).length;
  return `Of the issue's ${checks.length} queue targets in the table at the top, this run met ${met} and missed ${missed}${checks.length - met - missed ? ` (${checks.length - met - missed} not measured)` : ''}.`;
}

/** The queue tables for the console. */
export function queueConsoleReport(q: QueueResults): string {
  const problems = queueProblems(q);
  return [
    '## Distributed queues: understudy and BullMQ',
    runLine(q.run),
    queueThroughputTable(q),
    queueCostTable(q),
    queueInstructionTable(q),
    queueLatencyTable(q),
    queueKillTable(q),
    queueStallTable(q),
    '## The group feed (understudy)',
    feedLatencyTable(q),
    feedFailoverTable(q),
    feedFailoverLine(q),
    table(
      ['target', 'goal', 'measured', 'verdict'],
      queueTargets(q).map((t) => [t.what, t.target, t.measured, verdict(t.met)]),
    ),
    ...(problems.length ? ['## Queue problems', problems.join('\n')] : []),
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** The queue section of docs/BENCHMARKS.md. */
export function queueMarkdown(q: QueueResults): string {
  const s = q.settings;
  const problems = queueProblems(q);
  const systems = q.systems.map((r) => `- **${r.system.label}**: ${r.system.settingsText}.`).join('\n');
  return [
    '## Distributed queues: understudy and BullMQ',
    `${runLine(q.run)} ${targetsLine(q)} To measure only this section again: \`pnpm bench --only queue\` (it keeps the other figures of \`docs/bench/results.json\` and writes this file again); ` +
      '`pnpm bench --quick --only queue` prints the same tables with smaller counts in about 6 minutes.',
    systems,
    [
      '- **One Redis** (`startRedis()`), fresh queue names for every measurement, `FLUSHALL` after each throughput cell; a second private Redis holds the side-effect ledger. ' +
        'Every client on both sides has auto-pipelining off (`enableAutoPipelining: false`; BullMQ gets ioredis options, not a client). ' +
        'BullMQ keeps its other defaults (completed jobs are kept, `removeOnComplete` unset).',
      '- **Every worker is a process of its own** (Node, started before anything is timed, joining a fresh queue on command; every kill and stall round starts two new ones), with one task at a time (understudy `capacity: 1`, BullMQ `concurrency: 1`). ' +
        'The producer is the benchmark process: one `enqueue()` / `Queue.add()` per task, as an application calls them, at most 32 in flight.',
      `- **Throughput**: ${s.noOpTasks ? `${s.noOpTasks.toLocaleString('en-US')} tasks per run with the no-op handler, ${s.throughputTasks.toLocaleString('en-US')} with the 5 ms one` : `${s.throughputTasks.toLocaleString('en-US')} tasks per run`}, enqueued as fast as the producer can while the workers drain them; tasks/s = tasks ÷ (last completion − first enqueue). ` +
        `Each cell is run ${s.throughputRuns} times per system, the cells with ${TARGET_WORKERS} workers (which the targets read) ${s.targetRuns} times, the systems taking turns run by run (so a change in the machine's load falls on all of them), the first of them a different one each run (with one order, load that keeps rising or falling through a cell weighs on the system that always runs first), after one unmeasured run per system on every worker process${s.warmUpTasksPerWorker ? `, ${s.warmUpTasksPerWorker.toLocaleString('en-US')} tasks each` : ''} (its code compiled before the first measured run); the tables show the median, and the range of the runs. ` +
        'A run ends when the workers together have reported the end of as many deliveries as there were tasks, completed or not (an understudy worker reports such an end as `stale`, `unconfirmed` or `failed`; the table counts them). ' +
        'The 5 ms handler awaits a 5 ms timer (like I/O, no CPU). Two cores are shared by Redis, the producer and every worker process.',
      "- **Redis CPU per task**: the Redis process's user + system CPU (`INFO cpu`) over a throughput run (enqueue, dispatch, completion, and the workers' renewals or lock extensions meanwhile), divided by the tasks, median of the runs; commands per task from `INFO commandstats` (commands inside scripts included), after `CONFIG RESETSTAT`; the commands column is from the run whose CPU is the median.",
      `- **Enqueue → start**: ${s.latencyWorkers} idle workers; ${s.latencyTasks} tasks enqueued one at a time, ${s.latencyGapMs} ms ± half apart; from the producer's hrtime before the call to the handler's first line (hrtime, comparable across processes).`,
      "- **Re-delivery after SIGKILL**: a worker holds a task (its handler awaits, the event loop free); a second, idle worker joins; 0.2–1 s later (a random phase of the first worker's renewals) the first gets SIGKILL; time from the signal to the task's handler starting at the second worker. " +
        "Right after the kill the benchmark reads when the dead worker's claim runs out — understudy: its score in the queue's `leases` zset (Redis time, mapped onto hrtime through a `TIME` round trip); BullMQ: the job's lock key's `PTTL` — and the time past that deadline is the second column group.",
      "- **Stalled handler**: a worker's handler blocks its event loop (`Atomics.wait`, no CPU) for longer than the system waits before delivering the task again (understudy: A, completeTime; BullMQ: lockDuration plus two stalled checks), then reads the ledger (one round trip) and increments the task's counter in the ledger Redis — its side effect; a second worker, idle, runs the same side effect when it gets the task. " +
        "'Checks its signal' means the handler skips the side effect when the signal it was given has aborted by then (understudy aborts it at the task's deadline; BullMQ gives a signal that only `cancelJob` aborts). " +
        "The last column is the event the blocked worker got for its late completion (understudy's `task` event outcome; BullMQ's `completed` / `failed` / `error`).",
      `- BullMQ's re-delivery waits for its lock to lapse and then for two stalled checks (the first marks the job, the next moves it back to wait). Its default-settings rounds take a minute or more each (${s.slowRounds} per measurement), so they run all at once beside the other systems' rounds; their processes sit idle or blocked.`,
      '- p99 is the nearest-rank 99th percentile: with fewer than 100 samples it is the largest one or close to it.',
    ].join('\n'),
    '### Throughput',
    queueThroughputTable(q),
    '### Redis cost per task',
    queueCostTable(q),
    '### Redis instructions per task',
    q.instructions
      ? `Counted by callgrind, which counts instructions, not time: far steadier than the CPU time above, which moves by a tenth or more from run to run on two shared cores. ${q.settings.instructionTasks.toLocaleString('en-US')} tasks per run, ${q.settings.instructionRuns} runs per system (the systems taking turns), each on a redis-server of its own under \`valgrind --tool=callgrind\` with 4 worker processes, tasks enqueued as in the throughput runs; the count covers the whole Redis process from the first enqueue to the last completion. What Redis does by the clock rather than per task also runs all through it: understudy's renewals (every H per worker), BullMQ's stalled-job checks and lock extensions, Redis's own cron. Under valgrind a run lasts many times longer than without it, so that background weighs many times more per task than in the throughput runs above; the same workers are then left idle on the same server for 3 s, and the count per task without the background (the target) subtracts that rate over the run's length. The background per second is shown beside it: understudy's at A = 1 s, H = 200 ms against BullMQ's at its settings. One run: \`pnpm bench:queue-instructions --system understudy\` (or \`bullmq-tuned\`, \`bullmq-default\`).`
      : '',
    queueInstructionTable(q),
    '### Enqueue → start at low load',
    queueLatencyTable(q),
    '### Re-delivery after a worker is killed',
    queueKillTable(q),
    '### Duplicate side effects under a stalled handler',
    queueStallTable(q),
    ...(q.feed
      ? [
          '## The group feed (understudy)',
          `Measured in the same run, on the same Redis, after the queues. A group of ${q.feed.settings.members} members (goal 1, A = ${q.lease.activationMs} ms, H = ${q.lease.heartbeatMs} ms), each a process of its own with \`onMessage\`; ` +
            `the benchmark publishes with \`publish()\` on a client of its own (auto-pipelining off). BullMQ has no counterpart (no message that every worker receives). ` +
            `**Latency**: ${q.feed.settings.messages} messages, one at a time, ${q.feed.settings.gapMs} ms ± half apart, each carrying the publisher's hrtime before the call. ` +
            `**Failover**: while a message is published every ${q.feed.settings.streamGapMs} ms, the active member gets SIGKILL (0.3–1 s into the stream); its successor activates when the lease lapses and first receives again, with \`active: true\`, every message after the slot's last commit. ` +
            'The killed member is replaced by a new one of the lowest weight before the next round.',
          feedLatencyTable(q),
          feedFailoverTable(q),
          feedFailoverLine(q),
        ]
      : ['The group feed was not measured in this run.']),
    ...(problems.length ? ['### Problems seen during the queue run', problems.map((p) => `- ${p}`).join('\n')] : []),
  ]
    .filter(Boolean)
    .join('\n\n');
}
