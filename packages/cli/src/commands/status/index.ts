import {
  describeGroup,
  describeQueue,
  type GroupSnapshot,
  listGroups,
  listQueues,
  type QueueSnapshot,
  type QuorumGroupSnapshot,
  type QuorumTransition,
  readHistory,
  type Transition,
} from '@understudy/core';
import { Command } from 'commander';
import pc from 'picocolors';
import { ExitCode, exitCodeOf, messageOf } from '../../exit.js';
import {
  activeCount,
  columns,
  header,
  headline,
  json,
  memberTable,
  plural,
  seconds,
  serverTable,
  shown,
  transitionLine,
} from '../../format.js';
import type { Io } from '../../io.js';
import {
  type ConnectionOptions,
  describeConnection,
  groupSources,
  integer,
  redisSource,
  withConnectionOptions,
} from '../../options.js';
import { quarantine } from '../queue/view.js';

interface StatusOptions extends ConnectionOptions {
  json?: boolean;
  history: number;
}

export function statusCommand(io: Io, exit: (code: number) => void): Command {
  return withConnectionOptions(new Command('status'), { quorum: true })
    .summary('show groups and queues, or one group’s members and recent transitions')
    .description(
      'Without a group: one line per group, sorted by name (active against goal, members, ' +
        'version, quarantine, last transition), then one line per distributed queue (depth, ' +
        'workers, tasks in flight, dead letters, quarantine; details: understudy queue); a group ' +
        'or queue that cannot be read is listed with its error and makes the exit code non-zero. ' +
        'With a group: its members with rank, weight, state, epoch and lease, and the recent ' +
        'transitions with their times; exit code 1 if the group does not exist. Read-only. ' +
        'In quorum mode (--redis given K times): the group as a majority of the servers shows it ' +
        '(a member is active only where Q servers show the same slot and epoch), each server’s ' +
        'reachability, goal and version, and the servers’ transition logs merged (each transition ' +
        'once, with the servers that logged it); no queues (queues live on one Redis); fewer than ' +
        'Q servers answering is an error.',
    )
    .argument('[group]', 'one group to show in detail')
    .option('--json', 'print JSON instead of tables')
    .option('--history <n>', 'recent transitions to show per group', integer(0), 10)
    .action(async (group: string | undefined, options: StatusOptions) => {
      exit(group === undefined ? await allGroups(options, io) : await oneGroup(group, options, io));
    });
}

type Detail = (GroupSnapshot | QuorumGroupSnapshot) & { transitions: (Transition | QuorumTransition)[] };

async function read(name: string, options: StatusOptions, count: number): Promise<Detail> {
  const connection = { redis: groupSources(options), prefix: options.prefix, group: name };
  const [snapshot, transitions] = await Promise.all([describeGroup(connection), readHistory({ ...connection, count })]);
  return { ...snapshot, transitions };
}

function isQuorum(d: Detail): d is QuorumGroupSnapshot & { transitions: QuorumTransition[] } {
  return 'servers' in d;
}

/** A transition's line; in quorum mode with the servers that logged it. */
function detailLine(d: Detail, t: Transition | QuorumTransition): string[] {
  const line = transitionLine(t);
  if (!isQuorum(d) || !('servers' in t)) return line;
  return [...line, `servers ${t.servers.map((i) => i + 1).join(',')} of ${d.servers.length}`];
}

/** A group nobody ever joined, or one forgotten: no parameters, no members, no log. */
function exists(d: Detail): boolean {
  return d.version > 0 || d.members.length > 0 || d.transitions.length > 0;
}

async function oneGroup(group: string, options: StatusOptions, io: Io): Promise<number> {
  // An empty argument is a group name (refused as one), not "every group".
  const d = await read(group, options, options.history);
  if (!exists(d)) {
    io.stderr(
      `understudy: no group ${shown(group)} under prefix ${options.prefix} on ${describeConnection(options)}\n`,
    );
    return ExitCode.failure;
  }
  if (options.json) {
    io.stdout(`${json(d, 2)}\n`);
    return ExitCode.ok;
  }
  const colour = io.isTTY;
  const out = [headline(d, colour)];
  out.push(...(d.members.length ? memberTable(d, colour).map((l) => `  ${l}`) : ['  (no members)']));
  if (isQuorum(d)) out.push(...serverTable(d.servers, d.quorum, colour).map((l) => `  ${l}`));
  if (d.transitions.length > 0) {
    out.push('  recent transitions:');
    out.push(...columns(d.transitions.map((t) => detailLine(d, t))).map((l) => `    ${l}`));
  }
  io.stdout(`${out.join('\n')}\n`);
  return ExitCode.ok;
}

/**
 * Every group's name: in quorum mode the union over the servers that answer (a group any of them
 * holds), an error only when none answers; and the queues, which live on one Redis (none in
 * quorum mode).
 */
async function listAll(options: StatusOptions): Promise<{ names: string[]; queueNames: string[] }> {
  const sources = groupSources(options);
  if (!Array.isArray(sources)) {
    const source = { redis: redisSource(options), prefix: options.prefix };
    const [names, queueNames] = await Promise.all([listGroups(source), listQueues(source)]);
    return { names, queueNames };
  }
  const listed = await Promise.allSettled(sources.map((redis) => listGroups({ redis, prefix: options.prefix })));
  const names = new Set<string>();
  for (const result of listed) if (result.status === 'fulfilled') for (const name of result.value) names.add(name);
  if (listed.every((r) => r.status === 'rejected')) throw (listed[0] as PromiseRejectedResult).reason;
  return { names: [...names].sort(), queueNames: [] };
}

async function allGroups(options: StatusOptions, io: Io): Promise<number> {
  const { names, queueNames } = await listAll(options);
  const colour = io.isTTY;
  const groups: Detail[] = [];
  const queues: QueueSnapshot[] = [];
  const failed: ({ group: string; error: string } | { queue: string; error: string })[] = [];
  const codes: number[] = [];
  /** A group or queue whose state cannot be read must not hide the others: its line says why. */
  const unreadable = (entry: { group: string } | { queue: string }, name: string, error: unknown) => {
    failed.push({ ...entry, error: messageOf(error) });
    codes.push(exitCodeOf(error));
    const text = `cannot be read: ${shown(messageOf(error))}`;
    return [shown(name), '?', '?', '?', '?', colour ? pc.red(text) : text];
  };
  const groupRows: string[][] = [];
  for (const name of names) {
    try {
      const d = await read(name, options, options.json ? options.history : 1);
      groups.push(d);
      groupRows.push(groupRow(d, colour));
    } catch (error) {
      groupRows.push(unreadable({ group: name }, name, error));
    }
  }
  const queueRows: string[][] = [];
  for (const queue of queueNames) {
    try {
      const q = await describeQueue({ redis: redisSource(options), prefix: options.prefix, queue });
      queues.push(q);
      queueRows.push(queueRow(q));
    } catch (error) {
      queueRows.push(unreadable({ queue }, queue, error));
    }
  }
  const code = codes[0] ?? ExitCode.ok;
  if (options.json) {
    io.stdout(`${json({ groups, queues, failed }, 2)}\n`);
    return code;
  }
  if (names.length === 0 && queueNames.length === 0) {
    io.stdout(`no groups or queues under prefix ${options.prefix} on ${describeConnection(options)}\n`);
    return ExitCode.ok;
  }
  const tables: string[][] = [];
  const counted: string[] = [];
  const details: string[] = [];
  if (names.length > 0) {
    tables.push(
      columns([
        header(['GROUP', 'ACTIVE', 'MEMBERS', 'VERSION', 'QUARANTINE', 'LAST TRANSITION'], colour),
        ...groupRows,
      ]),
    );
    counted.push(plural(names.length, 'group'));
    details.push('understudy status <group>');
  }
  if (queueNames.length > 0) {
    tables.push(
      columns([header(['QUEUE', 'DEPTH', 'WORKERS', 'IN FLIGHT', 'DEAD', 'QUARANTINE'], colour), ...queueRows]),
    );
    counted.push(plural(queueNames.length, 'queue'));
    details.push('understudy queue <queue>');
  }
  const tally = `${counted.join(', ')}${failed.length ? `, ${failed.length} unreadable` : ''}`;
  io.stdout(`${tables.map((t) => t.join('\n')).join('\n\n')}\n${tally} · details: ${details.join(', ')}\n`);
  return code;
}

function groupRow(d: Detail, colour: boolean): string[] {
  const last = d.transitions.at(-1);
  return [
    shown(d.group),
    activeCount(d, colour),
    String(d.members.length),
    String(d.version),
    d.quarantineRemainingMs > 0 ? seconds(d.quarantineRemainingMs) : '-',
    last
      ? transitionLine(last)
          .filter((cell) => cell !== '-')
          .join(' ')
      : '-',
  ];
}

function queueRow(q: QueueSnapshot): string[] {
  return [
    shown(q.queue),
    String(q.depth),
    String(q.workers.length),
    String(q.inFlight),
    String(q.dead),
    quarantine(q) || '-',
  ];
}
