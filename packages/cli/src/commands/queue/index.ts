import { describeQueue, monitorQueue, type QueueMonitor, type QueueSnapshot } from '@understudy/core';
import { Command } from 'commander';
import { createLogUpdate } from 'log-update';
import { CliError, ExitCode, messageOf } from '../../exit.js';
import { json, shown } from '../../format.js';
import { interruption } from '../../interrupt.js';
import type { Io } from '../../io.js';
import { type MetricsOptions, serveMetrics, withMetrics } from '../../metrics.js';
import { type ConnectionOptions, describeConnection, redisSource, withConnectionOptions } from '../../options.js';
import { queueHeadline, queueView } from './view.js';

interface QueueOptions extends ConnectionOptions, MetricsOptions {
  json?: boolean;
  watch?: boolean;
}

/** The live view redraws this often, ageing leases and deadlines between reads. */
const REDRAW_MS = 200;

export function queueCommand(io: Io, exit: (code: number) => void): Command {
  return withMetrics(withConnectionOptions(new Command('queue')))
    .summary('show a distributed queue: depth, workers, tasks in flight, dead letters')
    .description(
      'Show a distributed queue: tasks waiting (depth), its live workers with weight, capacity, ' +
        'tasks in flight, lease and when each last received a task, the tasks in flight with ' +
        'their worker and deadline (the 100 soonest to expire), the dead letters kept, and a ' +
        'quarantine. Exit code 1 if the queue does not exist. With --watch, it follows every ' +
        'change until Ctrl-C, and --metrics-port serves the queue’s Prometheus metrics (depth, ' +
        'in flight, dead letters, workers; see docs/METRICS.md). Read-only.',
    )
    .argument('<queue>', 'the queue')
    .option('--json', 'print JSON: one object, or with --watch one line per change (the first is the current state)')
    .option('--watch', 'follow the queue until Ctrl-C')
    .action(async (queue: string, options: QueueOptions) => {
      if (options.metricsPort !== undefined && !options.watch) {
        throw new CliError(
          '--metrics-port needs --watch: metrics are served while the command watches',
          ExitCode.usage,
        );
      }
      exit(options.watch ? await watch(queue, options, io) : await once(queue, options, io));
    });
}

async function once(queue: string, options: QueueOptions, io: Io): Promise<number> {
  const s = await describeQueue({ redis: redisSource(options), prefix: options.prefix, queue });
  if (s.createdAt === 0) {
    io.stderr(
      `understudy: no queue ${shown(queue)} under prefix ${options.prefix} on ${describeConnection(options)}\n`,
    );
    return ExitCode.failure;
  }
  io.stdout(`${options.json ? json(s, 2) : queueView(s, io.isTTY).join('\n')}\n`);
  return ExitCode.ok;
}

async function watch(queue: string, options: QueueOptions, io: Io): Promise<number> {
  const endpoint = await serveMetrics(options);
  const stop = interruption();
  let monitor: QueueMonitor | undefined;
  try {
    monitor = await monitorQueue({ redis: redisSource(options), prefix: options.prefix, queue, signal: stop.signal });
    const stopRecording = endpoint?.metrics.instrumentQueueMonitor(monitor);
    if (endpoint) io.stderr(`serving metrics at ${endpoint.url}\n`);
    follow(monitor, options, io, stop.signal);
    monitor.on('error', (error) => io.stderr(`understudy: queue ${shown(queue)}: ${shown(messageOf(error))}\n`));
    await stop.interrupted;
    stopRecording?.();
    return ExitCode.ok;
  } catch (error) {
    if (stop.signal.aborted) return ExitCode.ok;
    throw error;
  } finally {
    stop.dispose();
    await monitor?.close();
    await endpoint?.close();
  }
}

/** Prints the current state, then every change: JSON lines, a live view on a terminal, or a headline per change. */
function follow(monitor: QueueMonitor, options: QueueOptions, io: Io, signal: AbortSignal): void {
  if (options.json || !io.isTTY) {
    const print = (s: QueueSnapshot) => io.stdout(`${options.json ? json(s) : queueHeadline(s, false)}\n`);
    print(monitor.snapshot());
    monitor.on('change', print);
    return;
  }
  const screen = createLogUpdate(process.stdout, { showCursor: false });
  let shownSnapshot = monitor.snapshot();
  let readAt = performance.now();
  const render = () => {
    const s = monitor.snapshot();
    if (s !== shownSnapshot) {
      shownSnapshot = s;
      readAt = performance.now();
    }
    screen(queueView(s, true, performance.now() - readAt, process.stdout.rows ?? 24).join('\n'));
  };
  render();
  const timer = setInterval(render, REDRAW_MS);
  monitor.on('change', render);
  signal.addEventListener(
    'abort',
    () => {
      clearInterval(timer);
      screen.done();
    },
    { once: true },
  );
}
