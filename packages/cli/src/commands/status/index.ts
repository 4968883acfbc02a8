import { describeGroup, type GroupSnapshot, listGroups, readHistory, type Transition } from '@understudy/core';
import { Command } from 'commander';
import pc from 'picocolors';
import { ExitCode, exitCodeOf, messageOf } from '../../exit.js';
import { columns, headline, json, memberTable, plural, shown, transitionLine } from '../../format.js';
import type { Io } from '../../io.js';
import {
  type ConnectionOptions,
  describeConnection,
  integer,
  redisSource,
  withConnectionOptions,
} from '../../options.js';

interface StatusOptions extends ConnectionOptions {
  json?: boolean;
  history: number;
}

export function statusCommand(io: Io, exit: (code: number) => void): Command {
  return withConnectionOptions(new Command('status'))
    .summary('show groups, their members and recent transitions')
    .description(
      'Without a group: one line per group, sorted by name (active against goal, members, ' +
        'version, quarantine, last transition); a group that cannot be read is listed with ' +
        'its error and makes the exit code non-zero. With a group: its members with rank, ' +
        'weight, state, epoch and lease, and the recent transitions with their times; exit ' +
        'code 1 if the group does not exist. Read-only.',
    )
    .argument('[group]', 'one group to show in detail')
    .option('--json', 'print JSON instead of tables')
    .option('--history <n>', 'recent transitions to show per group', integer(0), 10)
    .action(async (group: string | undefined, options: StatusOptions) => {
      exit(group === undefined ? await allGroups(options, io) : await oneGroup(group, options, io));
    });
}

type Detail = GroupSnapshot & { transitions: Transition[] };

async function read(name: string, options: StatusOptions, count: number): Promise<Detail> {
  const connection = { redis: redisSource(options), prefix: options.prefix, group: name };
  const [snapshot, transitions] = await Promise.all([describeGroup(connection), readHistory({ ...connection, count })]);
  return { ...snapshot, transitions };
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
  if (d.transitions.length > 0) {
    out.push('  recent transitions:');
    out.push(...columns(d.transitions.map(transitionLine)).map((l) => `    ${l}`));
  }
  io.stdout(`${out.join('\n')}\n`);
  return ExitCode.ok;
}

async function allGroups(options: StatusOptions, io: Io): Promise<number> {
  const names = await listGroups({ redis: redisSource(options), prefix: options.prefix });
  const groups: Detail[] = [];
  const failed: { group: string; error: string; code: number }[] = [];
  // One group whose state cannot be read must not hide the others.
  for (const name of names) {
    try {
      groups.push(await read(name, options, options.json ? options.history : 1));
    } catch (error) {
      failed.push({ group: name, error: messageOf(error), code: exitCodeOf(error) });
    }
  }
  const code = failed[0]?.code ?? ExitCode.ok;
  if (options.json) {
    io.stdout(`${json({ groups, failed: failed.map(({ group, error }) => ({ group, error })) }, 2)}\n`);
    return code;
  }
  if (names.length === 0) {
    io.stdout(`no groups under prefix ${options.prefix} on ${describeConnection(options)}\n`);
    return ExitCode.ok;
  }
  const colour = io.isTTY;
  const header = ['GROUP', 'ACTIVE', 'MEMBERS', 'VERSION', 'QUARANTINE', 'LAST TRANSITION'];
  const byName = new Map<string, string[]>();
  for (const d of groups) {
    const count = `${d.activeCount}/${d.activeGoal}`;
    const healthy = d.activeCount === Math.min(d.activeGoal, d.members.length);
    const last = d.transitions.at(-1);
    byName.set(d.group, [
      shown(d.group),
      colour ? (healthy ? pc.green(count) : pc.yellow(count)) : count,
      String(d.members.length),
      String(d.version),
      d.quarantineRemainingMs > 0 ? `${(d.quarantineRemainingMs / 1000).toFixed(1)}s` : '-',
      last
        ? transitionLine(last)
            .filter((cell) => cell !== '-')
            .join(' ')
        : '-',
    ]);
  }
  for (const f of failed) {
    const text = `cannot be read: ${shown(f.error)}`;
    byName.set(f.group, [shown(f.group), '?', '?', '?', '?', colour ? pc.red(text) : text]);
  }
  const table = columns([colour ? header.map((h) => pc.bold(h)) : header, ...names.map((n) => byName.get(n) ?? [])]);
  const tally = `${plural(names.length, 'group')}${failed.length ? `, ${failed.length} unreadable` : ''}`;
  io.stdout(`${table.join('\n')}\n${tally} · details: understudy status <group>\n`);
  return code;
}
