import { type GroupSnapshot, type Monitor, monitorGroup, type Transition } from '@understudy/core';
import { Command } from 'commander';
import { createLogUpdate } from 'log-update';
import { ExitCode } from '../../exit.js';
import { headline, json, shown as shownText, transitionLine } from '../../format.js';
import { interruption } from '../../interrupt.js';
import type { Io } from '../../io.js';
import { type MetricsEndpoint, type MetricsOptions, serveMetrics, withMetrics } from '../../metrics.js';
import { type ConnectionOptions, groupSources, integer, withConnectionOptions } from '../../options.js';
import { liveView, serversLine } from './view.js';

interface MonitorOptions extends ConnectionOptions, MetricsOptions {
  json?: boolean;
  lostInterval?: number;
  history: number;
}

const REDRAW_MS = 200;
/** The live view re-reads this often so lease bars show renewals (announcements only carry changes). */
const REREAD_MS = 500;

export function monitorCommand(io: Io, exit: (code: number) => void): Command {
  return withMetrics(withConnectionOptions(new Command('monitor'), { quorum: true }))
    .summary('watch a group live, or print JSON per change')
    .description(
      'Watch a group live: active count against the goal, members with rank, weight, state, ' +
        'epoch and lease, and the latest transitions. Read-only: works under a Redis user that ' +
        'may not write. With --metrics-port, it also serves the group’s Prometheus metrics ' +
        '(active members against the goal, transitions, failover and handover durations; see ' +
        'docs/METRICS.md). In quorum mode (--redis given K times): the majority’s view, each ' +
        'server’s reachability, and each new transition once a majority of the servers logged ' +
        'it. Stop with Ctrl-C.',
    )
    .argument('<group>', 'group to watch')
    .option('--json', 'print one JSON object per change (the first is the current state)')
    .option(
      '--lost-interval <ms>',
      'count a member lost after this silence (default: the group’s activation interval)',
      integer(1),
    )
    .option('--history <n>', 'transitions to show', integer(0), 8)
    .action(async (group: string, options: MonitorOptions) => {
      exit(await watch(group, options, io));
    });
}

async function watch(group: string, options: MonitorOptions, io: Io): Promise<number> {
  const endpoint = await serveMetrics(options);
  try {
    return await watchGroup(group, options, io, endpoint);
  } finally {
    await endpoint?.close();
  }
}

async function watchGroup(
  group: string,
  options: MonitorOptions,
  io: Io,
  endpoint: MetricsEndpoint | undefined,
): Promise<number> {
  const stop = interruption();
  let monitor: Monitor;
  try {
    monitor = await monitorGroup({
      redis: groupSources(options),
      prefix: options.prefix,
      group,
      // In quorum mode every server keeps its own transition log: there is no one history to
      // replay; new transitions arrive once a majority logged them.
      history: options.json || options.redisQuorum ? 0 : options.history,
      signal: stop.signal,
      ...(options.lostInterval ? { lostInterval: options.lostInterval } : {}),
    });
  } catch (error) {
    stop.dispose();
    if (stop.signal.aborted) return ExitCode.ok;
    throw error;
  }
  const stopRecording = endpoint?.metrics.instrumentMonitor(monitor);
  if (endpoint) io.stderr(`serving metrics at ${endpoint.url}\n`);
  const transitions: Transition[] = [];
  let render: (() => void) | undefined;
  let unreachableError = '';

  // Quorum mode: each server's reachability beside the majority's view.
  const reach = () => ('servers' in monitor ? { list: monitor.servers(), quorum: monitor.quorum } : undefined);
  if (options.json) {
    const print = (s: GroupSnapshot) => {
      const servers = reach();
      io.stdout(`${json(servers ? { ...s, quorum: servers.quorum, servers: servers.list } : s)}\n`);
    };
    print(monitor.snapshot());
    monitor.on('change', print);
    monitor.on('unreachable', ({ since, error }) =>
      io.stdout(
        `${json({ group, unreachable: { since: new Date(since).toISOString(), error: error.message }, lastKnown: monitor.snapshot() })}\n`,
      ),
    );
    // Back: the current state, changed or not, so a reader knows the last line holds again.
    monitor.on('reachable', () => setImmediate(() => print(monitor.snapshot())));
  } else if (io.isTTY) {
    const screen = createLogUpdate(process.stdout, { showCursor: false });
    let shown: GroupSnapshot | undefined;
    let readAt = 0;
    render = () => {
      const s = monitor.snapshot();
      if (s !== shown) {
        shown = s;
        readAt = performance.now();
      }
      const since = monitor.unreachableSince;
      screen(
        liveView(s, {
          width: process.stdout.columns ?? 80,
          height: process.stdout.rows ?? 24,
          colour: true,
          elapsedMs: performance.now() - readAt,
          transitions,
          history: options.history,
          ...(reach() ? { servers: reach() } : {}),
          ...(since === undefined ? {} : { unreachable: { since, error: unreachableError, now: Date.now() } }),
        }).join('\n'),
      );
    };
    stop.signal.addEventListener('abort', () => screen.done(), { once: true });
  } else {
    const print = (s: GroupSnapshot) => {
      const servers = reach();
      const line = `${headline(s, false)}: ${s.members.map((m) => `${shownText(m.id)}=${m.state}`).join(' ')}`;
      io.stdout(`${line}${servers ? `\n  ${serversLine(servers.list, servers.quorum, false)}` : ''}\n`);
    };
    print(monitor.snapshot());
    monitor.on('change', print);
    monitor.on('transition', (t) => io.stdout(`  ${transitionLine(t).join('  ')}\n`));
    monitor.on('unreachable', ({ since, error }) =>
      io.stdout(
        `group ${group} · Redis unreachable since ${new Date(since).toISOString()}: ${shownText(error.message)}; ` +
          `last known: ${headline(monitor.snapshot(), false)}\n`,
      ),
    );
    monitor.on('reachable', ({ downMs }) => {
      io.stdout(`group ${group} · Redis answers again after ${(downMs / 1000).toFixed(1)} s\n`);
      setImmediate(() => print(monitor.snapshot()));
    });
  }
  monitor.on('unreachable', ({ error }) => {
    unreachableError = shownText(error.message);
    render?.();
  });
  monitor.on('change', () => render?.());
  monitor.on('transition', (t) => {
    transitions.push(t);
    if (transitions.length > 100) transitions.shift();
    render?.();
  });

  // Reads now and then in every mode: announcements only carry changes, the live view shows
  // renewals, and a Redis that went away is noticed (and said) even when nothing changes.
  let lastReread = 0;
  let timer: NodeJS.Timeout | undefined;
  // Quorum mode, lines and JSON: a server lost or back is said even when the majority's view holds.
  let lastReach = JSON.stringify(reach()?.list.map((r) => r.reachable));
  const tick = () => {
    if (performance.now() - lastReread >= REREAD_MS) {
      lastReread = performance.now();
      void monitor.refresh();
    }
    const servers = reach();
    const now = JSON.stringify(servers?.list.map((r) => r.reachable));
    if (servers && now !== lastReach && !render) {
      lastReach = now;
      if (options.json) io.stdout(`${json({ group, quorum: servers.quorum, servers: servers.list })}\n`);
      else io.stdout(`group ${group} · ${serversLine(servers.list, servers.quorum, false)}\n`);
    }
    render?.();
    timer = setTimeout(tick, render ? REDRAW_MS : REREAD_MS);
  };
  tick();

  await stop.interrupted;
  clearTimeout(timer);
  stop.dispose();
  stopRecording?.();
  await monitor.close();
  return ExitCode.ok;
}
