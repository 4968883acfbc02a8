import { forgetGroup, setActiveGoal } from '@understudy/core';
import { Command } from 'commander';
import { ExitCode } from '../../exit.js';
import type { Io } from '../../io.js';
import { type ConnectionOptions, integer, redisSource, withConnectionOptions } from '../../options.js';

interface SetOptions extends ConnectionOptions {
  activeGoal: number;
}

export function groupCommand(io: Io, exit: (code: number) => void): Command {
  const group = new Command('group')
    .summary('change a group’s active goal, or forget an empty group')
    .description('Change a group’s parameters (the operator’s side).');
  group.addCommand(
    withConnectionOptions(new Command('set'), { quorum: true })
      .description(
        'Set the active goal N of a group. Members follow at once: a raised goal activates the ' +
          'next ranked members, a lowered one deactivates the lowest-ranked actives first.',
      )
      .argument('<group>', 'the group')
      .requiredOption('--active-goal <n>', 'members active at once', integer(1))
      .action(async (name: string, options: SetOptions) => {
        const { previous, version } = await setActiveGoal({
          redis: redisSource(options),
          prefix: options.prefix,
          group: name,
          activeGoal: options.activeGoal,
        });
        io.stdout(`group ${name}: active goal ${previous} -> ${options.activeGoal} (version ${version})\n`);
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
