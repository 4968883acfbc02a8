import { describeGroup, listGroups, readHistory } from '@understudy/core';
import { Command } from 'commander';
import { columns, headline, memberTable, transitionLine } from '../../format.js';
import type { Io } from '../../io.js';
import { type ConnectionOptions, describeConnection, integer, redisSource, withConnection } from '../../options.js';

interface StatusOptions extends ConnectionOptions {
  json?: boolean;
  history: number;
}

export function statusCommand(io: Io, exit: (code: number) => void): Command {
  return withConnection(new Command('status'))
    .summary('show groups, their members and recent transitions')
    .description(
      'Show every group (or one): active count, goal, members with rank, weight, state, epoch ' +
        'and lease, and the recent transitions with their times. Read-only.',
    )
    .argument('[group]', 'one group to show in detail')
    .option('--json', 'print JSON instead of tables')
    .option('--history <n>', 'recent transitions to show per group', integer(0), 10)
    .action(async (group: string | undefined, options: StatusOptions) => {
      exit(await status(group, options, io));
    });
}

async function status(group: string | undefined, options: StatusOptions, io: Io): Promise<number> {
  const connection = { redis: redisSource(options), prefix: options.prefix };
  // An empty argument is a group name (refused as one), not "every group".
  const groups = group !== undefined ? [group] : await listGroups(connection);
  const details = [];
  for (const name of groups) {
    const [snapshot, transitions] = await Promise.all([
      describeGroup({ ...connection, group: name }),
      readHistory({ ...connection, group: name, count: options.history }),
    ]);
    details.push({ ...snapshot, transitions });
  }
  if (options.json) {
    io.stdout(`${JSON.stringify(group !== undefined ? details[0] : { groups: details }, null, 2)}\n`);
    return 0;
  }
  if (details.length === 0) {
    io.stdout(`no groups under prefix ${options.prefix} on ${describeConnection(options)}\n`);
    return 0;
  }
  const colour = io.isTTY;
  const out: string[] = [];
  for (const d of details) {
    out.push(headline(d, colour));
    out.push(...(d.members.length ? memberTable(d, colour).map((l) => `  ${l}`) : ['  (no members)']));
    if (d.transitions.length > 0) {
      out.push('  recent transitions:');
      out.push(...columns(d.transitions.map(transitionLine)).map((l) => `    ${l}`));
    }
    out.push('');
  }
  io.stdout(`${out.join('\n')}`);
  return 0;
}
