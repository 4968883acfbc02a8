import { loadFunctions } from '@understudy/core';
import { Command } from 'commander';
import { ExitCode } from '../../exit.js';
import type { Io } from '../../io.js';
import { type ConnectionOptions, redisSource, withConnectionOptions } from '../../options.js';

export function functionsCommand(io: Io, exit: (code: number) => void): Command {
  const functions = new Command('functions')
    .summary('load understudy’s Redis function libraries (an operator’s step)')
    .description(
      'understudy’s scripts run as Redis functions (Redis 7+): loaded once per server, then called ' +
        'with FCALL / FCALL_RO. Members load them themselves where their user may run FUNCTION LOAD; ' +
        'the users of `understudy acl` may not, so an operator loads them, or the members run the ' +
        'same scripts with EVALSHA (slower, same behaviour).',
    );
  functions.addCommand(
    withConnectionOptions(new Command('load'))
      .description(
        'Load the group and queue libraries of this version of understudy on the server, or on every ' +
          'master of a Cluster (FUNCTION LOAD; a library already there is left as it is). Needs a user ' +
          'that may run FUNCTION LOAD. Each version has its own library: run it again after an upgrade.',
      )
      .action(async (options: ConnectionOptions) => {
        const libraries = await loadFunctions({ redis: redisSource(options) });
        for (const library of libraries) {
          const already = library.servers - library.loadedNow;
          io.stdout(
            `${library.kind} library ${library.name}: loaded on ${library.loadedNow} of ${library.servers} ` +
              `server${library.servers === 1 ? '' : 's'}${already > 0 ? ` (already on ${already})` : ''}\n`,
          );
        }
        exit(ExitCode.ok);
      }),
  );
  return functions;
}
