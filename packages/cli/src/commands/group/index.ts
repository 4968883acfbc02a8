import { forgetGroup, setActiveGoal } from '@understudy/core';
import { Command } from 'commander';
import { ExitCode } from '../../exit.js';
import { json, shown } from '../../format.js';
import type { Io } from '../../io.js';
import { type ConnectionOptions, groupSources, integer, redisSource, withConnectionOptions } from '../../options.js';

interface SetOptions extends ConnectionOptions {
  activeGoal: number;
  json?: boolean;
}

export function groupCommand(io: Io, exit: (code: number) => void): Command {
  const group = new Command('group')
    .summary('change a group’s active goal, or forget an empty group')
    .description('Change a group’s parameters (the operator’s side).');
  group.addCommand(
    withConnectionOptions(new Command('set'), { quorum: true })
      .description(
        'Set the active goal N of a group. Members follow at once: a raised goal activates the ' +
          'next ranked members, a lowered one deactivates the lowest-ranked actives first. In ' +
          'quorum mode (--redis given K times) the change goes to all K servers and takes effect ' +
          'once Q accepted it; servers that did not accept, or had another goal before, are ' +
          'listed; fewer than Q accepting is an error (exit code 3), and the change is best ' +
          'given again.',
      )
      .argument('<group>', 'the group')
      .requiredOption('--active-goal <n>', 'members active at once', integer(1))
      .option('--json', 'print the outcome as JSON (per server in quorum mode)')
      .action(async (name: string, options: SetOptions) => {
        const redis = groupSources(options);
        const base = { prefix: options.prefix, group: name, activeGoal: options.activeGoal };
        if (!Array.isArray(redis)) {
          const { previous, version } = await setActiveGoal({ ...base, redis });
          if (options.json) io.stdout(`${json({ group: name, activeGoal: options.activeGoal, previous, version })}\n`);
          else io.stdout(`group ${name}: active goal ${previous} -> ${options.activeGoal} (version ${version})\n`);
          exit(ExitCode.ok);
          return;
        }
        const change = await setActiveGoal({ ...base, redis });
        if (options.json) {
          io.stdout(`${json({ group: name, activeGoal: options.activeGoal, ...change }, 2)}\n`);
          exit(ExitCode.ok);
          return;
        }
        const lines = [
          `group ${name}: active goal ${change.previous} -> ${options.activeGoal} (version ${change.version}; ` +
            `accepted by ${change.accepted} of ${change.servers.length} servers, a quorum is ${change.quorum})`,
        ];
        // Where a server's answer differs from the majority's, say so.
        for (const s of change.servers) {
          if (!s.reachable) lines.push(`  ${shown(s.server)}: not accepted: ${shown(s.error ?? 'no answer')}`);
          else if (s.previous !== change.previous)
            lines.push(`  ${shown(s.server)}: accepted, its goal was ${s.previous}`);
        }
        io.stdout(`${lines.join('\n')}\n`);
        exit(ExitCode.ok);
      }),
  );
  group.addCommand(
    withConnectionOptions(new Command('forget'))
      .description('Delete a group that has no live members: its parameters, ranking and transition log.')
      .argument('<group>', 'the group')
      .action(async (name: string, options: ConnectionOptions) => {
        const { deletedKeys } = await forgetGroup({ redis: redisSource(options), prefix: options.prefix, group: name });
        io.stdout(`group ${name}: forgotten (${deletedKeys} keys deleted)\n`);
        exit(ExitCode.ok);
      }),
  );
  return group;
}
